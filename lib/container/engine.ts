import { CorralError } from '../sys/errors.ts';
import { launchNow, launchPending, withoutDumpable, type LaunchSpec } from '../spawn/launch.ts';
import type { CgroupManager } from '../cgroup/manager.ts';
import type { VolumeStore } from '../fs/volumes.ts';
import { Container, type ContainerOwner } from './container.ts';
import { abortError, checkRunOptions, collectRun, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, containerSetupOps, envList, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';
import { ChildInit } from './init-process.ts';
import { cgroupResource, HeldResources, imageLeaseResource, volumeResource, writableLayerResource, type HostResource } from './host-resources.ts';
import type { ImageProvider, ResolvedImage } from './image-provider.ts';
import type { NetworkStore } from '../net/network-store.ts';
import { CLONE } from '../sys/constants.ts';
import { joinNetworkOp, networkResource, preparedNetnsResource } from './network-resource.ts';
import type { NetnsPool } from '../net/netns-pool.ts';
import { startPasta } from '../net/pasta.ts';
import { join } from 'node:path';

/** The parts a container engine is made of (assembled by the Runtime in lib/runtime.ts). */
export interface EngineParts {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL. */
  stopTimeout: number;
  /** The runtime's root directory (container layers live below it). */
  root: string;
  rootless: boolean;
  cgroups: CgroupManager;
  volumes: VolumeStore;
  networks: NetworkStore;
  /** Fresh network namespaces made ahead of demand (root), or null. */
  netnsPool: NetnsPool | null;
  /** Images for specs that name one, and commit; null: specs cannot name images. */
  images: ImageProvider | null;
}

/** Creates, runs and tracks the containers of one runtime: resolves specs, acquires their host
 * resources (lib/container/host-resources.ts), launches their first process. */
export class ContainerEngine {
  readonly #containers = new Map<string, Container | null>();
  readonly #parts: EngineParts;
  readonly #resources: readonly HostResource[];
  readonly #owner: ContainerOwner;

  constructor(parts: EngineParts) {
    this.#parts = parts;
    this.#resources = [
      cgroupResource(parts.cgroups),
      imageLeaseResource(parts.images),
      writableLayerResource(parts.root),
      volumeResource(parts.volumes),
      networkResource(parts.networks),
      preparedNetnsResource(parts.netnsPool),
    ];
    const images = parts.images;
    this.#owner = {
      stopTimeout: parts.stopTimeout,
      cgroups: parts.cgroups,
      forget: (id) => this.#containers.delete(id),
      commit: images && ((request) => images.commit(request)),
    };
  }

  /** Creates a container whose first process is set up and waits before exec until start(). */
  async create(spec: ContainerSpec): Promise<Container> {
    return this.#launch(spec, false);
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult<Buffer | string>> {
    const startedAt = performance.now();
    const container = await this.#launch(spec, true, options);
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

  /** The containers this engine has and has not removed. */
  list(): Container[] {
    return [...this.#containers.values()].filter((c): c is Container => c !== null);
  }

  /** A container by id, or undefined. */
  get(id: string): Container | undefined {
    return this.#containers.get(id) ?? undefined;
  }

  /** Resolves the spec, acquires the host resources and launches the first process: now (run) or
   * held before exec (create); on a failure everything acquired is released. */
  async #launch(spec: ContainerSpec, now: boolean, options?: RunOptions): Promise<Container> {
    const image = spec?.image === undefined ? null : await this.#image(spec.image);
    const resolved = resolveSpec(spec, this.#parts.rootless, image?.defaults ?? null, this.#parts.cgroups.deviceFilter);
    if (options) {
      checkRunOptions(options, resolved.stdio === 'pipe');
      if (options.signal?.aborted) throw abortError(options.signal);
    }
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    this.#containers.set(resolved.id, null);
    let host: HeldResources | undefined;
    let stdio: StdioSet | undefined;
    let init: ChildInit | undefined;
    try {
      host = await HeldResources.acquire(this.#resources, resolved, image);
      stdio = openStdio(resolved.stdio);
      const launch = this.#launchSpec(resolved, stdio, host);
      // pasta needs the container's pid before exec: such a run() takes the create() path.
      const pasta = resolved.network === 'pasta';
      const proc = now && !pasta ? await launchNow(launch) : await launchPending(launch);
      stdio.releaseChildEnds();
      init = new ChildInit(proc, !now || pasta);
      if (pasta) await this.#startPasta(resolved, proc.pid, host, now ? init : null);
      const container = new Container(resolved, this.#owner, init, stdio, now, host);
      this.#containers.set(resolved.id, container);
      return container;
    } catch (e) {
      this.#containers.delete(resolved.id);
      await init?.abandon();
      stdio?.destroy();
      await host?.release().catch(() => {});
      throw e;
    }
  }

  /** Starts pasta for a container held before exec, then lets it exec when it is a run(). */
  async #startPasta(spec: ResolvedSpec, pid: number, host: HeldResources, runNow: ChildInit | null): Promise<void> {
    const pasta = await startPasta(pid, spec.ports, join(this.#parts.root, 'networks'), spec.id);
    host.adopt(() => pasta.stop());
    host.state.ports = pasta.ports;
    await runNow?.start();
  }

  async #image(ref: string): Promise<ResolvedImage> {
    if (!this.#parts.images) throw new CorralError('this runtime has no image store', { code: 'ERR_INVALID_SPEC' });
    return this.#parts.images.resolve(ref);
  }

  #launchSpec(spec: ResolvedSpec, stdio: StdioSet, host: HeldResources): LaunchSpec {
    const { cgroup, layer, image, mounts, network } = host.state;
    // test/security/host-root-runtime-root.test.ts: a container on the host's root never sees the
    // runtime's own root (other containers' layers, images, volumes).
    const visible = spec.rootfs === null && !image ? { ...spec, maskedPaths: [...spec.maskedPaths, this.#parts.root] } : spec;
    return {
      cloneFlags: network ? cloneFlags(spec, cgroup !== null) & ~CLONE.NEWNET : cloneFlags(spec, cgroup !== null),
      setup: spec.network === 'pasta'
        // pasta opens /proc/PID/ns/* of the held child: it stays dumpable (as on the vfork path; no
        // process of the container exists before its exec, and exec resets it).
        ? withoutDumpable(containerSetupOps(visible, { ownCgroup: cgroup !== null, layer, image, mounts }))
        : [...(network ? [joinNetworkOp(network.nsfd)] : []), ...containerSetupOps(visible, { ownCgroup: cgroup !== null, layer, image, mounts })],
      ...(network ? { keepFds: [network.nsfd] } : {}),
      beforeExec: lastStepOps(spec.hardening),
      command: spec.command,
      env: envList(spec.env),
      searchPath: searchPath(spec.env),
      stdio: stdio.childFds,
      ...(cgroup ? { cgroupFd: cgroup.fd } : {}),
    };
  }
}
