import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { toInside, type IdMap } from '../sys/id-map.ts';
import type { ResolvedMount } from '../fs/mounts.ts';

/** Directories a rootless container writes to as a matter of course, given in-memory when the
 * rootfs has them owned by an id its user namespace does not map: overlayfs cannot copy such a
 * directory up (every write in it fails with EOVERFLOW, even in a 1777 /tmp). */
const SCRATCH_DIRS = ['/tmp', '/var/tmp'];

/** tmpfs mounts (mode 1777) over the rootfs's scratch directories whose owner the map leaves
 * out, unless the spec mounts something there itself. */
export function scratchOverUnmapped(rootfs: string, map: IdMap, mounts: readonly ResolvedMount[]): ResolvedMount[] {
  return SCRATCH_DIRS.flatMap((dir): ResolvedMount[] => {
    if (mounts.some((m) => m.target === dir)) return [];
    const stat = lstatSync(join(rootfs, dir), { throwIfNoEntry: false });
    if (!stat?.isDirectory()) return [];
    if (toInside(map.uids, stat.uid) !== null && toInside(map.gids, stat.gid) !== null) return [];
    return [{ type: 'tmpfs', target: dir, size: null, mode: 0o1777 }];
  });
}
