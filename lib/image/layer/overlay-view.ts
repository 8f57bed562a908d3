/**
 * The one overlay lookup: what a stack of layer directories shows at a path, as overlayfs would
 * merge them (a whiteout hides what lies below, an opaque directory everything below it), without
 * ever following a symlink out of the layers. Applying a layer (hard links, implied directories) and
 * resolving an image's user both look through it.
 */

import { constants, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { CorralError, fromNodeError } from '../../sys/errors.ts';
import { lgetxattr } from '../../sys/fs-ops.ts';
import { opaqueXattr } from './entry-names.ts';

/** What one layer holds at a path: the file itself, 'hidden' when the layer hides the path from the
 * layers below (a whiteout, a non-directory or an opaque directory on the way), or 'absent' when
 * the layers further down may still have it. */
type LayerLookup = { path: string; stat: Stats } | 'absent' | 'hidden';

/** What a stack shows at a path: the file and the index of the layer it comes from (top is 0). */
export interface Found {
  layer: number;
  path: string;
  stat: Stats;
}

const MAX_SYMLINK_HOPS = 40;

/** Looks a path (components) up in one layer directory, following no symlink. */
function lookupInLayer(layer: string, parts: string[]): LayerLookup {
  let path = layer;
  let opaque = false;
  for (let i = 0; i < parts.length; i++) {
    path = `${path}/${parts[i]}`;
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return opaque ? 'hidden' : 'absent';
    if (isWhiteout(stat)) return 'hidden';
    if (i === parts.length - 1) return { path, stat };
    if (!stat.isDirectory()) return 'hidden';
    opaque ||= isOpaque(path);
  }
  return 'hidden';
}

/** Looks a path (components) up in a stack of layers, top first; null when no layer shows it. */
export function findInLayers(layers: string[], parts: string[]): Found | null {
  for (const [i, layer] of layers.entries()) {
    const found = lookupInLayer(layer, parts);
    if (found === 'hidden') return null;
    if (found !== 'absent') return { layer: i, ...found };
  }
  return null;
}

/** Whether a directory entry is an overlay whiteout (a char device 0/0). */
export function isWhiteout(stat: Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}

/** Resolves an absolute path component by component with `lookup` (which follows nothing):
 * symlinks are followed as if the root were '/' (an absolute target starts again at the root, '..'
 * stops there), so nothing outside it is reached; null when absent. Shared by the image view and
 * the build's sources (lib/build/sources.ts). */
export function resolveInRoot<T extends { stat: Stats }>(path: string, lookup: (parts: string[]) => T | null, readLink: (node: T) => string): T | null {
  let todo = components(path);
  let done: string[] = [];
  let found: T | null = null;
  for (let hops = 0; todo.length > 0;) {
    const name = todo.shift()!;
    if (name === '..') {
      done.pop();
      found = null;
      continue;
    }
    found = lookup([...done, name]);
    if (found === null) return null;
    if (found.stat.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) return null;
      const target = readLink(found);
      if (target.startsWith('/')) done = [];
      todo = [...components(target), ...todo];
      found = null;
      continue;
    }
    if (todo.length > 0 && !found.stat.isDirectory()) return null;
    done.push(name);
  }
  return found ?? lookup(done);
}

/** A read-only view of an image's layers, top first, as the container will see its root. */
export class OverlayView {
  readonly #layers: string[];

  constructor(layers: string[]) {
    this.#layers = layers;
  }

  /** Where an absolute path of the image leads: symlinks are followed inside the image (an absolute
   * target starts again at the image's root, '..' stops there), never to the host; null when absent. */
  resolve(path: string): Found | null {
    // test/security/image-passwd-host-link.test.ts: a link is resolved in the image, never on the host.
    return resolveInRoot(path, (parts) => findInLayers(this.#layers, parts), (found) => readlinkSync(found.path));
  }

  /** The content of a regular file of the image, at most `maxBytes`; null when it is absent. Never
   * opens a fifo or device (an open would block or reach host hardware), and never blocks the loop. */
  async readFile(path: string, maxBytes: number): Promise<Buffer | null> {
    const found = this.resolve(path);
    if (found === null) return null;
    const refuse = (why: string): CorralError => new CorralError(`the image's ${path} ${why}`, { code: 'ERR_INVALID_IMAGE', path, step: 'read an image file' });
    if (!found.stat.isFile()) throw refuse('is not a regular file'); // test/security/image-passwd-fifo.test.ts
    if (found.stat.size > maxBytes) throw refuse(`is larger than ${maxBytes} bytes`);
    try {
      // O_NONBLOCK: should the file have become a fifo since the lstat, the open cannot hang.
      const file = await open(found.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const stat = await file.stat();
        if (!stat.isFile() || stat.ino !== found.stat.ino || stat.dev !== found.stat.dev) throw refuse('changed while it was read');
        const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
        const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
        if (bytesRead > maxBytes) throw refuse(`is larger than ${maxBytes} bytes`);
        return buffer.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
    } catch (e) {
      throw fromNodeError(e, 'read an image file', found.path);
    }
  }
}

function isOpaque(path: string): boolean {
  return lgetxattr(path, opaqueXattr(false))?.toString() === 'y' || lgetxattr(path, opaqueXattr(true))?.toString() === 'y';
}

function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}
