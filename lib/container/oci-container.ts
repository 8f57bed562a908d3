import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync, constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { close, mkfifo, pipe } from '../sys/libc.ts';
import { PR } from '../sys/constants.ts';
import { startTime } from '../sys/process-tag.ts';
import { clonePlan, pendingPlan, stepError } from '../spawn/launch.ts';
import { encodePlan } from '../spawn/plan.ts';
import { StatusChannel } from '../spawn/status-channel.ts';
import { Cgroup } from '../cgroup/cgroup.ts';
import { findV2Mount } from '../cgroup/hierarchy.ts';
import type { PlannedMount } from '../fs/rootfs.ts';
import { cloneFlags, containerSetupOps, envList, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { resolveSpec } from './spec.ts';
import { ociToSpec } from './oci-config.ts';

/** What `state` prints (runc's JSON). */
export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  /** Present when the config has some (runc leaves it out otherwise). */
  annotations?: Record<string, string>;
}

/** The record kept in ROOT/ID/state.json. */
interface Record_ {
  /** The config's ociVersion, which state reports. */
  ociVersion: string;
  id: string;
  pid: number;
  startTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  annotations: Record<string, string>;
  cgroup: string | null;
}

/** The OCI runtime spec version corral-oci implements. */
export const OCI_VERSION = '1.0.2';

function notFound(id: string): CorralError {
  return new CorralError(`container "${id}" does not exist`, { code: 'ERR_CONTAINER_NOT_FOUND' });
}

/** Containers of one `--root` directory, driven by runc's commands; the init's parent after create
 * is whoever ran create (containerd's shim is a subreaper), no supervisor of ours. */
export class OciStore {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  #dir(id: string): string {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(id)) throw new CorralError(`invalid container id "${id}"`, { code: 'ERR_INVALID_SPEC' });
    return join(this.#root, id);
  }

  #read(id: string): Record_ {
    try {
      return JSON.parse(readFileSync(join(this.#dir(id), 'state.json'), 'utf8')) as Record_;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(id);
      throw new CorralError(`the state of container "${id}" cannot be read: ${(e as Error).message}`, { code: 'ERR_STATE_CORRUPT', path: join(this.#dir(id), 'state.json') });
    }
  }

  /** Ids of the containers in the root. */
  ids(): string[] {
    if (!existsSync(this.#root)) return [];
    return readdirSync(this.#root).sort().filter((id) => existsSync(join(this.#root, id, 'state.json')));
  }

  /** Sets up the bundle's container with its init blocked before exec until start(); returns its pid. */
  async create(id: string, bundle: string): Promise<number> {
    const dir = this.#dir(id);
    let config;
    try {
      config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    } catch (e) {
      throw new CorralError(`cannot read ${join(bundle, 'config.json')}: ${(e as Error).message}`, { code: 'ERR_INVALID_SPEC', path: join(bundle, 'config.json') });
    }
    const oci = ociToSpec(id, config, bundle);
    const resolved = resolveSpec(oci.spec, false);
    mkdirSync(this.#root, { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CorralError(`container "${id}" already exists`, { code: 'ERR_CONTAINER_EXISTS' });
      throw e;
    }
    let cgroup: Cgroup | null = null;
    try {
      const mount = findV2Mount();
      if (mount) {
        const path = oci.cgroupsPath ?? `/corral-oci/${id}`;
        if (path.includes(':')) throw new CorralError(`linux.cgroupsPath "${path}" is a systemd slice: only cgroupfs paths are supported`, { code: 'ERR_INVALID_SPEC', step: 'linux.cgroupsPath' });
        cgroup = Cgroup.create(join(mount, dirname(path)), basename(path), resolved.limits, null);
      } else if (resolved.limits.files.length > 0) {
        throw new CorralError('linux.resources need a cgroup v2 hierarchy, none is mounted', { code: 'ERR_CGROUP_UNAVAILABLE' });
      }
      const fifo = join(dir, 'exec.fifo');
      mkfifo(fifo, 0o600);
      const startFd = openSync(fifo, constants.O_RDWR);
      const [statusRead, statusWrite] = pipe();
      const setup = containerSetupOps(resolved, { ownCgroup: cgroup !== null, layer: null, image: null, mounts: resolved.mounts as PlannedMount[], hostEntries: null, ownFiles: [] })
        // The init outlives this command: its parent is whoever ran it (a shim), not us.
        .filter((o) => !(o.name === 'PRCTL' && o.fields.option === PR.SET_PDEATHSIG));
      const ops = pendingPlan({
        cloneFlags: cloneFlags(resolved, cgroup !== null), setup, beforeExec: lastStepOps(resolved.hardening),
        command: resolved.command, env: envList(resolved.env), searchPath: searchPath(resolved.env), stdio: [0, 1, 2],
      }, statusWrite, startFd);
      let child;
      try {
        child = clonePlan(encodePlan(ops, statusWrite), cloneFlags(resolved, cgroup !== null), cgroup?.fd);
      } finally {
        close(statusWrite);
        closeSync(startFd);
      }
      close(child.pidfd);
      const channel = new StatusChannel(statusRead);
      const first = await channel.next();
      channel.close();
      if (first?.kind === 'error') throw stepError(ops, first);
      if (first?.kind !== 'ready') throw new CorralError('the container init exited during setup', { code: 'ERR_SETUP_FAILED', step: 'setup' });
      const record: Record_ = { ociVersion: String(config.ociVersion ?? OCI_VERSION), id, pid: child.pid, startTime: startTime(child.pid) ?? '', bundle, rootfs: oci.rootfs, created: new Date().toISOString(), annotations: oci.annotations, cgroup: cgroup?.path ?? null };
      writeFileSync(join(dir, 'state.json.tmp'), JSON.stringify(record));
      renameSync(join(dir, 'state.json.tmp'), join(dir, 'state.json'));
      return child.pid;
    } catch (e) {
      if (cgroup) await cgroup.remove().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** runc's state of a container. */
  state(id: string): OciState {
    const r = this.#read(id);
    const annotations = Object.keys(r.annotations).length > 0 ? { annotations: r.annotations } : {};
    return { ociVersion: r.ociVersion, id, pid: this.#alive(r) ? r.pid : 0, status: this.#status(r), bundle: r.bundle, rootfs: r.rootfs, created: r.created, owner: '', ...annotations };
  }

  #alive(r: Record_): boolean {
    return r.startTime !== '' && startTime(r.pid) === r.startTime && !readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  }

  #status(r: Record_): OciState['status'] {
    if (!this.#alive(r)) return 'stopped';
    if (existsSync(join(this.#dir(r.id), 'exec.fifo'))) return 'created';
    const group = r.cgroup === null ? null : Cgroup.open(r.cgroup);
    return group && group.event('frozen') === 1 ? 'paused' : 'running';
  }

  /** Lets a created container's init exec its process. */
  start(id: string): void {
    const r = this.#read(id);
    const status = this.#status(r);
    if (status !== 'created') throw new CorralError(`cannot start a container that is ${status}`, { code: 'ERR_CONTAINER_STATE' });
    const fifo = join(this.#dir(id), 'exec.fifo');
    const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      writeSync(fd, Buffer.from([1]));
    } finally {
      closeSync(fd);
      rmSync(fifo);
    }
  }

  /** Sends a signal to the init, or (all) to every process of its cgroup. */
  kill(id: string, signal: number, all: boolean): void {
    const r = this.#read(id);
    if (!this.#alive(r)) throw new CorralError(`container "${id}" is not running`, { code: 'ERR_CONTAINER_STATE' });
    if (all && r.cgroup) {
      for (const pid of readFileSync(join(r.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) signalPid(Number(pid), signal);
    } else {
      signalPid(r.pid, signal);
    }
  }

  /** Removes a stopped container (force: kills a live one first): its cgroup and state directory. */
  async delete(id: string, force: boolean): Promise<void> {
    const r = this.#read(id);
    const status = this.#status(r);
    if (status !== 'stopped' && status !== 'created' && !force) throw new CorralError(`cannot delete container "${id}" that is ${status}: stop it first or use --force`, { code: 'ERR_CONTAINER_STATE' });
    if (this.#alive(r)) signalPid(r.pid, 9);
    const group = r.cgroup === null ? null : Cgroup.open(r.cgroup);
    await group?.remove();
    for (let i = 0; i < 200 && this.#alive(r); i++) await new Promise((done) => setTimeout(done, 5));
    rmSync(this.#dir(id), { recursive: true, force: true });
  }
}

function signalPid(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
