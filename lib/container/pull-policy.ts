/** When a spec's image is pulled: 'missing' (default, as docker run), 'always', or 'never'. */

import { CorralError } from '../sys/errors.ts';

/** When a spec's `image` is pulled from its registry before it runs. */
export type PullPolicy = 'missing' | 'always' | 'never';

const POLICIES: ReadonlySet<string> = new Set(['missing', 'always', 'never']);

/** The policy that applies (the run option's over the spec's, default 'missing'); refuses others. */
export function pullPolicy(...given: (unknown)[]): PullPolicy {
  const value = given.find((v) => v !== undefined) ?? 'missing';
  if (typeof value !== 'string' || !POLICIES.has(value)) {
    throw new CorralError(`pull must be 'missing', 'always' or 'never', got ${JSON.stringify(value)}`, { code: 'ERR_INVALID_SPEC' });
  }
  return value as PullPolicy;
}
