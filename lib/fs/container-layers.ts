import createDebug from 'debug';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from './remove-tree.ts';
import { removeTreeMapped } from './remove-mapped.ts';
import type { IdMap } from '../sys/id-map.ts';
import { runtimeDir } from './runtime-root.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { fromNodeError } from '../sys/errors.ts';
import { removeAtExitWhenEmpty } from '../sys/remove-at-exit.ts';

const debug = createDebug('corral:fs');

/** A container's writable overlay layer: upper (its changes) and work (overlayfs scratch). */
export interface ContainerLayer {
  dir: string;
  upper: string;
  work: string;
}

/** Where a container's overlay upper lives: a layer directory under the runtime root, or a tmpfs
 * mounted inside the container's own mount namespace (nothing on the host; `why` says why it is
 * there, for commit's error). */
export type WritableLayer = ({ kind: 'disk' } & ContainerLayer) | { kind: 'memory'; why: string };

/** statfs f_type of the filesystems known to hold an overlay upper directory. */
const UPPER_FILESYSTEMS = new Map<number, string>([
  [0xef53, 'ext4'], [0x58465342, 'xfs'], [0x9123683e, 'btrfs'], [0x01021994, 'tmpfs'], [0xf2f52010, 'f2fs'], [0x2fc12fc1, 'zfs'],
]);

/** Names of some filesystems that cannot, for the message. */
const OTHER_FILESYSTEMS = new Map<number, string>([[0x794c7630, 'overlayfs'], [0x01021997, '9p'], [0x6969, 'nfs'], [0x65735546, 'fuse']]);

/** Makes root's directory of container layers, sweeps what dead processes left there, and says why
 * its filesystem cannot hold an overlay upper directory (overlayfs refuses an upper on overlayfs:
 * Node in a container), or null when it can; unknown filesystems count as unable, so the default
 * still works on them. Once per runtime, before its first container with a writable layer. */
export function prepareLayers(root: string): string | null {
  const dir = runtimeDir(root, 'containers');
  sweepStaleLayers(dir);
  let type: number;
  try {
    type = statfsSync(dir).type;
  } catch (e) {
    throw fromNodeError(e, 'find the filesystem of the container layers', dir);
  }
  if (UPPER_FILESYSTEMS.has(type)) return null;
  const name = OTHER_FILESYSTEMS.get(type) ?? `filesystem type 0x${type.toString(16)}`;
  return `the runtime root ${root} is on ${name}, which cannot hold an overlay upper directory, so the writable layer is in memory inside the container`;
}

/** Makes the writable layer of a container under root/containers/<process tag>/<id>; the process
 * tag lets the first runtime of a later process sweep what a killed one left. owner: the tag of
 * another process that owns it (a detached container's supervisor), default ours. */
export function createLayer(root: string, id: string, owner?: string): ContainerLayer {
  const dir = join(owner === undefined ? processDir(root) : ownerDir(root, owner), id);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    throw fromNodeError(e, 'create the writable layer', dir);
  }
  try {
    mkdirSync(join(dir, 'upper'));
    mkdirSync(join(dir, 'work'));
  } catch (e) {
    removeTree(dir);
    throw fromNodeError(e, 'create the writable layer', dir);
  }
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work') };
}

/** The directory of layers another process owns (made if needed; its owner's sweep takes it). */
function ownerDir(root: string, owner: string): string {
  const dir = join(runtimeDir(root, 'containers'), owner);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fromNodeError(e, 'create the directory of container layers', dir);
  }
  return dir;
}

const processDirs = new Map<string, string>();

/** This process's directory of layers in root (made once, sweeping what dead processes left;
 * removed at exit when empty, swept later if not). */
function processDir(root: string): string {
  let dir = processDirs.get(root);
  if (dir) return dir;
  const base = runtimeDir(root, 'containers');
  dir = join(base, processTag());
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fromNodeError(e, "create this process's directory of container layers", dir);
  }
  processDirs.set(root, dir);
  removeAtExitWhenEmpty(dir);
  sweepStaleLayers(base);
  return dir;
}

/** Deletes a container's layer with everything it wrote: renamed away at once (so the container's
 * directory is gone), deleted in the background, since deleting is slow on some disks (online
 * discard) and need not hold up the caller. map: the container's user namespace map (what its
 * other users wrote is removed through it). */
export function removeLayer(layer: ContainerLayer, map: IdMap | null = null): void {
  const trash = join(layer.dir, '..', `.trash-${randomBytes(6).toString('hex')}`);
  try {
    renameSync(layer.dir, trash);
  } catch {
    removeTree(layer.dir);
    return;
  }
  void removeTreeMapped(trash, map).catch((e: unknown) => debug('could not delete %s: %o', trash, e));
}

/** Removes the layers of processes that died without cleaning up; one that cannot be removed is
 * left for a later sweep rather than failing the container that started the sweep. */
function sweepStaleLayers(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch (e) {
    debug('could not sweep %s: %o', base, e);
    return;
  }
  for (const name of names) {
    if (!isStaleTag(name)) continue;
    try {
      removeTree(join(base, name));
      debug('swept stale layers %s', join(base, name));
    } catch (e) {
      debug('could not sweep %s: %o', join(base, name), e);
    }
  }
}
