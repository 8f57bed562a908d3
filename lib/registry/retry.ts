/** When a registry request is tried again: 5xx, 429 (honouring Retry-After) and dropped
 * connections, a bounded number of times with exponential backoff and jitter. */

/** How often and how patiently requests are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  attempts: number;
  /** The first backoff delay in ms (default 250), doubled each time. */
  baseDelayMs: number;
  /** No wait is longer than this, Retry-After included (default 30 s). */
  maxDelayMs: number;
}

/** The policy used unless a caller gives one. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 30_000 };

/** Whether an HTTP status is worth another try. */
export function retryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** Whether a thrown error is a dropped or refused connection (fetch's TypeError and its cause). */
export function retryableError(error: unknown): boolean {
  if ((error as Error)?.name === 'AbortError') return false;
  const code = (error as { cause?: { code?: string }; code?: string })?.cause?.code ?? (error as { code?: string })?.code;
  return error instanceof TypeError || (typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_\w+)$/.test(code));
}

/** The ms to wait before attempt number `attempt` (1 = the first retry): Retry-After when the
 * registry sent it (seconds or an HTTP date), else exponential backoff with jitter. */
export function retryDelay(attempt: number, policy: RetryPolicy, retryAfter?: string | null): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), policy.maxDelayMs);
  }
  const backoff = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(backoff / 2 + Math.random() * (backoff / 2), policy.maxDelayMs);
}

/** Waits ms, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
