import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromNodeError } from '../sys/errors.ts';
import { flock, LOCK } from '../sys/sockets.ts';

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
    flock(fd, LOCK.EX, path);
    return fn();
  } finally {
    closeSync(fd);
  }
}
