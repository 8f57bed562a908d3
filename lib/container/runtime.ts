import { accessSync, constants, mkdirSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { launchNow, launchPending, type LaunchSpec } from '../spawn/launch.ts';
import { Cgroup, enableControllers } from '../cgroup/cgroup.ts';
import { defaultParent, findV2Mount } from '../cgroup/hierarchy.ts';
import { processGroup } from '../cgroup/process-group.ts';
import { deviceFiltersSupported } from '../cgroup/device-program.ts';
import { Container, type ContainerOwner } from './container.ts';
import { abortError, checkRunOptions, collectRun, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, containerSetupOps, envList, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';
import { createLayer, removeLayer, type ContainerLayer } from '../fs/container-layers.ts';
import { defaultRoot } from '../fs/runtime-root.ts';
import { VolumeStore } from '../fs/volumes.ts';
import type { PlannedMount } from '../fs/rootfs.ts';
import type { ImageProvider, ResolvedImage } from './image-provider.ts';

/** Settings of a Runtime. */
export interface RuntimeConfig {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL (10000). */
  stopTimeout?: number;
  /** The cgroup v2 directory under which container groups are made (inside a 'proc-PID-START'
   * group per host process, so groups of a process that died can be swept); default 'corral' under
   * the v2 root as root, under this process's own group otherwise. false: no cgroups (no limits). */
  cgroupParent?: string | false;
  /** Where volumes and container layers live: default /var/lib/corral as root,
   * $XDG_DATA_HOME/corral otherwise. */
  root?: string;
}

/** What a container holds on the host besides its processes, released when it is removed. */
interface HostState {
  cgroup: Cgroup | null;
  layer: ContainerLayer | null;
  image: ResolvedImage | null;
  mounts: PlannedMount[];
  release(): Promise<void>;
}

/** Controllers enabled for every container group when available, so stats() has numbers. */
const ACCOUNTING_CONTROLLERS = ['cpu', 'memory', 'pids', 'io'];

/** Where this runtime makes container groups, or why it cannot. */
type CgroupPlace = { mount: string; parent: string } | { unavailable: string };

/** Owns a set of containers: creates, runs and tracks them. The module-level run/create use a
 * default one. */
export class Runtime {
  readonly #containers = new Map<string, Container | null>();
  readonly #owner: ContainerOwner;
  readonly #rootless = process.getuid!() !== 0;
  readonly #cgroupParent: string | false | undefined;
  #cgroupPlace: CgroupPlace | undefined;
  readonly #enabledControllers = new Set<string>();
  /** The runtime's root directory (volumes, container layers). */
  readonly root: string;
  /** Named volumes: create, list, inspect, remove, prune. */
  readonly volumes: VolumeStore;

  constructor(config: RuntimeConfig = {}) {
    const stopTimeout = config.stopTimeout ?? 10_000;
    if (!Number.isFinite(stopTimeout) || stopTimeout < 0) {
      throw new CorralError(`stopTimeout must be a non-negative number, got ${stopTimeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    if (config.cgroupParent !== undefined && config.cgroupParent !== false && (typeof config.cgroupParent !== 'string' || !isAbsolute(config.cgroupParent))) {
      throw new CorralError(`cgroupParent must be an absolute path or false, got ${String(config.cgroupParent)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    this.#cgroupParent = config.cgroupParent;
    if (config.root !== undefined && (typeof config.root !== 'string' || !isAbsolute(config.root))) {
      throw new CorralError(`root must be an absolute path, got ${String(config.root)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    this.root = config.root ?? defaultRoot();
    this.volumes = new VolumeStore(this.root);
    this.#owner = {
      stopTimeout,
      forget: (id) => this.#containers.delete(id),
      commit: (request) => {
        const provider = this.imageProvider();
        if (!provider) throw new CorralError('this runtime has no image store to commit to', { code: 'ERR_COMMIT_UNSUPPORTED' });
        return provider.commit(request);
      },
      enableControllers: (controllers) => this.#enableControllers(controllers),
    };
  }

  /** Images for containers that name one; lib/image's Runtime provides its store here. */
  protected imageProvider(): ImageProvider | null {
    return null;
  }

  /** Creates a container whose first process is set up and waits before exec until start(). */
  async create(spec: ContainerSpec): Promise<Container> {
    const [resolved, image] = this.#resolve(spec);
    this.#containers.set(resolved.id, null);
    let host: HostState | undefined;
    let stdio: StdioSet | undefined;
    try {
      host = this.#prepareHost(resolved, image);
      stdio = openStdio(resolved.stdio);
      const pending = await launchPending(this.#launchSpec(resolved, stdio, host));
      stdio.releaseChildEnds();
      const container = new Container(resolved, this.#owner, pending, stdio, false, host);
      this.#containers.set(resolved.id, container);
      return container;
    } catch (e) {
      this.#containers.delete(resolved.id);
      stdio?.destroy();
      await host?.release();
      throw e;
    }
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult> {
    const [resolved, image] = this.#resolve(spec);
    checkRunOptions(options, resolved.stdio === 'pipe');
    if (options.signal?.aborted) throw abortError(options.signal);
    this.#containers.set(resolved.id, null);
    let host: HostState | undefined;
    let stdio: StdioSet | undefined;
    const startedAt = performance.now();
    let container: Container;
    try {
      host = this.#prepareHost(resolved, image);
      stdio = openStdio(resolved.stdio);
      const proc = await launchNow(this.#launchSpec(resolved, stdio, host));
      stdio.releaseChildEnds();
      container = new Container(resolved, this.#owner, proc, stdio, true, host);
    } catch (e) {
      this.#containers.delete(resolved.id);
      stdio?.destroy();
      await host?.release();
      throw e;
    }
    this.#containers.set(resolved.id, container);
    try {
      return await collectRun({
        stdin: container.stdin,
        stdout: container.stdout,
        stderr: container.stderr,
        wait: () => container.wait(),
        kill: (signal) => {
          if (container.status === 'running' || container.status === 'paused') container.kill(signal);
        },
        oomKilled: () => container.oomKilled,
      }, options, startedAt);
    } finally {
      await container.remove({ force: true });
    }
  }

  /** The containers this runtime has and has not removed. */
  list(): Container[] {
    return [...this.#containers.values()].filter((c): c is Container => c !== null);
  }

  /** A container by id, or undefined. */
  get(id: string): Container | undefined {
    return this.#containers.get(id) ?? undefined;
  }

  #resolve(spec: ContainerSpec): [ResolvedSpec, ResolvedImage | null] {
    let image: ResolvedImage | null = null;
    if (spec?.image !== undefined) {
      const provider = this.imageProvider();
      if (!provider) throw new CorralError('this runtime has no image store', { code: 'ERR_INVALID_SPEC' });
      image = provider.resolve(spec.image);
    }
    const resolved = resolveSpec(spec, this.#rootless, image?.defaults ?? null, this.#deviceFilter());
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    return [resolved, image];
  }

  /** Finds (once) where container groups go: the v2 mount and a parent we can write. */
  #place(): CgroupPlace {
    if (this.#cgroupPlace) return this.#cgroupPlace;
    const mount = this.#cgroupParent === false ? null : findV2Mount();
    if (this.#cgroupParent === false) {
      this.#cgroupPlace = { unavailable: 'the runtime was made with cgroupParent: false' };
    } else if (!mount) {
      this.#cgroupPlace = { unavailable: 'no cgroup v2 hierarchy is mounted' };
    } else {
      const parent = this.#cgroupParent ?? defaultParent(mount, !this.#rootless);
      const rel = relative(mount, parent);
      if (rel.startsWith('..') || isAbsolute(rel)) {
        throw new CorralError(`cgroupParent ${parent} is not inside the cgroup v2 hierarchy at ${mount}`, { code: 'ERR_INVALID_ARG_VALUE', path: parent });
      }
      try {
        mkdirSync(parent, { recursive: true });
        accessSync(parent, constants.W_OK);
        this.#cgroupPlace = { mount, parent: processGroup(parent) };
        this.#enableAccounting();
      } catch (e) {
        this.#cgroupPlace = { unavailable: `cannot make groups in ${parent}: ${(e as NodeJS.ErrnoException).code}` };
      }
    }
    return this.#cgroupPlace;
  }

  /** True when container groups get the device filter: as root, with groups and cgroup BPF. */
  #deviceFilter(): boolean {
    return !this.#rootless && !('unavailable' in this.#place()) && deviceFiltersSupported();
  }

  /** Turns on, where they can be had, the controllers stats() reads, so usage is accounted for
   * containers without limits too (as docker does); a missing one only leaves its stats null. */
  #enableAccounting(): void {
    const place = this.#cgroupPlace;
    if (!place || 'unavailable' in place) return;
    for (const controller of ACCOUNTING_CONTROLLERS) {
      try {
        enableControllers(place.mount, place.parent, new Set([controller]));
        this.#enabledControllers.add(controller);
      } catch {
        // not offered here (e.g. bound to cgroup v1): its stats stay null
      }
    }
  }

  #enableControllers(controllers: Set<string>): void {
    const missing = new Set([...controllers].filter((c) => !this.#enabledControllers.has(c)));
    if (missing.size === 0) return;
    const place = this.#place();
    if ('unavailable' in place) {
      throw new CorralError(`cgroup limits are unavailable: ${place.unavailable}`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    enableControllers(place.mount, place.parent, missing);
    for (const c of missing) this.#enabledControllers.add(c);
  }

  /** The container's group, born with its limits; null when this runtime has no cgroups and the
   * spec asks for no limits. */
  #makeCgroup(spec: ResolvedSpec): Cgroup | null {
    const place = this.#place();
    if ('unavailable' in place) {
      if (spec.limits.files.length === 0) return null;
      throw new CorralError(`cgroup limits are unavailable: ${place.unavailable}`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    this.#enableControllers(spec.limits.controllers);
    return Cgroup.create(place.parent, spec.id, spec.limits, this.#deviceFilter() ? spec.devices : null);
  }

  /** Makes what the container needs on the host: its cgroup, its writable layer, its volumes;
   * on failure what was made so far is undone. */
  #prepareHost(spec: ResolvedSpec, image: ResolvedImage | null): HostState {
    let cgroup: Cgroup | null = null;
    let layer: ContainerLayer | null = null;
    let imageMarked = false;
    const volumes: string[] = [];
    const release = async (): Promise<void> => {
      if (imageMarked) this.imageProvider()!.release(image!.manifestDigest, spec.id);
      for (const name of volumes) this.volumes.release(name, spec.id);
      if (layer) removeLayer(layer);
      await cgroup?.remove();
    };
    try {
      cgroup = this.#makeCgroup(spec);
      if (image) {
        this.imageProvider()!.markUsed(image.manifestDigest, spec.id);
        imageMarked = true;
      }
      if ((image || spec.rootfs !== null) && spec.rootfsWritable === 'overlay' && spec.namespaces.mount) layer = createLayer(this.root, spec.id);
      const mounts = spec.mounts.map((m): PlannedMount => {
        if (m.type !== 'volume') return m;
        const source = this.volumes.acquire(m.name, spec.id);
        volumes.push(m.name);
        return { type: 'bind', source, target: m.target, readonly: m.readonly, recursive: false, propagation: 'rprivate', sourceIsDir: true };
      });
      return { cgroup, layer, image, mounts, release };
    } catch (e) {
      void release();
      throw e;
    }
  }

  #launchSpec(spec: ResolvedSpec, stdio: StdioSet, host: HostState): LaunchSpec {
    const cgroup = host.cgroup;
    return {
      cloneFlags: cloneFlags(spec, cgroup !== null),
      setup: containerSetupOps(spec, { ownCgroup: cgroup !== null, layer: host.layer, image: host.image, mounts: host.mounts }),
      beforeExec: lastStepOps(spec.hardening),
      command: spec.command,
      env: envList(spec.env),
      searchPath: searchPath(spec.env),
      stdio: stdio.childFds,
      ...(cgroup ? { cgroupFd: cgroup.fd } : {}),
    };
  }
}
