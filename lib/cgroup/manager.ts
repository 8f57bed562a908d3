import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { Cgroup, enableControllers } from './cgroup.ts';
import { defaultParent, findV2Mount } from './hierarchy.ts';
import type { CgroupWrites } from './limits.ts';
import type { DeviceRule } from './device-filter.ts';
import { attachDeviceFilter, deviceFiltersSupported } from './device-program.ts';
import { processGroup } from './process-group.ts';

/** Controllers enabled for every container group when available, so stats() has numbers. */
const ACCOUNTING_CONTROLLERS = ['cpu', 'memory', 'pids', 'io'];

/** Where container groups are made, or why they cannot be. */
type Placement = { mount: string; parent: string } | { unavailable: string };

/** The cgroup placement policy of a runtime: where container groups go (`<cgroupParent>/proc-PID-
 * START/<id>`), which controllers are enabled down the chain, and what happens without a writable
 * v2 hierarchy (containers run without a group unless they ask for limits). */
export class CgroupManager {
  readonly #configured: string | false | undefined;
  readonly #asRoot: boolean;
  #placement: Placement | undefined;
  readonly #enabled = new Set<string>();

  /** parent: cgroupParent of RuntimeConfig (undefined: the default place; false: no cgroups). */
  constructor(parent: string | false | undefined, asRoot: boolean) {
    if (parent !== undefined && parent !== false && (typeof parent !== 'string' || !isAbsolute(parent))) {
      throw new CorralError(`cgroupParent must be an absolute path or false, got ${String(parent)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    this.#configured = parent;
    this.#asRoot = asRoot;
  }

  /** True when containers get a group of their own (found once, on first use). */
  get available(): boolean {
    return !('unavailable' in this.#place());
  }

  /** True when container groups get the device filter: as root, with groups and cgroup BPF. */
  get deviceFilter(): boolean {
    return this.#asRoot && this.available && deviceFiltersSupported();
  }

  /** The container's group, born with its limits and (where it can be had) the device filter for
   * devices; null when this runtime has no cgroups and the limits ask for nothing. owner: the tag
   * of another process whose group it goes in (a detached container's supervisor), default ours. */
  create(id: string, writes: CgroupWrites, devices: readonly DeviceRule[], owner?: string): Cgroup | null {
    const place = this.#place();
    if ('unavailable' in place) {
      if (writes.files.length === 0) return null;
      throw new CorralError(`cgroup limits are unavailable: ${place.unavailable}`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    this.enable(writes.controllers);
    const filter = this.deviceFilter ? (fd: number, path: string) => attachDeviceFilter(fd, path, devices) : null;
    const memory = this.#enabled.has('memory');
    if (owner === undefined) return Cgroup.create(place.parent, id, writes, filter, memory);
    const ownerGroup = join(dirname(place.parent), owner);
    mkdirSync(ownerGroup, { recursive: true });
    enableControllers(place.mount, ownerGroup, this.#enabled);
    return Cgroup.create(ownerGroup, id, writes, filter, memory);
  }

  /** Makes controllers usable for container groups (cgroup.subtree_control down the chain). */
  enable(controllers: Set<string>): void {
    const missing = new Set([...controllers].filter((c) => !this.#enabled.has(c)));
    if (missing.size === 0) return;
    const place = this.#place();
    if ('unavailable' in place) {
      throw new CorralError(`cgroup limits are unavailable: ${place.unavailable}`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    enableControllers(place.mount, place.parent, missing);
    for (const c of missing) this.#enabled.add(c);
  }

  /** Finds (once) where container groups go: the v2 mount and a parent we can write. */
  #place(): Placement {
    this.#placement ??= this.#find();
    return this.#placement;
  }

  #find(): Placement {
    if (this.#configured === false) return { unavailable: 'the runtime was made with cgroupParent: false' };
    const mount = findV2Mount();
    if (!mount) return { unavailable: 'no cgroup v2 hierarchy is mounted' };
    const parent = this.#configured ?? defaultParent(mount, this.#asRoot);
    const rel = relative(mount, parent);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new CorralError(`cgroupParent ${parent} is not inside the cgroup v2 hierarchy at ${mount}`, { code: 'ERR_INVALID_ARG_VALUE', path: parent });
    }
    let placement: { mount: string; parent: string };
    try {
      mkdirSync(parent, { recursive: true });
      accessSync(parent, constants.W_OK);
      placement = { mount, parent: processGroup(parent) };
    } catch (e) {
      return { unavailable: `cannot make groups in ${parent}: ${(e as NodeJS.ErrnoException).code}` };
    }
    this.#enableAccounting(placement);
    return placement;
  }

  /** Turns on, where they can be had, the controllers stats() reads, so usage is accounted for
   * containers without limits too (as docker does); a missing one only leaves its stats null. */
  #enableAccounting(place: { mount: string; parent: string }): void {
    for (const controller of ACCOUNTING_CONTROLLERS) {
      try {
        enableControllers(place.mount, place.parent, new Set([controller]));
        this.#enabled.add(controller);
      } catch {
        // not offered here (e.g. bound to cgroup v1): its stats stay null
      }
    }
  }
}
