/** Layer tarball entry names: checked before anything touches the disk, and what whiteouts mean. */

import { CorralError } from '../../sys/errors.ts';

/** `.wh.NAME` deletes NAME of the layers below (OCI image-spec, "Whiteouts"). */
export const WHITEOUT_PREFIX = '.wh.';

/** `.wh..wh..opq` hides everything the layers below have in its directory. */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** `.wh..wh.` names other than the opaque marker are aufs bookkeeping, never content. */
const META_PREFIX = '.wh..wh.';

/** The error for a layer that cannot be applied safely: names the entry and what is wrong with it. */
export function invalidLayer(entry: string, problem: string): CorralError {
  const what = entry === '' ? 'invalid layer' : `invalid layer entry ${JSON.stringify(entry)}`;
  return new CorralError(`${what}: ${problem}`, { code: 'ERR_INVALID_LAYER', path: entry, step: 'apply layer' });
}

/**
 * The components of an entry name relative to the layer root ([] is the root itself). A leading
 * './', empty and '.' components are dropped; absolute names, '..' components and NUL bytes are
 * refused, so a checked name can only reach inside the layer.
 */
export function entryComponents(name: string, role = 'its name'): string[] {
  if (name.includes('\0')) throw invalidLayer(name, `${role} contains a NUL byte`);
  if (name.startsWith('/')) throw invalidLayer(name, `${role} is absolute`);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw invalidLayer(name, `${role} climbs out with '..'`);
  return parts;
}

/** What an entry's base name means to overlay: a plain name, a whiteout of `name`, the opaque
 * marker of its directory, or aufs metadata to skip. */
export type EntryMarker =
  | { kind: 'plain' }
  | { kind: 'whiteout'; name: string }
  | { kind: 'opaque' }
  | { kind: 'meta' };

/** Classifies a base name (one component, as entryComponents returns them). */
export function entryMarker(entry: string, base: string): EntryMarker {
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'plain' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(META_PREFIX)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') throw invalidLayer(entry, `the whiteout names no file ('${base}')`);
  return { kind: 'whiteout', name };
}

/** The xattr overlay reads to find an opaque directory: trusted.* needs root, so rootless
 * overlay (mounted with `userxattr`) reads user.* instead. */
export function opaqueXattr(rootless: boolean): string {
  return rootless ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
}

/** Overlay's own bookkeeping (opaque, redirect, origin, metacopy…): never layer content, so it is
 * neither taken from a tarball nor written into one. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}
