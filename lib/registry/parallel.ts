/** Bounded parallelism for layer downloads and uploads. */

/** Runs `work` on every item, at most `limit` at once; the first failure stops new work, calls
 * `onFailure` (to abort the running ones) and is thrown once they end. */
export async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>, onFailure?: () => void): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          onFailure?.();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
