import { errorCode } from '../sys/errors.ts';
import { statAt } from '../sys/fs-ops.ts';
import { isSingleIdMap, type IdMap } from '../sys/id-map.ts';
import { outputInUserNamespace } from '../spawn/in-user-namespace.ts';
import { walkTreeAsync } from './tree-walk.ts';

/** Bytes of a file or of everything under a directory (as du -b counts files, without following
 * links; 0 when path is missing), however deep the tree. */
export async function treeSize(path: string): Promise<number> {
  let total = 0;
  await walkTreeAsync(path, { step: 'measure', openUp: false, entry: (dirFd, name) => (total += statAt(dirFd, name).size) });
  return total;
}

/** treeSize; where the caller may not read what its subordinate ids own (a rootless container's
 * other users' directories: EACCES), the same sum (every non-directory's size) by find as root of
 * a user namespace with the map. */
export async function treeSizeMapped(path: string, map: IdMap | null): Promise<number> {
  try {
    return await treeSize(path);
  } catch (e) {
    if (!map || isSingleIdMap(map) || errorCode(e) !== 'EACCES') throw e;
    const out = await outputInUserNamespace(map, { what: `measure ${path}`, setup: [], command: ['find', path, '!', '-type', 'd', '-printf', '%s\\n'] });
    return out.toString().split('\n').reduce((sum, line) => sum + (Number(line) || 0), 0);
  }
}
