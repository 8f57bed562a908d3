import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { close, pidfdOpen, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError, errorCode, fromNodeError, syscallError } from '../sys/errors.ts';
import { startTime } from '../sys/process-tag.ts';
import type { SupervisedProcess } from '../spawn/supervised-launch.ts';
import { exitInfo, type ExitInfo } from './run-result.ts';
import type { InitProcess } from './init-process.ts';
import type { ProcessRecord, StateStore } from './state-store.ts';
import type { ContainerStatus } from './status.ts';
import type { Cgroup } from '../cgroup/cgroup.ts';

/** A command to a detached container's supervisor (bindings/supervisor.c): 's' start, 'x' the user
 * stops it (no restart), 'q' kill the container if it lives, then exit. False: no supervisor. */
export function tellSupervisor(dir: string, command: 's' | 'x' | 'q'): boolean {
  const fifo = join(dir, 'control');
  let fd: number;
  try {
    // O_NONBLOCK: ENXIO at once, rather than waiting, when no supervisor holds the FIFO open.
    fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (errorCode(e) === 'ENXIO' || errorCode(e) === 'ENOENT') return false;
    throw fromNodeError(e, 'reach the supervisor', fifo);
  }
  try {
    writeSync(fd, command);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** How a detached container's process stands, from the supervisor's record and its liveness. */
export interface SupervisedStatus {
  record: ProcessRecord | null;
  /** False once the supervisor (named by pid and start time) has gone. */
  supervisorAlive: boolean;
  /** The first process's end, once there is no more to wait for (no restart coming). */
  exit: ExitInfo | null;
}

/** Reads a detached container's process status now. */
export function supervisedStatus(store: StateStore, id: string, supervisor: { pid: number; startTime: string }): SupervisedStatus {
  const record = store.readProcess(id);
  const supervisorAlive = startTime(supervisor.pid) === supervisor.startTime;
  let exit: ExitInfo | null = null;
  if (record?.status === 'exited') exit = exitInfo({ exitCode: record.exitCode, signal: record.signal });
  // The init has PR_SET_PDEATHSIG: a supervisor that died took its container with it.
  else if (!supervisorAlive) exit = exitInfo({ exitCode: null, signal: 9 });
  return { record, supervisorAlive, exit };
}

/** A detached container's status from its supervisor's status and its cgroup (frozen: paused). */
export function detachedStatus(status: SupervisedStatus, cgroup: Pick<Cgroup, 'event'> | null): ContainerStatus {
  if (status.exit) return 'stopped';
  if (status.record === null || status.record.status === 'created') return 'created';
  return cgroup !== null && cgroup.event('frozen') === 1 ? 'paused' : 'running';
}

const SLOW_MS = 1000;
const FAST_MS = 10;

/** Polls the supervisors' records for the handles of this process: fast while someone waits for
 * an exit (the timer then keeps the event loop alive), slowly and unref'd otherwise. Handles are
 * held weakly, so those a program drops (a list() it looked at) stop being polled. */
class RecordPoller {
  readonly #watched = new Set<WeakRef<SupervisedInit>>();
  readonly #refs = new WeakMap<SupervisedInit, WeakRef<SupervisedInit>>();
  /** The handles someone waits on, held strongly meanwhile: a waiter's promise chain is reachable
   * only through its handle, so a weakly held one could be collected mid-wait (Node 24 does), and
   * with the timer gone the process would end with the wait unsettled (a `corral rm -f` that exits
   * 0 having removed nothing). */
  readonly #held = new Map<SupervisedInit, number>();
  #timer: NodeJS.Timeout | null = null;
  #holds = 0;

  add(init: SupervisedInit): void {
    const ref = new WeakRef(init);
    this.#refs.set(init, ref);
    this.#watched.add(ref);
    this.#schedule();
  }

  delete(init: SupervisedInit): void {
    const ref = this.#refs.get(init);
    if (ref) this.#watched.delete(ref);
    if (this.#watched.size === 0) this.#schedule();
  }

  hold(init: SupervisedInit): () => void {
    this.#holds++;
    this.#held.set(init, (this.#held.get(init) ?? 0) + 1);
    this.#schedule();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      const left = this.#held.get(init)! - 1;
      if (left === 0) this.#held.delete(init);
      else this.#held.set(init, left);
      this.#schedule();
    };
  }

  #schedule(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#watched.size === 0) return;
    this.#timer = setInterval(() => {
      for (const ref of this.#watched) {
        const init = ref.deref();
        if (init) init.check();
        else this.#watched.delete(ref);
      }
      if (this.#watched.size === 0) this.#schedule();
    }, this.#holds > 0 ? FAST_MS : SLOW_MS);
    if (this.#holds === 0) this.#timer.unref();
  }
}

const poller = new RecordPoller();

/** The first process of a detached container, the child of its supervisor: driven from any process
 * through its pid + start time (pidfds opened after checking it), the supervisor's record and its
 * control FIFO. */
export class SupervisedInit implements InitProcess {
  exited: Promise<ExitInfo>;
  readonly #store: StateStore;
  readonly #id: string;
  readonly #supervisor: { pid: number; startTime: string };
  #pending: SupervisedProcess | null;
  #status: SupervisedStatus;
  #resolve!: (exit: ExitInfo) => void;
  #pidfd = -1;
  #pidfdOf = '';

  /** pending: the launch handshake, in the process that created it; null in any other. */
  constructor(store: StateStore, id: string, supervisor: { pid: number; startTime: string }, status: SupervisedStatus, pending: SupervisedProcess | null) {
    this.#store = store;
    this.#id = id;
    this.#supervisor = supervisor;
    this.#status = status;
    this.#pending = pending;
    this.exited = this.#nextExit();
    if (status.exit) this.#resolve(status.exit);
    else poller.add(this);
  }

  #nextExit(): Promise<ExitInfo> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Has the supervisor run the command again after its exit ('s'), and waits until the new run
   * is past its start; exited then stands for the new run. */
  async restart(): Promise<void> {
    const before = this.#refresh().record;
    if (!this.#status.supervisorAlive || !tellSupervisor(this.#store.dir(this.#id), 's')) {
      throw new CorralError(`the supervisor of container ${this.#id} is gone: it cannot start again`, { code: 'ERR_SUPERVISOR_FAILED', step: 'start' });
    }
    const release = this.hold();
    try {
      for (let i = 0; ; i++) {
        const record = this.#store.readProcess(this.#id);
        // A new run has a new start time; an exit without one is a relaunch that failed.
        if (record && record.status !== 'created' && record.startedAt !== before?.startedAt) break;
        if (record?.status === 'exited' && record.finishedAt !== before?.finishedAt) {
          throw new CorralError(`container ${this.#id} could not start again: its supervisor's relaunch failed (exit ${record.exitCode ?? record.signal})`, { code: 'ERR_SUPERVISOR_FAILED', step: 'start' });
        }
        if (i === 500) throw new CorralError(`the supervisor of container ${this.#id} did not start it again`, { code: 'ERR_SUPERVISOR_FAILED', step: 'start' });
        await new Promise((r) => setTimeout(r, FAST_MS));
      }
    } finally {
      release();
    }
    this.#status = { record: null, supervisorAlive: true, exit: null };
    this.exited = this.#nextExit();
    poller.add(this);
    this.#refresh();
    const error = this.#status.record?.startError;
    if (error) throw syscallError('execve', error.errno, { step: `start the command (plan step ${error.step})` });
  }

  /** The supervisor's latest status (read again by check()). */
  get status(): SupervisedStatus {
    return this.#status;
  }

  get pid(): number {
    return this.#status.record?.pid ?? -1;
  }

  /** A pidfd of the current process, opened once its start time is checked (so a reused pid is
   * never signalled or joined); -1 when it does not run. */
  get pidfd(): number {
    const record = this.#refresh().record;
    if (!record || (record.status !== 'running' && record.status !== 'created') || this.#status.exit) return -1;
    const which = `${record.pid}-${record.startTime}`;
    if (this.#pidfdOf === which && this.#pidfd >= 0) return this.#pidfd;
    this.#closePidfd();
    let fd: number;
    try {
      fd = pidfdOpen(record.pid);
    } catch {
      return -1;
    }
    if (startTime(record.pid) !== record.startTime) {
      close(fd);
      return -1;
    }
    this.#pidfd = fd;
    this.#pidfdOf = which;
    return fd;
  }

  /** Reads the record again; resolves exited once the process is over for good. */
  check(): void {
    this.#refresh();
  }

  async start(): Promise<void> {
    if (!tellSupervisor(this.#store.dir(this.#id), 's')) {
      throw new CorralError(`the supervisor of container ${this.#id} is gone`, { code: 'ERR_SUPERVISOR_FAILED', step: 'start' });
    }
    const pending = this.#pending;
    this.#pending = null;
    if (pending) return pending.started();
    const release = this.hold();
    try {
      while (this.#refresh().record?.status === 'created' && !this.#status.exit) await new Promise((r) => setTimeout(r, FAST_MS));
    } finally {
      release();
    }
    const error = this.#status.record?.startError;
    if (error) throw syscallError('execve', error.errno, { step: `start the command (plan step ${error.step})` });
  }

  signal(signal: number): void {
    const cached = this.#pidfd >= 0;
    const fd = this.pidfd;
    if (fd < 0) return;
    try {
      pidfdSendSignal(fd, signal);
    } finally {
      // Only exec keeps one open (until the exit); a handle that only signals holds none.
      if (!cached) this.#closePidfd();
    }
  }

  async abandon(): Promise<void> {
    this.#pending = null;
    if (this.#refresh().record?.status === 'created') tellSupervisor(this.#store.dir(this.#id), 'q');
  }

  hold(): () => void {
    return poller.hold(this);
  }

  intendStop(): void {
    tellSupervisor(this.#store.dir(this.#id), 'x');
  }

  /** Ends the supervisor (it kills a container still alive) and waits until it is gone. */
  async dispose(): Promise<void> {
    this.#closePidfd();
    poller.delete(this);
    // autoRemove: the supervisor became this process (its exit command); nothing to wait for.
    if (this.#supervisor.pid === process.pid) return;
    tellSupervisor(this.#store.dir(this.#id), 'q');
    const release = poller.hold(this);
    try {
      for (let i = 0; startTime(this.#supervisor.pid) === this.#supervisor.startTime; i++) {
        if (i === 200) throw new CorralError(`the supervisor ${this.#supervisor.pid} of container ${this.#id} did not exit`, { code: 'ERR_SUPERVISOR_FAILED', step: 'remove' });
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      release();
    }
  }

  #refresh(): SupervisedStatus {
    if (this.#status.exit) return this.#status;
    this.#status = supervisedStatus(this.#store, this.#id, this.#supervisor);
    if (this.#status.exit) {
      poller.delete(this);
      this.#closePidfd();
      this.#resolve(this.#status.exit);
    }
    return this.#status;
  }

  #closePidfd(): void {
    if (this.#pidfd >= 0) close(this.#pidfd);
    this.#pidfd = -1;
    this.#pidfdOf = '';
  }
}
