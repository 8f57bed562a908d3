import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, errorCode, fromNodeError } from '../sys/errors.ts';
import { lockExclusive, mkfifo } from '../sys/libc.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import type { SavedHostState } from './host-resources.ts';
import type { ResolvedImage } from './image-provider.ts';
import type { ContainerSpec } from './spec.ts';
import type { DetachedOptions } from './detached-spec.ts';
import type { IdMap } from '../sys/id-map.ts';

/** What a detached container's state.json holds: written by the process that made it (and under
 * the lock by any that changes it), read by every process of the runtime root. */
export interface PersistedState {
  version: 1;
  id: string;
  name: string | null;
  createdAt: string;
  /** The spec as given (id filled in); a later process resolves it again. */
  spec: ContainerSpec & { id: string };
  /** Rootless, the user namespace map it runs with (the runtime's when it was made): a later
   * process exec's, commits and removes through the same one. Absent: the single mapping. */
  idMap?: IdMap;
  image: ResolvedImage | null;
  /** The supervisor, named by pid and start time (never pid alone). */
  supervisor: { pid: number; startTime: string };
  host: SavedHostState;
  options: DetachedOptions;
}

/** What the supervisor writes to process.json (bindings/supervisor.c write_state). */
export interface ProcessRecord {
  status: 'created' | 'running' | 'restarting' | 'exited';
  pid: number;
  startTime: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  signal: number | null;
  restartCount: number;
  startError: { step: number; errno: number } | null;
}

const ID_DIR = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const TAG_DIR = /^proc-\d+-\d+$/;

function corrupt(file: string, reason: string): CorralError {
  return new CorralError(`container state ${file} is unreadable: ${reason}`, { code: 'ERR_STATE_CORRUPT', path: file, step: 'read the container state' });
}

/** The state directories of a runtime root's detached containers, `<root>/containers/<id>/`
 * (state.json, the supervisor's process.json, control FIFO, logs), and the names index
 * `<root>/containers/.names/<name>` (made with O_EXCL, so a name is taken once per root). */
export class StateStore {
  readonly #root: string;
  readonly #base: string;

  constructor(root: string) {
    this.#root = root;
    this.#base = join(root, 'containers');
  }

  /** The state directory of a container. */
  dir(id: string): string {
    return join(this.#base, id);
  }

  /** Makes the directory (and its control FIFO) and takes the name; ERR_CONTAINER_EXISTS when the
   * id or the name is taken. Undone by remove(). */
  reserve(id: string, name: string | null): void {
    const dir = this.dir(id);
    runtimeDir(this.#root, 'containers');
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (errorCode(e) === 'EEXIST') throw new CorralError(`a container with id ${id} already exists`, { code: 'ERR_CONTAINER_EXISTS', path: dir });
      throw fromNodeError(e, 'create the container state directory', dir);
    }
    try {
      mkfifo(join(dir, 'control'), 0o600);
      if (name !== null) this.#takeName(id, name);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** True while the container's state directory exists. */
  exists(id: string): boolean {
    return existsSync(this.dir(id));
  }

  /** Writes state.json atomically (a new file renamed over the old). */
  write(state: PersistedState): void {
    const file = join(this.dir(state.id), 'state.json');
    const temp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(temp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
      renameSync(temp, file);
    } catch (e) {
      throw fromNodeError(e, 'write the container state', file);
    }
  }

  /** A container's state; ERR_CONTAINER_NOT_FOUND when it has none, ERR_STATE_CORRUPT naming the
   * file when it cannot be read as one. */
  read(id: string): PersistedState {
    const file = join(this.dir(id), 'state.json');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (errorCode(e) === 'ENOENT') throw new CorralError(`no such container: ${id}`, { code: 'ERR_CONTAINER_NOT_FOUND', path: file });
      throw fromNodeError(e, 'read the container state', file);
    }
    let state: PersistedState;
    try {
      state = JSON.parse(text) as PersistedState;
    } catch (e) {
      throw corrupt(file, (e as Error).message);
    }
    if (state?.version !== 1 || state.id !== id || typeof state.supervisor?.pid !== 'number' || typeof state.spec !== 'object' || typeof state.host !== 'object') {
      throw corrupt(file, 'not a corral container state (version 1)');
    }
    return state;
  }

  /** What the supervisor last recorded of the container's process, or null before its first record. */
  readProcess(id: string): ProcessRecord | null {
    const file = join(this.dir(id), 'process.json');
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord;
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return null;
      throw corrupt(file, (e as Error).message);
    }
  }

  /** Ids of every container directory of the root (layer directories of process tags left out). */
  ids(): string[] {
    try {
      return readdirSync(this.#base, { withFileTypes: true })
        .filter((d) => d.isDirectory() && ID_DIR.test(d.name) && !TAG_DIR.test(d.name))
        .map((d) => d.name);
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return [];
      throw fromNodeError(e, 'list containers', this.#base);
    }
  }

  /** The id an id, a name or a unique id prefix names (as docker resolves them). */
  resolve(idOrName: string): string {
    if (typeof idOrName !== 'string' || idOrName === '' || !ID_DIR.test(idOrName)) {
      throw new CorralError(`no such container: ${String(idOrName)}`, { code: 'ERR_CONTAINER_NOT_FOUND' });
    }
    const ids = this.ids();
    if (ids.includes(idOrName)) return idOrName;
    const named = this.#nameOwner(idOrName);
    if (named !== null && ids.includes(named)) return named;
    const matches = ids.filter((id) => id.startsWith(idOrName));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new CorralError(`container prefix ${idOrName} is ambiguous: ${matches.join(', ')}`, { code: 'ERR_CONTAINER_AMBIGUOUS' });
    }
    throw new CorralError(`no such container: ${idOrName}`, { code: 'ERR_CONTAINER_NOT_FOUND' });
  }

  /** Runs fn holding the container's lock (flock: a killed holder releases it), so concurrent
   * read-modify-writes from several processes do not lose each other's changes. */
  withLock<T>(id: string, fn: () => T): T {
    const file = join(this.dir(id), 'lock');
    let fd: number;
    try {
      fd = openSync(file, 'a', 0o600);
    } catch (e) {
      if (errorCode(e) === 'ENOENT') throw new CorralError(`no such container: ${id}`, { code: 'ERR_CONTAINER_NOT_FOUND', path: file });
      throw fromNodeError(e, 'open the container lock', file);
    }
    try {
      lockExclusive(fd, file);
      return fn();
    } finally {
      closeSync(fd);
    }
  }

  /** Gives a container another name: under its lock, so concurrent renames (and any other
   * read-modify-write of state.json) from several processes never lose one another's change. */
  rename(id: string, name: string): void {
    this.withLock(id, () => {
      const state = this.read(id);
      if (state.name === name) return;
      this.#takeName(id, name);
      const old = state.name;
      this.write({ ...state, name });
      if (old !== null) this.#freeName(id, old);
    });
  }

  /** Deletes a container's state directory and frees its name. */
  remove(id: string, name: string | null): void {
    // The name as it is now: another process may have renamed it since this handle was made.
    let current = name;
    try {
      current = this.read(id).name;
    } catch {
      // unreadable: the name the handle knows
    }
    if (current !== null) this.#freeName(id, current);
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  #freeName(id: string, name: string): void {
    if (this.#nameOwner(name) !== id) return;
    try {
      unlinkSync(join(this.#base, '.names', name));
    } catch {
      // freed already
    }
  }

  #takeName(id: string, name: string): void {
    const names = join(this.#base, '.names');
    mkdirSync(names, { recursive: true, mode: 0o700 });
    const file = join(names, name);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, id, { flag: 'wx', mode: 0o600 });
        return;
      } catch (e) {
        if (errorCode(e) !== 'EEXIST') throw fromNodeError(e, 'take the container name', file);
      }
      const holder = this.#nameOwner(name);
      // A name whose container is gone (its creator died before removing it) is free again.
      if (holder !== null && this.ids().includes(holder)) {
        throw new CorralError(`the container name ${name} is already in use by ${holder}`, { code: 'ERR_CONTAINER_EXISTS', path: file });
      }
      rmSync(file, { force: true });
    }
    throw new CorralError(`the container name ${name} is being taken by another process`, { code: 'ERR_CONTAINER_EXISTS', path: file });
  }

  #nameOwner(name: string): string | null {
    try {
      return readFileSync(join(this.#base, '.names', name), 'utf8');
    } catch {
      return null;
    }
  }
}
