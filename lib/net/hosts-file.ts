import { closeSync, constants, ftruncateSync, openSync, writeSync } from 'node:fs';
import { fromNodeError } from '../sys/errors.ts';
import { flock, LOCK } from '../sys/sockets.ts';

/** A line of a hosts file: an address and its names. */
export interface HostEntry {
  ip: string;
  names: string[];
}

/** The text of a network's hosts file: localhost, then every endpoint. */
export function renderHosts(entries: readonly HostEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const e of entries) lines.push(`${e.ip}\t${[...new Set(e.names)].join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** Rewrites a hosts file in place under flock: containers bind-mount the file itself, so it is
 * never replaced by a rename (that would leave them with the old one). */
export function writeHostsInPlace(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    throw fromNodeError(e, 'open the network hosts file', path);
  }
  try {
    flock(fd, LOCK.EX, path);
    const data = Buffer.from(text);
    // Written over the old text, then cut to length: a reader never sees an empty file.
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, data.length);
  } catch (e) {
    throw fromNodeError(e, 'rewrite the network hosts file', path);
  } finally {
    closeSync(fd);
  }
}
