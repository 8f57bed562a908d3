import { CorralError } from '../sys/errors.ts';
import { launchNow, launchPending, withoutDumpable, type LaunchSpec } from '../spawn/launch.ts';
import { sharedUserNamespace } from '../spawn/shared-user-namespace.ts';
import { startSupervisor, SUPERVISED_CONSOLE_FD, SUPERVISED_NETNS_FD, type StartedSupervisor } from '../spawn/supervised-launch.ts';
import type { CgroupManager } from '../cgroup/manager.ts';
import type { VolumeStore } from '../fs/volumes.ts';
import { Container, type ContainerOwner } from './container.ts';
import { abortError, checkRunOptions, collectRun, type RunOptions, type RunResult } from './run-result.ts';
import { etcFiles } from './etc-files.ts';
import { cloneFlags, commandStartOps, containerSetupOps, envList, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.ts';
import { noStdio, openStdio, type StdioSet } from './stdio.ts';
import { ChildInit } from './init-process.ts';
import { ConsoleSocket, terminalIo, type Terminal } from './terminal.ts';
import { splitDetached, type CreateSpec, type DetachedOptions } from './detached-spec.ts';
import { StateStore, type PersistedState } from './state-store.ts';
import { detachedStatus, SupervisedInit, supervisedStatus, tellSupervisor } from './supervisor-client.ts';
import { readLogs } from './logs.ts';
import { AttachConnection } from './attach-socket.ts';
import { cgroupResource, HeldResources, imageLeaseResource, volumeResource, writableLayerResource, type HostResource } from './host-resources.ts';
import type { ImageProvider, ResolvedImage } from './image-provider.ts';
import { pullPolicy, type PullPolicy } from './pull-policy.ts';
import type { NetworkStore } from '../net/network-store.ts';
import { CLONE } from '../sys/constants.ts';
import { joinNetworkOp, networkResource, preparedNetnsResource } from './network-resource.ts';
import type { NetnsPool } from '../net/netns-pool.ts';
import { pastaCommand, pastaPorts, startPasta } from '../net/pasta.ts';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { hostRootEntries } from '../fs/rootfs.ts';
import { isSingleIdMap, singleIdMap, type IdMap } from '../sys/id-map.ts';
import type { OverlayMount } from '../fs/overlay-mount.ts';

const SIGKILL = 9;

/** The parts a container engine is made of (assembled by the Runtime in lib/runtime.ts). */
export interface EngineParts {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL. */
  stopTimeout: number;
  /** The runtime's root directory (container layers live below it). */
  root: string;
  rootless: boolean;
  /** The map of the containers' user namespaces. */
  idMap: IdMap;
  /** Whether containers with subordinate ranges are made in the process's shared user namespace
   * of that map (RuntimeConfig.userNamespace). */
  sharedUserNamespace: boolean;
  cgroups: CgroupManager;
  volumes: VolumeStore;
  networks: NetworkStore;
  /** Fresh network namespaces made ahead of demand (root), or null. */
  netnsPool: NetnsPool | null;
  /** Images for specs that name one, and commit; null: specs cannot name images. */
  images: ImageProvider | null;
  /** A uid's home directory in the /etc/passwd of a root directory or image layers (top first). */
  homeOf: (lowerDirs: string[], uid: number) => Promise<string | null>;
  /** The command that removes a detached container by id (autoRemove: its supervisor becomes it). */
  removeCommand: (id: string) => string[];
  /** How this kernel mounts a container's overlay, once known (probed in the background from the
   * Runtime's construction on: lib/fs/overlay-probe.ts). */
  overlayMount: () => Promise<OverlayMount>;
}


/** The directories a container's root is seen through (top first): the image's layers, else the
 * rootfs, else the host's root. */
/** The key of a root directory's passwd for uid: the file's identity and times, so an edit or a
 * replacement (also by a link) misses; null when it cannot be seen (the lookup says what it finds). */
function passwdKey(root: string, uid: number): string | null {
  try {
    const s = lstatSync(join(root, 'etc/passwd'), { bigint: true });
    return `${root} ${uid} ${s.dev}:${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
  } catch {
    return null;
  }
}

function rootDirs(image: ResolvedImage | null, rootfs: string | null): string[] {
  return image ? image.lowerNames.map((n) => join(image.layersDir, n)) : [rootfs ?? '/'];
}
/** Creates, runs and tracks the containers of one runtime: resolves specs, acquires their host
 * resources (lib/container/host-resources.ts), launches their first process. */
export class ContainerEngine {
  readonly #containers = new Map<string, Container | null>();
  readonly #store: StateStore;
  /** Ids of the detached containers among #containers. */
  readonly #detached = new Set<string>();
  readonly #parts: EngineParts;
  readonly #resources: readonly HostResource[];
  readonly #owner: ContainerOwner;
  /** HOME by image or root directory and uid (#setHome). */
  readonly #homes = new Map<string, string>();

  constructor(parts: EngineParts) {
    this.#parts = parts;
    this.#store = new StateStore(parts.root);
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

  /** Creates a container whose first process is set up and waits before exec until start(); a
   * detached one under a supervisor of its own. */
  async create(spec: CreateSpec): Promise<Container> {
    const [containerSpec, detached] = splitDetached(spec);
    if (detached) return this.#launchDetached(containerSpec, detached);
    return this.#launch(containerSpec, false);
  }

  /** Creates and starts a detached container; resolves once its command runs. */
  async runDetached(spec: CreateSpec): Promise<Container> {
    const container = await this.create(spec);
    try {
      await container.start();
    } catch (e) {
      await container.remove({ force: true }).catch(() => {});
      throw e;
    }
    return container;
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult<Buffer | string>> {
    const startedAt = performance.now();
    const container = await this.#launch(spec, true, options);
    try {
      return await collectRun({
        ...(container.terminal ? terminalIo(container.terminal, options.input) : { stdin: container.stdin, stdout: container.stdout, stderr: container.stderr }),
        wait: () => container.wait(),
        kill: (signal) => {
          if (container.status === 'running' || container.status === 'paused') container.kill(signal);
        },
        oomKilled: () => container.oomKilled,
        // Every process of a container with its own pid namespace ends with its init.
        outputEndsWithExit: spec.namespaces?.pid !== false,
      }, options, startedAt);
    } finally {
      await container.remove({ force: true });
    }
  }

  /** The running and paused containers (all: of every status): this engine's attached ones and
   * the detached ones of the root, made by any process. A state file that cannot be read is
   * reported to onError (ERR_STATE_CORRUPT naming it) and the others are listed. */
  list(options: { all?: boolean; onError?: (error: CorralError) => void } = {}): Container[] {
    const onError = options.onError ?? ((e: CorralError) => process.emitWarning(e.message, { code: e.code }));
    const found: Container[] = [];
    for (const c of this.#containers.values()) {
      // A detached container of ours that another process removed is gone for us too.
      if (c && this.#detached.has(c.id) && !this.#store.exists(c.id)) this.#containers.delete(c.id);
      else if (c) found.push(c);
    }
    for (const id of this.#store.ids()) {
      if (this.#containers.has(id)) continue;
      try {
        found.push(this.#restore(id));
      } catch (e) {
        if (e instanceof CorralError && e.code === 'ERR_CONTAINER_NOT_FOUND') continue;
        if (e instanceof CorralError) onError(e);
        else throw e;
      }
    }
    return options.all ? found : found.filter((c) => c.status === 'running' || c.status === 'paused');
  }

  /** A container by id, name or unique id prefix (detached ones of any process too), or undefined;
   * throws ERR_CONTAINER_AMBIGUOUS, or ERR_STATE_CORRUPT naming the file. */
  get(idOrName: string): Container | undefined {
    const own = this.#containers.get(idOrName);
    if (own) return own;
    try {
      const id = this.#store.resolve(idOrName);
      return this.#containers.get(id) ?? this.#restore(id);
    } catch (e) {
      if (e instanceof CorralError && e.code === 'ERR_CONTAINER_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** get(), or ERR_CONTAINER_NOT_FOUND naming what was asked for. */
  find(idOrName: string): Container {
    const found = this.get(idOrName);
    if (!found) throw new CorralError(`no such container: ${idOrName}`, { code: 'ERR_CONTAINER_NOT_FOUND' });
    return found;
  }

  /** Renames a detached container (names are unique per root). */
  rename(idOrName: string, name: string): void {
    const [, options] = splitDetached({ detached: true, name });
    this.#store.rename(this.#store.resolve(idOrName), options!.name!);
  }

  /** A handle for a detached container from its saved state (made by this or another process). */
  #restore(id: string): Container {
    const state = this.#store.read(id);
    const resolved = resolveSpec(state.spec, this.#parts.rootless, state.image?.defaults ?? null, this.#parts.cgroups.deviceFilter, state.idMap ?? singleIdMap(), true);
    const status = supervisedStatus(this.#store, id, state.supervisor);
    const host = HeldResources.restore(this.#resources, resolved, state.image, state.host);
    const init = new SupervisedInit(this.#store, id, state.supervisor, status, null);
    return new Container(resolved, this.#detachedOwner(state), init, noStdio(), detachedStatus(status, host.state.cgroup), host, { name: state.name, createdAt: state.createdAt, exit: status.exit });
  }

  /** A detached container's owner: forgetting it deletes its state directory and frees its name. */
  #detachedOwner(state: PersistedState): ContainerOwner {
    return {
      ...this.#owner,
      logs: (options, ended) => readLogs(this.#store.dir(state.id), options, ended),
      // State of an older version has no interactive: it took no input.
      attachSocket: { open: () => AttachConnection.open(this.#store.dir(state.id)), input: state.options.interactive ?? false },
      supervision: () => {
        const record = this.#store.readProcess(state.id);
        return { supervisorPid: state.supervisor.pid, restartCount: record?.restartCount ?? 0, startedAt: record?.startedAt ?? null, finishedAt: record?.finishedAt ?? null };
      },
      forget: (id) => {
        this.#containers.delete(id);
        this.#detached.delete(id);
        this.#store.remove(id, state.name);
      },
    };
  }

  /** The spec with a user given by name ('name[:group]') as ids, resolved in the container's root:
   * the image's layers, the rootfs, or the host's root. */
  async #withUserIds(spec: ContainerSpec, image: ResolvedImage | null): Promise<ContainerSpec> {
    if (typeof spec?.user !== 'string') return spec;
    if (!this.#parts.images) throw new CorralError(`user '${spec.user}' is a name, and this runtime has no image store to resolve it with`, { code: 'ERR_INVALID_SPEC' });
    return { ...spec, user: await this.#parts.images.resolveUser(spec.user, rootDirs(image, typeof spec.rootfs === 'string' ? spec.rootfs : null)) };
  }

  /** HOME, when neither the spec nor the image sets it: the user's passwd entry, else Docker's.
   * Looked up once per image and uid (layers never change), and once per root directory and uid
   * while its /etc/passwd is the same file unchanged (ino, size, mtime, ctime). */
  async #setHome(resolved: ResolvedSpec, image: ResolvedImage | null): Promise<void> {
    if (resolved.env.HOME !== undefined) return;
    const uid = resolved.user?.uid ?? 0;
    const key = image ? `${image.manifestDigest} ${uid}` : passwdKey(resolved.rootfs ?? '/', uid);
    let home = key === null ? undefined : this.#homes.get(key);
    if (home === undefined) {
      home = (await this.#parts.homeOf(rootDirs(image, resolved.rootfs), uid)) ?? (uid === 0 ? '/root' : '/');
      if (key !== null) {
        if (this.#homes.size >= 256) this.#homes.clear();
        this.#homes.set(key, home);
      }
    }
    resolved.env.HOME = home;
  }

  /** Makes a detached container: its state directory and name first, then the supervisor (whose
   * tag owns the host resources, so sweepers leave them alone while it lives), then the plan. With
   * a subordinate range the supervisor maps each init's ids (newuidmap) itself, restarts too. */
  async #launchDetached(named: ContainerSpec, options: DetachedOptions): Promise<Container> {
    const image = named?.image === undefined ? null : await this.#image(named.image, pullPolicy(named.pull));
    const spec = await this.#withUserIds(named, image);
    const resolved = resolveSpec(spec, this.#parts.rootless, image?.defaults ?? null, this.#parts.cgroups.deviceFilter, this.#parts.idMap);
    await this.#setHome(resolved, image);
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    this.#store.reserve(resolved.id, options.name);
    const dir = this.#store.dir(resolved.id);
    let supervisor: StartedSupervisor | undefined;
    let host: HeldResources | undefined;
    try {
      // pasta needs the pid of each run's init: the supervisor starts it at every launch.
      const pastaPublished = resolved.network === 'pasta' ? await pastaPorts(resolved.ports) : null;
      supervisor = startSupervisor({
        dir: this.#store.dir(resolved.id),
        logMaxBytes: options.logs.maxSize,
        logMaxFiles: options.logs.maxFiles,
        restart: options.restart.policy,
        maxRetries: options.restart.maxRetries,
        tty: resolved.tty !== null,
        interactive: options.interactive,
        exitCommand: options.autoRemove ? this.#parts.removeCommand(resolved.id) : null,
        networkHelper: pastaPublished && pastaCommand(pastaPublished, join(dir, 'network.pid')),
      });
      host = await HeldResources.acquire(this.#resources, resolved, image, supervisor.tag);
      if (pastaPublished) host.state.ports = pastaPublished;
      const network = host.state.network;
      const overlay = host.state.layer && (await this.#parts.overlayMount());
      const proc = await supervisor.launch(
        this.#launchSpec(resolved, noStdio(), host, resolved.tty && SUPERVISED_CONSOLE_FD, overlay, SUPERVISED_NETNS_FD),
        host.state.cgroup?.path ?? null,
        host.state.layer?.kind === 'disk' ? host.state.layer.work : null,
        // The supervisor opens its own fd of the namespace from ours.
        network && `/proc/${process.pid}/fd/${network.nsfd}`,
      );
      host.launched();
      const state: PersistedState = {
        version: 1,
        id: resolved.id,
        name: options.name,
        createdAt: new Date().toISOString(),
        spec: { ...spec, id: resolved.id },
        ...(resolved.idMap ? { idMap: resolved.idMap } : {}),
        image,
        supervisor: { pid: supervisor.pid, startTime: supervisor.startTime },
        host: host.save(),
        options,
      };
      this.#store.write(state);
      const status = { record: this.#store.readProcess(resolved.id), supervisorAlive: true, exit: null };
      const init = new SupervisedInit(this.#store, resolved.id, state.supervisor, status, proc);
      const container = new Container(resolved, this.#detachedOwner(state), init, noStdio(), 'created', host, { name: options.name, createdAt: state.createdAt, exit: null });
      this.#containers.set(resolved.id, container);
      this.#detached.add(resolved.id);
      return container;
    } catch (e) {
      supervisor?.cancel();
      tellSupervisor(dir, 'q');
      await host?.release().catch(() => {});
      this.#store.remove(resolved.id, options.name);
      throw e;
    }
  }

  /** Resolves the spec, acquires the host resources and launches the first process: now (run) or
   * held before exec (create); on a failure everything acquired is released. */
  async #launch(named: ContainerSpec, now: boolean, options?: RunOptions): Promise<Container> {
    const image = named?.image === undefined ? null : await this.#image(named.image, pullPolicy(options?.pull, named.pull));
    const spec = await this.#withUserIds(named, image);
    const resolved = resolveSpec(spec, this.#parts.rootless, image?.defaults ?? null, this.#parts.cgroups.deviceFilter, this.#parts.idMap);
    if (options) {
      checkRunOptions(options, resolved.stdio === 'pipe' || resolved.tty !== null);
      if (options.signal?.aborted) throw abortError(options.signal);
    }
    await this.#setHome(resolved, image);
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    this.#containers.set(resolved.id, null);
    let host: HeldResources | undefined;
    let stdio: StdioSet | undefined;
    let init: ChildInit | undefined;
    let consoleSocket: ConsoleSocket | null = null;
    try {
      host = await HeldResources.acquire(this.#resources, resolved, image, null, now);
      const overlay = host.state.layer && (await this.#parts.overlayMount());
      // With a terminal, fds 0-2 are /dev/null until the terminal replaces them.
      stdio = openStdio(resolved.tty ? 'ignore' : resolved.stdio);
      consoleSocket = resolved.tty && new ConsoleSocket();
      const launch = await this.#inSharedUserNamespace(this.#launchSpec(resolved, stdio, host, consoleSocket?.childFd ?? null, overlay));
      // pasta needs the container's pid before exec: such a run() takes the create() path.
      const pasta = resolved.network === 'pasta';
      const proc = now && !pasta ? await launchNow(launch) : await launchPending(launch);
      stdio.releaseChildEnds();
      consoleSocket?.releaseChildEnd();
      init = new ChildInit(proc, !now || pasta);
      const terminal: Terminal | null = consoleSocket?.receive() ?? null;
      if (pasta) await this.#startPasta(resolved, proc.pid, host, now ? init : null);
      const container = new Container(resolved, this.#owner, init, stdio, now ? 'running' : 'created', host, null, terminal);
      this.#containers.set(resolved.id, container);
      return container;
    } catch (e) {
      this.#containers.delete(resolved.id);
      await init?.abandon();
      init?.signal(SIGKILL);
      await init?.exited;
      consoleSocket?.close();
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

  async #image(ref: string, pull: PullPolicy): Promise<ResolvedImage> {
    if (!this.#parts.images) throw new CorralError('this runtime has no image store', { code: 'ERR_INVALID_SPEC' });
    return this.#parts.images.resolve(ref, pull);
  }

  /** A launch with subordinate ranges made in the shared user namespace of its map, when the
   * runtime shares one (no newuidmap at the start). */
  async #inSharedUserNamespace(launch: LaunchSpec): Promise<LaunchSpec> {
    if (!launch.idMap || !this.#parts.sharedUserNamespace) return launch;
    const { idMap, ...rest } = launch;
    return { ...rest, userNamespaceFd: await sharedUserNamespace(idMap) };
  }

  /** consoleFd: the child's end of its console socket (spec.tty), or null; overlay: how the
   * writable layer is mounted (null: the container has none); netnsFd: the fd of the prepared
   * network namespace as the cloning process holds it (a supervisor holds its own). */
  #launchSpec(spec: ResolvedSpec, stdio: StdioSet, host: HeldResources, consoleFd: number | null, overlay: OverlayMount | null, netnsFd = host.state.network?.nsfd): LaunchSpec {
    const { cgroup, layer, image, mounts, network } = host.state;
    // test/security/host-root-runtime-root.test.ts: a container on the host's root never sees the
    // runtime's own root (other containers' layers, images, volumes).
    const onHostRoot = spec.rootfs === null && !image && spec.namespaces.mount;
    const visible = onHostRoot ? { ...spec, maskedPaths: [...spec.maskedPaths, this.#parts.root] } : spec;
    const context = { ownCgroup: cgroup !== null, layer, image, mounts, hostEntries: onHostRoot ? hostRootEntries(spec.hostRoot, mounts) : null, ownFiles: etcFiles(spec, mounts, onHostRoot), ...(overlay ? { overlayMount: overlay } : {}) };
    return {
      cloneFlags: network ? cloneFlags(spec, cgroup !== null) & ~CLONE.NEWNET : cloneFlags(spec, cgroup !== null),
      setup: spec.network === 'pasta'
        // pasta opens /proc/PID/ns/* of the held child: it stays dumpable (as on the vfork path; no
        // process of the container exists before its exec, and exec resets it).
        ? withoutDumpable(containerSetupOps(visible, context))
        : [...(network ? [joinNetworkOp(netnsFd!)] : []), ...containerSetupOps(visible, context)],
      keepFds: [...(network ? [netnsFd!] : []), ...(consoleFd === null ? [] : [consoleFd])],
      afterResolve: commandStartOps(spec, consoleFd),
      beforeExec: lastStepOps(spec.hardening),
      command: spec.command,
      env: envList(spec.env),
      searchPath: searchPath(spec.env),
      stdio: stdio.childFds,
      ...(cgroup ? { cgroupFd: cgroup.fd } : {}),
      ...(spec.idMap && !isSingleIdMap(spec.idMap) ? { idMap: spec.idMap } : {}),
    };
  }
}
