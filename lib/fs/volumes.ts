import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename } from 'node:fs/promises';
import { treeSize } from './tree-size.ts';
import { removeTree, removeTreeAsync } from './remove-tree.ts';
import { runtimeDir } from './runtime-root.ts';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { UseMarkers } from './use-markers.ts';
import { VOLUME_NAME } from './mounts.ts';

/** What inspect() and list() tell about a volume. */
export interface VolumeInfo {
  name: string;
  /** The directory containers see. */
  path: string;
  createdAt: Date;
  labels: Record<string, string>;
  sizeBytes: number;
  /** Ids of the containers (of any live process) that use it now. */
  usedBy: string[];
}

interface VolumeMeta {
  createdAt: string;
  labels: Record<string, string>;
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

  /** Opens (or makes) root/volumes, and root itself, private to this user (see runtime-root.ts). */
  constructor(root: string) {
    this.#dir = runtimeDir(root, 'volumes');
  }

  /** Creates a volume; ERR_VOLUME_EXISTS when the name is taken. */
  async create(name: string, options: { labels?: Record<string, string> } = {}): Promise<VolumeInfo> {
    checkName(name);
    if (!this.#make(name, options.labels ?? {})) throw new CorralError(`volume ${name} already exists`, { code: 'ERR_VOLUME_EXISTS', path: name });
    return this.inspect(name);
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
      sizeBytes: await treeSize(join(dir, 'data')),
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
    await removeTreeAsync(trash);
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
    this.#make(name, {});
    this.#users(name).add(containerId, owner);
    return join(this.#dir, name, 'data');
  }

  /** The container no longer uses the volume. */
  release(name: string, containerId: string, owner?: string): void {
    this.#users(name).remove(containerId, owner);
  }

  /** Makes the volume atomically (built aside, then renamed into place); false if it exists. */
  #make(name: string, labels: Record<string, string>): boolean {
    const final = join(this.#dir, name);
    const staging = join(this.#dir, `.new-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(join(staging, 'data'), { recursive: true });
      mkdirSync(join(staging, 'users'));
      writeFileSync(join(staging, 'volume.json'), JSON.stringify({ createdAt: new Date().toISOString(), labels } satisfies VolumeMeta));
      renameSync(staging, final);
      return true;
    } catch (e) {
      removeTree(staging);
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
