import { close, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { launchJoined, type JoinSpec, type LaunchedProcess } from '../spawn/launch.ts';
import type { Cgroup } from '../cgroup/cgroup.ts';
import { checkRunOptions, collectRun, exitInfo, signalNumber, type ExitInfo, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, commandStartOps, envList, joinedProcessOps, joiningOps, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { checkMapped, type ResolvedSpec, type StdioMode } from './spec.ts';
import { openStdio } from './stdio.ts';
import { checkTerminalSize, ConsoleSocket, terminalIo, type Terminal, type TerminalSize } from './terminal.ts';

const SIGKILL = 9;

/** Options of exec(): a new process in a running container. */
export interface ExecOptions extends RunOptions {
  /** Environment; default the container's. */
  env?: Record<string, string>;
  cwd?: string;
  user?: { uid: number; gid: number; groups?: number[] };
  stdio?: StdioMode;
  /** A terminal from the container's devpts as the process's stdio and controlling terminal
   * (stdio is then unused); its output is the result's stdout. */
  tty?: boolean;
  /** The terminal's size at start (with tty). */
  consoleSize?: TerminalSize;
  /** Called with the live terminal (to type into it, resize it) once the process runs (with tty). */
  onTerminal?: (terminal: Terminal) => void;
}

/** The running container an exec joins. */
export interface ExecTarget {
  spec: ResolvedSpec;
  /** A pidfd of the container's first process. */
  initPidfd: number;
  cgroup: Cgroup | null;
}

/** Signals the exec'd process and everything in its process group (it is a session leader), so a
 * timeout or abort also ends the children that hold its output (test/security/exec-timeout-escape.test.ts).
 * Only while the leader is not reaped (its pidfd is open): until then its pid cannot name another group. */
function killProcessGroup(proc: LaunchedProcess, signal: number): void {
  if (proc.pidfd < 0) return;
  pidfdSendSignal(proc.pidfd, signal);
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** A process to start inside a running container: what it runs, with which fds, and the
 * console socket its terminal's master is sent on (tty). */
export interface JoinedProcess {
  command: string[];
  env: Record<string, string>;
  stdio: [number, number, number];
  console: { fd: number; size: TerminalSize | null } | null;
}

/** The launch of a process joining the target (exec here, corral-oci's exec): its own identity
 * and hardening from spec, the container's namespaces and cgroup. */
export function joinSpec(target: ExecTarget, spec: Pick<ResolvedSpec, 'cwd' | 'user' | 'idMap' | 'namespaces' | 'capabilities' | 'hardening'>, proc: JoinedProcess): JoinSpec {
  return {
    cloneFlags: 0n,
    targetPidfd: target.initPidfd,
    nsFlags: cloneFlags(target.spec),
    joinCgroupFd: target.cgroup?.fd ?? -1,
    joinSetup: joiningOps(),
    setup: joinedProcessOps(spec),
    beforeExec: lastStepOps(spec.hardening),
    afterResolve: commandStartOps({ init: false, tty: proc.console && { size: proc.console.size } }, proc.console?.fd ?? null),
    keepFds: proc.console ? [proc.console.fd] : [],
    command: proc.command,
    env: envList(proc.env),
    searchPath: searchPath(proc.env),
    stdio: proc.stdio,
  };
}

/** Runs another process inside a running container (joined through setns on the init's pidfd, born
 * in its cgroup) and collects its exit and output. */
export async function execIn(target: ExecTarget, command: string[], options: ExecOptions = {}): Promise<RunResult<Buffer | string>> {
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw new CorralError('exec command must be a non-empty array of strings', { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const stdioMode = options.stdio ?? 'pipe';
  checkRunOptions(options, stdioMode === 'pipe' || options.tty === true);
  const size = options.consoleSize === undefined ? null : checkTerminalSize(options.consoleSize, 'consoleSize');
  if (options.tty && !target.spec.namespaces.mount) {
    throw new CorralError('tty needs the mount namespace (the terminal comes from its /dev/pts)', { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const env = options.env ?? target.spec.env;
  const spec = {
    cwd: options.cwd ?? target.spec.cwd,
    user: options.user ? { ...options.user, groups: options.user.groups ?? [] } : target.spec.user,
    idMap: target.spec.idMap,
    namespaces: target.spec.namespaces,
    capabilities: target.spec.capabilities,
    hardening: target.spec.hardening,
  };
  if (spec.idMap && spec.user) checkMapped(spec.idMap, spec.user);
  const consoleSocket = options.tty ? new ConsoleSocket() : null;
  // With a terminal, fds 0-2 are /dev/null until the terminal replaces them.
  const stdio = openStdio(consoleSocket ? 'ignore' : stdioMode);
  const startedAt = performance.now();
  const oomBefore = target.cgroup?.oomKills() ?? 0;
  let proc: LaunchedProcess;
  try {
    proc = await launchJoined(joinSpec(target, spec, { command, env, stdio: stdio.childFds, console: consoleSocket && { fd: consoleSocket.childFd, size } }));
  } catch (e) {
    consoleSocket?.close();
    stdio.destroy();
    throw e;
  }
  stdio.releaseChildEnds();
  const exited = new Promise<ExitInfo>((resolve) => {
    exitWatcher.watch(proc.pidfd, (status) => {
      close(proc.pidfd);
      proc.pidfd = -1;
      resolve(exitInfo(status));
    });
  });
  let terminal: Terminal | null = null;
  try {
    terminal = consoleSocket?.receive() ?? null;
  } catch (e) {
    killProcessGroup(proc, SIGKILL);
    await exited;
    throw e;
  }
  if (terminal) options.onTerminal?.(terminal);
  return collectRun({
    ...stdio,
    ...(terminal ? terminalIo(terminal, options.input) : {}),
    wait: () => exited,
    kill: (signal) => killProcessGroup(proc, signalNumber(signal)),
    oomKilled: () => (target.cgroup?.oomKills() ?? 0) > oomBefore,
  }, options, startedAt);
}
