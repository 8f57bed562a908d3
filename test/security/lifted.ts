// The twins of the security tests: run a step with defences lifted (lib/spawn/lifted-defences.ts),
// restored afterwards whatever happens.
import { liftedDefences } from '../../lib/spawn/lifted-defences.ts';

/** Runs fn with the given defences lifted, then puts them back as they were. */
export async function withLifted<T>(lift: Partial<typeof liftedDefences>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...liftedDefences };
  Object.assign(liftedDefences, lift);
  try {
    return await fn();
  } finally {
    Object.assign(liftedDefences, saved);
  }
}
