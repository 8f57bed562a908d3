import { lstatSync } from 'node:fs';
import { errorCode } from '../sys/errors.ts';
import { isSingleIdMap, type IdMap } from '../sys/id-map.ts';
import { runInUserNamespace } from '../spawn/in-user-namespace.ts';
import { removeTreeAsync } from './remove-tree.ts';

/** removeTreeAsync; where that fails on what the caller's subordinate ids own (a rootless
 * container's files of users other than root: EACCES, EPERM), rm -rf as root of a user namespace
 * with the map, which may remove them. */
export async function removeTreeMapped(path: string, map: IdMap | null): Promise<void> {
  try {
    await removeTreeAsync(path);
  } catch (e) {
    const code = errorCode(e);
    if (!map || isSingleIdMap(map) || (code !== 'EACCES' && code !== 'EPERM')) throw e;
    await runInUserNamespace(map, { what: `remove ${path}`, setup: [], command: ['rm', '-rf', '--one-file-system', '--', path] });
    try {
      lstatSync(path);
    } catch (gone) {
      if (errorCode(gone) === 'ENOENT') return;
    }
    throw e;
  }
}
