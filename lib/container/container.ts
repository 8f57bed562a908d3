import { EventEmitter } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { CorralError } from '../sys/errors.ts';
import type { CgroupStats, Cgroup } from '../cgroup/cgroup.ts';
import type { CgroupManager } from '../cgroup/manager.ts';
import { limitWrites, type Limits } from '../cgroup/limits.ts';
import { signalNumber, type ExitInfo, type RunResult } from './run-result.ts';
import type { ResolvedSpec } from './spec.ts';
import type { StdioSet } from './stdio.ts';
import type { CommitRequest } from './image-provider.ts';
import type { HeldResources } from './host-resources.ts';
import type { PublishedPort } from '../net/ports.ts';
import type { InitProcess } from './init-process.ts';
import type { Terminal, TerminalSize } from './terminal.ts';
import { ContainerState, type ContainerStatus } from './status.ts';
import { OomWatch } from './oom-watch.ts';
import { execIn, spawnIn, type ExecOptions, type ExecProcess, type ExecTarget, type SpawnOptions } from './exec.ts';
import { stopGracefully, type StopOptions } from './stop.ts';
import { commitContainer, type CommitOptions } from './commit.ts';
import type { LogEntry, LogOptions } from './logs.ts';
import { attachTo, type AttachOptions, type AttachResult } from './attach.ts';
import type { AttachConnection } from './attach-socket.ts';

/** What a Container needs from the engine that made it. */
export interface ContainerOwner {
  stopTimeout: number;
  cgroups: CgroupManager;
  forget(id: string): void;
  /** Stores a container's changes as a new image; null without an image store. */
  commit: ((request: CommitRequest) => Promise<{ manifestDigest: string }>) | null;
  /** A detached container's log (lib/container/logs.ts); absent for attached ones. */
  logs?: (options: LogOptions, ended: () => boolean) => AsyncGenerator<LogEntry>;
  /** A detached container's attach socket, and whether it takes input (interactive); absent for
   * attached ones. */
  attachSocket?: { open(): Promise<AttachConnection>; input: boolean };
  /** What a detached container's supervisor recorded (inspect()); absent for attached ones. */
  supervision?: () => Supervision;
}

/** A detached container's supervision as its supervisor recorded it. */
export interface Supervision {
  supervisorPid: number;
  restartCount: number;
  startedAt: string | null;
  finishedAt: string | null;
}

/** What inspect() tells about a container. */
export interface ContainerInfo {
  id: string;
  name: string | null;
  status: ContainerStatus;
  pid: number;
  command: string[];
  env: Record<string, string>;
  image: string | null;
  labels: Record<string, string>;
  /** It has a terminal (spec.tty; docker inspect's Config.Tty). */
  tty: boolean;
  /** attach() sends input to it: its terminal or piped stdin, a detached one's made with
   * interactive (docker inspect's Config.OpenStdin). */
  openStdin: boolean;
  createdAt: string;
  exit: ExitInfo | null;
  cgroupPath: string | null;
  /** Only for a detached container. */
  supervision: Supervision | null;
}

/** What a handle restored from saved state knows (Runtime.get of a detached container). */
export interface RestoredFacts {
  name: string | null;
  createdAt: string;
  /** The exit, when it is stopped already. */
  exit: ExitInfo | null;
}

/** Events: 'start', 'exit' (ExitInfo), 'oom' (the OOM killer killed in the container). */
export interface ContainerEvents {
  start: [];
  exit: [ExitInfo];
  oom: [];
}

const SIGKILL = 9;

/** A container: its first process, its namespaces and stdio, and what it holds on the host;
 * created → running ⇄ paused → stopped → removed (lib/container/status.ts). */
export class Container extends EventEmitter<ContainerEvents> {
  /** The container's id, unique in its runtime. */
  readonly id: string;
  /** Host pid of the first process. */
  readonly pid: number;
  /** The name of a detached container (unique in its runtime root), else null. */
  readonly name: string | null;
  readonly labels: Readonly<Record<string, string>>;
  /** Piped stdio, or null. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** The container's terminal with spec.tty, else null. */
  readonly terminal: Terminal | null;

  readonly #spec: ResolvedSpec;
  readonly #owner: ContainerOwner;
  readonly #state: ContainerState;
  readonly #init: InitProcess;
  #exit: ExitInfo | null = null;
  #exited: Promise<ExitInfo>;
  readonly #cgroup: Cgroup | null;
  readonly #oom: OomWatch | null;
  readonly #host: HeldResources;
  #startCalled = false;
  #restarting = false;
  readonly #createdAt: string;
  #removal: Promise<void> | null = null;

  /** @internal Made by the container engine (Runtime.create, Runtime.run, and Runtime.get for a
   * detached container of another process, which may already be stopped: exit is then given). */
  constructor(spec: ResolvedSpec, owner: ContainerOwner, init: InitProcess, stdio: StdioSet, initial: ContainerStatus, host: HeldResources, restored: RestoredFacts | null = null, terminal: Terminal | null = null) {
    super();
    this.id = spec.id;
    this.pid = init.pid;
    this.name = restored?.name ?? null;
    this.#exit = restored?.exit ?? null;
    this.#createdAt = restored?.createdAt ?? new Date().toISOString();
    this.labels = Object.freeze({ ...spec.labels });
    this.stdin = stdio.stdin;
    this.stdout = stdio.stdout;
    this.stderr = stdio.stderr;
    this.terminal = terminal;
    this.#spec = spec;
    this.#owner = owner;
    this.#init = init;
    this.#state = new ContainerState(spec.id, initial, { detached: init.restart !== undefined });
    this.#host = host;
    this.#cgroup = host.state.cgroup;
    this.#oom = this.#cgroup ? new OomWatch(this.#cgroup, () => this.emit('oom')) : null;
    if (spec.limits.controllers.has('memory')) this.#oom?.start();
    this.#exited = this.#watchExit();
  }

  /** The exit of the current run of the first process, once it is over. */
  #watchExit(): Promise<ExitInfo> {
    return this.#init.exited.then((exit) => {
      this.#oom?.check();
      this.#oom?.close();
      this.#exit = exit;
      this.#state.moveIfAllowed('stopped');
      this.emit('exit', exit);
      return exit;
    });
  }

  /** Where the container is in its life. */
  get status(): ContainerStatus {
    return this.#state.status;
  }

  /** The exit of the first process, once it has exited. */
  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** True once the OOM killer has killed a process of this container. */
  get oomKilled(): boolean {
    return this.#oom?.killed ?? false;
  }

  /** The container's cgroup directory, or null when it has none (no writable cgroup v2 hierarchy). */
  get cgroupPath(): string | null {
    return this.#cgroup?.path ?? null;
  }

  /** What the container is and how it stands (docker inspect's essentials). */
  inspect(): ContainerInfo {
    return {
      id: this.id,
      name: this.name,
      status: this.status,
      pid: this.pid,
      command: [...this.#spec.command],
      env: { ...this.#spec.env },
      image: this.#spec.image,
      tty: this.#spec.tty !== null,
      openStdin: this.#owner.attachSocket ? this.#owner.attachSocket.input : this.terminal !== null || this.stdin !== null,
      labels: { ...this.labels },
      createdAt: this.#createdAt,
      exit: this.#exit,
      cgroupPath: this.cgroupPath,
      supervision: this.#owner.supervision?.() ?? null,
    };
  }

  /** The container's published ports with the host ports actually taken (none without spec.ports). */
  ports(): PublishedPort[] {
    return this.#host.state.ports.map((p) => ({ ...p }));
  }

  /** The container's address on its bridge network, or null. */
  get ip(): string | null {
    return this.#host.state.network?.ip ?? null;
  }

  /** Memory, CPU, pids and io usage from the container's cgroup. */
  stats(): CgroupStats {
    const cgroup = this.#requireCgroup('stats');
    this.#state.require('stats');
    return cgroup.stats();
  }

  /** Freezes every process of the container (cgroup.freeze); resolves once frozen. */
  async pause(): Promise<void> {
    const cgroup = this.#requireCgroup('pause');
    this.#state.require('pause');
    await cgroup.setFrozen(true);
    if (this.status === 'running') this.#state.moveTo('paused');
  }

  /** Thaws a paused container. */
  async resume(): Promise<void> {
    const cgroup = this.#requireCgroup('resume');
    this.#state.require('resume');
    await cgroup.setFrozen(false);
    if (this.status === 'paused') this.#state.moveTo('running');
  }

  /** Changes the limits of a live container. */
  update(limits: Limits): void {
    const cgroup = this.#requireCgroup('update');
    this.#state.require('update');
    const writes = limitWrites(limits);
    this.#owner.cgroups.enable(writes.controllers);
    cgroup.apply(writes);
    if (writes.controllers.has('memory')) this.#oom?.start();
  }

  /** Lets a created container exec its command; rejects if the exec fails (e.g. EACCES). */
  async start(): Promise<void> {
    this.#state.require('start');
    if (this.status === 'stopped') {
      // A detached container started again (docker start): its supervisor runs the command anew.
      if (this.#restarting) throw new CorralError(`container ${this.id} is already starting`, { code: 'ERR_CONTAINER_STATE' });
      this.#restarting = true;
      try {
        await this.#init.restart!();
      } finally {
        this.#restarting = false;
      }
      this.#exit = null;
      this.#exited = this.#watchExit();
    } else {
      if (this.#startCalled) throw new CorralError(`container ${this.id} is already starting`, { code: 'ERR_CONTAINER_STATE' });
      this.#startCalled = true;
      await this.#init.start();
    }
    if (this.#exit === null && this.#state.moveIfAllowed('running')) this.emit('start');
  }

  /** Resolves with the exit of the first process. */
  wait(): Promise<ExitInfo> {
    return this.#held(this.#exited);
  }

  /** Sends a signal to the first process (SIGKILL ends the whole container). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    const sig = signalNumber(signal);
    this.#state.require('kill');
    this.#init.signal(sig);
  }

  /** SIGTERM, then SIGKILL after the timeout; resolves with the exit. */
  async stop(options: StopOptions = {}): Promise<ExitInfo> {
    if (this.status === 'stopped') return this.#exited;
    this.#init.intendStop();
    if (this.status === 'created') {
      await this.#killNow();
      return this.#exited;
    }
    if (this.status === 'paused') await this.resume();
    if (this.status !== 'running') return this.#exited;
    return this.#held(stopGracefully(this.#init, () => this.#killNow(), options.timeout ?? this.#owner.stopTimeout));
  }

  /** stop(), then start() (docker restart): a detached container runs its command anew. */
  async restart(options: StopOptions = {}): Promise<void> {
    await this.stop(options);
    await this.start();
  }

  /** Runs another process inside the running container and collects its output. */
  exec(command: string[], options: ExecOptions & { encoding: BufferEncoding }): Promise<RunResult<string>>;
  exec(command: string[], options?: ExecOptions): Promise<RunResult>;
  async exec(command: string[], options: ExecOptions = {}): Promise<RunResult<Buffer | string>> {
    return execIn(this.#execTarget(), command, options);
  }

  /** Starts another process inside the running container and hands it over running: its streams
   * or its terminal, wait() and kill() (docker exec -it; exec() collects instead). */
  async spawn(command: string[], options: SpawnOptions = {}): Promise<ExecProcess> {
    return spawnIn(this.#execTarget(), command, options);
  }

  #execTarget(): ExecTarget {
    this.#state.require('exec');
    if (this.#init.pidfd < 0) throw new CorralError(`container ${this.id} has exited; exec needs it running`, { code: 'ERR_CONTAINER_STATE' });
    return { spec: this.#spec, initPidfd: this.#init.pidfd, cgroup: this.#cgroup };
  }

  /** Connects streams to the container (its terminal, its pipes, or a detached one's output from
   * now on) until it exits (after its last output) or the detach keys are typed on stdin (Docker's
   * ctrl-p,ctrl-q by default) or options.signal aborts; the container goes on after a detach. */
  async attach(options: AttachOptions = {}): Promise<AttachResult> {
    this.#state.require('attach');
    const wait = (): Promise<ExitInfo> => this.#exited;
    const socket = this.#owner.attachSocket;
    // Held while attached only: a detach must not leave the exit watched closely (wait() would).
    if (!socket) return this.#held(attachTo({ terminal: this.terminal, stdin: this.stdin, stdout: this.stdout, stderr: this.stderr, wait }, options));
    const connection = await socket.open();
    try {
      return await this.#held(attachTo({ terminal: null, stdin: socket.input ? connection.stdin : null, stdout: connection.stdout, stderr: connection.stderr, wait }, options));
    } finally {
      await connection.close();
    }
  }

  /** Sets the window size of the container's terminal (spec.tty; a detached one's through its
   * supervisor): its foreground process group gets SIGWINCH, as docker resize. */
  async resize(size: TerminalSize): Promise<void> {
    if (!this.#spec.tty) throw new CorralError(`container ${this.id} has no terminal (tty) to resize`, { code: 'ERR_CONTAINER_STATE' });
    if (this.terminal) return this.terminal.resize(size);
    const connection = await this.#owner.attachSocket!.open();
    try {
      connection.resize(size);
    } finally {
      await connection.close();
    }
  }

  /** logs() as a byte stream of the lines' text, to pipe (stdout and stderr interleaved unless
   * one is turned off); with follow it ends once the container has exited. */
  logsStream(options: LogOptions = {}): Readable {
    const entries = this.logs(options);
    return Readable.from((async function* () {
      for await (const entry of entries) yield Buffer.from(entry.log);
    })(), { objectMode: false });
  }

  /** A detached container's output as its supervisor logged it (json-file lines); with follow
   * the iteration ends once the container has exited. */
  async *logs(options: LogOptions = {}): AsyncGenerator<LogEntry> {
    const read = this.#owner.logs;
    if (!read) throw new CorralError(`container ${this.id} is attached: its output is on its stdout and stderr, it has no log`, { code: 'ERR_CONTAINER_STATE' });
    const release = options.follow ? this.#init.hold() : null;
    try {
      yield* read(options, () => this.status === 'stopped' || this.status === 'removed');
    } finally {
      release?.();
    }
  }

  /** Makes a new image of the container's image plus one layer with its changes (deletions as
   * whiteouts); the container may be running or stopped, not removed. */
  async commit(options: CommitOptions): Promise<{ manifestDigest: string }> {
    this.#state.require('commit');
    return commitContainer({
      id: this.id,
      layer: this.#host.state.layer,
      imageDigest: this.#host.state.image?.manifestDigest ?? null,
      idMap: this.#spec.idMap,
      freeze: async () => {
        if (this.status !== 'running' || !this.#cgroup) return null;
        await this.pause();
        return async () => {
          if (this.status === 'paused') await this.resume();
        };
      },
    }, this.#owner.commit, options);
  }

  /** Releases everything the container holds and forgets it; a live one needs force (it is
   * killed first). */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    if (this.#removal) return this.#removal;
    if ((this.status === 'running' || this.status === 'paused') && !options.force) {
      throw new CorralError(`container ${this.id} is ${this.status}; remove needs it stopped (stop it, or remove it with force)`, { code: 'ERR_CONTAINER_STATE' });
    }
    this.#removal = this.#remove();
    return this.#removal;
  }

  async #remove(): Promise<void> {
    if (this.status !== 'stopped') {
      this.#init.intendStop();
      await this.#killNow();
    }
    await this.#held(this.#exited);
    this.#state.moveTo('removed');
    // Output nobody read is discarded with the container.
    this.stdin?.destroy();
    this.stdout?.destroy();
    this.stderr?.destroy();
    await this.terminal?.close();
    try {
      await this.#init.dispose();
      await this.#host.release();
    } finally {
      this.#owner.forget(this.id);
    }
  }

  /** p, with the init held meanwhile (a detached one is then watched closely and keeps us alive). */
  async #held<T>(p: Promise<T>): Promise<T> {
    const release = this.#init.hold();
    try {
      return await p;
    } finally {
      release();
    }
  }

  /** `await using c = await create(…)`: the container is killed and removed at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
  }

  /** Kills every process of the container: through cgroup.kill when it has a group, so processes
   * that left its process group die too. A group its supervisor launches into again is spared
   * cgroup.kill when SIGKILL of the init ends them all (its own PID namespace, as docker kills):
   * Linux 6.18 kills at birth every process cloned with CLONE_INTO_CGROUP into a group once
   * killed (test/integration/detached-restart.test.ts). */
  async #killNow(): Promise<void> {
    await this.#init.abandon();
    const reused = this.#init.restart !== undefined && this.#spec.namespaces.pid;
    if (this.#cgroup && !reused) this.#cgroup.killAll();
    else this.#init.signal(SIGKILL);
    await this.#held(this.#exited);
  }

  #requireCgroup(what: string): Cgroup {
    if (!this.#cgroup) {
      throw new CorralError(`container ${this.id} has no cgroup, so ${what} is unavailable (no writable cgroup v2 hierarchy for this runtime)`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    return this.#cgroup;
  }
}
