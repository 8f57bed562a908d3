import createDebug from 'debug';
import { reapPidfd, type ExitStatus } from '../sys/libc.ts';

const debug = createDebug('corral:exit');

/** How often the watcher looks at its pidfds without a SIGCHLD; a safety net and the loop's keep-alive. */
const POLL_MS = 1000;

/** Delivers the exits of our own children to the event loop: one SIGCHLD listener polls the
 * pidfds it watches (never waitpid(-1), so child_process keeps its children), no thread per process. */
class ExitWatcher {
  readonly #watched = new Map<number, (status: ExitStatus) => void>();
  #timer: NodeJS.Timeout | null = null;
  readonly #onSignal = (): void => this.poll();

  /** Calls onExit once when the process behind pidfd has exited and has been reaped. */
  watch(pidfd: number, onExit: (status: ExitStatus) => void): void {
    if (this.#watched.size === 0) {
      process.on('SIGCHLD', this.#onSignal);
      this.#timer = setInterval(this.#onSignal, POLL_MS);
    }
    this.#watched.set(pidfd, onExit);
    // The process may have exited before we started watching.
    this.#check(pidfd, onExit);
  }

  /** Reaps every watched process that has exited. */
  poll(): void {
    for (const [pidfd, onExit] of this.#watched) this.#check(pidfd, onExit);
  }

  #check(pidfd: number, onExit: (status: ExitStatus) => void): void {
    const status = reapPidfd(pidfd);
    if (!status) return;
    debug('pidfd %d exited %o', pidfd, status);
    this.#watched.delete(pidfd);
    if (this.#watched.size === 0) {
      process.off('SIGCHLD', this.#onSignal);
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = null;
    }
    onExit(status);
  }
}

/** The one watcher of the process. */
export const exitWatcher = new ExitWatcher();
