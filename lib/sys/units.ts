import type { CorralError } from './errors.ts';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes from a number or a string like '64m', '512k', '1.5g', '100mb', '2GiB': the one size
 * syntax of limits, tmpfs sizes and store bounds; a bad value throws the caller's error. */
export function parseBytes(value: number | string, what: string, fail: (message: string) => CorralError): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw fail(`${what} must be a non-negative whole number of bytes, got ${value}`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(String(value));
  if (!m) throw fail(`${what} '${value}' is not a size (use bytes or a number with k, m, g or t)`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}
