import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import { BRIDGE_PREFIX, removeBridge } from './bridge.ts';
import { attach, detach, liveEndpoints, sweepEndpoints, type AttachRequest, type Attachment } from './endpoints.ts';
import { formatAddress, formatSubnet, isHostOf, overlaps, parseAddress, parseSubnet, type Subnet } from './ipv4.ts';
import { withLock } from './lock.ts';
import { DEFAULT_NETWORK } from './default-network.ts';
import { holdPorts, type PortRequest } from './ports.ts';
import type { NetnsPool } from './netns-pool.ts';
import { RtNetlink } from './rtnetlink.ts';

/** A network as it is persisted under <root>/networks/<name>/network.json. */
export interface StoredNetwork {
  name: string;
  /** The Linux bridge (a hash of the runtime root and the name: unique on the host). */
  bridge: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  createdAt: string;
}

/** Where a network's state lives. */
export interface NetworkPaths {
  dir: string;
  /** One file per address in use (lib/net/ipam.ts). */
  endpoints: string;
  /** The hosts file containers bind-mount as /etc/hosts. */
  hosts: string;
  /** The resolv.conf they bind-mount as /etc/resolv.conf. */
  resolvConf: string;
  lock: string;
}

/** What inspect() and list() tell about a network. */
export interface NetworkInfo extends Omit<StoredNetwork, 'createdAt'> {
  createdAt: Date;
  /** Containers attached now (of any live process). */
  containers: { id: string; ip: string; names: string[] }[];
}

/** Options of networks.create(). */
export interface NetworkOptions {
  /** 'A.B.C.D/N'; default a free 10.89.X.0/24. */
  subnet?: string;
  /** Default the subnet's first address. */
  gateway?: string;
  /** No traffic to or from outside the network (published ports from the host still work). */
  internal?: boolean;
  labels?: Record<string, string>;
}

const DEFAULT_SUBNET = '10.88.0.0/16';
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new CorralError(`invalid network name '${String(name)}': use up to 64 letters, digits, '_', '.' and '-'`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return name;
}

function notFound(name: string): CorralError {
  return new CorralError(`no network named ${name}`, { code: 'ERR_NETWORK_NOT_FOUND', path: name });
}

/** Bridge networks under <root>/networks: their settings, address files and hosts file, shared by
 * every process using the same root; the kernel side (bridge, nftables rules) is made when the
 * first container attaches and removed with the network. */
export class NetworkStore {
  readonly #root: string;
  readonly #dir: string;
  readonly #pool: NetnsPool | null;

  /** pool: where attachments take a prepared namespace from (null: each makes its own). */
  constructor(root: string, pool: NetnsPool | null = null) {
    this.#root = root;
    this.#pool = pool;
    this.#dir = runtimeDir(root, 'networks');
  }

  #paths(name: string): NetworkPaths {
    const dir = join(this.#dir, name);
    return { dir, endpoints: join(dir, 'endpoints'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf'), lock: join(dir, 'lock') };
  }

  #read(name: string): StoredNetwork | null {
    try {
      return JSON.parse(readFileSync(join(this.#paths(name).dir, 'network.json'), 'utf8')) as StoredNetwork;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw fromNodeError(e, 'read a network', join(this.#paths(name).dir, 'network.json'));
    }
  }

  #stored(): StoredNetwork[] {
    let names: string[];
    try {
      names = readdirSync(this.#dir).filter((n) => NAME.test(n)).sort();
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      const net = this.#read(n);
      return net ? [net] : [];
    });
  }

  /** Creates a network; ERR_NETWORK_EXISTS when the name is taken, ERR_NETWORK_ADDRESS when the
   * subnet overlaps another network's. */
  async create(name: string, options: NetworkOptions = {}): Promise<NetworkInfo> {
    checkName(name);
    if (typeof options !== 'object' || options === null) throw new CorralError('network options must be an object', { code: 'ERR_INVALID_ARG_VALUE' });
    this.#make(name, options, false);
    return this.inspect(name);
  }

  /** Makes the network's directory and settings under the store lock; false when it exists and
   * existingOk. */
  #make(name: string, options: NetworkOptions, existingOk: boolean): boolean {
    return withLock(join(this.#dir, '.lock'), () => {
      if (this.#read(name)) {
        if (existingOk) return false;
        throw new CorralError(`network ${name} already exists`, { code: 'ERR_NETWORK_EXISTS', path: name });
      }
      const others = this.#stored().map((n) => ({ name: n.name, subnet: parseSubnet(n.subnet) }));
      const subnet = options.subnet === undefined ? freeSubnet(others.map((o) => o.subnet)) : parseSubnet(options.subnet);
      const clash = others.find((o) => overlaps(o.subnet, subnet));
      if (clash) throw new CorralError(`subnet ${formatSubnet(subnet)} overlaps network ${clash.name}'s`, { code: 'ERR_NETWORK_ADDRESS', path: formatSubnet(subnet) });
      const gateway = options.gateway === undefined ? subnet.base + 1 : parseAddress(options.gateway, 'gateway');
      if (!isHostOf(subnet, gateway)) throw new CorralError(`gateway ${options.gateway} is not a host address of ${formatSubnet(subnet)}`, { code: 'ERR_INVALID_ARG_VALUE' });
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(options.labels ?? {})) {
        if (typeof v !== 'string') throw new CorralError(`label ${k} must be a string`, { code: 'ERR_INVALID_ARG_VALUE' });
        labels[k] = v;
      }
      const stored: StoredNetwork = {
        name,
        bridge: `${BRIDGE_PREFIX}${createHash('sha256').update(`${this.#root}\0${name}`).digest('hex').slice(0, 12)}`,
        subnet: formatSubnet(subnet),
        gateway: formatAddress(gateway),
        internal: options.internal === true,
        labels,
        createdAt: new Date().toISOString(),
      };
      const paths = this.#paths(name);
      try {
        mkdirSync(paths.endpoints, { recursive: true, mode: 0o700 });
        writeFileSync(paths.hosts, '', { mode: 0o644 });
        writeFileSync(join(paths.dir, 'network.json'), JSON.stringify(stored, null, 2));
      } catch (e) {
        rmSync(paths.dir, { recursive: true, force: true });
        throw fromNodeError(e, 'create a network', paths.dir);
      }
      return true;
    });
  }

  /** All networks, by name. */
  async list(): Promise<NetworkInfo[]> {
    return this.#stored().map((n) => this.#info(n));
  }

  /** One network with the containers attached to it; ERR_NETWORK_NOT_FOUND if there is none. */
  async inspect(name: string): Promise<NetworkInfo> {
    const stored = this.#read(checkName(name));
    if (!stored) throw notFound(name);
    return this.#info(stored);
  }

  #info(stored: StoredNetwork): NetworkInfo {
    const containers = liveEndpoints({ config: stored, paths: this.#paths(stored.name) }).map((e) => ({ id: e.container, ip: e.ip, names: e.names }));
    const { name, bridge, subnet, gateway, internal, labels } = stored;
    return { name, bridge, subnet, gateway, internal, labels, createdAt: new Date(stored.createdAt), containers };
  }

  /** Removes a network, its bridge and its rules; ERR_NETWORK_IN_USE while containers use it. */
  async remove(name: string): Promise<void> {
    const stored = this.#read(checkName(name));
    if (!stored) throw notFound(name);
    const paths = this.#paths(name);
    withLock(paths.lock, () => {
      const users = sweepEndpoints({ config: stored, paths }).map((e) => e.container);
      if (users.length > 0) throw new CorralError(`network ${name} is in use by ${users.join(', ')}`, { code: 'ERR_NETWORK_IN_USE', path: name });
      if (process.getuid!() === 0) {
        const host = new RtNetlink();
        try {
          removeBridge(host, stored.bridge);
        } finally {
          host.close();
        }
      }
      rmSync(paths.dir, { recursive: true, force: true });
    });
  }

  /** Removes every network no container uses; returns their names. */
  async prune(): Promise<string[]> {
    const removed: string[] = [];
    for (const n of this.#stored()) {
      try {
        await this.remove(n.name);
        removed.push(n.name);
      } catch (e) {
        if ((e as CorralError).code !== 'ERR_NETWORK_IN_USE') throw e;
      }
    }
    return removed;
  }

  /** Attaches a container to a network (the default one is made on first use): holds its host
   * ports, then lib/net/endpoints.ts does the rest. owner: the process tag the endpoint belongs to
   * (default this process's). handOver() lets the held ports go too: a detached container's
   * published ports are then kept by their DNAT rules alone (docker's userland-proxy=false). */
  async attach(name: string, request: Omit<AttachRequest, 'ports'> & { ports: PortRequest[] }): Promise<Attachment> {
    if (process.getuid!() !== 0) {
      throw new CorralError('bridge networks need root for now (rootless networking with pasta is not implemented)', { code: 'ERR_NETWORK_UNAVAILABLE', path: name });
    }
    let stored = this.#read(checkName(name));
    if (!stored && name === DEFAULT_NETWORK) {
      this.#make(name, { subnet: DEFAULT_SUBNET }, true);
      stored = this.#read(name);
    }
    if (!stored) throw notFound(name);
    const ports = await holdPorts(request.ports);
    try {
      const attachment = attach({ config: stored, paths: this.#paths(name) }, { ...request, ports }, this.#pool);
      let held = true;
      const letPortsGo = (): void => {
        if (held) for (const p of ports) p.close();
        held = false;
      };
      return {
        ...attachment,
        handOver: () => {
          attachment.handOver();
          letPortsGo();
        },
        release: () => {
          try {
            attachment.release();
          } finally {
            letPortsGo();
          }
        },
      };
    } catch (e) {
      for (const p of ports) p.close();
      throw e;
    }
  }

  /** Undoes the endpoint a container of another process left on a network (lib/net/endpoints.ts
   * detach): a detached container's, once its supervisor is gone. A network removed meanwhile has
   * nothing left to undo. */
  detach(name: string, endpoint: { container: string; ip: string; owner: string }): void {
    const stored = this.#read(checkName(name));
    if (stored) detach({ config: stored, paths: this.#paths(name) }, endpoint);
  }
}

/** The first 10.89.X.0/24 no other network overlaps. */
function freeSubnet(taken: readonly Subnet[]): Subnet {
  for (let x = 0; x < 256; x++) {
    const candidate = parseSubnet(`10.89.${x}.0/24`);
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  throw new CorralError('no free subnet left in 10.89.0.0/16: give one', { code: 'ERR_NETWORK_ADDRESS' });
}
