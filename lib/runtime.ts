import { isAbsolute } from 'node:path';
import { CorralError } from './sys/errors.ts';
import { CgroupManager } from './cgroup/manager.ts';
import { defaultRoot } from './fs/runtime-root.ts';
import { VolumeStore } from './fs/volumes.ts';
import { ContainerEngine } from './container/engine.ts';
import { NetworkStore } from './net/network-store.ts';
import { NetnsPool } from './net/netns-pool.ts';
import type { Container } from './container/container.ts';
import type { ContainerSpec } from './container/spec.ts';
import type { EncodedRunOptions, RunOptions, RunResult } from './container/run-result.ts';
import { ImageStore } from './image/image-store.ts';
import { containerImages } from './image/container-images.ts';
import { buildImage, type BuildOptions } from './build/builder.ts';
import { registryImages, type RegistryImages } from './registry/registry-images.ts';

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
    if (config.root !== undefined && (typeof config.root !== 'string' || !isAbsolute(config.root))) {
      throw new CorralError(`root must be an absolute path, got ${String(config.root)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const rootless = process.getuid!() !== 0;
    const cgroups = new CgroupManager(config.cgroupParent, !rootless);
    this.root = config.root ?? defaultRoot();
    const volumes = new VolumeStore(this.root);
    const images = new ImageStore(this.root, { rootless });
    const networks = new NetworkStore(this.root);
    this.volumes = volumes;
    this.networks = networks;
    const registry = registryImages(images);
    const engine = new ContainerEngine({ stopTimeout, root: this.root, rootless, cgroups, volumes, networks, netnsPool: rootless ? null : new NetnsPool(), images: containerImages(images) });
    this.#engine = engine;
    // A build is an image operation that runs containers: the one part that needs both.
    this.images = Object.assign(images, registry, {
      build: (options: BuildOptions) => buildImage({ root: this.root, images, create: (spec) => engine.create(spec), pull: (ref) => registry.pull(ref) }, options),
    });
  }

  /** Creates a container whose first process is set up and waits before exec until start(). */
  create(spec: ContainerSpec): Promise<Container> {
    return this.#engine.create(spec);
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  run(spec: ContainerSpec, options: EncodedRunOptions): Promise<RunResult<string>>;
  run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult>;
  run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult<Buffer | string>> {
    return this.#engine.run(spec, options);
  }

  /** The containers this runtime has and has not removed. */
  list(): Container[] {
    return this.#engine.list();
  }

  /** A container by id, or undefined. */
  get(id: string): Container | undefined {
    return this.#engine.get(id);
  }
}
