import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromNodeError } from '../sys/errors.ts';
import { lockExclusive } from '../sys/libc.ts';

/** Runs fn holding an exclusive flock on path (made when missing): the lock of a network's
 * addresses, endpoints and hosts file, shared with every other process using the same root. */
export function withLock<T>(path: string, fn: () => T): T {
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    fd = openSync(path, 'a', 0o600);
  } catch (e) {
    throw fromNodeError(e, 'open the network lock', path);
  }
  try {
    lockExclusive(fd, path);
    return fn();
  } finally {
    closeSync(fd);
  }
}
