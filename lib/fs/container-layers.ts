import createDebug from 'debug';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree, removeTreeAsync } from './remove-tree.ts';
import { runtimeDir } from './runtime-root.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { fromNodeError } from '../sys/errors.ts';

const debug = createDebug('corral:fs');

/** A container's writable overlay layer: upper (its changes) and work (overlayfs scratch). */
export interface ContainerLayer {
  dir: string;
  upper: string;
  work: string;
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
  const made = dir;
  process.once('exit', () => {
    try {
      rmdirSync(made);
    } catch {
      // layers still being deleted: the next sweep takes them
    }
  });
  sweepStaleLayers(base);
  return dir;
}

/** Deletes a container's layer with everything it wrote: renamed away at once (so the container's
 * directory is gone), deleted in the background, since deleting is slow on some disks (online
 * discard) and need not hold up the caller. */
export function removeLayer(layer: ContainerLayer): void {
  const trash = join(layer.dir, '..', `.trash-${randomBytes(6).toString('hex')}`);
  try {
    renameSync(layer.dir, trash);
  } catch {
    removeTree(layer.dir);
    return;
  }
  void removeTreeAsync(trash).catch((e: unknown) => debug('could not delete %s: %o', trash, e));
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
