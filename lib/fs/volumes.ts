import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename } from 'node:fs/promises';
import { treeSizeMapped } from './tree-size.ts';
import { removeTree } from './remove-tree.ts';
import { runtimeDir } from './runtime-root.ts';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { isSingleIdMap, toHost, type IdMap } from '../sys/id-map.ts';
import { UseMarkers } from './use-markers.ts';
import { VOLUME_NAME } from './mounts.ts';
import { removeTreeMapped } from './remove-mapped.ts';
import { shiftOwners } from './shift-owners.ts';

/** What inspect() and list() tell about a volume. */
export interface VolumeInfo {
  name: string;
  /** The directory containers see. */
  path: string;
  createdAt: Date;
  labels: Record<string, string>;
  /** The owner and mode its data directory was created with (podman's -o uid=, gid=), if any. */
  options: VolumeOptions;
  sizeBytes: number;
  /** Ids of the containers (of any live process) that use it now. */
  usedBy: string[];
}

/** The owner (ids inside the containers) and mode of a new volume's data directory; default
 * root's (the caller rootless) and 0755. */
export interface VolumeOptions {
  uid?: number;
  gid?: number;
  mode?: number;
}

interface VolumeMeta {
  createdAt: string;
  labels: Record<string, string>;
  options?: VolumeOptions;
}

function checkOptions(options: VolumeOptions): VolumeOptions {
  const id = (v: unknown): boolean => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32 - 1);
  if (!id(options.uid) || !id(options.gid)) {
    throw new CorralError(`invalid volume owner ${options.uid}:${options.gid}: ids are integers from 0 to 4294967294`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (options.mode !== undefined && !(Number.isSafeInteger(options.mode) && options.mode >= 0 && options.mode <= 0o7777)) {
    throw new CorralError(`invalid volume mode ${options.mode}: a permission mode from 0 to 0o7777`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return Object.fromEntries(Object.entries({ uid: options.uid, gid: options.gid, mode: options.mode }).filter(([, v]) => v !== undefined));
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !VOLUME_NAME.test(name)) {
    throw new CorralError(`invalid volume name '${String(name)}': use letters, digits, '_', '.' and '-'`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return name;
}

function notFound(name: string): CorralError {
  return new CorralError(`no volume named ${name}`, { code: 'ERR_VOLUME_NOT_FOUND', path: name });
}

/** Named volumes under <root>/volumes: data whose life is independent of any container and of the
 * process that made it. Each is <name>/{data, volume.json, users/}: users holds one marker per
 * container using it, named after its process, so markers of dead processes are ignored. */
export class VolumeStore {
  readonly #dir: string;
  readonly #idMap: IdMap | null;

  /** Opens (or makes) root/volumes, and root itself, private to this user (see runtime-root.ts).
   * idMap: rootless, the containers' user namespace map (owners inside become host ids through
   * it, and what the containers' other users wrote is removed through it); null as root. */
  constructor(root: string, idMap: IdMap | null = null) {
    this.#dir = runtimeDir(root, 'volumes');
    this.#idMap = idMap;
  }

  /** Creates a volume, its data directory with the owner and mode asked for; ERR_VOLUME_EXISTS
   * when the name is taken, ERR_ROOTLESS_IDS (before anything is made) for an owner the map
   * lacks. */
  async create(name: string, options: { labels?: Record<string, string> } & VolumeOptions = {}): Promise<VolumeInfo> {
    checkName(name);
    const owner = checkOptions(options);
    this.#checkMapped(name, owner);
    const exists = (): CorralError => new CorralError(`volume ${name} already exists`, { code: 'ERR_VOLUME_EXISTS', path: name });
    if (existsSync(join(this.#dir, name))) throw exists();
    const staging = this.#stage({ createdAt: new Date().toISOString(), labels: options.labels ?? {}, options: owner }, name);
    let placed = false;
    try {
      await this.#prepare(join(staging, 'data'), owner);
      placed = this.#place(staging, name);
    } catch (e) {
      throw e instanceof CorralError ? e : fromNodeError(e, `create volume ${name}`, staging);
    } finally {
      // Its data may be a subordinate id's already: removed through the map.
      if (!placed) await removeTreeMapped(staging, this.#idMap);
    }
    if (!placed) throw exists();
    return this.inspect(name);
  }

  /** An owner other than root needs the ids: as root any, rootless those the map has. */
  #checkMapped(name: string, { uid = 0, gid = 0 }: VolumeOptions): void {
    if (!this.#idMap || (uid === 0 && gid === 0)) return;
    const missing = [toHost(this.#idMap.uids, uid) === null ? `uid ${uid}` : null, toHost(this.#idMap.gids, gid) === null ? `gid ${gid}` : null].filter(Boolean);
    if (missing.length === 0) return;
    const how = isSingleIdMap(this.#idMap)
      ? 'only your own id is mapped (root inside): add a subordinate range for your user to /etc/subuid and /etc/subgid and install newuidmap/newgidmap (Debian: uidmap)'
      : 'your subordinate range in /etc/subuid and /etc/subgid does not cover it';
    throw new CorralError(`volume ${name} cannot be owned by ${uid}:${gid}: ${missing.join(' and ')} not mapped: ${how}`, { code: 'ERR_ROOTLESS_IDS', path: name });
  }

  /** Gives a new data directory its mode, then its owner (as root directly, rootless through the
   * map: the caller cannot chown to its subordinate ids itself). */
  async #prepare(data: string, { uid = 0, gid = 0, mode }: VolumeOptions): Promise<void> {
    if (mode !== undefined) chmodSync(data, mode);
    if (uid === 0 && gid === 0) return;
    if (!this.#idMap) chownSync(data, uid, gid);
    else await shiftOwners(data, [{ rel: '.', uid, gid, mode: mode ?? null }], this.#idMap);
  }

  /** All volumes, by name. */
  async list(): Promise<VolumeInfo[]> {
    let names: string[];
    try {
      names = (await readdir(this.#dir)).filter((n) => VOLUME_NAME.test(n)).sort();
    } catch {
      return [];
    }
    const infos: VolumeInfo[] = [];
    for (const name of names) {
      try {
        infos.push(await this.inspect(name));
      } catch (e) {
        if ((e as CorralError).code !== 'ERR_VOLUME_NOT_FOUND') throw e;
      }
    }
    return infos;
  }

  /** One volume's details; ERR_VOLUME_NOT_FOUND if there is none. */
  async inspect(name: string): Promise<VolumeInfo> {
    checkName(name);
    const dir = join(this.#dir, name);
    let meta: VolumeMeta;
    try {
      meta = JSON.parse(await readFile(join(dir, 'volume.json'), 'utf8')) as VolumeMeta;
    } catch {
      throw notFound(name);
    }
    return {
      name,
      path: join(dir, 'data'),
      createdAt: new Date(meta.createdAt),
      labels: meta.labels,
      options: meta.options ?? {},
      sizeBytes: await treeSizeMapped(join(dir, 'data'), this.#idMap),
      usedBy: this.#users(name).holders(),
    };
  }

  /** Removes a volume and its data; ERR_VOLUME_IN_USE while a container uses it, unless forced. */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    checkName(name);
    const dir = join(this.#dir, name);
    await this.inspect(name);
    const users = this.#users(name).holders();
    if (users.length > 0 && !options.force) {
      throw new CorralError(`volume ${name} is in use by ${users.join(', ')}`, { code: 'ERR_VOLUME_IN_USE', path: name });
    }
    // Gone at once for everyone (a rename), then deleted.
    const trash = join(this.#dir, `.trash-${randomBytes(6).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (e) {
      throw fromNodeError(e, `remove volume ${name}`, dir);
    }
    await removeTreeMapped(trash, this.#idMap);
  }

  /** Removes every volume no container uses; returns their names. */
  async prune(): Promise<string[]> {
    const removed: string[] = [];
    for (const v of await this.list()) {
      if (v.usedBy.length > 0) continue;
      try {
        await this.remove(v.name);
        removed.push(v.name);
      } catch (e) {
        if ((e as CorralError).code !== 'ERR_VOLUME_IN_USE' && (e as CorralError).code !== 'ERR_VOLUME_NOT_FOUND') throw e;
      }
    }
    return removed;
  }

  /** For a container that mounts the volume: creates it if needed, marks it used by the container
   * and returns its data directory; owner: the process tag the mark belongs to (default ours). */
  acquire(name: string, containerId: string, owner?: string): string {
    checkName(name);
    const staging = this.#stage({ createdAt: new Date().toISOString(), labels: {} }, name);
    let placed = false;
    try {
      placed = this.#place(staging, name);
    } finally {
      if (!placed) removeTree(staging); // the name is taken, or the rename failed
    }
    this.#users(name).add(containerId, owner);
    return join(this.#dir, name, 'data');
  }

  /** The container no longer uses the volume. */
  release(name: string, containerId: string, owner?: string): void {
    this.#users(name).remove(containerId, owner);
  }

  /** Builds a volume aside (data, users, volume.json), for #place to rename into place. */
  #stage(meta: VolumeMeta, name: string): string {
    const staging = join(this.#dir, `.new-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(join(staging, 'data'), { recursive: true });
      mkdirSync(join(staging, 'users'));
      writeFileSync(join(staging, 'volume.json'), JSON.stringify(meta));
      return staging;
    } catch (e) {
      removeTree(staging);
      throw fromNodeError(e, `create volume ${name}`, staging);
    }
  }

  /** Makes a staged volume the volume name atomically; false if it exists (the caller removes
   * the staging then, and on a failure). */
  #place(staging: string, name: string): boolean {
    const final = join(this.#dir, name);
    try {
      renameSync(staging, final);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') return false;
      throw fromNodeError(e, `create volume ${name}`, final);
    }
  }

  /** The containers using a volume. */
  #users(name: string): UseMarkers {
    return new UseMarkers(join(this.#dir, name, 'users'), `volume ${name}`, { makeDir: false });
  }
}
