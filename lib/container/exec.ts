import type { Readable, Writable } from 'node:stream';
import { close, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { launchJoined, type JoinSpec, type LaunchedProcess } from '../spawn/launch.ts';
import type { Cgroup } from '../cgroup/cgroup.ts';
import { abortError, checkRunOptions, collectRun, exitInfo, signalNumber, type ExitInfo, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, commandStartOps, envList, joinedProcessOps, joiningOps, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { checkMapped, type ResolvedSpec, type StdioMode } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';
import { checkTerminalSize, ConsoleSocket, terminalIo, type Terminal, type TerminalSize } from './terminal.ts';

const SIGKILL = 9;

/** Options of spawn(): a new process in a running container, its stdio left to the caller. */
export interface SpawnOptions {
  /** Environment; default the container's. */
  env?: Record<string, string>;
  cwd?: string;
  user?: { uid: number; gid: number; groups?: number[] };
  stdio?: StdioMode;
  /** A terminal from the container's devpts as the process's stdio and controlling terminal
   * (stdio is then unused): the handle's terminal. */
  tty?: boolean;
  /** The terminal's size at start (with tty). */
  consoleSize?: TerminalSize;
  /** Aborting kills the process's group with killSignal (as child_process.spawn's signal). */
  signal?: AbortSignal;
  /** Signal used by abort; default SIGKILL. */
  killSignal?: NodeJS.Signals;
}

/** Options of exec(): spawn()'s, and the output collected (with tty the terminal's output is the
 * result's stdout). */
export interface ExecOptions extends RunOptions, Omit<SpawnOptions, 'signal' | 'killSignal'> {}

/** The running container an exec joins. */
export interface ExecTarget {
  spec: ResolvedSpec;
  /** A pidfd of the container's first process. */
  initPidfd: number;
  cgroup: Cgroup | null;
}

/** A process spawn() started in a running container, as child_process.spawn gives one: its piped
 * stdio or its terminal, wait() and kill(); `await using` kills it (and its process group) and
 * waits for it at the end of the scope. */
export class ExecProcess {
  /** Host pid. */
  readonly pid: number;
  /** Piped stdio (stdio 'pipe'), else null. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** The process's terminal with tty (type into it, read it, resize it), else null. */
  readonly terminal: Terminal | null;
  #proc: LaunchedProcess;
  readonly #exited: Promise<ExitInfo>;
  #exit: ExitInfo | null = null;

  /** @internal Made by spawn() once the process runs. */
  constructor(proc: LaunchedProcess, stdio: StdioSet, terminal: Terminal | null) {
    this.pid = proc.pid;
    this.#proc = proc;
    this.stdin = stdio.stdin;
    this.stdout = stdio.stdout;
    this.stderr = stdio.stderr;
    this.terminal = terminal;
    this.#exited = new Promise<ExitInfo>((resolve) => {
      exitWatcher.watch(proc.pidfd, (status) => {
        close(proc.pidfd);
        proc.pidfd = -1;
        this.#exit = exitInfo(status);
        resolve(this.#exit);
      });
    });
  }

  /** How it exited, once it has. */
  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** Resolves with its exit. */
  wait(): Promise<ExitInfo> {
    return this.#exited;
  }

  /** Sends a signal to the process while it lives (nothing once it has exited). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    const sig = signalNumber(signal);
    if (this.#proc.pidfd >= 0) pidfdSendSignal(this.#proc.pidfd, sig);
  }

  /** @internal Signals the process and everything in its process group (it is a session leader),
   * so a timeout or abort also ends the children that hold its output
   * (test/security/exec-timeout-escape.test.ts). Only while the leader is not reaped (its pidfd is
   * open): until then its pid cannot name another group. */
  killGroup(signal: number): void {
    if (this.#proc.pidfd < 0) return;
    pidfdSendSignal(this.#proc.pidfd, signal);
    try {
      process.kill(-this.#proc.pid, signal);
    } catch {
      // the group is gone already
    }
  }

  /** Kills the process group and waits for the exit; its streams are closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.killGroup(SIGKILL);
    await this.#exited;
    this.stdin?.destroy();
    this.stdout?.destroy();
    this.stderr?.destroy();
    await this.terminal?.close();
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

function checkCommand(command: string[]): void {
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw new CorralError('exec command must be a non-empty array of strings', { code: 'ERR_INVALID_ARG_VALUE' });
  }
}

/** Starts another process inside a running container (joined through setns on the init's pidfd,
 * born in its cgroup); resolves once it runs. */
export async function spawnIn(target: ExecTarget, command: string[], options: SpawnOptions = {}): Promise<ExecProcess> {
  checkCommand(command);
  const stdioMode = options.stdio ?? 'pipe';
  if (options.killSignal !== undefined) signalNumber(options.killSignal);
  const size = options.consoleSize === undefined ? null : checkTerminalSize(options.consoleSize, 'consoleSize');
  if (options.tty && !target.spec.namespaces.mount) {
    throw new CorralError('tty needs the mount namespace (the terminal comes from its /dev/pts)', { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (options.signal?.aborted) throw abortError(options.signal);
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
  let proc: LaunchedProcess;
  try {
    proc = await launchJoined(joinSpec(target, spec, { command, env, stdio: stdio.childFds, console: consoleSocket && { fd: consoleSocket.childFd, size } }));
  } catch (e) {
    consoleSocket?.close();
    stdio.destroy();
    throw e;
  }
  stdio.releaseChildEnds();
  let terminal: Terminal | null = null;
  let terminalError: unknown = null;
  try {
    terminal = consoleSocket?.receive() ?? null;
  } catch (e) {
    terminalError = e;
  }
  const spawned = new ExecProcess(proc, stdio, terminal);
  if (terminalError) {
    spawned.killGroup(SIGKILL);
    await spawned.wait();
    throw terminalError;
  }
  const abort = options.signal;
  if (abort) {
    const onAbort = (): void => spawned.killGroup(signalNumber(options.killSignal ?? 'SIGKILL'));
    abort.addEventListener('abort', onAbort, { once: true });
    void spawned.wait().then(() => abort.removeEventListener('abort', onAbort));
  }
  return spawned;
}

/** Runs another process inside a running container and collects its exit and output. */
export async function execIn(target: ExecTarget, command: string[], options: ExecOptions = {}): Promise<RunResult<Buffer | string>> {
  checkCommand(command);
  checkRunOptions(options, (options.stdio ?? 'pipe') === 'pipe' || options.tty === true);
  const startedAt = performance.now();
  const oomBefore = target.cgroup?.oomKills() ?? 0;
  // An abort kills through spawnIn too; collectRun turns it into the rejection.
  const proc = await spawnIn(target, command, options);
  return collectRun({
    stdin: proc.stdin,
    stdout: proc.stdout,
    stderr: proc.stderr,
    ...(proc.terminal ? terminalIo(proc.terminal, options.input) : {}),
    wait: () => proc.wait(),
    kill: (signal) => proc.killGroup(signalNumber(signal)),
    oomKilled: () => (target.cgroup?.oomKills() ?? 0) > oomBefore,
  }, options, startedAt);
}
