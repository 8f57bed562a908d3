/** Mount points made for one run only (a build's RUN --mount targets the image lacked) taken out of
 * a container's upper directory before it is committed, as BuildKit drops its mount stubs: an empty
 * directory or empty file is removed, anything the run filled is kept. Each path is walked from the
 * upper down with lstat and never through a symlink, since the run may have swapped one in to send
 * the removal to the host (test/security/build-mount-stub-link.test.ts). */

import { lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fromNodeError } from '../sys/errors.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';

/** Removes the stubs (absolute paths in the container) from `upper`, deepest first, where each is
 * still an empty directory or an empty regular file reached through directories only. */
export function removeMountStubs(upper: string, stubs: string[]): void {
  const sorted = [...new Set(stubs.map((s) => posix.normalize(s)))].sort((a, b) => depth(b) - depth(a) || (a < b ? 1 : -1));
  for (const stub of sorted) {
    const parts = stub.split('/').filter((p) => p !== '');
    if (parts.length === 0 || parts.includes('..')) continue;
    let at = upper;
    let throughDirs = true;
    for (const part of parts.slice(0, -1)) {
      at = join(at, part);
      if (!liftedDefences.followStubLinks && !lstatSync(at, { throwIfNoEntry: false })?.isDirectory()) {
        throughDirs = false;
        break;
      }
    }
    if (!throughDirs) continue;
    const path = join(at, parts.at(-1)!);
    const st = lstatSync(path, { throwIfNoEntry: false });
    try {
      if (st?.isDirectory()) rmdirSync(path);
      else if (st?.isFile() && st.size === 0) unlinkSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw fromNodeError(e, 'remove a mount point made for the run', path);
    }
  }
}

function depth(path: string): number {
  return path.split('/').length;
}
