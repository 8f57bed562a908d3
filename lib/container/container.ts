import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { close, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { launchJoined, type LaunchedProcess, type PendingProcess } from '../spawn/launch.ts';
import { checkRunOptions, collectRun, exitInfo, signalNumber, type ExitInfo, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, envList, joinedProcessOps, joiningOps, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import type { ResolvedSpec, StdioMode } from './spec.ts';
import type { Cgroup, CgroupStats } from '../cgroup/cgroup.ts';
import type { CommitChanges, CommitRequest } from './image-provider.ts';
import { limitWrites, type Limits } from '../cgroup/limits.ts';
import { openStdio, type StdioSet } from './stdio.ts';

/** Where a container is in its life. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped' | 'removed';

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
  /** Makes controllers usable for container groups (cgroup.subtree_control down the chain). */
  enableControllers(controllers: Set<string>): void;
  /** Stores a container's changes as a new image. */
  commit(request: CommitRequest): Promise<{ manifestDigest: string }>;
}

/** What a container holds on the host, from the runtime: its cgroup, its writable layer, the image
 * it runs, and how to release it all once the container is removed. */
export interface ContainerHostState {
  cgroup: Cgroup | null;
  layer: { upper: string } | null;
  image: { manifestDigest: string } | null;
  release(): Promise<void>;
}

/** Options of commit(). */
export interface CommitOptions {
  /** The new image's name ('name:tag'). */
  ref: string;
  /** Recorded in the image history. */
  message?: string;
  /** Config fields to set: Cmd, Entrypoint, Env, WorkingDir, User, Labels. */
  changes?: CommitChanges;
}

/** Events: 'start', 'exit' (ExitInfo), 'oom' (the OOM killer killed in the container). */
export interface ContainerEvents {
  start: [];
  exit: [ExitInfo];
  oom: [];
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
  readonly #cgroup: Cgroup | null;
  #oomKills = 0;
  #oomWatcher: FSWatcher | null = null;

  readonly #host: ContainerHostState;

  /** @internal Made by Runtime.create and Runtime.run. */
  constructor(spec: ResolvedSpec, owner: ContainerOwner, proc: LaunchedProcess | PendingProcess, stdio: StdioSet, started: boolean, host: ContainerHostState) {
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
    this.#cgroup = host.cgroup;
    this.#host = host;
    if (host.cgroup && spec.limits.controllers.has('memory')) this.#watchOom(host.cgroup);
    this.#exited = new Promise((resolve) => {
      exitWatcher.watch(proc.pidfd, (status) => {
        close(this.#pidfd);
        this.#pidfd = -1;
        this.#pending = null;
        this.#checkOom();
        this.#oomWatcher?.close();
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

  /** True once the OOM killer has killed a process of this container. */
  get oomKilled(): boolean {
    this.#checkOom();
    return this.#oomKills > 0;
  }

  /** The container's cgroup directory, or null when it has none (no writable cgroup v2 hierarchy). */
  get cgroupPath(): string | null {
    return this.#cgroup?.path ?? null;
  }

  /** Memory, CPU, pids and io usage from the container's cgroup. */
  stats(): CgroupStats {
    return this.#requireCgroup('stats').stats();
  }

  /** Freezes every process of the container (cgroup.freeze); resolves once frozen. */
  async pause(): Promise<void> {
    const cgroup = this.#requireCgroup('pause');
    this.#requireStatus('running');
    await cgroup.setFrozen(true);
    if (this.#status === 'running') this.#status = 'paused';
  }

  /** Thaws a paused container. */
  async resume(): Promise<void> {
    const cgroup = this.#requireCgroup('resume');
    this.#requireStatus('paused');
    await cgroup.setFrozen(false);
    if (this.#status === 'paused') this.#status = 'running';
  }

  /** Changes the limits of a live container. */
  update(limits: Limits): void {
    const cgroup = this.#requireCgroup('update');
    if (this.#status === 'removed' || this.#status === 'stopped') this.#requireStatus('running');
    const writes = limitWrites(limits);
    this.#owner.enableControllers(writes.controllers);
    cgroup.apply(writes);
    if (writes.controllers.has('memory') && !this.#oomWatcher) this.#watchOom(cgroup);
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
    if ((this.#status !== 'running' && this.#status !== 'paused') || this.#pidfd < 0) {
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
    if (this.#status === 'paused') await this.resume();
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
      hardening: this.#spec.hardening,
    };
    const stdio = openStdio(stdioMode);
    const startedAt = performance.now();
    const oomBefore = this.#cgroup?.oomKills() ?? 0;
    let proc: LaunchedProcess;
    try {
      proc = await launchJoined({
        cloneFlags: 0n,
        targetPidfd: this.#pidfd,
        nsFlags: cloneFlags(this.#spec),
        joinCgroupFd: this.#cgroup?.fd ?? -1,
        joinSetup: joiningOps(),
        setup: joinedProcessOps(spec),
        beforeExec: lastStepOps(spec.hardening),
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
      oomKilled: () => (this.#cgroup?.oomKills() ?? 0) > oomBefore,
    }, options, startedAt);
  }

  /** Makes a new image of the container's image (or rootfs) plus one layer with its changes
   * (deletions as whiteouts); the container may be running or stopped, not removed. */
  async commit(options: CommitOptions): Promise<{ manifestDigest: string }> {
    if (this.#status === 'removed') throw new CorralError(`container ${this.id} was removed`, { code: 'ERR_CONTAINER_REMOVED' });
    if (!this.#host.layer) {
      throw new CorralError(`container ${this.id} has no writable layer to commit (it runs on the host root or with rootfsWritable: 'direct')`, { code: 'ERR_COMMIT_UNSUPPORTED' });
    }
    // A running container is frozen meanwhile (when it has a cgroup), so the layer is consistent.
    const freeze = this.#status === 'running' && this.#cgroup !== null;
    if (freeze) await this.pause();
    try {
      return await this.#owner.commit({
        upper: this.#host.layer.upper,
        baseManifestDigest: this.#host.image?.manifestDigest ?? null,
        ref: options.ref,
        ...(options.message === undefined ? {} : { message: options.message }),
        ...(options.changes === undefined ? {} : { changes: options.changes }),
      });
    } finally {
      if (freeze && this.#status === 'paused') await this.resume();
    }
  }

  /** Forgets the container and closes its stdio; a running one needs force (it is killed first). */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    if (this.#status === 'removed') return;
    if ((this.#status === 'running' || this.#status === 'paused') && !options.force) {
      throw new CorralError(`container ${this.id} is running; stop it or remove it with force`, { code: 'ERR_CONTAINER_RUNNING' });
    }
    if (this.#status === 'running' || this.#status === 'paused' || this.#status === 'created') await this.#killNow();
    await this.#exited;
    await this.#host.release();
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

  /** Kills every process of the container: through cgroup.kill when it has a group, so processes
   * that left its process group die too. */
  async #killNow(): Promise<void> {
    if (this.#pending) await this.#pending.abandon();
    this.#pending = null;
    if (this.#cgroup) this.#cgroup.killAll();
    else if (this.#pidfd >= 0) pidfdSendSignal(this.#pidfd, SIGKILL);
    await this.#exited;
  }

  #requireCgroup(what: string): Cgroup {
    if (!this.#cgroup) {
      throw new CorralError(`container ${this.id} has no cgroup, so ${what} is unavailable (no writable cgroup v2 hierarchy for this runtime)`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    return this.#cgroup;
  }

  #requireStatus(status: ContainerStatus): void {
    if (this.#status !== status) {
      throw new CorralError(`container ${this.id} is ${this.#status}, not ${status}`, { code: status === 'paused' ? 'ERR_CONTAINER_NOT_PAUSED' : 'ERR_CONTAINER_NOT_RUNNING' });
    }
  }

  #watchOom(cgroup: Cgroup): void {
    try {
      this.#oomWatcher = watch(join(cgroup.path, 'memory.events'), () => this.#checkOom());
      this.#oomWatcher.on('error', () => {});
    } catch {
      // No inotify watch to be had: the OOM is still seen at exit.
    }
  }

  #checkOom(): void {
    if (!this.#cgroup || this.#status === 'removed') return;
    const kills = this.#cgroup.oomKills();
    if (kills > this.#oomKills) {
      this.#oomKills = kills;
      this.emit('oom');
    }
  }
}
