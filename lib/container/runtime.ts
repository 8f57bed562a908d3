import { accessSync, constants, mkdirSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { launchNow, launchPending, type LaunchSpec } from '../spawn/launch.ts';
import { Cgroup, enableControllers } from '../cgroup/cgroup.ts';
import { defaultParent, findV2Mount } from '../cgroup/hierarchy.ts';
import { processGroup } from '../cgroup/process-group.ts';
import { Container, type ContainerOwner } from './container.ts';
import { abortError, checkRunOptions, collectRun, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, containerSetupOps, envList, searchPath } from './setup.ts';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';

/** Settings of a Runtime. */
export interface RuntimeConfig {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL (10000). */
  stopTimeout?: number;
  /** The cgroup v2 directory under which container groups are made (inside a 'proc-PID-START'
   * group per host process, so groups of a process that died can be swept); default 'corral' under
   * the v2 root as root, under this process's own group otherwise. false: no cgroups (no limits). */
  cgroupParent?: string | false;
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

  constructor(config: RuntimeConfig = {}) {
    const stopTimeout = config.stopTimeout ?? 10_000;
    if (!Number.isFinite(stopTimeout) || stopTimeout < 0) {
      throw new CorralError(`stopTimeout must be a non-negative number, got ${stopTimeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    if (config.cgroupParent !== undefined && config.cgroupParent !== false && (typeof config.cgroupParent !== 'string' || !isAbsolute(config.cgroupParent))) {
      throw new CorralError(`cgroupParent must be an absolute path or false, got ${String(config.cgroupParent)}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    this.#cgroupParent = config.cgroupParent;
    this.#owner = {
      stopTimeout,
      forget: (id) => this.#containers.delete(id),
      enableControllers: (controllers) => this.#enableControllers(controllers),
    };
  }

  /** Creates a container whose first process is set up and waits before exec until start(). */
  async create(spec: ContainerSpec): Promise<Container> {
    const resolved = this.#resolve(spec);
    const cgroup = this.#makeCgroup(resolved);
    let stdio: StdioSet | undefined;
    this.#containers.set(resolved.id, null);
    try {
      stdio = openStdio(resolved.stdio);
      const pending = await launchPending(this.#launchSpec(resolved, stdio, cgroup));
      stdio.releaseChildEnds();
      const container = new Container(resolved, this.#owner, pending, stdio, false, cgroup);
      this.#containers.set(resolved.id, container);
      return container;
    } catch (e) {
      this.#containers.delete(resolved.id);
      stdio?.destroy();
      await cgroup?.remove();
      throw e;
    }
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult> {
    const resolved = this.#resolve(spec);
    checkRunOptions(options, resolved.stdio === 'pipe');
    if (options.signal?.aborted) throw abortError(options.signal);
    const cgroup = this.#makeCgroup(resolved);
    let stdio: StdioSet | undefined;
    const startedAt = performance.now();
    let container: Container;
    try {
      stdio = openStdio(resolved.stdio);
      const proc = await launchNow(this.#launchSpec(resolved, stdio, cgroup));
      stdio.releaseChildEnds();
      container = new Container(resolved, this.#owner, proc, stdio, true, cgroup);
    } catch (e) {
      stdio?.destroy();
      await cgroup?.remove();
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

  #resolve(spec: ContainerSpec): ResolvedSpec {
    const resolved = resolveSpec(spec, this.#rootless);
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    return resolved;
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
    return Cgroup.create(place.parent, spec.id, spec.limits);
  }

  #launchSpec(spec: ResolvedSpec, stdio: StdioSet, cgroup: Cgroup | null): LaunchSpec {
    return {
      cloneFlags: cloneFlags(spec, cgroup !== null),
      setup: containerSetupOps(spec, cgroup !== null),
      command: spec.command,
      env: envList(spec.env),
      searchPath: searchPath(spec.env),
      stdio: stdio.childFds,
      ...(cgroup ? { cgroupFd: cgroup.fd } : {}),
    };
  }
}
