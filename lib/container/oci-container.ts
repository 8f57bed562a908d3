import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { startTime } from '../sys/process-tag.ts';
import { Cgroup, enableControllers, type CgroupStats } from '../cgroup/cgroup.ts';
import type { CgroupWrites } from '../cgroup/limits.ts';
import { findV2Mount } from '../cgroup/hierarchy.ts';
import { ociHooks, runRuntimeHook, runRuntimeHooks, type HookState, type OciHook } from './oci-hooks.ts';

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
  /** The bundle's config.json as it was at create, which exec starts its processes from. */
  config: Record<string, any>;
}

/** What create does besides the bundle: where a terminal's master goes. */
export interface OciCreateOptions {
  /** A unix socket path the caller listens on for the pty master (process.terminal). */
  consoleSocket?: string;
  /** How many of our fds from 3 on the process gets (--preserve-fds). */
  passFds?: number;
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

  /** Sets up the bundle's container with its init blocked before exec until start(); returns its
   * pid. A failed create leaves nothing (no state directory, cgroup or process). */
  async create(id: string, bundle: string, options: OciCreateOptions = {}): Promise<number> {
    const dir = this.#dir(id);
    let config;
    try {
      config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    } catch (e) {
      throw new CorralError(`cannot read ${join(bundle, 'config.json')}: ${(e as Error).message}`, { code: 'ERR_INVALID_SPEC', path: join(bundle, 'config.json') });
    }
    mkdirSync(this.#root, { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CorralError(`container "${id}" already exists`, { code: 'ERR_CONTAINER_EXISTS' });
      throw e;
    }
    try {
      // Loaded here only: state, start, kill and delete run without the spec compiler.
      const { launchOciInit } = await import('./oci-create.ts');
      const init = await launchOciInit(id, config, bundle, join(dir, 'exec.fifo'), options);
      const record: Record_ = { ociVersion: String(config.ociVersion ?? OCI_VERSION), id, pid: init.pid, startTime: startTime(init.pid) ?? '', bundle, rootfs: init.rootfs, created: new Date().toISOString(), annotations: init.annotations, cgroup: init.cgroup, config };
      const lines = ociStateLines(record, this.#render(record, record.pid, 'created'));
      if (lines !== null) writeAtomically(join(dir, 'state.lines'), lines);
      writeAtomically(join(dir, 'state.json'), JSON.stringify(record));
      return init.pid;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** runc's state of a container. */
  state(id: string): OciState {
    const r = this.#read(id);
    return this.#render(r, this.#alive(r) ? r.pid : 0, this.#status(r));
  }

  #render(r: Record_, pid: number, status: OciState['status']): OciState {
    const annotations = Object.keys(r.annotations).length > 0 ? { annotations: r.annotations } : {};
    return { ociVersion: r.ociVersion, id: r.id, pid, status, bundle: r.bundle, rootfs: r.rootfs, created: r.created, owner: '', ...annotations };
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

  /** Lets a created container's init exec its process: its startContainer hooks first (inside
   * it), its poststart hooks after (here); a failing hook kills the container, as runc does. */
  async start(id: string): Promise<void> {
    const r = this.#read(id);
    const status = this.#status(r);
    if (status !== 'created') throw new CorralError(`cannot start a container that is ${status}`, { code: 'ERR_CONTAINER_STATE' });
    const hooks = ociHooks(r.config.hooks);
    try {
      if (hooks.startContainer.length > 0) await this.#startContainerHooks(r, hooks.startContainer);
      const fifo = join(this.#dir(id), 'exec.fifo');
      const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        writeSync(fd, Buffer.from([1]));
      } finally {
        closeSync(fd);
        rmSync(fifo);
      }
      runRuntimeHooks('poststart', hooks.poststart, this.#hookState(r, 'running'));
    } catch (e) {
      if ((e as CorralError).code === 'ERR_HOOK_FAILED' && this.#alive(r)) signalPid(r.pid, 9);
      throw e;
    }
  }

  /** The state a hook reads on its stdin. */
  #hookState(r: Record_, status: HookState['status']): HookState {
    return { ociVersion: r.ociVersion, id: r.id, pid: r.pid, status, bundle: r.bundle, ...(Object.keys(r.annotations).length > 0 ? { annotations: r.annotations } : {}) };
  }

  async #startContainerHooks(r: Record_, hooks: OciHook[]): Promise<void> {
    // Loaded here only: a start without these hooks needs no spec compiler.
    const { runStartContainerHooks } = await import('./oci-container-hooks.ts');
    await runStartContainerHooks(hooks, this.#hookState(r, 'created'), { pid: r.pid, alive: () => this.#alive(r), config: r.config, bundle: r.bundle, cgroup: r.cgroup });
  }

  /** Sends a signal to the init, or (all) to every process of its cgroup. */
  kill(id: string, signal: number, all: boolean): void {
    const r = this.#read(id);
    // containerd's shim takes "container not running" for a process that has finished.
    if (!this.#alive(r)) throw new CorralError(`cannot signal container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    if (all && r.cgroup) {
      for (const pid of readFileSync(join(r.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) signalPid(Number(pid), signal);
    } else {
      signalPid(r.pid, signal);
    }
  }

  /** The container's group (its processes, freezer and limits); an error when it has none. */
  #group(r: Record_, what: string): Cgroup {
    const group = r.cgroup === null ? null : Cgroup.open(r.cgroup);
    if (!group) throw new CorralError(`cannot ${what} container "${r.id}": it has no cgroup (no cgroup v2 hierarchy is mounted)`, { code: 'ERR_CGROUP_UNAVAILABLE' });
    return group;
  }

  /** Freezes (pause) or thaws (resume) every process of a running or paused container. */
  async setPaused(id: string, paused: boolean): Promise<void> {
    const r = this.#read(id);
    const status = this.#status(r);
    const from = paused ? 'running' : 'paused';
    if (status !== from) throw new CorralError(`cannot ${paused ? 'pause' : 'resume'} container "${id}" that is ${status}`, { code: 'ERR_CONTAINER_STATE' });
    await this.#group(r, paused ? 'pause' : 'resume').setFrozen(paused);
  }

  /** The pids of every process of the container (its cgroup's, or the init alone without one). */
  pids(id: string): number[] {
    const r = this.#read(id);
    if (!this.#alive(r)) return [];
    if (r.cgroup === null) return [r.pid];
    return this.#group(r, 'list the processes of').read('cgroup.procs').split('\n').filter(Boolean).map(Number);
  }

  /** Changes the limits of a live container (update --resources). */
  update(id: string, writes: CgroupWrites): void {
    const r = this.#read(id);
    if (!this.#alive(r)) throw new CorralError(`cannot update container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    const group = this.#group(r, 'update');
    const mount = findV2Mount();
    if (mount) enableControllers(mount, dirname(group.path), writes.controllers);
    group.apply(writes);
  }

  /** Usage of a live container's cgroup (events --stats). */
  stats(id: string): CgroupStats {
    const r = this.#read(id);
    if (!this.#alive(r)) throw new CorralError(`cannot read the stats of container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    return this.#group(r, 'read the stats of').stats();
  }

  /** A live container's group, for the events it has (memory.events: OOM kills). */
  cgroup(id: string): Cgroup {
    const r = this.#read(id);
    if (!this.#alive(r)) throw new CorralError(`cannot watch the events of container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    return this.#group(r, 'watch the events of');
  }

  /** The config.json a container was created from. */
  config(id: string): Record<string, any> {
    return this.#read(id).config;
  }

  /** What exec joins: the init, running or created (runc execs beside a created one too), (with a check that its pid still names it, for after a
   * pidfd of it is opened), the config it was created from, and its cgroup. */
  execTarget(id: string): { pid: number; stillOurs: () => boolean; config: Record<string, any>; bundle: string; cgroup: Cgroup | null } {
    const r = this.#read(id);
    const status = this.#status(r);
    if (status !== 'running' && status !== 'created') throw new CorralError(`cannot exec in container "${id}" that is ${status}`, { code: 'ERR_CONTAINER_STATE' });
    return { pid: r.pid, stillOurs: () => this.#alive(r), config: r.config, bundle: r.bundle, cgroup: r.cgroup === null ? null : Cgroup.open(r.cgroup) };
  }

  /** Removes a stopped container (force: kills a live one first): its cgroup and state directory;
   * then runs its poststop hooks, whose failures it returns. */
  async delete(id: string, force: boolean): Promise<string[]> {
    const r = this.#read(id);
    const status = this.#status(r);
    if (status !== 'stopped' && status !== 'created' && !force) throw new CorralError(`cannot delete container "${id}" that is ${status}: stop it first or use --force`, { code: 'ERR_CONTAINER_STATE' });
    if (this.#alive(r)) signalPid(r.pid, 9);
    const group = r.cgroup === null ? null : Cgroup.open(r.cgroup);
    await group?.remove();
    for (let i = 0; i < 200 && this.#alive(r); i++) await new Promise((done) => setTimeout(done, 5));
    // Poststop hooks run once it is gone; their failures are only reported (the spec's and runc's
    // rule: the container is deleted anyway).
    const warnings: string[] = [];
    ociHooks(r.config.hooks).poststop.forEach((hook, i) => {
      try {
        runRuntimeHook('poststop', i, hook, this.#hookState(r, 'stopped'));
      } catch (e) {
        warnings.push((e as Error).message);
      }
    });
    rmSync(this.#dir(id), { recursive: true, force: true });
    return warnings;
  }
}

/** runc's state JSON as `state` prints it. */
export function ociStateJson(state: OciState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** ROOT/ID/state.lines, what bindings/oci-front.c (the native front end) reads to run start, state,
 * kill and delete without Node: the format is described there. Null when a value would not fit on
 * a line (the front end then hands every command to Node). */
function ociStateLines(r: Record_, state: OciState): string | null {
  const cgroup = r.cgroup ?? '';
  if (cgroup.includes('\n') || r.startTime.includes('\n')) return null;
  // startContainer and poststart hooks run in Node's start, poststop hooks in its delete.
  const hooks = ociHooks(r.config.hooks);
  const noHooks = hooks.startContainer.length + hooks.poststart.length + hooks.poststop.length === 0 ? 1 : 0;
  return `corral-oci-state 1\n${r.pid}\n${r.startTime}\n${cgroup}\n${noHooks}\n${ociStateJson(state)}`;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function signalPid(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
