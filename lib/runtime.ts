import { createRequire } from 'node:module';
import { extname, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorralError } from './sys/errors.ts';
import { callerIdMap, checkIdMap, singleIdMap, type IdMap } from './sys/id-map.ts';
import { CgroupManager } from './cgroup/manager.ts';
import { defaultRoot } from './fs/runtime-root.ts';
import { VolumeStore } from './fs/volumes.ts';
import { ContainerEngine } from './container/engine.ts';
import { NetworkStore } from './net/network-store.ts';
import { processNetnsPool } from './net/netns-pool.ts';
import type { Container } from './container/container.ts';
import type { ContainerSpec } from './container/spec.ts';
import type { CreateSpec } from './container/detached-spec.ts';
import type { EncodedRunOptions, RunOptions, RunResult } from './container/run-result.ts';
import { passwdHome } from './image/run-config.ts';
import type { Images, RuntimeImages } from './build/runtime-images.ts';
import type { RegistriesConfig } from './registry/registry-config.ts';

export type { Images } from './build/runtime-images.ts';

/** The extension of this build's modules: .ts from the sources, .js from dist/. */
const ext = extname(fileURLToPath(import.meta.url));

type ImageSide = typeof import('./build/runtime-images.ts');
const imageSidePath = `./build/runtime-images${ext}`;
/** The image side from the sources (under tsx, whose require() would compile a second copy of
 * every module it reaches): imported up front. */
const preloadedImageSide = ext === '.ts' ? await import(imageSidePath) as ImageSide : null;
/** Loads the image side (lib/build/runtime-images.ts) when first used: synchronously, since
 * runtime.images.list() is, with require() of an ES module (Node 20.19 and later). */
const loadRuntimeImages = (): ImageSide => preloadedImageSide ?? createRequire(import.meta.url)(imageSidePath) as ImageSide;

/** The corral command (lib/cli/main.ts, or dist/cli/main.js when built): what a detached
 * container's supervisor runs to remove it (autoRemove). */
const cliMain = fileURLToPath(new URL(`./cli/main${ext}`, import.meta.url));

/** Settings of a Runtime. */
export interface RuntimeConfig {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL (10000). */
  stopTimeout?: number;
  /** The cgroup v2 directory under which container groups are made (inside a 'proc-PID-START'
   * group per host process, so groups of a process that died can be swept); default 'corral' under
   * the v2 root as root, under this process's own group otherwise. false: no cgroups (no limits). */
  cgroupParent?: string | false;
  /** Where images, volumes and container layers live: default /var/lib/corral as root,
   * $XDG_DATA_HOME/corral otherwise. */
  root?: string;
  /** Per-registry settings by registry name: mirrors (pulls try them in order, then the registry),
   * insecure (unverified TLS, then plain HTTP), ca (a PEM CA bundle path). */
  registries?: RegistriesConfig;
  /** The map of rootless containers' user namespaces: 'auto' (the default) maps 0 to you and
   * 1..N to your subordinate range in /etc/subuid and /etc/subgid when you have one and
   * newuidmap/newgidmap exist, else only you to 0 ('single'); or explicit ranges, which must be
   * yours in /etc/subuid and /etc/subgid. As root, user namespaces keep the single mapping. */
  idMap?: 'auto' | 'single' | IdMap;
}

/** The network operations a runtime offers. */
export type Networks = Pick<NetworkStore, 'create' | 'list' | 'inspect' | 'remove' | 'prune'>;

/** The named-volume operations a runtime offers. */
export type Volumes = Pick<VolumeStore, 'create' | 'list' | 'inspect' | 'remove' | 'prune'>;

/** corral's runtime: the composition root that assembles the parts (cgroup manager, volumes, image
 * store, container engine) by constructor, the image side on first use; a new capability is a new
 * part here, not a subclass. */
export class Runtime {
  /** The runtime's root directory (images, volumes, container layers). */
  readonly root: string;
  /** Named volumes: create, list, inspect, remove, prune. */
  readonly volumes: Volumes;
  /** Bridge networks: create, list, inspect, remove, prune. */
  readonly networks: Networks;
  readonly #engine: ContainerEngine;
  /** The image side, made on first use (a command that never touches images never loads it). */
  readonly #images: () => RuntimeImages;

  constructor(config: RuntimeConfig = {}) {
    const stopTimeout = config.stopTimeout ?? 10_000;
    if (!Number.isFinite(stopTimeout) || stopTimeout < 0) {
      throw new CorralError(`stopTimeout must be a non-negative number, got ${stopTimeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    if (config.root !== undefined && (typeof config.root !== 'string' || !isAbsolute(config.root))) {
      throw new CorralError(`root must be an absolute path, got ${String(config.root)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const rootless = process.getuid!() !== 0;
    const idMap = rootless ? runtimeIdMap(config.idMap) : singleIdMap();
    const cgroups = new CgroupManager(config.cgroupParent, !rootless);
    this.root = config.root ?? defaultRoot();
    const volumes = new VolumeStore(this.root, rootless ? idMap : null);
    const networks = new NetworkStore(this.root);
    this.volumes = volumes;
    this.networks = networks;
    const root = this.root;
    let side: RuntimeImages | undefined;
    this.#images = () => side ??= loadRuntimeImages().runtimeImages({ root, rootless, idMap, registries: config.registries, create: (spec) => engine.create(spec) });
    const provider = () => this.#images().provider;
    const engine = new ContainerEngine({
      stopTimeout, root, rootless, idMap, cgroups, volumes, networks, netnsPool: rootless ? null : processNetnsPool(),
      images: {
        resolve: (ref, pull) => provider().resolve(ref, pull),
        resolveUser: (user, dirs) => provider().resolveUser(user, dirs),
        markUsed: (digest, id, owner) => provider().markUsed(digest, id, owner),
        release: (digest, id, owner) => provider().release(digest, id, owner),
        commit: (request) => provider().commit(request),
      },
      homeOf: passwdHome,
      removeCommand: (id) => [process.execPath, ...process.execArgv, cliMain, 'rm', '-f', '--root', root, id],
    });
    this.#engine = engine;
  }

  /** Images: import, export, list, inspect, tag, remove, gc, prune, diskUsage; pull, push, login,
   * logout; build. The image store is opened on first use. */
  get images(): Images {
    return this.#images().images;
  }

  /** Creates a container whose first process is set up and waits before exec until start();
   * with detached: true it runs under a supervisor of its own and outlives this process. */
  create(spec: CreateSpec): Promise<Container> {
    return this.#engine.create(spec);
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. With
   * detached: true it is started under its supervisor and its handle returned once it runs. */
  run(spec: CreateSpec & { detached: true }): Promise<Container>;
  run(spec: ContainerSpec, options: EncodedRunOptions): Promise<RunResult<string>>;
  run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult>;
  run(spec: CreateSpec, options?: RunOptions): Promise<RunResult<Buffer | string> | Container> {
    if (spec?.detached === true) return this.#engine.runDetached(spec);
    return this.#engine.run(spec, options);
  }

  /** The running and paused containers, all: of every status: this runtime's own and the detached
   * ones of its root from any process. An unreadable state file goes to onError (default: a
   * process warning) and does not stop the listing. */
  list(options?: { all?: boolean; onError?: (error: CorralError) => void }): Container[] {
    return this.#engine.list(options);
  }

  /** Gives a detached container a new name, unique in the root; the lock of its state keeps
   * concurrent changes from several processes apart. */
  rename(idOrName: string, name: string): void {
    this.#engine.rename(idOrName, name);
  }

  /** A container by id, name or unique id prefix (detached ones made by any process too), or
   * undefined; throws ERR_CONTAINER_AMBIGUOUS, or ERR_STATE_CORRUPT naming the file. */
  get(idOrName: string): Container | undefined {
    return this.#engine.get(idOrName);
  }

  /** get(), but a container that is not there is ERR_CONTAINER_NOT_FOUND (as docker's commands). */
  find(idOrName: string): Container {
    return this.#engine.find(idOrName);
  }
}

/** The rootless user namespace map a RuntimeConfig asks for. */
function runtimeIdMap(requested: RuntimeConfig['idMap']): IdMap {
  if (requested === undefined || requested === 'auto') return callerIdMap();
  if (requested === 'single') return singleIdMap();
  const map = checkIdMap(requested);
  if (!map) throw new CorralError("idMap must be 'auto', 'single' or { uids, gids }: non-empty lists of { inside, outside, count } that map 0", { code: 'ERR_INVALID_ARG_VALUE' });
  return map;
}
