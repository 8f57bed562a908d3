import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { close, pipe } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { startTime } from '../sys/process-tag.ts';
import { encodePlan } from './plan.ts';
import { StatusChannel } from './status-channel.ts';
import { pendingPlan, stepError, type LaunchSpec } from './launch.ts';
import { executorImageFd } from './executor-image.ts';
import { idMapCommands } from './write-id-maps.ts';

// lib/spawn (or dist/spawn) → bindings/build/corral-supervisor
const supervisorPath = fileURLToPath(new URL('../../bindings/build/corral-supervisor', import.meta.url));

/** The fds the supervisor gives the container's init for each launch (bindings/supervisor.c). */
const SUPERVISOR_FDS = { exe: 4, status: 5, start: 6, stdio: [7, 8, 9] as const, maps: 10, console: 11 };

/** The fd of the network namespace the supervisor holds for its container's plan to join. */
export const SUPERVISED_NETNS_FD = 3;

/** The fd of the console socket the supervisor gives a container with a terminal (OP_CONSOLE): it
 * holds the pty master from then on. */
export const SUPERVISED_CONSOLE_FD = SUPERVISOR_FDS.console;

/** The step of a supervisor's error report when its network helper failed (bindings/supervisor.c). */
const HELPER_STEP = -2;

/** How the supervisor keeps logs and restarts its container. */
export interface SupervisorConfig {
  /** The container's state directory (holds the FIFO named control, process.json, the logs). */
  dir: string;
  logMaxBytes: number;
  logMaxFiles: number;
  restart: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maxRetries: number;
  /** The container has a terminal, whose master the supervisor holds (spec.tty). */
  tty: boolean;
  /** Attachers' input goes in: to the terminal, or to a stdin pipe the supervisor keeps. */
  interactive: boolean;
  /** What replaces the supervisor once the container has ended for good (autoRemove), or null. */
  exitCommand: string[] | null;
  /** Run at each launch with the init's pid appended (pasta), or null; it writes its pid to
   * DIR/network.pid and its output to DIR/network.log, and is killed when that run ends. */
  networkHelper: string[] | null;
}

/** A supervisor started and waiting for the plan; its tag owns what the container acquires. */
export interface StartedSupervisor {
  pid: number;
  /** Its start time: with the pid it names the supervisor for good. */
  startTime: string;
  /** 'proc-PID-STARTTIME' of the supervisor. */
  tag: string;
  /** Sends the plan; resolves once the init is set up and waits for start. overlayWork: the work
   * directory of the container's volatile overlay, reset by the supervisor before a restart;
   * netns: a path of the network namespace the supervisor holds as SUPERVISED_NETNS_FD. */
  launch(spec: LaunchSpec, cgroupPath: string | null, overlayWork: string | null, netns: string | null): Promise<SupervisedProcess>;
  /** Gives up before launch: the supervisor exits. */
  cancel(): void;
}

/** A container init under a supervisor, set up and waiting for start. */
export interface SupervisedProcess {
  pid: number;
  /** Resolves once it exec'd after a start command (bindings/supervisor.c), rejects if exec failed. */
  started(): Promise<void>;
}

/** The network helper's failure, with what it printed. */
function helperError(config: SupervisorConfig, status: number): CorralError {
  const log = join(config.dir, 'network.log');
  let text = '';
  try {
    text = readFileSync(log, 'utf8').trim();
  } catch {
    // it printed nothing
  }
  const name = config.networkHelper![0]!;
  const message = status === 127 && text.startsWith('cannot run') ? `${text} (rootless networking needs pasta: install the passt package)` : `${name} exited with ${status}: ${text}`;
  return new CorralError(message, { code: 'ERR_NETWORK_SETUP', path: log, step: `start ${name} for the container network` });
}

/** Starts a supervisor (its own session, not tied to this process) that waits for its plan. */
export function startSupervisor(config: SupervisorConfig): StartedSupervisor {
  const [reportRead, reportWrite] = pipe();
  let child: ChildProcess;
  try {
    const args = [
      config.dir, String(config.logMaxBytes), String(config.logMaxFiles), config.restart, String(config.maxRetries),
      ...(config.tty ? ['-t'] : []), ...(config.interactive ? ['-i'] : []),
      ...(config.networkHelper ? ['-n', ...config.networkHelper] : []),
      ...(config.exitCommand ? ['--', ...config.exitCommand] : []),
    ];
    child = spawn(supervisorPath, args, {
      // fd 4: the sealed executor image the container's processes exec into (OP_REEXEC).
      stdio: ['pipe', reportWrite, 'ignore', 'ignore', executorImageFd()],
      detached: true,
    });
  } finally {
    close(reportWrite);
  }
  child.unref();
  // Reaped by child_process if it ends while we live; errors surface as a report channel EOF.
  child.on('error', () => {});
  const pid = child.pid;
  const started = pid === undefined ? null : startTime(pid);
  if (pid === undefined || started === null) {
    close(reportRead);
    child.stdin?.destroy();
    throw new CorralError(`cannot start the supervisor ${supervisorPath}: run "npm run build:native"`, { code: 'ERR_SUPERVISOR_FAILED', path: supervisorPath, step: 'start the supervisor' });
  }
  const input = child.stdin!;
  input.on('error', () => {});
  const channel = new StatusChannel(reportRead);
  return {
    pid,
    startTime: started,
    tag: `proc-${pid}-${started}`,
    cancel() {
      input.destroy();
      channel.close();
    },
    async launch(spec, cgroupPath, overlayWork, netns) {
      const ops = pendingPlan(spec, SUPERVISOR_FDS.status, SUPERVISOR_FDS.start, { stdio: SUPERVISOR_FDS.stdio, exe: SUPERVISOR_FDS.exe }, spec.idMap ? SUPERVISOR_FDS.maps : null);
      // With a range the supervisor runs newuidmap and newgidmap for each init it launches.
      const maps = spec.idMap ? idMapCommands(spec.idMap) : null;
      const header = [spec.cloneFlags, cgroupPath ?? '-', overlayWork ?? '-', netns ?? '-', maps?.uids.join(' ') ?? '-', maps?.gids.join(' ') ?? '-'].map((l) => `${l}\n`).join('');
      input.end(Buffer.concat([Buffer.from(header), encodePlan(ops, SUPERVISOR_FDS.status)]));
      const first = await channel.next();
      const ready = first?.kind === 'pid' ? await channel.next() : first;
      if (first?.kind !== 'pid' || ready?.kind !== 'ready') {
        channel.close();
        if (ready?.kind === 'error' && ready.step === HELPER_STEP) throw helperError(config, ready.errno);
        if (ready?.kind === 'error' && ready.step >= 0) throw stepError(ops, ready);
        throw new CorralError(`the supervisor (pid ${pid}) failed to set up the container${ready?.kind === 'error' ? `: errno ${ready.errno}` : ''}`, { code: 'ERR_SETUP_FAILED', step: 'setup' });
      }
      return {
        pid: first.value,
        async started() {
          const outcome = await channel.next();
          channel.close();
          if (outcome?.kind === 'error') throw stepError(ops, outcome);
          if (outcome?.kind !== 'ready') throw new CorralError(`the supervisor (pid ${pid}) exited before the container started`, { code: 'ERR_SUPERVISOR_FAILED', step: 'start' });
        },
      };
    },
  };
}

