/** Where COPY and ADD read from: the build context (a host directory, less what .dockerignore
 * excludes) or another stage's or image's layers. Both resolve a path inside themselves only:
 * '..' stops at their root and a symlink on the way is followed as if their root were '/', so
 * nothing outside is ever reached (test/security/build-context-*.test.ts). */

import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { findInLayers, resolveInRoot } from '../image/layer/overlay-view.ts';
import type { IgnoreMatcher } from './dockerignore.ts';

/** One file of a source, found without following its last component. */
export interface SourceNode {
  /** Its path inside the source, '/'-separated, no leading '/' ('' for the root). */
  rel: string;
  /** Where it is on the host (in the context or in one layer directory). */
  hostPath: string;
  stat: Stats;
}

/** A tree COPY reads from. */
export abstract class SourceTree {
  /** The node at `parts` without following anything (null when absent or excluded). */
  protected abstract lookup(parts: string[]): SourceNode | null;

  /** The names in a directory node, sorted (excluded ones left out). */
  abstract children(dir: SourceNode): string[];

  /** The node a child name leads to, not followed. */
  child(dir: SourceNode, name: string): SourceNode | null {
    return this.lookup([...components(dir.rel), name]);
  }

  /** Resolves a path inside the tree, following symlinks (the last one too) inside it; null when
   * nothing is there. */
  resolve(path: string): SourceNode | null {
    return resolveInRoot(path, (parts) => this.lookup(parts), (node) => readlinkSync(node.hostPath));
  }
}

/** The build context: a host directory, its .dockerignore'd paths invisible (never read). */
export class ContextTree extends SourceTree {
  readonly #root: string;
  readonly #ignore: IgnoreMatcher;

  constructor(root: string, ignore: IgnoreMatcher) {
    super();
    this.#root = root;
    this.#ignore = ignore;
  }

  protected lookup(parts: string[]): SourceNode | null {
    const rel = parts.join('/');
    if (rel !== '' && this.#ignore.excludes(rel) && !this.#ignore.hasExceptions()) return null;
    const hostPath = join(this.#root, ...parts);
    const stat = lstatSync(hostPath, { throwIfNoEntry: false });
    if (stat === undefined) return null;
    if (rel !== '' && !stat.isDirectory() && this.#ignore.excludes(rel)) return null;
    return { rel, hostPath, stat };
  }

  children(dir: SourceNode): string[] {
    return readdirSync(dir.hostPath).sort().filter((name) => this.child(dir, name) !== null);
  }

  /** Whether a node (a directory walked for its exceptions) is itself excluded. */
  excluded(node: SourceNode): boolean {
    return node.rel !== '' && this.#ignore.excludes(node.rel);
  }
}

/** An image's merged layers (top first), as a container would see its root. */
export class LayerTree extends SourceTree {
  readonly #layers: string[];

  constructor(layers: string[]) {
    super();
    this.#layers = layers;
  }

  protected lookup(parts: string[]): SourceNode | null {
    if (parts.length === 0) {
      const hostPath = this.#layers[0];
      return hostPath === undefined ? null : { rel: '', hostPath, stat: lstatSync(hostPath) };
    }
    const found = findInLayers(this.#layers, parts);
    return found === null ? null : { rel: parts.join('/'), hostPath: found.path, stat: found.stat };
  }

  children(dir: SourceNode): string[] {
    const names = new Set<string>();
    const parts = components(dir.rel);
    for (const layer of this.#layers) {
      const path = join(layer, ...parts);
      if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) for (const n of readdirSync(path)) names.add(n);
    }
    return [...names].sort().filter((n) => this.child(dir, n) !== null);
  }
}

/** Whether a tree node is excluded by the context's own rules (a walked directory kept only for
 * its exceptions). */
export function isExcluded(tree: SourceTree, node: SourceNode): boolean {
  return tree instanceof ContextTree && tree.excluded(node);
}

function components(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}
