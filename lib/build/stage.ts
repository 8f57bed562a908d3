/** One build stage: its instructions executed in order on top of its FROM image, each step an
 * image of its own (untagged: the cache) made through compose, reused when its cache key is known. */

import { mkdtempSync } from 'node:fs';
import { join, posix } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import type { Container } from '../container/container.ts';
import type { ContainerSpec } from '../container/spec.ts';
import { removeTree } from '../fs/remove-tree.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import { composeImage, storeLayer } from '../image/compose.ts';
import { findImage } from '../image/image-index.ts';
import { OverlayView } from '../image/layer/overlay-view.ts';
import type { ImageConfig, ImageManifest } from '../image/oci.ts';
import { resolveUser } from '../image/run-config.ts';
import type { StoreParts, StoreWrite } from '../image/store-parts.ts';
import { cacheKey, type BuildCache } from './cache.ts';
import { ArchiveError, isTarArchive } from './archives.ts';
import { copyDigest, CopyError, planCopy, writeCopyLayer, type CopyEntry, type CopyPlan } from './copy.ts';
import { download, DownloadError, isUrl, type Downloaded } from './download.ts';
import { IgnoreMatcher } from './dockerignore.ts';
import { instructionError, interpret, type Command, type Instruction } from './instructions.ts';
import { parseDockerfile, type RawInstruction } from './parser.ts';
import { mountStep, planMounts, type MountInputs, type PlannedMounts } from './mount-sources.ts';
import { atWorkdir, MountFlagError, type RunMount } from './run-mounts.ts';
import { runStep } from './run-step.ts';
import { LayerTree, type SourceTree } from './sources.ts';

/** Progress of a build, one event per step. */
export interface BuildProgress {
  /** 1-based step number over the stages being built, and their total. */
  step: number;
  total: number;
  /** The instruction as written. */
  instruction: string;
  /** 'cached': reused; 'running': started; 'done': finished after `elapsedMs`; 'output': RUN output. */
  status: 'cached' | 'running' | 'done' | 'output';
  elapsedMs?: number;
  output?: Buffer;
}

/** What every stage of one build shares. */
export interface BuildShared {
  /** The runtime root, and whether its containers map only the caller. */
  root: string;
  rootless: boolean;
  parts: StoreParts;
  write: StoreWrite;
  cache: BuildCache;
  noCache: boolean;
  file: string;
  escape: string;
  create: (spec: ContainerSpec) => Promise<Container>;
  context: SourceTree;
  buildArgs: Record<string, string>;
  /** Global ARGs (before the first FROM) with their values. */
  globalArgs: Map<string, string | undefined>;
  /** Images this build made (taken out again if it fails). */
  created: string[];
  /** The image a COPY --from names: a built stage or a store image. */
  stageImage: (name: string, raw: RawInstruction) => Promise<string | null>;
  progress: (event: BuildProgress) => void;
  /** A build secret's bytes by id (RUN --mount=type=secret). */
  secret: (id: string) => Buffer | undefined;
  /** SOURCE_DATE_EPOCH (seconds): every image dated then, no file of a layer later; in every key. */
  sourceDateEpoch: number | undefined;
  signal?: AbortSignal;
  counter: { step: number; total: number };
}

type Config = NonNullable<ImageConfig['config']>;

/** What besides its text goes into a step's key (and, for COPY, the entries it adds). */
interface StepInputs {
  key: string[];
  copy?: CopyEntry[];
  /** What the step's parent image has at a path (COPY and ADD). */
  existing?: CopyPlan['existing'];
  mounts?: PlannedMounts;
  /** Removes what the inputs left on disk (ADD's downloads), once the step is done. */
  dispose?: () => void;
}

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];
const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** Builds one stage from its FROM (`base`: a manifest digest, or null for scratch); returns the
 * stage's image (null when it is scratch with no step). */
export async function buildStage(shared: BuildShared, base: string | null, from: RawInstruction, steps: RawInstruction[]): Promise<string | null> {
  return new StageBuild(shared, base).run(from, steps);
}

class StageBuild {
  readonly #s: BuildShared;
  #digest: string | null;
  #config: Config = {};
  readonly #args = new Map<string, string | undefined>();
  #cmdSet = false;
  /** The number of the step running (stages build side by side, so not the build's counter). */
  #stepNumber = 0;

  constructor(shared: BuildShared, base: string | null) {
    this.#s = shared;
    this.#digest = base;
  }

  async run(from: RawInstruction, stageSteps: RawInstruction[]): Promise<string | null> {
    this.#config = (await this.#imageConfig())?.config ?? {};
    const triggers = await this.#onBuild(from);
    const steps = [...triggers, ...stageSteps];
    this.#s.counter.total += triggers.length;
    for (const raw of steps) {
      this.#s.signal?.throwIfAborted();
      const n = ++this.#s.counter.step;
      this.#stepNumber = n;
      const instruction = interpret(raw, (name) => this.#lookup(name), this.#s.escape, this.#s.file);
      const started = performance.now();
      const event = { step: n, total: this.#s.counter.total, instruction: raw.text };
      if (instruction.kind === 'ARG') {
        for (const { name, value } of instruction.args) this.#args.set(name, this.#s.buildArgs[name] ?? value ?? this.#s.globalArgs.get(name));
        this.#s.progress({ ...event, status: 'running' });
        this.#s.progress({ ...event, status: 'done', elapsedMs: 0 });
        continue;
      }
      if (instruction.kind === 'CMD') this.#cmdSet = true; // a cached CMD counts as set too
      const inputs = await this.#inputs(raw, instruction);
      try {
        await this.#step(raw, instruction, inputs, event, started);
      } finally {
        inputs.dispose?.();
      }
    }
    return this.#digest;
  }

  /** One step: reused from the cache, or executed and recorded there. */
  async #step(raw: RawInstruction, instruction: Instruction, inputs: StepInputs, event: Omit<BuildProgress, 'status'>, started: number): Promise<void> {
    const key = cacheKey(this.#digest, JSON.stringify(instruction), [...inputs.key, ...this.#epochKey()]);
    const hit = this.#s.noCache ? undefined : this.#s.cache.get(key);
    if (hit !== undefined && this.#s.parts.index.read().images[hit] !== undefined) {
      this.#digest = hit;
      this.#config = (await this.#imageConfig())?.config ?? {};
      this.#s.progress({ ...event, status: 'cached' });
      return;
    }
    this.#s.progress({ ...event, status: 'running' });
    const made = await this.#execute(raw, instruction, inputs);
    this.#s.cache.set(key, made);
    this.#digest = made;
    this.#s.progress({ ...event, status: 'done', elapsedMs: performance.now() - started });
  }

  /** The base image's ONBUILD triggers, to run before the stage's own steps (reported at the FROM
   * line); the stage starts from the base without them, as they are not inherited further. */
  async #onBuild(from: RawInstruction): Promise<RawInstruction[]> {
    const triggers = this.#config.OnBuild ?? [];
    if (triggers.length === 0 || this.#digest === null) return [];
    const parsed = triggers.flatMap((trigger) => parseDockerfile(trigger, this.#s.file).instructions.map((raw) => ({ ...raw, line: from.line, endLine: from.endLine })));
    for (const raw of parsed) {
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(raw.keyword)) throw instructionError(this.#s.file, from, `the base image's ONBUILD trigger '${raw.text}' is not allowed`, 'ERR_BUILD_FAILED');
    }
    const key = cacheKey(this.#digest, 'without ONBUILD triggers', this.#epochKey());
    const hit = this.#s.cache.get(key);
    if (hit !== undefined && this.#s.parts.index.read().images[hit] !== undefined) this.#digest = hit;
    else {
      const { manifestDigest } = await composeImage(this.#s.parts, this.#s.write, { base: this.#digest, changes: { OnBuild: null }, history: null, ...this.#created() });
      this.#s.created.push(manifestDigest);
      this.#s.cache.set(key, manifestDigest);
      this.#digest = manifestDigest;
    }
    this.#config = { ...this.#config, OnBuild: null };
    return parsed;
  }

  /** ENV wins over ARG; proxy args need no ARG. */
  #lookup(name: string): string | undefined {
    const env = this.#env();
    if (name in env) return env[name];
    if (this.#args.has(name)) return this.#args.get(name);
    return PROXY_ARGS.includes(name) ? this.#s.buildArgs[name] : undefined;
  }

  #env(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const kv of this.#config.Env ?? []) {
      const at = kv.indexOf('=');
      if (at > 0) env[kv.slice(0, at)] = kv.slice(at + 1);
    }
    return env;
  }

  /** Build args a RUN sees: those in scope with a value, not shadowed by the image's Env. */
  #runArgs(): Record<string, string> {
    const env = this.#env();
    const out: Record<string, string> = {};
    for (const [k, v] of this.#args) if (v !== undefined && !(k in env)) out[k] = v;
    for (const k of PROXY_ARGS) if (this.#s.buildArgs[k] !== undefined && !(k in env)) out[k] = this.#s.buildArgs[k];
    return out;
  }

  async #imageConfig(): Promise<ImageConfig | null> {
    if (this.#digest === null) return null;
    const [, record] = findImage(this.#s.parts.index.read(), this.#digest);
    return this.#s.parts.blobs.readJson<ImageConfig>(record.configDigest);
  }

  #layerDirs(digest: string | null): string[] {
    if (digest === null) return [];
    const [, record] = findImage(this.#s.parts.index.read(), digest);
    return [...record.chainIds].reverse().map((c) => this.#s.parts.layers.contents(c));
  }

  /** What besides its text a step's key holds: RUN its build args, COPY its files' digest. */
  async #inputs(raw: RawInstruction, ins: Instruction): Promise<StepInputs> {
    if (ins.kind === 'RUN') {
      const args = Object.entries(this.#runArgs()).sort().map(([k, v]) => `${k}=${v}`);
      if (ins.mounts.length === 0) return { key: args };
      const mounts = await this.#planMounts(raw, ins.mounts);
      return { key: [...args, ...mounts.key], mounts };
    }
    if (ins.kind === 'WORKDIR') return { key: [this.#workdir(ins.value)] };
    if (ins.kind !== 'COPY' && ins.kind !== 'ADD') return { key: [] };
    const fail = (m: string): CorralError => instructionError(this.#s.file, raw, m, 'ERR_BUILD_CONTEXT');
    const from = ins.from === null ? null : await this.#s.stageImage(ins.from, raw);
    const tree = ins.from === null ? this.#s.context : from === null ? null : new LayerTree(this.#layerDirs(from));
    const view = new OverlayView(this.#layerDirs(this.#digest));
    let owner = { uid: 0, gid: 0 };
    if (ins.chown !== null) {
      try {
        const u = /^\d+$/.test(ins.chown) ? { uid: Number(ins.chown), gid: Number(ins.chown) } : await resolveUser(ins.chown, view);
        if (u) owner = { uid: u.uid, gid: u.gid };
      } catch (e) {
        throw fail(`--chown=${ins.chown}: ${(e as Error).message}`);
      }
    }
    try {
      const urls = ins.kind === 'ADD' ? ins.sources.filter(isUrl) : [];
      if (ins.checksum !== null && (urls.length === 0 || urls.length < ins.sources.length)) throw new CopyError('--checksum is for URL sources only');
      const now = Math.floor(Date.now() / 1000);
      const { downloads, dispose } = await this.#download(urls, ins.checksum, now);
      const inputs: StepInputs = { key: [], ...(dispose ? { dispose } : {}) };
      try {
        const unnamed = downloads.findIndex((d) => d.name === '');
        if (unnamed >= 0 && ins.dest.endsWith('/')) throw new CopyError(`${urls[unnamed]}: the URL names no file, so the destination must (not a directory)`);
        const entries = planCopy({
          tree,
          sources: ins.sources.filter((s) => !isUrl(s)),
          inline: [...ins.heredocs.map((h) => ({ name: h.name, content: h.content })), ...downloads],
          dest: this.#absolute(ins.dest),
          owner,
          chmod: ins.chmod,
          exclude: ins.exclude.length > 0 ? new IgnoreMatcher(ins.exclude) : null,
          existing: existingIn(view),
          now,
          ...(ins.kind === 'ADD' ? { unpack: (path: string, source: string) => isTarArchive(path, source) } : {}),
        });
        return { ...inputs, key: [from ?? '', await copyDigest(entries)], copy: entries, existing: existingIn(view) };
      } catch (e) {
        inputs.dispose?.();
        throw e;
      }
    } catch (e) {
      if (e instanceof CopyError || e instanceof ArchiveError || e instanceof DownloadError) throw fail(e.message);
      throw e;
    }
  }

  /** ADD's URLs downloaded to a scratch directory (removed by `dispose`, or at once on failure,
   * once every download has settled). */
  async #download(urls: string[], checksum: string | null, now: number): Promise<{ downloads: Downloaded[]; dispose?: () => void }> {
    if (urls.length === 0) return { downloads: [] };
    const scratch = mkdtempSync(join(runtimeDir(this.#s.root, 'build'), 'add-'));
    const settled = await Promise.allSettled(urls.map((url, i) => download(url, scratch, i, checksum, now, this.#s.signal)));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      removeTree(scratch);
      throw failed.reason;
    }
    return { downloads: settled.map((r) => (r as PromiseFulfilledResult<Downloaded>).value), dispose: () => removeTree(scratch) };
  }

  #absolute(dest: string): string {
    const abs = posix.resolve(this.#config.WorkingDir || '/', dest);
    return dest.endsWith('/') && abs !== '/' ? `${abs}/` : abs;
  }

  #workdir(value: string): string {
    return posix.resolve(this.#config.WorkingDir || '/', value);
  }

  #shellForm(command: Command): string[] {
    return 'exec' in command ? command.exec : [...(this.#config.Shell ?? DEFAULT_SHELL), command.shell];
  }

  /** Runs one step and returns the image it made. */
  async #execute(raw: RawInstruction, ins: Instruction, inputs: StepInputs): Promise<string> {
    const meta = (changes: Partial<Config>): Promise<string> => this.#compose(raw, changes);
    const c = this.#config;
    switch (ins.kind) {
      case 'FROM':
      case 'ARG':
        throw instructionError(this.#s.file, raw, `${ins.kind} is not a step`);
      case 'RUN':
        return this.#run(raw, ins.command, ins.network, inputs.mounts);
      case 'COPY':
      case 'ADD':
        try {
          return await this.#layer(raw, inputs.copy!, {}, inputs.existing);
        } catch (e) {
          if (e instanceof ArchiveError) throw instructionError(this.#s.file, raw, e.message, 'ERR_BUILD_CONTEXT');
          throw e;
        }
      case 'CMD':
        return meta({ Cmd: this.#shellForm(ins.command) });
      case 'ENTRYPOINT':
        return meta({ Entrypoint: this.#shellForm(ins.command), ...(this.#cmdSet ? {} : { Cmd: null }) });
      case 'ENV': {
        const env = new Map((c.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv]));
        for (const [k, v] of ins.pairs) env.set(k, `${k}=${v}`);
        return meta({ Env: [...env.values()] });
      }
      case 'LABEL':
        return meta({ Labels: { ...c.Labels, ...Object.fromEntries(ins.pairs) } });
      case 'EXPOSE':
        return meta({ ExposedPorts: { ...c.ExposedPorts, ...Object.fromEntries(ins.ports.map((p) => [p, {}])) } });
      case 'VOLUME':
        return meta({ Volumes: { ...c.Volumes, ...Object.fromEntries(ins.paths.map((p) => [p, {}])) } });
      case 'USER':
        return meta({ User: ins.value });
      case 'STOPSIGNAL':
        return meta({ StopSignal: ins.value });
      case 'SHELL':
        return meta({ Shell: ins.shell });
      case 'HEALTHCHECK':
        return meta({ Healthcheck: ins.check ?? { Test: ['NONE'] } });
      case 'ONBUILD':
        return meta({ OnBuild: [...(c.OnBuild ?? []), ins.trigger] });
      case 'MAINTAINER':
        return this.#compose(raw, {}, ins.value);
      case 'WORKDIR':
        return this.#workdirStep(raw, this.#workdir(ins.value));
    }
  }

  /** WORKDIR: the directory is made (one small layer) when the image lacks it. */
  async #workdirStep(raw: RawInstruction, dir: string): Promise<string> {
    const view = new OverlayView(this.#layerDirs(this.#digest));
    if (view.resolve(dir)?.stat.isDirectory()) return this.#compose(raw, { WorkingDir: dir });
    const entries = planCopy({ tree: null, sources: [], inline: [], dest: `${dir}/`, owner: { uid: 0, gid: 0 }, chmod: null, exclude: null, existing: existingIn(view), now: Math.floor(Date.now() / 1000) });
    return this.#layer(raw, entries, { WorkingDir: dir });
  }

  /** What SOURCE_DATE_EPOCH adds to a step's cache key: an image made with another date differs. */
  #epochKey(): string[] {
    return this.#s.sourceDateEpoch === undefined ? [] : [`SOURCE_DATE_EPOCH=${this.#s.sourceDateEpoch}`];
  }

  /** The composition's date: SOURCE_DATE_EPOCH's, when the build has one. */
  #created(): { created?: number } {
    return this.#s.sourceDateEpoch === undefined ? {} : { created: this.#s.sourceDateEpoch };
  }

  async #compose(raw: RawInstruction, changes: Partial<Config>, author?: string): Promise<string> {
    const { manifestDigest } = await composeImage(this.#s.parts, this.#s.write, { base: this.#digest, changes, history: { created_by: raw.text, ...(author === undefined ? {} : { comment: `author: ${author}` }) }, ...this.#created() });
    this.#config = { ...this.#config, ...changes };
    this.#s.created.push(manifestDigest);
    return manifestDigest;
  }

  /** A layer of planned entries (and config changes) on the current image. */
  async #layer(raw: RawInstruction, entries: CopyEntry[], changes: Partial<Config> = {}, existing?: CopyPlan['existing']): Promise<string> {
    const { blob, diff } = await storeLayer(this.#s.parts, this.#s.write, (tar) => writeCopyLayer(entries, tar, existing, this.#s.sourceDateEpoch));
    const { manifestDigest } = await composeImage(this.#s.parts, this.#s.write, { base: this.#digest, layer: { blob, diffId: diff.diffId }, changes, history: { created_by: raw.text }, ...this.#created() });
    this.#config = { ...this.#config, ...changes };
    this.#s.created.push(manifestDigest);
    return manifestDigest;
  }

  /** A RUN's mounts with their targets against the WORKDIR, their sources planned and keyed. */
  async #planMounts(raw: RawInstruction, mounts: RunMount[]): Promise<PlannedMounts> {
    try {
      return await planMounts(mounts.map((m) => atWorkdir(m, this.#config.WorkingDir || '/')), this.#mountInputs(raw));
    } catch (e) {
      if (e instanceof CopyError) throw instructionError(this.#s.file, raw, `--mount: ${e.message}`, 'ERR_BUILD_CONTEXT');
      if (e instanceof MountFlagError) throw instructionError(this.#s.file, raw, `--mount: ${e.message}`);
      throw e;
    }
  }

  #mountInputs(raw: RawInstruction): MountInputs {
    const layers = this.#layerDirs(this.#digest);
    const view = new OverlayView(layers);
    return {
      root: this.#s.root,
      rootless: this.#s.rootless,
      tree: async (from) => {
        if (from === null) return { tree: this.#s.context, digest: '' };
        const digest = await this.#s.stageImage(from, raw);
        return { tree: digest === null ? null : new LayerTree(this.#layerDirs(digest)), digest: digest ?? '' };
      },
      secret: this.#s.secret,
      resolve: (path) => {
        const found = view.resolve(path);
        return found === null ? null : `/${posix.relative(layers[found.layer]!, found.path)}`;
      },
    };
  }

  async #run(raw: RawInstruction, command: Command, network: 'none' | 'host' | 'default', planned: PlannedMounts | undefined): Promise<string> {
    if (this.#digest === null) throw instructionError(this.#s.file, raw, 'RUN needs an image to run in (this stage is FROM scratch with no files)', 'ERR_BUILD_FAILED');
    await using mounts = planned === undefined ? null : await mountStep(planned, this.#mountInputs(raw));
    const result = await runStep(this.#s.create, {
      image: this.#digest,
      command: this.#shellForm(command),
      env: this.#runArgs(),
      network: network === 'host' ? 'host' : 'none',
      mounts: mounts?.specs ?? [],
      mountStubs: mounts?.stubs ?? [],
      createdBy: raw.text,
      ...(this.#s.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: this.#s.sourceDateEpoch }),
      onOutput: (output) => this.#s.progress({ step: this.#stepNumber, total: this.#s.counter.total, instruction: raw.text, status: 'output', output }),
      ...(this.#s.signal ? { signal: this.#s.signal } : {}),
    });
    if ('manifestDigest' in result) {
      this.#s.created.push(result.manifestDigest);
      await this.#track(result.manifestDigest);
      return result.manifestDigest;
    }
    const how = result.exitCode === null ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
    throw instructionError(this.#s.file, raw, `the command ${how}${result.tail ? `; its output ended with:\n${result.tail}` : ''}`, 'ERR_BUILD_FAILED');
  }

  /** A committed RUN image's blobs and layer go into this build's write, so a failure takes them out. */
  async #track(digest: string): Promise<void> {
    const record = this.#s.parts.index.read().images[digest]!;
    const manifest = await this.#s.parts.blobs.readJson<ImageManifest>(digest);
    this.#s.write.blobs.push(digest, record.configDigest, manifest.layers.at(-1)!.digest);
    this.#s.write.chains.push(record.chainIds.at(-1)!);
  }
}

/** What an image view has at a path, for COPY's destination checks. */
function existingIn(view: OverlayView): (path: string) => 'directory' | 'other' | null {
  return (path) => {
    const found = view.resolve(path);
    return found === null ? null : found.stat.isDirectory() ? 'directory' : 'other';
  };
}
