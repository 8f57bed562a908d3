/** The image builder: reads the context's Dockerfile and .dockerignore, picks the stages the target
 * needs, builds them in order (lib/build/stage.ts) under one write lease, tags the result; a failed
 * or aborted build takes out every image and layer it made, so the store is as it was. */

import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import type { Container } from '../container/container.ts';
import { checkEpoch } from '../container/commit.ts';
import type { ContainerSpec } from '../container/spec.ts';
import { findImage } from '../image/image-index.ts';
import { storeParts, writing, type ImageStore } from '../image/image-store.ts';
import type { ImageManifest } from '../image/oci.ts';
import { normalizeRef } from '../image/refs.ts';
import type { StoreParts, StoreWrite } from '../image/store-parts.ts';
import { BuildCache } from './cache.ts';
import { IgnoreMatcher } from './dockerignore.ts';
import { expandWord } from './expand.ts';
import { instructionError, interpret } from './instructions.ts';
import { parseDockerfile, type Dockerfile, type RawInstruction } from './parser.ts';
import { MountFlagError, parseRunMount } from './run-mounts.ts';
import { ContextTree } from './sources.ts';
import { buildStage, type BuildProgress, type BuildShared } from './stage.ts';

export type { BuildProgress } from './stage.ts';

/** What to build. */
export interface BuildOptions {
  /** The build context: a directory. */
  context: string;
  /** The Dockerfile: absolute, or relative to the context (default 'Dockerfile'). */
  dockerfile?: string;
  /** The tag for the result; without one it is known by its digest only. */
  tag?: string;
  /** --build-arg values. */
  args?: Record<string, string>;
  /** The stage to build (default the last). */
  target?: string;
  /** Run every step again, reusing nothing. */
  noCache?: boolean;
  /** Secrets for RUN --mount=type=secret,id=ID by id: a file to read, an environment variable, or
   * the bytes. Never stored in a layer, the history or the build cache. */
  secrets?: Record<string, BuildSecret>;
  /** SOURCE_DATE_EPOCH (seconds since 1970; also taken from the build arg of that name, as
   * BuildKit does): every image and history entry dated then and no file of a layer later, so
   * building the same context twice gives the same digests. */
  sourceDateEpoch?: number;
  /** Called per step: cached, running, done, and the RUN output. */
  onProgress?: (event: BuildProgress) => void;
  signal?: AbortSignal;
}

/** Where a build secret comes from (docker build --secret id=ID,src=FILE or env=VAR). */
export type BuildSecret = { src: string } | { env: string } | { value: string | Uint8Array };

/** What the builder needs of a runtime. */
export interface BuilderParts {
  root: string;
  /** Whether its containers map only the caller. */
  rootless: boolean;
  images: ImageStore;
  create: (spec: ContainerSpec) => Promise<Container>;
  /** Pulls an image that FROM or COPY --from names and the store lacks. */
  pull: (ref: string) => Promise<unknown>;
}

interface Stage {
  name: string | null;
  from: RawInstruction;
  steps: RawInstruction[];
}

/** Builds an image from a Dockerfile; resolves with the image's manifest digest. */
export async function buildImage(builder: BuilderParts, options: BuildOptions): Promise<{ manifestDigest: string }> {
  const context = realContext(options.context);
  const file = options.dockerfile === undefined ? join(context, 'Dockerfile') : isAbsolute(options.dockerfile) ? options.dockerfile : join(context, options.dockerfile);
  const dockerfile = parseDockerfile(read(file, 'read the Dockerfile') ?? missing(file), file);
  const { globals, stages } = splitStages(dockerfile);
  const buildArgs = options.args ?? {};
  const globalArgs = new Map<string, string | undefined>();
  const globalLookup = (name: string): string | undefined => globalArgs.get(name);
  for (const raw of globals) {
    const ins = interpret(raw, globalLookup, dockerfile.escape, file);
    if (ins.kind === 'ARG') for (const { name, value } of ins.args) globalArgs.set(name, buildArgs[name] ?? value);
  }
  const target = options.target === undefined ? stages.length - 1 : stages.findIndex((s) => s.name === options.target!.toLowerCase());
  if (target < 0) throw new CorralError(`${file}: no stage named '${options.target}' (target)`, { code: 'ERR_BUILD_FAILED', path: file });
  const fromName = (stage: Stage): string => expandWord(stage.from.args.split(/\s+/)[0]!, globalLookup, dockerfile.escape).toLowerCase();
  const needed = neededStages(stages, target, fromName, (v) => expandWord(v, globalLookup, dockerfile.escape));
  const ignore = IgnoreMatcher.parse(read(`${file}.dockerignore`, 'read the .dockerignore') ?? read(join(context, '.dockerignore'), 'read the .dockerignore') ?? '');
  const secrets = readSecrets(options.secrets ?? {});
  const epochArg = options.sourceDateEpoch ?? buildArgs.SOURCE_DATE_EPOCH;
  const sourceDateEpoch = epochArg === undefined ? undefined : checkEpoch(epochArg, options.sourceDateEpoch === undefined ? 'the build arg SOURCE_DATE_EPOCH' : 'sourceDateEpoch');
  const parts = storeParts(builder.images);
  const cache = new BuildCache(builder.root);
  const before = new Set(Object.keys(parts.index.read().images));
  const created: string[] = [];
  const results = new Map<number, Promise<string | null>>();
  const progress = options.onProgress ?? (() => {});
  // The first stage to fail stops the others (they build at once when independent).
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const manifestDigest = await writing(parts, async (write) => {
    try {
      const shared: Omit<BuildShared, 'stageImage'> = {
        root: builder.root, rootless: builder.rootless, secret: (id) => secrets.get(id), sourceDateEpoch,
        parts, write, cache, noCache: options.noCache ?? false, file, escape: dockerfile.escape, create: builder.create,
        context: new ContextTree(context, ignore), buildArgs, globalArgs, created, progress, signal,
        counter: { step: 0, total: needed.reduce((n, i) => n + stages[i]!.steps.length, 0) },
      };
      // Stages building at once that name the same image find (or pull) it once.
      const images = new Map<string, Promise<string>>();
      const image = (name: string, raw: RawInstruction): Promise<string> => {
        if (!images.has(name)) images.set(name, storeImage(parts, builder.pull, name, file, raw));
        return images.get(name)!;
      };
      /** Stage `current`'s view: COPY --from or RUN --mount from= an earlier stage waits for it. */
      const forStage = (current: number): BuildShared => ({
        ...shared,
        stageImage: async (name, raw) => {
          const i = stageIndex(stages, name.toLowerCase());
          if (i < 0) return image(name, raw);
          if (i >= current || !results.has(i)) throw instructionError(file, raw, `stage '${name}' is not built before this step (a stage can only copy from an earlier one)`, 'ERR_BUILD_FAILED');
          return results.get(i)!;
        },
      });
      let failure: { error: unknown } | null = null;
      for (const i of needed) {
        const stage = stages[i]!;
        const built = (async () => {
          interpret(stage.from, globalLookup, dockerfile.escape, file);
          const name = fromName(stage);
          const parent = stageIndex(stages.slice(0, i), name);
          const base = parent >= 0 ? await results.get(parent)! : name === 'scratch' ? null : await image(name, stage.from);
          return buildStage(forStage(i), base, stage.from, stage.steps);
        })();
        built.catch((error: unknown) => {
          failure ??= { error };
          stop.abort();
        });
        results.set(i, built);
      }
      await Promise.allSettled(results.values());
      if (failure !== null) throw (failure as { error: unknown }).error;
      const result = await results.get(target)!;
      if (result === null) throw new CorralError(`${file}: the target stage is an empty scratch image (nothing to tag)`, { code: 'ERR_BUILD_FAILED', path: file });
      const ref = options.tag === undefined ? undefined : normalizeRef(options.tag);
      await parts.index.update((db) => {
        for (const digest of created) if (db.images[digest] && !before.has(digest)) db.images[digest].buildCache = true;
        delete db.images[result]!.buildCache; // the result is an image, listed (it may be a cached step)
        if (ref !== undefined) db.tags[ref] = result;
      });
      return result;
    } catch (e) {
      await rollback(parts, write, created.filter((d) => !before.has(d)));
      throw e;
    }
  });
  cache.save();
  return { manifestDigest };
}

/** The instructions before the first FROM (ARGs only) and the stages. */
function splitStages(dockerfile: Dockerfile): { globals: RawInstruction[]; stages: Stage[] } {
  const globals: RawInstruction[] = [];
  const stages: Stage[] = [];
  for (const raw of dockerfile.instructions) {
    if (raw.keyword === 'FROM') {
      const words = raw.args.split(/\s+/);
      stages.push({ name: words.length === 3 && words[1]!.toUpperCase() === 'AS' ? words[2]!.toLowerCase() : null, from: raw, steps: [] });
    } else if (stages.length > 0) stages.at(-1)!.steps.push(raw);
    else if (raw.keyword === 'ARG') globals.push(raw);
    else throw instructionError(dockerfile.file, raw, 'only ARG may come before the first FROM');
  }
  if (stages.length === 0) throw new CorralError(`${dockerfile.file}: no FROM instruction (a Dockerfile needs at least one)`, { code: 'ERR_DOCKERFILE_SYNTAX', path: dockerfile.file });
  return { globals, stages };
}

function stageIndex(stages: Stage[], name: string): number {
  if (/^\d+$/.test(name)) return Number(name) < stages.length ? Number(name) : -1;
  return stages.findIndex((s) => s.name === name);
}

/** The stages the target needs (FROM a stage, COPY --from), in file order. */
function neededStages(stages: Stage[], target: number, fromName: (s: Stage) => string, expand: (v: string) => string): number[] {
  const needed = new Set<number>();
  const visit = (i: number): void => {
    if (needed.has(i)) return;
    needed.add(i);
    const before = stages.slice(0, i);
    const parent = stageIndex(before, fromName(stages[i]!));
    if (parent >= 0) visit(parent);
    for (const step of stages[i]!.steps) {
      for (const name of stepSources(step, expand)) {
        const dep = stageIndex(before, name.toLowerCase());
        if (dep >= 0) visit(dep);
      }
    }
  };
  visit(target);
  return [...needed].sort((a, b) => a - b);
}

/** The stages or images a step reads: COPY --from, RUN --mount=...,from= (a malformed flag names
 * none here: interpret() reports it when the step runs). */
function stepSources(step: RawInstruction, expand: (v: string) => string): string[] {
  const names: string[] = [];
  for (const [flag, value] of step.flags) {
    if (value === null) continue;
    if (step.keyword === 'COPY' && flag === 'from') names.push(expand(value));
    if (step.keyword === 'RUN' && flag === 'mount') {
      try {
        const mount = parseRunMount(expand(value));
        if (mount.type === 'bind' && mount.from !== null) names.push(mount.from);
      } catch (e) {
        if (!(e instanceof MountFlagError)) throw e;
      }
    }
  }
  return names;
}

/** The build's secrets read once, up front: a missing file or variable fails the build before any step. */
function readSecrets(secrets: Record<string, BuildSecret>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [id, secret] of Object.entries(secrets)) {
    if ('src' in secret) {
      try {
        out.set(id, readFileSync(secret.src));
      } catch (e) {
        throw fromNodeError(e, `read build secret '${id}'`, secret.src);
      }
    } else if ('env' in secret) {
      const value = process.env[secret.env];
      if (value === undefined) throw new CorralError(`build secret '${id}': the environment variable ${secret.env} is not set`, { code: 'ERR_INVALID_ARG_VALUE', step: `read build secret '${id}'` });
      out.set(id, Buffer.from(value));
    } else out.set(id, Buffer.from(secret.value));
  }
  return out;
}

/** An image of the store by name, pulled first when the store lacks it. */
async function storeImage(parts: StoreParts, pull: BuilderParts['pull'], ref: string, file: string, raw: RawInstruction): Promise<string> {
  const find = (): string | null => {
    try {
      return findImage(parts.index.read(), ref)[0];
    } catch (e) {
      if ((e as CorralError).code !== 'ERR_IMAGE_NOT_FOUND') throw e;
      return null;
    }
  };
  const found = find();
  if (found !== null) return found;
  try {
    await pull(ref);
  } catch (e) {
    throw instructionError(file, raw, `image '${ref}' is not in the store and pulling it failed: ${(e as Error).message}`, 'ERR_BUILD_FAILED');
  }
  const pulled = find();
  if (pulled === null) throw instructionError(file, raw, `image '${ref}' is not in the store after pulling it`, 'ERR_BUILD_FAILED');
  return pulled;
}

/** Takes out the index records of the images a failed build made and puts their content in the
 * build's write, which writing() then discards (what no other image needs). */
async function rollback(parts: StoreParts, write: StoreWrite, made: string[]): Promise<void> {
  await parts.index.update(async (db) => {
    for (const digest of made) {
      const record = db.images[digest];
      if (record === undefined) continue;
      write.blobs.push(record.manifestDigest, record.configDigest);
      write.chains.push(...record.chainIds);
      try {
        write.blobs.push(...(await parts.blobs.readJson<ImageManifest>(digest)).layers.map((l) => l.digest));
      } catch {
        // its layers are in the write already, or shared
      }
      delete db.images[digest];
    }
  });
}

function realContext(dir: string): string {
  try {
    const real = realpathSync(dir);
    if (!statSync(real).isDirectory()) throw new CorralError(`the build context ${dir} is not a directory`, { code: 'ENOTDIR', path: dir });
    return real;
  } catch (e) {
    throw fromNodeError(e, 'open the build context', dir);
  }
}

function read(path: string, step: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromNodeError(e, step, path);
  }
}

function missing(file: string): never {
  throw new CorralError(`no Dockerfile at ${file}`, { code: 'ENOENT', path: file, step: 'read the Dockerfile' });
}
