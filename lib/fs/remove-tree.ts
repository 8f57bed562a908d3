import type { CorralError } from '../sys/errors.ts';
import { unlinkAt } from '../sys/fs-ops.ts';
import { walkTree, walkTreeAsync, type TreeVisitor } from './tree-walk.ts';

const remover: TreeVisitor = {
  step: 'remove',
  openUp: true,
  entry: (dirFd, name) => {
    try {
      unlinkAt(dirFd, name, false);
    } catch (e) {
      if ((e as CorralError).code !== 'ENOENT') throw e;
    }
  },
  leave: (parentFd, name) => unlinkAt(parentFd, name, true),
};

/** rm -rf that never follows a symlink, goes as deep as a tree goes (fd-relative, not recursive),
 * and gets through directories without permissions for their owner; nothing to do when path is missing. */
export function removeTree(path: string): void {
  walkTree(path, remover);
}

/** removeTree in steps, letting the event loop run meanwhile (for big trees removed in the background). */
export function removeTreeAsync(path: string): Promise<void> {
  return walkTreeAsync(path, remover);
}
