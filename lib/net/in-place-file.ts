import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { fromNodeError } from '../sys/errors.ts';
import { lockExclusive } from '../sys/libc.ts';

/** Rewrites a file containers bind-mount (/etc/hosts, /etc/resolv.conf) in place under flock: a
 * rename would leave them with the old one. Unchanged text is not written again. */
export function rewriteInPlace(path: string, text: string, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    throw fromNodeError(e, `open ${what}`, path);
  }
  try {
    lockExclusive(fd, path);
    const data = Buffer.from(text);
    if (readFileSync(fd).equals(data)) return;
    // Written over the old text, then cut to length: a reader never sees an empty file.
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, data.length);
  } catch (e) {
    throw fromNodeError(e, `rewrite ${what}`, path);
  } finally {
    closeSync(fd);
  }
}
