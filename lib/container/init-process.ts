import { close, pidfdSendSignal } from '../sys/libc.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import type { LaunchedProcess, PendingProcess } from '../spawn/launch.ts';
import { exitInfo, type ExitInfo } from './run-result.ts';

/** The first process of a container as its handle drives it. Kept apart from the handle so a
 * container whose process is another program's child (a supervisor's) can be driven the same way. */
export interface InitProcess {
  /** Host pid. */
  readonly pid: number;
  /** A pidfd of the live process (to join its namespaces), or -1 once it has exited. */
  readonly pidfd: number;
  /** Resolves once it has exited. */
  readonly exited: Promise<ExitInfo>;
  /** Lets a created process exec its command; rejects if the exec fails. */
  start(): Promise<void>;
  /** Runs the command again after it has exited (exited then stands for the new run); only a
   * supervised (detached) init has it. */
  restart?(): Promise<void>;
  /** Sends a signal while it lives. */
  signal(signal: number): void;
  /** Ends a created process before it exec'd (it is killed and reaped); nothing once started. */
  abandon(): Promise<void>;
  /** Keeps the event loop alive (and exits noticed promptly) until the returned release is called. */
  hold(): () => void;
  /** The user stops it: a supervisor's restart policy no longer applies. */
  intendStop(): void;
  /** Lets go of what outlives the process (a supervisor ends), once it has exited. */
  dispose(): Promise<void>;
}

/** An init process that is our own child: a pidfd and the exit watcher. */
export class ChildInit implements InitProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  #pidfd: number;
  #pending: PendingProcess | null;

  /** proc is pending when it was made by create() and waits for start(). */
  constructor(proc: LaunchedProcess | PendingProcess, pending: boolean) {
    this.pid = proc.pid;
    this.#pidfd = proc.pidfd;
    this.#pending = pending ? (proc as PendingProcess) : null;
    this.exited = new Promise((resolve) => {
      exitWatcher.watch(proc.pidfd, (status) => {
        close(this.#pidfd);
        this.#pidfd = -1;
        this.#pending = null;
        resolve(exitInfo(status));
      });
    });
  }

  get pidfd(): number {
    return this.#pidfd;
  }

  async start(): Promise<void> {
    const pending = this.#pending;
    this.#pending = null;
    await pending?.start();
  }

  signal(signal: number): void {
    if (this.#pidfd >= 0) pidfdSendSignal(this.#pidfd, signal);
  }

  async abandon(): Promise<void> {
    const pending = this.#pending;
    this.#pending = null;
    await pending?.abandon();
  }

  hold(): () => void {
    // The exit watcher's own timer keeps the loop alive while a child is watched.
    return () => {};
  }

  intendStop(): void {}

  async dispose(): Promise<void> {}
}
