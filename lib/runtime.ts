import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorralError } from './sys/errors.ts';
import { callerIdMap, checkIdMap, singleIdMap, type IdMap } from './sys/id-map.ts';
import { CgroupManager } from './cgroup/manager.ts';
import { chosenRoot } from './fs/runtime-root.ts';
import { VolumeStore } from './fs/volumes.ts';
import { ContainerEngine } from './container/engine.ts';
import { NetworkStore } from './net/network-store.ts';
import { processNetnsPool } from './net/netns-pool.ts';
import { probeOverlayMount } from './fs/overlay-probe.ts';
import type { Container } from './container/container.ts';
import type { ContainerSpec } from './container/spec.ts';
import type { CreateSpec } from './container/detached-spec.ts';
import type { EncodedRunOptions, RunOptions, RunResult } from './container/run-result.ts';
import { ImageStore } from './image/image-store.ts';
import { containerImages } from './image/container-images.ts';
import { passwdHome } from './image/run-config.ts';
import { buildImage, type BuildOptions } from './build/builder.ts';
import { pruneCacheMounts } from './build/mount-sources.ts';
import { registryImages, type RegistryImages } from './registry/registry-images.ts';
import type { RegistriesConfig } from './registry/registry-config.ts';

/** The corral command (lib/cli/main.ts, or its bundle dist/corral/main.js when built): what a
 * detached container's supervisor runs to remove it (autoRemove). */
const cliMain = fileURLToPath(new URL(extname(fileURLToPath(import.meta.url)) === '.ts' ? './cli/main.ts' : './corral/main.js', import.meta.url));

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
  /** Rootless with subordinate ranges: 'shared' (the default) creates every container's namespaces
   * in one user namespace per process, mapped once, so no newuidmap runs at a start (podman's
   * pause process; root in one container then holds capabilities over the namespaces of the
   * others, which its own pid and mount namespaces keep out of its reach:
   * test/security/shared-userns-isolation.test.ts); 'per-container' maps a fresh one at each
   * start. Detached containers always get their own (their supervisor maps it). */
  userNamespace?: 'shared' | 'per-container';
}

/** The network operations a runtime offers. */
export type Networks = Pick<NetworkStore, 'create' | 'list' | 'inspect' | 'remove' | 'prune'>;

/** The image operations a runtime offers (the store's internals stay inside). */
export type Images = Pick<ImageStore, 'import' | 'export' | 'list' | 'inspect' | 'tag' | 'remove' | 'gc' | 'prune' | 'diskUsage'> & RegistryImages & {
  /** Builds an image from a Dockerfile (its RUN steps in containers of this runtime, a FROM image
   * not in the store pulled); resolves with its manifest digest. A failed build leaves the store as
   * it was (but for pulled base images). */
  build(options: BuildOptions): Promise<{ manifestDigest: string }>;
};

/** The named-volume operations a runtime offers. */
export type Volumes = Pick<VolumeStore, 'create' | 'list' | 'inspect' | 'remove' | 'prune'>;

/** corral's runtime: the composition root that assembles the parts (cgroup manager, volumes, image
 * store, container engine) by constructor; a new capability is a new part here, not a subclass. */
export class Runtime {
  /** The runtime's root directory (images, volumes, container layers). */
  readonly root: string;
  /** Named volumes: create, list, inspect, remove, prune. */
  readonly volumes: Volumes;
  /** Images: import, export, list, inspect, tag, remove, gc, prune, diskUsage; pull, push, login, logout; build. */
  readonly images: Images;
  /** Bridge networks: create, list, inspect, remove, prune. */
  readonly networks: Networks;
  readonly #engine: ContainerEngine;

  constructor(config: RuntimeConfig = {}) {
    const stopTimeout = config.stopTimeout ?? 10_000;
    if (!Number.isFinite(stopTimeout) || stopTimeout < 0) {
      throw new CorralError(`stopTimeout must be a non-negative number, got ${stopTimeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const root = chosenRoot(config.root);
    const rootless = process.getuid!() !== 0;
    const idMap = rootless ? runtimeIdMap(config.idMap) : singleIdMap();
    if (config.userNamespace !== undefined && config.userNamespace !== 'shared' && config.userNamespace !== 'per-container') {
      throw new CorralError(`userNamespace must be 'shared' or 'per-container', got ${String(config.userNamespace)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const cgroups = new CgroupManager(config.cgroupParent, !rootless);
    this.root = root;
    const volumes = new VolumeStore(this.root, rootless ? idMap : null);
    const images = new ImageStore(this.root, { rootless, idMap: rootless ? idMap : null });
    const netnsPool = rootless ? null : processNetnsPool();
    const networks = new NetworkStore(this.root, netnsPool);
    this.volumes = volumes;
    this.networks = networks;
    const registry = registryImages(images, config.registries);
    const engine = new ContainerEngine({
      stopTimeout, root, rootless, idMap, sharedUserNamespace: config.userNamespace !== 'per-container', cgroups, volumes, networks, netnsPool, images: containerImages(images, (ref) => registry.pull(ref)), homeOf: passwdHome,
      removeCommand: (id) => [process.execPath, ...process.execArgv, cliMain, 'rm', '-f', '--root', root, id],
      overlayMount: probeOverlayMount,
    });
    // Off the first container's start path: the answer is in by the time it is asked for.
    void probeOverlayMount();
    this.#engine = engine;
    // A build is an image operation that runs containers: the one part that needs both.
    const prune = images.prune.bind(images);
    this.images = Object.assign(images, registry, {
      /** With buildCache, the RUN --mount=type=cache directories go too (those no build uses). */
      prune: async (options: { buildCache?: boolean } = {}) => {
        const result = await prune(options);
        if (options.buildCache) pruneCacheMounts(root);
        return result;
      },
      build: (options: BuildOptions) => buildImage({ root, rootless, images, create: (spec) => engine.create(spec), pull: (ref) => registry.pull(ref) }, options),
    });
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
