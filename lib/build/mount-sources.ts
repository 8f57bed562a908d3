/** What a RUN step's --mount flags become: container mounts and the host side behind them. A bind
 * source is a copy of what COPY would copy (inside the context or the stage, never '../' out of it,
 * no .dockerignore'd file; test/security/build-mount-bind-outside.test.ts), so writes to it
 * are thrown away; a cache mount is a directory per id under <root>/build/cache-mounts, kept between
 * builds, its id hashed into the name so no id reaches outside (test/security/build-cache-mount-id.test.ts);
 * a secret is a private copy mounted read-only, never in a layer, the cache key or the history.
 * The mount points the image lacked are the step's stubs, dropped from its layer. */

import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import type { MountSpec } from '../fs/mounts.ts';
import { removeTree } from '../fs/remove-tree.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import { cleanRelative } from './dockerignore.ts';
import { copyDigest, CopyError, planCopy, writeCopyTree, type CopyEntry } from './copy.ts';
import type { RunMount } from './run-mounts.ts';
import type { SourceTree } from './sources.ts';

/** What a step's mounts need of the build. */
export interface MountInputs {
  /** The runtime root (cache mounts and step scratch live under <root>/build). */
  root: string;
  /** Whether containers map only the caller (then files can only belong to root inside). */
  rootless: boolean;
  /** The tree a bind mount reads: the context (from null), or a stage's or image's layers, with
   * the manifest digest that goes into the key. */
  tree: (from: string | null) => Promise<{ tree: SourceTree | null; digest: string }>;
  /** A secret's bytes, undefined when the build was given none by that id. */
  secret: (id: string) => Buffer | undefined;
  /** The path in the step's parent image that an absolute path leads to (symlinks followed in the
   * image), null when nothing is there. */
  resolve: (path: string) => string | null;
}

/** The mounts of a step, planned (nothing on disk yet): their key and their bind sources. */
export interface PlannedMounts {
  mounts: RunMount[];
  /** Per mount index: a bind's entries and whether its source is a directory. */
  binds: Map<number, { entries: CopyEntry[]; directory: boolean }>;
  /** What besides the instruction goes into the step's cache key (bind content, never a secret). */
  key: string[];
}

/** A step's mounts set up on the host; disposing removes the scratch and releases cache locks. */
export interface StepMounts extends AsyncDisposable {
  specs: MountSpec[];
  /** Mount points the image lacked: left out of the layer when still empty. */
  stubs: string[];
}

/** Reads what the mounts need to be keyed: bind sources (planned, hashed), secrets' presence. */
export async function planMounts(mounts: RunMount[], inputs: MountInputs): Promise<PlannedMounts> {
  const binds = new Map<number, { entries: CopyEntry[]; directory: boolean }>();
  const key: string[] = [];
  for (const [i, m] of mounts.entries()) {
    if (m.type === 'secret' && m.required && inputs.secret(m.id) === undefined) {
      throw new CopyError(`secret '${m.id}' is required but the build was given none by that id (--secret id=${m.id},src=FILE)`);
    }
    if (m.type !== 'bind') continue;
    const { tree, digest } = await inputs.tree(m.from);
    if (tree === null) throw new CopyError(`--mount from=${m.from}: there is nothing to mount from (an empty stage)`);
    const entries = planCopy({ tree, sources: [m.source], inline: [], dest: '/', owner: { uid: 0, gid: 0 }, chmod: null, exclude: null, existing: () => null, now: 0 });
    binds.set(i, { entries, directory: tree.resolve(cleanRelative(m.source))!.stat.isDirectory() });
    key.push(`bind:${m.target}:${digest}:${await copyDigest(entries)}`);
  }
  return { mounts, binds, key };
}

/** Sets the planned mounts up on the host for one run. */
export async function mountStep(plan: PlannedMounts, inputs: MountInputs): Promise<StepMounts> {
  const specs: MountSpec[] = [];
  const stubs: string[] = [];
  const releases: Array<() => void> = [];
  let scratch: string | null = null;
  const scratchDir = (): string => (scratch ??= mkdtempSync(join(runtimeDir(inputs.root, 'build'), 'step-')));
  const dispose = async (): Promise<void> => {
    for (const release of releases) release();
    if (scratch !== null) removeTree(scratch);
  };
  try {
    for (const [i, m] of plan.mounts.entries()) {
      switch (m.type) {
        case 'bind': {
          const { entries, directory } = plan.binds.get(i)!;
          const dir = join(scratchDir(), `bind-${i}`);
          mkdirSync(dir, { mode: 0o755 });
          await writeCopyTree(entries, dir);
          const source = directory ? dir : join(dir, entries[0]!.name);
          specs.push({ type: 'bind', source, target: m.target, readonly: m.readonly });
          break;
        }
        case 'cache': {
          const { dir, release } = await cacheDir(inputs, m);
          releases.push(release);
          specs.push({ type: 'bind', source: dir, target: m.target, readonly: m.readonly });
          break;
        }
        case 'tmpfs':
          specs.push({ type: 'tmpfs', target: m.target, ...(m.size === null ? {} : { size: m.size }) });
          break;
        case 'secret': {
          const bytes = inputs.secret(m.id);
          if (bytes === undefined) continue; // not required: the step runs without it, as BuildKit's do
          const file = join(scratchDir(), `secret-${i}`);
          writeFileSync(file, bytes, { mode: 0o600, flag: 'wx' });
          setOwner(inputs, file, m, 'secret');
          chmodSync(file, m.mode);
          specs.push({ type: 'bind', source: file, target: m.target, readonly: true });
          break;
        }
      }
      stubs.push(...mountPoints(m.target, inputs.resolve));
    }
  } catch (e) {
    await dispose();
    throw e;
  }
  return { specs, stubs, [Symbol.asyncDispose]: dispose };
}

/** Removes the cache mounts no build of this process is using: what prune({ buildCache }) reclaims. */
export function pruneCacheMounts(root: string): void {
  const dir = join(runtimeDir(root, 'build'), 'cache-mounts');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fromNodeError(e, 'list the cache mounts', dir);
  }
  for (const name of names) if (!inUse.has(join(dir, name))) removeTree(join(dir, name));
}

/** Cache directories in use by steps of this process: how many, and the lock of locked ones. */
const inUse = new Map<string, number>();
const locks = new Map<string, Promise<void>>();

/** The cache directory for a mount's id, made on first use with the mount's mode and owner. A
 * locked one is held by one step at a time; a private one that is in use gives the step another
 * directory of its own (`<id>-N`, kept as cache too), as BuildKit's do. */
async function cacheDir(inputs: MountInputs, m: Extract<RunMount, { type: 'cache' }>): Promise<{ dir: string; release: () => void }> {
  const parent = join(runtimeDir(inputs.root, 'build'), 'cache-mounts');
  mkdirSync(parent, { mode: 0o700, recursive: true });
  const base = join(parent, createHash('sha256').update(m.id).digest('hex').slice(0, 32));
  let dir = base;
  for (let n = 1; m.sharing === 'private' && inUse.has(dir); n++) dir = `${base}-${n}`;
  inUse.set(dir, (inUse.get(dir) ?? 0) + 1);
  const done = (): void => {
    const left = inUse.get(dir)! - 1;
    if (left === 0) inUse.delete(dir);
    else inUse.set(dir, left);
  };
  try {
    if (statSync(dir, { throwIfNoEntry: false }) === undefined) {
      mkdirSync(dir, { mode: 0o700 });
      setOwner(inputs, dir, m, 'cache');
      chmodSync(dir, m.mode);
    }
  } catch (e) {
    done();
    throw e;
  }
  if (m.sharing !== 'locked') return { dir, release: done };
  const previous = locks.get(dir) ?? Promise.resolve();
  let unlock!: () => void;
  const tail = previous.then(() => new Promise<void>((resolve) => (unlock = resolve)));
  locks.set(dir, tail);
  await previous;
  return {
    dir,
    release: () => {
      unlock();
      if (locks.get(dir) === tail) locks.delete(dir);
      done();
    },
  };
}

function setOwner(inputs: MountInputs, path: string, m: { uid: number; gid: number }, what: string): void {
  if (m.uid === 0 && m.gid === 0) return;
  if (inputs.rootless) throw new CorralError(`a ${what} mount owned by ${m.uid}:${m.gid} needs root: a rootless build maps only root into its steps`, { code: 'ERR_BUILD_FAILED', path });
  chownSync(path, m.uid, m.gid);
}

/** The target and those of its parents the image lacks: the mount points the run makes, where it
 * makes them (under what the deepest existing parent leads to, /var/run/x at /run/x). */
function mountPoints(target: string, resolve: MountInputs['resolve']): string[] {
  const missing: string[] = [];
  let at = target;
  for (; at !== '/' && resolve(at) === null; at = posix.dirname(at)) missing.unshift(posix.basename(at));
  let made = at === '/' ? '/' : resolve(at)!;
  return missing.map((name) => (made = posix.join(made, name)));
}
