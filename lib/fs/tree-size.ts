import { statAt } from '../sys/fs-ops.ts';
import { walkTreeAsync } from './tree-walk.ts';

/** Bytes of a file or of everything under a directory (as du -b counts files, without following
 * links; 0 when path is missing), however deep the tree. */
export async function treeSize(path: string): Promise<number> {
  let total = 0;
  await walkTreeAsync(path, { step: 'measure', openUp: false, entry: (dirFd, name) => (total += statAt(dirFd, name).size) });
  return total;
}
