import type { ExitInfo } from './run-result.ts';

/** Options of stop(). */
export interface StopOptions {
  /** Milliseconds between SIGTERM and SIGKILL; default the runtime's stopTimeout. */
  timeout?: number;
}

const SIGTERM = 15;

/** The graceful stop docker does: SIGTERM, then after the timeout the kill of everything
 * (`killAll`, through cgroup.kill where there is a group); resolves with the exit. */
export async function stopGracefully(
  proc: { signal(sig: number): void; exited: Promise<ExitInfo> },
  killAll: () => Promise<void>,
  timeout: number,
): Promise<ExitInfo> {
  proc.signal(SIGTERM);
  let timer: NodeJS.Timeout | undefined;
  const escalate = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeout);
  });
  const first = await Promise.race([proc.exited, escalate]);
  clearTimeout(timer);
  if (first) return first;
  await killAll();
  return proc.exited;
}
