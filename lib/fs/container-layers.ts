import createDebug from 'debug';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { removeTree } from './remove-tree.ts';
import { join } from 'node:path';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { fromNodeError } from '../sys/errors.ts';

const debug = createDebug('corral:fs');

/** A container's writable overlay layer: upper (its changes) and work (overlayfs scratch). */
export interface ContainerLayer {
  dir: string;
  upper: string;
  work: string;
}

const swept = new Set<string>();

/** Makes the writable layer of a container under root/containers/<process tag>/<id>; the process
 * tag lets the first runtime of a later process sweep what a killed one left. owner: the tag of
 * another process that owns it (a detached container's supervisor), default ours. */
export function createLayer(root: string, id: string, owner?: string): ContainerLayer {
  const base = join(root, 'containers');
  const dir = join(owner === undefined ? processDir(base) : join(base, owner), id);
  try {
    mkdirSync(dir, { mode: 0o700, recursive: owner !== undefined });
    mkdirSync(join(dir, 'upper'));
    mkdirSync(join(dir, 'work'));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw fromNodeError(e, 'create the writable layer', dir);
  }
  if (!swept.has(base)) {
    swept.add(base);
    sweepStaleLayers(base);
  }
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work') };
}

const processDirs = new Map<string, string>();

/** This process's directory of layers (made once; removed at exit when empty, swept later if not). */
function processDir(base: string): string {
  let dir = processDirs.get(base);
  if (!dir) {
    dir = join(base, processTag());
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    processDirs.set(base, dir);
    const made = dir;
    process.once('exit', () => {
      try {
        rmdirSync(made);
      } catch {
        // layers still being deleted: the next sweep takes them
      }
    });
  }
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
  void rm(trash, { recursive: true, force: true }).catch(() => removeTree(trash)).catch((e: unknown) => debug('could not delete %s: %o', trash, e));
}

/** Removes the layers of processes that died without cleaning up. */
function sweepStaleLayers(base: string): void {
  for (const name of readdirSync(base)) {
    if (!isStaleTag(name)) continue;
    removeTree(join(base, name));
    debug('swept stale layers %s', join(base, name));
  }
}
