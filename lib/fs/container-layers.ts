import createDebug from 'debug';
import { mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { removeTree } from './remove-tree.ts';
import { join } from 'node:path';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { CorralError } from '../sys/errors.ts';

const debug = createDebug('corral:fs');

/** A container's writable overlay layer: upper (its changes) and work (overlayfs scratch). */
export interface ContainerLayer {
  dir: string;
  upper: string;
  work: string;
}

const swept = new Set<string>();

/** Makes the writable layer of a container under root/containers/<process tag>/<id>; the process
 * tag lets the first runtime of a later process sweep what a killed one left. */
export function createLayer(root: string, id: string): ContainerLayer {
  const base = join(root, 'containers');
  const dir = join(base, processTag(), id);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'upper'));
    mkdirSync(join(dir, 'work'));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException;
    throw new CorralError(`cannot create the container layer in ${dir}: ${err.code}`, { code: err.code ?? 'EIO', errno: -(err.errno ?? 0), syscall: 'mkdir', path: dir, step: 'create the writable layer' });
  }
  if (!swept.has(base)) {
    swept.add(base);
    sweepStaleLayers(base);
  }
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work') };
}

/** Deletes a container's layer with everything it wrote. */
export function removeLayer(layer: ContainerLayer): void {
  removeTree(layer.dir);
  try {
    // the process directory, once its last container is gone
    rmdirSync(join(layer.dir, '..'));
  } catch {
    // still holds other containers' layers
  }
}

/** Removes the layers of processes that died without cleaning up. */
function sweepStaleLayers(base: string): void {
  for (const name of readdirSync(base)) {
    if (!isStaleTag(name)) continue;
    removeTree(join(base, name));
    debug('swept stale layers %s', join(base, name));
  }
}
