import { rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.ts';
import type { CgroupManager } from '../cgroup/manager.ts';
import { createLayer, removeLayer, prepareLayers, type WritableLayer } from '../fs/container-layers.ts';
import { removeTreeMapped } from '../fs/remove-mapped.ts';
import type { PlannedMount } from '../fs/rootfs.ts';
import type { VolumeStore } from '../fs/volumes.ts';
import type { PublishedPort } from '../net/ports.ts';
import type { ImageProvider, ResolvedImage } from './image-provider.ts';
import type { ResolvedSpec } from './spec.ts';

/** What a container holds on the host besides its processes; filled in by the resources as they
 * are acquired, released all together (last acquired first) when the container is removed. */
export interface HostState {
  cgroup: Cgroup | null;
  /** The writable overlay layer, when the root filesystem gets one. */
  layer: WritableLayer | null;
  /** True for run(): the container is removed when its command ends, so nothing reads its layer. */
  runOnce: boolean;
  image: ResolvedImage | null;
  /** spec.mounts with volumes turned into binds of their data directories. */
  mounts: PlannedMount[];
  /** The prepared network namespace the container joins: its bridge network's, or a fresh one
   * from the pool for `network: 'none'` (ip null). */
  network: { nsfd: number; ip: string | null } | null;
  /** Its published ports (bridge or pasta), with the host ports actually taken. */
  ports: PublishedPort[];
  /** The process tag that owns what is acquired: null for this process, a supervisor's for a
   * detached container (so sweepers leave it alone while the supervisor lives). */
  owner: string | null;
  /** What this process lets go once a detached container's supervisor has launched it (its fd of
   * the network namespace, which the supervisor holds from then on). */
  untilLaunched: (() => void)[];
}

/** What a HostState holds in a form another process can read back (state.json). */
export interface SavedHostState {
  cgroup: string | null;
  layer: WritableLayer | null;
  mounts: PlannedMount[];
  owner: string;
  /** Its address on its bridge network (absent in states saved before networks were kept). */
  ip?: string | null;
  ports?: PublishedPort[];
}

/** Undoes one acquisition. */
type Release = () => void | Promise<void>;

/** One kind of host resource a container may need: acquire records what it made in the state and
 * returns how to release it (null when this container needs none). Network attachments and the
 * like are added as more of these. */
export interface HostResource {
  readonly name: string;
  acquire(spec: ResolvedSpec, host: HostState): Release | null | Promise<Release | null>;
  /** How to release what an earlier process acquired, from its saved state (null: nothing);
   * absent for a resource a detached container cannot hold (refused when it is created). */
  restore?(spec: ResolvedSpec, host: HostState): Release | null;
}

/** A container's acquired host resources, released in reverse order. */
export class HeldResources {
  readonly state: HostState;
  readonly #releases: Release[] = [];

  private constructor(state: HostState) {
    this.state = state;
  }

  /** Acquires the resources in order for a container; on a failure what was acquired is released
   * (in reverse) before the error is thrown, so a failed create leaves nothing behind. */
  static async acquire(resources: readonly HostResource[], spec: ResolvedSpec, image: ResolvedImage | null, owner: string | null = null, runOnce = false): Promise<HeldResources> {
    const held = new HeldResources({ cgroup: null, layer: null, runOnce, image, mounts: [], network: null, ports: [], owner, untilLaunched: [] });
    try {
      for (const resource of resources) {
        const release = await resource.acquire(spec, held.state);
        if (release) held.#releases.push(release);
      }
    } catch (e) {
      await held.release().catch(() => {});
      throw e;
    }
    return held;
  }

  /** What a detached container holds, saved by the process that acquired it, as a handle in
   * another process releases it. */
  static restore(resources: readonly HostResource[], spec: ResolvedSpec, image: ResolvedImage | null, saved: SavedHostState): HeldResources {
    const cgroup = saved.cgroup === null ? null : Cgroup.open(saved.cgroup);
    const network = saved.ip ? { nsfd: -1, ip: saved.ip } : null;
    const held = new HeldResources({ cgroup, layer: saved.layer, runOnce: false, image, mounts: saved.mounts, network, ports: saved.ports ?? [], owner: saved.owner, untilLaunched: [] });
    for (const resource of resources) {
      const release = resource.restore?.(spec, held.state);
      if (release) held.#releases.push(release);
    }
    return held;
  }

  /** The state to save for another process (a detached container's; owner is set). */
  save(): SavedHostState {
    const { cgroup, layer, mounts, owner, network, ports } = this.state;
    return { cgroup: cgroup?.path ?? null, layer, mounts, owner: owner!, ip: network?.ip ?? null, ports };
  }

  /** A detached container's supervisor has launched it: this process lets go of what only the
   * launch needed. */
  launched(): void {
    for (let letGo = this.state.untilLaunched.pop(); letGo; letGo = this.state.untilLaunched.pop()) letGo();
  }

  /** Adds what was acquired after the launch (pasta, which needs the container's pid): released first. */
  adopt(release: Release): void {
    this.#releases.push(release);
  }

  /** Releases everything, last acquired first; every release runs, the first failure is thrown
   * after all have run. Idempotent. */
  async release(): Promise<void> {
    let failure: unknown;
    for (let release = this.#releases.pop(); release; release = this.#releases.pop()) {
      try {
        await release();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

/** The container's cgroup, born with its limits (none when the runtime has no cgroups). */
export function cgroupResource(cgroups: CgroupManager): HostResource {
  const restore = (_spec: ResolvedSpec, host: HostState): Release | null => {
    const cgroup = host.cgroup;
    if (!cgroup) return null;
    return async () => {
      await cgroup.remove();
      if (host.owner) removeIfEmpty(dirname(cgroup.path));
    };
  };
  return {
    name: 'cgroup',
    acquire(spec, host) {
      const cgroup = cgroups.create(spec.id, spec.limits, spec.devices, host.owner ?? undefined);
      host.cgroup = cgroup;
      return restore(spec, host);
    },
    restore,
  };
}

/** rmdir of a supervisor's directory once its last container is gone (else its sweep takes it). */
function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // another container of it, or swept already
  }
}

/** A lease on the image the container runs, so the image is not removed under it. */
export function imageLeaseResource(images: ImageProvider | null): HostResource {
  const restore = (spec: ResolvedSpec, host: HostState): Release | null => {
    const image = host.image;
    if (!image || !images) return null;
    return () => images.release(image.manifestDigest, spec.id, host.owner ?? undefined);
  };
  return {
    name: 'image lease',
    acquire(spec, host) {
      const image = host.image;
      if (!image || !images) return null;
      images.markUsed(image.manifestDigest, spec.id, host.owner ?? undefined);
      return restore(spec, host);
    },
    restore,
  };
}

/** The per-container writable overlay layer over an image or a rootfs directory: in memory for
 * run() (nothing on disk to make or delete) and where the runtime root's filesystem cannot hold
 * an upper (checked once); on disk under the runtime root otherwise, where commit reads it. */
export function writableLayerResource(root: string): HostResource {
  let unsupported: string | null | undefined;
  const restore = (spec: ResolvedSpec, host: HostState): Release | null => {
    const layer = host.layer;
    if (layer?.kind !== 'disk') return null; // in memory: it goes with the container's mount namespace
    if (!host.owner) return () => removeLayer(layer, spec.idMap);
    // A supervisor's layer goes at once, with its directory when empty: its process may be
    // short-lived. What the container's other users wrote goes through its map.
    return async () => {
      await removeTreeMapped(layer.dir, spec.idMap);
      removeIfEmpty(dirname(layer.dir));
    };
  };
  return {
    name: 'writable layer',
    acquire(spec, host) {
      if (!(host.image || spec.rootfs !== null) || spec.rootfsWritable !== 'overlay' || !spec.namespaces.mount) return null;
      if (unsupported === undefined) unsupported = prepareLayers(root);
      if (host.runOnce) {
        host.layer = { kind: 'memory', why: 'a run() container is removed when its command ends' };
        return null;
      }
      if (unsupported !== null) {
        host.layer = { kind: 'memory', why: unsupported };
        return null;
      }
      host.layer = { kind: 'disk', ...createLayer(root, spec.id, host.owner ?? undefined) };
      return restore(spec, host);
    },
    restore,
  };
}

/** Named volumes: each is made if needed, marked as used by the container, and bind-mounted. */
export function volumeResource(volumes: VolumeStore): HostResource {
  return {
    name: 'volumes',
    acquire(spec, host) {
      const used: string[] = [];
      const owner = host.owner ?? undefined;
      const release = (): void => {
        for (const name of used) volumes.release(name, spec.id, owner);
      };
      try {
        host.mounts = spec.mounts.map((m): PlannedMount => {
          if (m.type !== 'volume') return m;
          const source = volumes.acquire(m.name, spec.id, owner);
          used.push(m.name);
          return { type: 'bind', source, target: m.target, readonly: m.readonly, recursive: false, propagation: 'rprivate', sourceIsDir: true };
        });
      } catch (e) {
        release();
        throw e;
      }
      return release;
    },
    restore(spec, host) {
      const names = spec.mounts.flatMap((m) => (m.type === 'volume' ? [m.name] : []));
      if (names.length === 0) return null;
      return () => {
        for (const name of names) volumes.release(name, spec.id, host.owner ?? undefined);
      };
    },
  };
}
