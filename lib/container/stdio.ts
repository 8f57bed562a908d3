import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { close, OPEN_FLAGS, openRaw, pipe } from '../sys/libc.ts';
import type { StdioMode } from './spec.ts';

/** The container's side of fds 0-2 and our side as streams. */
export interface StdioSet {
  childFds: [number, number, number];
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** Closes the child's ends in this process once the child has them. */
  releaseChildEnds(): void;
  /** Closes everything, for a launch that failed. */
  destroy(): void;
}

/** The stdio of a detached container as its handle sees it: none (the supervisor holds it and
 * writes it to the log). */
export function noStdio(): StdioSet {
  return { childFds: [0, 1, 2], stdin: null, stdout: null, stderr: null, releaseChildEnds() {}, destroy() {} };
}

/** Creates pipes (or opens /dev/null) for a container's stdio. */
export function openStdio(mode: StdioMode): StdioSet {
  const raw: number[] = [];
  // 'inherit' hands over our own 0-2 (which may be close-on-exec here: the child clears that).
  const childFds: StdioSet['childFds'] = [0, 1, 2];
  let parentFds: (number | null)[] = [null, null, null];
  try {
    if (mode === 'ignore') {
      const devNull = openRaw('/dev/null', OPEN_FLAGS.O_RDWR);
      raw.push(devNull);
      childFds.fill(devNull);
    } else if (mode === 'pipe') {
      const [inRead, inWrite] = pipe();
      raw.push(inRead, inWrite);
      const [outRead, outWrite] = pipe();
      raw.push(outRead, outWrite);
      const [errRead, errWrite] = pipe();
      raw.push(errRead, errWrite);
      childFds.splice(0, 3, inRead, outWrite, errWrite);
      parentFds = [inWrite, outRead, errRead];
    }
  } catch (e) {
    raw.forEach(close);
    throw e;
  }
  const [inFd, outFd, errFd] = parentFds;
  const stdin = inFd === null ? null : new Socket({ fd: inFd, readable: false, writable: true });
  const stdout = outFd === null ? null : new Socket({ fd: outFd, readable: true, writable: false });
  const stderr = errFd === null ? null : new Socket({ fd: errFd, readable: true, writable: false });
  // A container that exits without reading its input must not crash us with EPIPE.
  stdin?.on('error', () => {});
  let released = false;
  const releaseChildEnds = (): void => {
    if (released) return;
    released = true;
    if (mode !== 'inherit') new Set(childFds).forEach(close);
  };
  return {
    childFds,
    stdin,
    stdout,
    stderr,
    releaseChildEnds,
    destroy() {
      releaseChildEnds();
      stdin?.destroy();
      stdout?.destroy();
      stderr?.destroy();
    },
  };
}
