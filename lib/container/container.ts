import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { close, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { PR } from '../sys/constants.ts';
import { OP } from '../spawn/plan.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { launchJoined, type LaunchedProcess, type PendingProcess } from '../spawn/launch.ts';
import { checkRunOptions, collectRun, exitInfo, signalNumber, type ExitInfo, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, envList, processOps, searchPath } from './setup.ts';
import type { ResolvedSpec, StdioMode } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';

/** Where a container is in its life. */
export type ContainerStatus = 'created' | 'running' | 'stopped' | 'removed';

/** Options of exec(): a new process in a running container. */
export interface ExecOptions extends RunOptions {
  /** Environment; default the container's. */
  env?: Record<string, string>;
  cwd?: string;
  user?: { uid: number; gid: number; groups?: number[] };
  stdio?: StdioMode;
}

/** Options of stop(). */
export interface StopOptions {
  /** Milliseconds between SIGTERM and SIGKILL; default the runtime's stopTimeout. */
  timeout?: number;
}

/** What a Container needs from the runtime that made it. */
export interface ContainerOwner {
  stopTimeout: number;
  forget(id: string): void;
}

/** Events: 'start', 'exit' (ExitInfo). */
export interface ContainerEvents {
  start: [];
  exit: [ExitInfo];
}

const SIGKILL = 9;

/** A container: its first process, its namespaces and stdio; created → running → stopped → removed. */
export class Container extends EventEmitter<ContainerEvents> {
  /** The container's id, unique in its runtime. */
  readonly id: string;
  /** Host pid of the first process. */
  readonly pid: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Piped stdio, or null. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;

  readonly #spec: ResolvedSpec;
  readonly #owner: ContainerOwner;
  #status: ContainerStatus;
  #pidfd: number;
  #pending: PendingProcess | null;
  #exit: ExitInfo | null = null;
  readonly #exited: Promise<ExitInfo>;

  /** @internal Made by Runtime.create and Runtime.run. */
  constructor(spec: ResolvedSpec, owner: ContainerOwner, proc: LaunchedProcess | PendingProcess, stdio: StdioSet, started: boolean) {
    super();
    this.id = spec.id;
    this.pid = proc.pid;
    this.labels = Object.freeze({ ...spec.labels });
    this.stdin = stdio.stdin;
    this.stdout = stdio.stdout;
    this.stderr = stdio.stderr;
    this.#spec = spec;
    this.#owner = owner;
    this.#pidfd = proc.pidfd;
    this.#pending = started ? null : (proc as PendingProcess);
    this.#status = started ? 'running' : 'created';
    this.#exited = new Promise((resolve) => {
      exitWatcher.watch(proc.pidfd, (status) => {
        close(this.#pidfd);
        this.#pidfd = -1;
        this.#pending = null;
        this.#exit = exitInfo(status);
        if (this.#status !== 'removed') this.#status = 'stopped';
        resolve(this.#exit);
        this.emit('exit', this.#exit);
      });
    });
  }

  get status(): ContainerStatus {
    return this.#status;
  }

  /** The exit of the first process, once it has exited. */
  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** Lets a created container exec its command; rejects if the exec fails (e.g. EACCES). */
  async start(): Promise<void> {
    if (this.#status !== 'created' || !this.#pending) {
      throw new CorralError(`container ${this.id} is ${this.#status}, not created`, { code: 'ERR_CONTAINER_NOT_CREATED' });
    }
    const pending = this.#pending;
    this.#pending = null;
    await pending.start();
    if (this.#status === 'created') this.#status = 'running';
    this.emit('start');
  }

  /** Resolves with the exit of the first process. */
  wait(): Promise<ExitInfo> {
    return this.#exited;
  }

  /** Sends a signal to the first process (SIGKILL ends the whole container). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    const sig = signalNumber(signal);
    if (this.#status !== 'running' || this.#pidfd < 0) {
      throw new CorralError(`container ${this.id} is ${this.#status}, not running`, { code: 'ERR_CONTAINER_NOT_RUNNING' });
    }
    pidfdSendSignal(this.#pidfd, sig);
  }

  /** SIGTERM, then SIGKILL after the timeout; resolves with the exit. */
  async stop(options: StopOptions = {}): Promise<ExitInfo> {
    if (this.#status === 'created') {
      await this.#killNow();
      return this.#exited;
    }
    if (this.#status !== 'running') return this.#exited;
    const timeout = options.timeout ?? this.#owner.stopTimeout;
    this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const escalate = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout);
    });
    const first = await Promise.race([this.#exited, escalate]);
    clearTimeout(timer);
    if (first) return first;
    await this.#killNow();
    return this.#exited;
  }

  /** Runs another process inside the running container and collects its output. */
  async exec(command: string[], options: ExecOptions = {}): Promise<RunResult> {
    if (this.#status !== 'running' || this.#pidfd < 0) {
      throw new CorralError(`container ${this.id} is ${this.#status}, not running`, { code: 'ERR_CONTAINER_NOT_RUNNING' });
    }
    if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw new CorralError('exec command must be a non-empty array of strings', { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const stdioMode = options.stdio ?? 'pipe';
    checkRunOptions(options, stdioMode === 'pipe');
    const env = options.env ?? this.#spec.env;
    const spec = {
      cwd: options.cwd ?? this.#spec.cwd,
      user: options.user ? { ...options.user, groups: options.user.groups ?? [] } : this.#spec.user,
      namespaces: this.#spec.namespaces,
      capabilities: this.#spec.capabilities,
    };
    const stdio = openStdio(stdioMode);
    const startedAt = performance.now();
    let proc: LaunchedProcess;
    try {
      proc = await launchJoined({
        cloneFlags: 0n,
        targetPidfd: this.#pidfd,
        nsFlags: cloneFlags(this.#spec),
        joinSetup: [{ code: OP.PRCTL, step: 'make the joining process non-dumpable', syscall: 'prctl', n: [PR.SET_DUMPABLE, 0] }],
        setup: [
          { code: OP.PRCTL, step: 'die with the parent (PR_SET_PDEATHSIG)', syscall: 'prctl', n: [PR.SET_PDEATHSIG, SIGKILL] },
          { code: OP.SETSID, step: 'start a new session', syscall: 'setsid' },
          ...processOps(spec),
        ],
        command,
        env: envList(env),
        searchPath: searchPath(env),
        stdio: stdio.childFds,
      });
    } catch (e) {
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
    return collectRun({
      ...stdio,
      wait: () => exited,
      kill: (signal) => {
        if (proc.pidfd >= 0) pidfdSendSignal(proc.pidfd, signalNumber(signal));
      },
    }, options, startedAt);
  }

  /** Forgets the container and closes its stdio; a running one needs force (it is killed first). */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    if (this.#status === 'removed') return;
    if (this.#status === 'running' && !options.force) {
      throw new CorralError(`container ${this.id} is running; stop it or remove it with force`, { code: 'ERR_CONTAINER_RUNNING' });
    }
    if (this.#status === 'running' || this.#status === 'created') await this.#killNow();
    await this.#exited;
    this.#status = 'removed';
    // Output nobody read is discarded with the container.
    this.stdin?.destroy();
    this.stdout?.destroy();
    this.stderr?.destroy();
    this.#owner.forget(this.id);
  }

  /** `await using c = await create(…)`: the container is killed and removed at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
  }

  async #killNow(): Promise<void> {
    if (this.#pending) await this.#pending.abandon();
    this.#pending = null;
    if (this.#pidfd >= 0) pidfdSendSignal(this.#pidfd, SIGKILL);
    await this.#exited;
  }
}
