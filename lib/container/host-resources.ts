import type { Cgroup } from '../cgroup/cgroup.ts';
import type { CgroupManager } from '../cgroup/manager.ts';
import { createLayer, removeLayer, type ContainerLayer } from '../fs/container-layers.ts';
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
  layer: ContainerLayer | null;
  image: ResolvedImage | null;
  /** spec.mounts with volumes turned into binds of their data directories. */
  mounts: PlannedMount[];
  /** The prepared network namespace the container joins: its bridge network's, or a fresh one
   * from the pool for `network: 'none'` (ip null). */
  network: { nsfd: number; ip: string | null } | null;
  /** Its published ports (bridge or pasta), with the host ports actually taken. */
  ports: PublishedPort[];
}

/** Undoes one acquisition. */
type Release = () => void | Promise<void>;

/** One kind of host resource a container may need: acquire records what it made in the state and
 * returns how to release it (null when this container needs none). Network attachments and the
 * like are added as more of these. */
export interface HostResource {
  readonly name: string;
  acquire(spec: ResolvedSpec, host: HostState): Release | null | Promise<Release | null>;
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
  static async acquire(resources: readonly HostResource[], spec: ResolvedSpec, image: ResolvedImage | null): Promise<HeldResources> {
    const held = new HeldResources({ cgroup: null, layer: null, image, mounts: [], network: null, ports: [] });
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
  return {
    name: 'cgroup',
    acquire(spec, host) {
      const cgroup = cgroups.create(spec.id, spec.limits, spec.devices);
      host.cgroup = cgroup;
      return cgroup && (() => cgroup.remove());
    },
  };
}

/** A lease on the image the container runs, so the image is not removed under it. */
export function imageLeaseResource(images: ImageProvider | null): HostResource {
  return {
    name: 'image lease',
    acquire(spec, host) {
      const image = host.image;
      if (!image || !images) return null;
      images.markUsed(image.manifestDigest, spec.id);
      return () => images.release(image.manifestDigest, spec.id);
    },
  };
}

/** The per-container writable overlay layer over an image or a rootfs directory. */
export function writableLayerResource(root: string): HostResource {
  return {
    name: 'writable layer',
    acquire(spec, host) {
      if (!(host.image || spec.rootfs !== null) || spec.rootfsWritable !== 'overlay' || !spec.namespaces.mount) return null;
      const layer = createLayer(root, spec.id);
      host.layer = layer;
      return () => removeLayer(layer);
    },
  };
}

/** Named volumes: each is made if needed, marked as used by the container, and bind-mounted. */
export function volumeResource(volumes: VolumeStore): HostResource {
  return {
    name: 'volumes',
    acquire(spec, host) {
      const used: string[] = [];
      const release = (): void => {
        for (const name of used) volumes.release(name, spec.id);
      };
      try {
        host.mounts = spec.mounts.map((m): PlannedMount => {
          if (m.type !== 'volume') return m;
          const source = volumes.acquire(m.name, spec.id);
          used.push(m.name);
          return { type: 'bind', source, target: m.target, readonly: m.readonly, recursive: false, propagation: 'rprivate', sourceIsDir: true };
        });
      } catch (e) {
        release();
        throw e;
      }
      return release;
    },
  };
}
