/** COPY and ADD of files: which entries a step adds to the image (planned from metadata only), the
 * digest of their content and metadata (the cache key: mtime left out), and the layer tar itself. */

import { createHash } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, lutimesSync, mkdirSync, openSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Writable } from 'node:stream';
import { CorralError } from '../sys/errors.ts';
import { TarWriter } from '../image/tar/writer.ts';
import { writeArchive } from './archives.ts';
import type { LayerDigest } from '../image/layer/apply.ts';
import { cleanRelative, globRegExp } from './dockerignore.ts';
import { ContextTree, isExcluded, type SourceNode, type SourceTree } from './sources.ts';
import type { IgnoreMatcher } from './dockerignore.ts';

/** One entry of the layer a COPY makes. */
export interface CopyEntry {
  /** Path in the image, relative ('app/main.c'); an archive's is the directory it unpacks into. */
  name: string;
  /** 'archive': a local tar archive ADD unpacks (lib/build/archives.ts). */
  type: 'file' | 'directory' | 'symlink' | 'archive';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname?: string;
  /** A file's (or archive's) content: a host path to read, or the bytes (a heredoc). */
  from?: string | Buffer;
}

/** What a COPY step copies and where. */
export interface CopyPlan {
  tree: SourceTree | null;
  sources: string[];
  /** Files from outside the tree: heredocs (their text) and ADD's downloads (a host file, 0600). */
  inline: ({ name: string; content: string } | { name: string; download: string; size: number; mtime: number })[];
  /** The destination, absolute in the image. */
  dest: string;
  owner: { uid: number; gid: number };
  chmod: number | null;
  exclude: IgnoreMatcher | null;
  /** What the image already has at an absolute path. */
  existing: (path: string) => 'directory' | 'other' | null;
  /** mtime of directories and heredoc files the step creates. */
  now: number;
  /** ADD: whether a source file (not one found in a source directory) is an archive to unpack. */
  unpack?: (hostPath: string, source: string) => boolean;
}

/** A COPY that cannot be done: the caller names the file, line and instruction. */
export class CopyError extends CorralError {
  constructor(message: string) {
    super(message, { code: 'ERR_BUILD_CONTEXT' });
  }
}

const GLOB = /[*?[]/;

/** The entries the step adds, in tar order; reads no file content. */
export function planCopy(plan: CopyPlan): CopyEntry[] {
  const out = new Map<string, CopyEntry>();
  const matches: { as: string; node: SourceNode }[] = [];
  for (const source of plan.sources) {
    if (escapes(source)) throw new CopyError(`${source} is outside the build context (a source must be inside it)`);
    if (plan.tree === null) throw new CopyError(`${source}: there is nothing to copy from (an empty stage)`);
    const found = expandSource(plan.tree, cleanRelative(source)).map((as) => ({ as, node: plan.tree!.resolve(as) }));
    const present = found.filter((f): f is { as: string; node: SourceNode } => f.node !== null);
    if (present.length === 0) throw new CopyError(`${source}: no such file or directory${GLOB.test(source) ? ' matches' : ''} in the ${plan.tree instanceof ContextTree ? 'build context' : 'source image'}`);
    matches.push(...present);
  }
  const destDir = plan.dest.endsWith('/') || matches.length + plan.inline.length > 1 || plan.sources.some((s) => GLOB.test(s)) || plan.existing(plan.dest) === 'directory';
  const target = cleanRelative(plan.dest);
  const dir = (name: string): void => {
    if (name === '' || out.has(name) || plan.existing(`/${name}`) === 'directory') return;
    if (plan.existing(`/${name}`) === 'other') throw new CopyError(`cannot copy to /${name}: it is not a directory in the image`);
    dir(posix.dirname(name) === '.' ? '' : posix.dirname(name));
    out.set(name, { name, type: 'directory', mode: plan.chmod ?? 0o755, ...plan.owner, mtime: plan.now, size: 0 });
  };
  const add = (entry: CopyEntry): void => {
    dir(posix.dirname(entry.name) === '.' ? '' : posix.dirname(entry.name));
    out.set(entry.name, entry);
  };
  const walk = (tree: SourceTree, node: SourceNode, at: string): void => {
    for (const name of tree.children(node)) {
      const child = tree.child(node, name)!;
      const path = posix.join(at, name);
      if (plan.exclude?.excludes(child.rel)) continue;
      if (child.stat.isDirectory()) {
        if (!isExcluded(tree, child)) add(entryOf(child, path, plan));
        walk(tree, child, path);
      } else add(entryOf(child, path, plan));
    }
  };
  if (plan.sources.length === 0 && plan.inline.length === 0) dir(target); // WORKDIR's directory
  const archives: CopyEntry[] = [];
  for (const { as, node } of matches) {
    if (node.stat.isDirectory()) {
      dir(target);
      walk(plan.tree!, node, target);
    } else if (node.stat.isFile() && plan.unpack?.(node.hostPath, as)) {
      dir(target);
      archives.push({ name: target, type: 'archive', mode: 0, ...plan.owner, mtime: plan.now, size: node.stat.size, from: node.hostPath });
    } else add(entryOf(node, destDir ? posix.join(target, posix.basename(as)) : target, plan));
  }
  for (const file of plan.inline) {
    const name = destDir ? posix.join(target, file.name) : target;
    if ('download' in file) add({ name, type: 'file', mode: plan.chmod ?? 0o600, ...plan.owner, mtime: file.mtime, size: file.size, from: file.download });
    else {
      const bytes = Buffer.from(file.content);
      add({ name, type: 'file', mode: plan.chmod ?? 0o644, ...plan.owner, mtime: plan.now, size: bytes.length, from: bytes });
    }
  }
  // Archives unpack after the rest, into directories the layer has by then.
  return [...[...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), ...archives];
}

/** Whether a source path climbs out of its root ('../x', 'a/../../x'). */
function escapes(source: string): boolean {
  let depth = 0;
  for (const part of source.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** A source with wildcards as the paths it matches (a plain path as itself). */
function expandSource(tree: SourceTree, source: string): string[] {
  if (!GLOB.test(source)) return [source];
  let candidates = [''];
  for (const part of source.split('/')) {
    const next: string[] = [];
    for (const c of candidates) {
      if (!GLOB.test(part)) {
        next.push(c === '' ? part : `${c}/${part}`);
        continue;
      }
      const node = tree.resolve(c);
      if (!node?.stat.isDirectory()) continue;
      const re = globRegExp(part);
      for (const name of tree.children(node)) if (re.test(name)) next.push(c === '' ? name : `${c}/${name}`);
    }
    candidates = next;
  }
  return candidates;
}

function entryOf(node: SourceNode, name: string, plan: CopyPlan): CopyEntry {
  const { stat } = node;
  const common = { name, ...plan.owner, mtime: Math.floor(stat.mtimeMs / 1000), size: 0 };
  if (stat.isDirectory()) return { ...common, type: 'directory', mode: plan.chmod ?? stat.mode & 0o7777 };
  if (stat.isSymbolicLink()) {
    // Copied as the link it is, never followed (test/security/build-context-symlink-out.test.ts).
    return { ...common, type: 'symlink', mode: 0o777, linkname: readlinkSync(node.hostPath) };
  }
  if (stat.isFile()) return { ...common, type: 'file', mode: plan.chmod ?? stat.mode & 0o7777, size: stat.size, from: node.hostPath };
  throw new CopyError(`${node.rel} is not a regular file, directory or symlink`);
}

/** Reads a file of the plan without following a symlink swapped in since it was planned. */
function content(entry: CopyEntry): AsyncIterable<Buffer> | Iterable<Buffer> {
  if (entry.from === undefined) return [];
  if (Buffer.isBuffer(entry.from)) return [entry.from];
  return readNoFollow(entry.from);
}

/** Files up to this size are read at once (an open and a read), bigger ones streamed. */
const SMALL_FILE = 1024 * 1024;
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function readNoFollow(path: string): AsyncIterable<Buffer> | Iterable<Buffer> {
  const fd = openSync(path, NO_FOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CopyError(`${path} is no longer a regular file`);
    if (st.size <= SMALL_FILE) return [readFileSync(fd)];
  } finally {
    closeSync(fd);
  }
  return streamNoFollow(path);
}

async function* streamNoFollow(path: string): AsyncIterable<Buffer> {
  const file = await open(path, NO_FOLLOW);
  try {
    if (!(await file.stat()).isFile()) throw new CopyError(`${path} is no longer a regular file`);
    for await (const chunk of file.createReadStream({ autoClose: false })) yield chunk as Buffer;
  } finally {
    await file.close();
  }
}

/** The digest of the entries' metadata (no mtime) and content: COPY's part of the cache key. */
export async function copyDigest(entries: CopyEntry[]): Promise<string> {
  const hash = createHash('sha256');
  for (const e of entries) {
    hash.update(JSON.stringify([e.name, e.type, e.mode, e.uid, e.gid, e.size, e.linkname ?? '']));
    if (e.type === 'file' || e.type === 'archive') {
      const h = createHash('sha256');
      for await (const chunk of content(e)) h.update(chunk as Buffer);
      hash.update(h.digest('hex'));
    }
  }
  return hash.digest('hex');
}

/** Writes the entries as a layer tar (not ending `out`); returns its DiffID. `existing` (what the
 * image has) keeps an archive from restating the directories it unpacks into; no entry is dated
 * later than `clampMtime` (SOURCE_DATE_EPOCH). */
export async function writeCopyLayer(entries: CopyEntry[], out: Writable, existing: CopyPlan['existing'] = () => null, clampMtime?: number): Promise<LayerDigest> {
  const tar = new TarWriter(out, { digest: true, clampMtime });
  const dirs = new Set(entries.filter((e) => e.type === 'directory').map((e) => e.name));
  for (const e of entries) {
    if (e.type === 'archive') {
      await writeArchive(e.from as string, posix.basename(e.from as string), e.name, tar, (rel) => dirs.has(rel) || existing(`/${rel}`) === 'directory', e.mtime);
      continue;
    }
    await tar.add({ name: e.type === 'directory' ? `${e.name}/` : e.name, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, ...(e.linkname === undefined ? {} : { linkname: e.linkname }) }, content(e));
  }
  await tar.end();
  return tar.digest();
}

/** Writes the entries as files under `dir` (an empty directory): a RUN --mount=type=bind source,
 * so the step sees what COPY would copy (no .dockerignore'd file) and its writes reach nothing real.
 * Owners are those of the writer (root inside the step's namespace). */
export async function writeCopyTree(entries: CopyEntry[], dir: string): Promise<void> {
  const dirs: CopyEntry[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.type === 'directory') {
      mkdirSync(path, { mode: 0o700 });
      dirs.push(e);
    } else if (e.type === 'symlink') symlinkSync(e.linkname!, path);
    else {
      await writeFile(path, content(e) as AsyncIterable<Buffer>, { mode: 0o600, flag: 'wx' });
      chmodSync(path, e.mode);
    }
    if (e.type !== 'directory') lutimesSync(path, e.mtime, e.mtime);
  }
  for (const e of dirs.reverse()) {
    const path = join(dir, e.name);
    chmodSync(path, e.mode);
    lutimesSync(path, e.mtime, e.mtime);
  }
}
