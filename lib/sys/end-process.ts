import { close, pidfdExited, pidfdSendSignal } from './libc.ts';

const SIGTERM = 15;
const SIGKILL = 9;
/** How long a process has to end after SIGTERM before it is killed. */
const STOP_GRACE_MS = 1000;
const STOP_POLL_MS = 10;

/** Ends the process behind pidfd, our child or not (pasta runs in the background), and closes pidfd:
 * SIGTERM, then SIGKILL once graceMs have passed, resolving once it has exited (its reaper, not
 * us, then reaps it). */
export async function endProcess(pidfd: number, graceMs = STOP_GRACE_MS): Promise<void> {
  const exited = async (ms: number): Promise<boolean> => {
    for (let waited = 0; !pidfdExited(pidfd); waited += STOP_POLL_MS) {
      if (waited >= ms) return false;
      await new Promise((r) => setTimeout(r, STOP_POLL_MS));
    }
    return true;
  };
  try {
    if (!pidfdSendSignal(pidfd, SIGTERM) || (await exited(graceMs))) return;
    pidfdSendSignal(pidfd, SIGKILL);
    await exited(graceMs);
  } finally {
    close(pidfd);
  }
}
