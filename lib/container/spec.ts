import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { isSingleIdMap, singleIdMap, toHost, type IdMap } from '../sys/id-map.ts';
import { userInfo } from 'node:os';
import { scratchOverUnmapped } from './unmapped-rootfs.ts';
import { commandLine } from './command-line.ts';
import { capabilityMask, DEFAULT_CAPABILITIES, type CapabilitySpec } from './capabilities.ts';
import { deviceRules, type DeviceSpec } from './devices.ts';
import type { DeviceRule } from '../cgroup/device-filter.ts';
import { limitWrites, type CgroupWrites, type Limits } from '../cgroup/limits.ts';
import { resolveMounts, type MountSpec, type ResolvedMount } from '../fs/mounts.ts';
import type { ImageDefaults } from './image-provider.ts';
import type { PullPolicy } from './pull-policy.ts';
import { checkTerminalSize, type TerminalSize } from './terminal.ts';
import { isIP } from 'node:net';
import { parseAddress } from '../net/ipv4.ts';
import { HOST_GATEWAY, type HostEntry } from '../net/hosts-file.ts';
import { setsDns, type DnsSettings } from '../net/resolv-conf.ts';
import type { PortRequest } from '../net/ports.ts';
import { DEFAULT_NETWORK } from '../net/default-network.ts';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, resolveHardening, type Hardening, type RlimitSpec, type SeccompSpec } from './hardening.ts';

/** Namespaces a spec can turn off (all are on by default; `user` is on when not root). */
export interface NamespaceToggles {
  pid?: boolean;
  mount?: boolean;
  uts?: boolean;
  ipc?: boolean;
  net?: boolean;
  cgroup?: boolean;
  user?: boolean;
}

/** What to run and how to isolate it: the input of run() and create(). */
export interface ContainerSpec {
  /** argv; command[0] is looked up in the container's PATH. With an image it replaces the image's
   * Cmd (after its Entrypoint) and may be left out. */
  command?: string[];
  /** Replaces the image's Entrypoint (docker run --entrypoint); the image's Cmd then no longer
   * applies. Without an image it comes before command. */
  entrypoint?: string[];
  /** An image of the runtime's store ('name:tag' or a manifest digest) to run: its layers become
   * the root (overlayfs), its config gives the command, environment, directory and user. */
  image?: string;
  /** When `image` is pulled from its registry: 'missing' (default), 'always' or 'never'. */
  pull?: PullPolicy;
  /** Root directory; without it the host root, read-only, with own /proc, /dev and a writable /tmp. */
  rootfs?: string;
  /** Without rootfs or image: 'full' (default), every directory of the host root, read-only;
   * 'system', for untrusted code, only the OS directories (/usr, /bin, /sbin, /lib*, /etc without
   * shadow, gshadow, ssh, sudoers), with an empty /home and /root. */
  hostRoot?: 'full' | 'system';
  /** Environment; default a plain PATH. */
  env?: Record<string, string>;
  /** Working directory inside the container (absolute); default '/'. */
  cwd?: string;
  /** Ids, or 'name[:group]' (names or numbers) resolved through the /etc/passwd and /etc/group
   * of the container's root (image, rootfs or host), as docker does. */
  user?: { uid: number; gid: number; groups?: number[] } | string;
  /** The container's host name (UTS namespace), also in its own /etc/hostname and /etc/hosts;
   * default the container's id (12 characters unless the spec gives one), as Docker. */
  hostname?: string;
  /** Nameservers for the container's own /etc/resolv.conf (docker run --dns), replacing the host's. */
  dns?: string[];
  /** Search domains for its resolv.conf (--dns-search), replacing the host's. */
  dnsSearch?: string[];
  /** Resolver options for its resolv.conf (--dns-option, e.g. 'ndots:2'), replacing the host's. */
  dnsOptions?: string[];
  /** More /etc/hosts entries, name to address (docker run --add-host NAME:ADDRESS); the address
   * 'host-gateway' is the host as the container reaches it (its network's gateway). */
  extraHosts?: Record<string, string>;
  /** 'none' (default): own network namespace with lo up; 'host': the host's network; 'bridge' (the
   * default network) or a network's name, or { name, aliases, ip }: a namespace of its own
   * attached to that network (root), resolving the network's containers by name. */
  network?: 'none' | 'host' | string | NetworkSpec;
  /** Host ports forwarded to the container; without network they join the default 'bridge'. */
  ports?: PortSpec[];
  namespaces?: NamespaceToggles;
  /** stdin, stdout and stderr: 'pipe' (default), 'inherit' or 'ignore'. */
  stdio?: StdioMode;
  /** A pseudo-terminal from the container's own devpts as stdio and controlling terminal, its
   * master as container.terminal (stdio is then unused). */
  tty?: boolean;
  /** The terminal's size at start (with tty). */
  consoleSize?: { cols: number; rows: number };
  /** An init as PID 1 (the executor stays behind, as tini does): it forwards signals to the
   * command and reaps zombies; the exit code is the command's. */
  init?: boolean;
  id?: string;
  labels?: Record<string, string>;
  /** Default: Docker's set. 'all', or { add, drop } with names like 'SYS_ADMIN'. */
  capabilities?: CapabilitySpec;
  /** cgroup v2 limits: memory, memorySwap, cpus, cpuWeight, pids, cpuset, io. */
  limits?: Limits;
  /** Bind mounts, tmpfs mounts and named volumes, mounted in this order. */
  mounts?: MountSpec[];
  /** The root mount read-only (mounts, /proc, /dev keep their own flags). */
  readonlyRootfs?: boolean;
  /** With a rootfs: 'overlay' (default) sends writes to a per-container layer discarded with the
   * container; 'direct' writes into the rootfs directory itself. */
  rootfsWritable?: 'overlay' | 'direct';
  /** no_new_privs (default true): setuid binaries and file capabilities grant nothing. */
  noNewPrivileges?: boolean;
  /** 'default' (Docker's intent), 'unconfined', or a Docker/OCI JSON profile. */
  seccomp?: SeccompSpec;
  /** Resource limits by name: { nofile: [1024, 4096], core: 0, … }. */
  rlimits?: RlimitSpec;
  oomScoreAdj?: number;
  /** Paths hidden from the container (default: Docker's list, e.g. /proc/kcore, /proc/keys). */
  maskedPaths?: string[];
  /** Paths made read-only (default: /proc/bus, /proc/fs, /proc/irq, /proc/sys). */
  readonlyPaths?: string[];
  /** Devices allowed besides Docker's defaults (null, zero, full, random, urandom, tty, ptmx,
   * ptys, tun): host nodes by path or classes by type/major/minor, with access 'rwm' or less. */
  devices?: DeviceSpec[];
}

/** spec.network as an object: the network and how the container is known on it. */
export interface NetworkSpec {
  name: string;
  /** More names it resolves by (besides its id and hostname). */
  aliases?: string[];
  /** A fixed address in the network's subnet; default the next free one. */
  ip?: string;
}

/** A published port: host (0 or absent: a free one, see container.ports()) on hostIp (default
 * 127.0.0.1, '0.0.0.0' for every address) forwarded to the container's port. */
export interface PortSpec {
  host?: number;
  hostIp?: string;
  container: number;
  protocol?: 'tcp' | 'udp';
}

/** How the container's fds 0-2 are connected. */
export type StdioMode = 'pipe' | 'inherit' | 'ignore';

/** A spec with every default filled in and every value checked. */
export interface ResolvedSpec {
  id: string;
  image: string | null;
  command: string[];
  rootfs: string | null;
  hostRoot: 'full' | 'system';
  env: Record<string, string>;
  cwd: string;
  user: { uid: number; gid: number; groups: number[] } | null;
  /** The user namespace's map, null without a user namespace. */
  idMap: IdMap | null;
  hostname: string;
  /** The spec's resolv.conf settings (null each: the host's). */
  dns: DnsSettings;
  /** spec.extraHosts as hosts file lines. */
  extraHosts: HostEntry[];
  /** 'bridge': attached to the network in attach; 'pasta': in a user namespace, the default
   * network through pasta (outbound and published ports, no other containers). */
  network: 'none' | 'host' | 'bridge' | 'pasta';
  attach: { network: string; names: string[]; ip: string | null } | null;
  ports: PortRequest[];
  namespaces: Required<NamespaceToggles>;
  stdio: StdioMode;
  /** The terminal's size at start when the spec asks for one; null: no terminal. */
  tty: { size: TerminalSize | null } | null;
  init: boolean;
  labels: Record<string, string>;
  /** Capabilities kept, as a bit mask. */
  capabilities: bigint;
  /** The limits as cgroup file writes. */
  limits: CgroupWrites;
  mounts: ResolvedMount[];
  readonlyRootfs: boolean;
  rootfsWritable: 'overlay' | 'direct';
  hardening: Hardening;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** The device filter's allow-list (defaults first). */
  devices: DeviceRule[];
}

/** The PATH a container gets when the spec gives none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const KNOWN_KEYS = new Set(['command', 'entrypoint', 'rootfs', 'hostRoot', 'env', 'cwd', 'user', 'hostname', 'dns', 'dnsSearch', 'dnsOptions', 'extraHosts', 'network', 'namespaces', 'stdio', 'id', 'labels', 'capabilities', 'limits', 'image', 'pull', 'mounts', 'readonlyRootfs', 'rootfsWritable', 'noNewPrivileges', 'seccomp', 'rlimits', 'oomScoreAdj', 'maskedPaths', 'readonlyPaths', 'devices', 'ports', 'tty', 'consoleSize', 'init']);
const NAMESPACE_KEYS = new Set(['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup', 'user']);
const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const HOSTNAME_PATTERN = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;

function invalid(message: string, path?: string): CorralError {
  return new CorralError(`invalid container spec: ${message}`, { code: 'ERR_INVALID_SPEC', ...(path ? { path } : {}) });
}

function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalid(`${what} must be a string`);
  if (value.includes('\0')) throw invalid(`${what} must not contain NUL`);
  return value;
}

function checkId(value: unknown, what: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xfffffffe) {
    throw invalid(`${what} must be an integer from 0 to 4294967294`);
  }
  return value as number;
}

/** An absolute rootfs that is a directory; restored: of a container made earlier, which may have
 * deleted it since, so it is not looked at (test/integration/detached.test.ts, deleted rootfs). */
function checkRootfs(rootfs: string, restored: boolean): string {
  if (!isAbsolute(rootfs)) throw invalid(`rootfs must be an absolute path, got '${rootfs}'`, rootfs);
  if (restored) return rootfs;
  let stat;
  try {
    stat = statSync(rootfs);
  } catch (e) {
    throw fromNodeError(e, 'check rootfs', rootfs);
  }
  if (!stat.isDirectory()) {
    throw new CorralError(`rootfs ${rootfs} is not a directory`, { code: 'ENOTDIR', errno: 20, syscall: 'stat', path: rootfs, step: 'check rootfs' });
  }
  return rootfs;
}

function stringRecord(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${what} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) out[k] = checkString(v, `${what}.${k}`);
  return out;
}

/** spec.network checked: 'none', 'host', or the network to attach to (spec.ports alone: 'bridge'). */
function resolveNetwork(value: unknown, ports: unknown): 'none' | 'host' | { name: string; aliases: string[]; ip: string | null } {
  if (value === undefined) value = ports === undefined ? 'none' : DEFAULT_NETWORK;
  if (value === 'none' || value === 'host') return value;
  if (typeof value === 'string') return { name: checkNetworkName(value), aliases: [], ip: null };
  if (typeof value !== 'object' || value === null) throw invalid(`network must be 'none', 'host', a network name or { name, aliases, ip }`);
  const v = value as NetworkSpec;
  const aliases = v.aliases ?? [];
  if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string' || !HOSTNAME_PATTERN.test(a))) throw invalid('network.aliases must be host names');
  if (v.ip !== undefined) {
    try {
      parseAddress(v.ip, 'network.ip');
    } catch {
      throw invalid(`network.ip '${String(v.ip)}' is not an IPv4 address`);
    }
  }
  return { name: checkNetworkName(v.name), aliases, ip: v.ip ?? null };
}

/** A list of strings each matching a test, or null when the spec leaves it out. */
function checkList(value: unknown, what: string, ok: (item: string) => boolean, expected: string): string[] | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || !ok(v))) throw invalid(`${what} must be an array of ${expected}`);
  return value as string[];
}

/** A name a resolver looks up: labels of letters, digits and '-', joined by dots. */
const DOMAIN_PATTERN = /^(?=.{1,253}$)[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62}))*\.?$/;

/** spec.dns, dnsSearch and dnsOptions checked. */
function resolveDns(spec: ContainerSpec): DnsSettings {
  return {
    servers: checkList(spec.dns, 'dns', (s) => isIP(s) !== 0, 'IP addresses'),
    search: checkList(spec.dnsSearch, 'dnsSearch', (s) => DOMAIN_PATTERN.test(s), 'domain names'),
    options: checkList(spec.dnsOptions, 'dnsOptions', (s) => /^[^\s\0]+$/.test(s), 'resolver options without spaces'),
  };
}

/** spec.extraHosts checked: names to addresses (or 'host-gateway', resolved once the network is
 * known: lib/net/endpoints.ts, etc-files.ts), as hosts file lines. */
function resolveExtraHosts(value: unknown, network: ResolvedSpec['network']): HostEntry[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('extraHosts must be an object of names to addresses');
  return Object.entries(value).map(([name, ip]) => {
    if (!DOMAIN_PATTERN.test(name)) throw invalid(`extraHosts name '${name}' is not a host name`);
    if (ip === HOST_GATEWAY) {
      if (network === 'none') throw invalid(`extraHosts.${name}: ${HOST_GATEWAY} needs a network (network 'none' has no way to the host)`);
      return { ip, names: [name] };
    }
    if (typeof ip !== 'string' || isIP(ip) === 0) throw invalid(`extraHosts.${name} must be an IP address or '${HOST_GATEWAY}', got '${String(ip)}'`);
    return { ip, names: [name] };
  });
}

function checkNetworkName(name: unknown): string {
  if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name)) throw invalid(`network name '${String(name)}' is not valid`);
  return name;
}

function checkPort(value: unknown, what: string, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > 65535) throw invalid(`${what} must be an integer from ${min} to 65535`);
  return value as number;
}

/** spec.ports checked, defaults filled in (hostIp 127.0.0.1, host 0: a free port, tcp). */
function resolvePorts(value: unknown): PortRequest[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('ports must be an array of { host?, hostIp?, container, protocol? }');
  return value.map((p: PortSpec, i) => {
    if (typeof p !== 'object' || p === null) throw invalid(`ports[${i}] must be an object`);
    const protocol = p.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') throw invalid(`ports[${i}].protocol must be 'tcp' or 'udp'`);
    const hostIp = p.hostIp ?? '127.0.0.1';
    try {
      parseAddress(hostIp, `ports[${i}].hostIp`);
    } catch {
      throw invalid(`ports[${i}].hostIp '${String(hostIp)}' is not an IPv4 address`);
    }
    return { hostIp, host: checkPort(p.host ?? 0, `ports[${i}].host`, 0), container: checkPort(p.container, `ports[${i}].container`, 1), protocol };
  });
}

/** ERR_ROOTLESS_IDS unless the user namespace maps every id of the user (an unmapped one fails at
 * exec with EINVAL). */
export function checkMapped(map: IdMap, user: NonNullable<ResolvedSpec['user']>): void {
  const missing = [
    ...(toHost(map.uids, user.uid) === null ? [`uid ${user.uid}`] : []),
    ...[user.gid, ...user.groups].filter((g) => toHost(map.gids, g) === null).map((g) => `gid ${g}`),
  ];
  if (missing.length === 0) return;
  const ids = `${user.uid}:${user.gid}${user.groups.length ? ` (groups ${user.groups.join(',')})` : ''}`;
  const how = isSingleIdMap(map)
    ? `its user namespace maps only your own id (uid ${process.getuid!()}) to 0 inside. Give user ${userInfo().username} a subordinate range in /etc/subuid and /etc/subgid (e.g. '${userInfo().username}:100000:65536', or usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${userInfo().username}) and install newuidmap/newgidmap (Debian: uidmap); or run as user 0, or as root`
    : `its user namespace maps only ids 0..${Math.max(...map.uids.map((r) => r.inside + r.count)) - 1}; ask for a larger subordinate range in /etc/subuid and /etc/subgid`;
  throw new CorralError(`user ${ids} cannot exist in this container: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not mapped: ${how}`, { code: 'ERR_ROOTLESS_IDS', step: 'check user' });
}

/** Checks a spec and fills in the defaults; throws ERR_INVALID_SPEC (or the errno of a bad rootfs)
 * before anything is created. deviceFilter: the container's group will have the device filter
 * (without it, and as root, the default capabilities lose MKNOD). idMap: the user namespace's map
 * (default: the single mapping of the caller). restored: the spec of a container made earlier (a
 * detached one's state): the host paths it names, checked when it was made, are not checked again. */
export function resolveSpec(spec: ContainerSpec, rootless: boolean, image: ImageDefaults | null = null, deviceFilter = false, userMap: IdMap = singleIdMap(), restored = false): ResolvedSpec {
  if (typeof spec !== 'object' || spec === null) throw invalid('spec must be an object');
  for (const key of Object.keys(spec)) if (!KNOWN_KEYS.has(key)) throw invalid(`unknown key '${key}'`);
  if (spec.command !== undefined && (!Array.isArray(spec.command) || spec.command.length === 0)) throw invalid('command must be a non-empty array of strings');
  if (spec.entrypoint !== undefined && (!Array.isArray(spec.entrypoint) || spec.entrypoint.some((a) => typeof a !== 'string'))) throw invalid('entrypoint must be an array of strings');
  const argv = commandLine(spec, image);
  if (argv.length === 0) throw invalid(image ? `command is needed: image ${spec.image} has no Entrypoint or Cmd` : 'command must be a non-empty array of strings');
  const command = argv.map((a, i) => checkString(a, `command[${i}]`));
  if (command[0] === '') throw invalid('command[0] must not be empty');
  if (image && spec.rootfs !== undefined) throw invalid('give either image or rootfs, not both');
  if (image && spec.rootfsWritable === 'direct') throw invalid("an image's layers are shared: rootfsWritable 'direct' is not possible with an image");

  const id = spec.id === undefined ? randomBytes(6).toString('hex') : checkString(spec.id, 'id');
  if (!ID_PATTERN.test(id)) throw invalid(`id '${id}' must match ${ID_PATTERN}`);

  const namespaces: Required<NamespaceToggles> = { pid: true, mount: true, uts: true, ipc: true, net: true, cgroup: true, user: rootless };
  for (const [key, value] of Object.entries(spec.namespaces ?? {})) {
    if (!NAMESPACE_KEYS.has(key)) throw invalid(`unknown namespace '${key}'`);
    if (typeof value !== 'boolean') throw invalid(`namespaces.${key} must be a boolean`);
    namespaces[key as keyof NamespaceToggles] = value;
  }
  if (rootless && !namespaces.user) throw invalid('namespaces.user cannot be turned off when not running as root');

  const requested = resolveNetwork(spec.network, spec.ports);
  let network: ResolvedSpec['network'] = requested === 'none' || requested === 'host' ? requested : 'bridge';
  if (spec.namespaces?.net !== undefined && spec.network !== undefined && spec.namespaces.net !== (network !== 'host')) {
    throw invalid(`network '${network}' contradicts namespaces.net = ${spec.namespaces.net}`);
  }
  namespaces.net = spec.namespaces?.net ?? network !== 'host';
  const ports = resolvePorts(spec.ports);
  if (ports.length > 0 && network !== 'bridge') throw invalid(`ports need a bridge network, not network '${network}'`);
  if (network === 'bridge' && !namespaces.net) throw invalid('a bridge network needs the network namespace');
  if (network === 'bridge' && namespaces.user) {
    // In a user namespace the default network is pasta's, for the container's namespace alone.
    const custom = typeof requested === 'object' && (requested.name !== DEFAULT_NETWORK || requested.ip !== null || requested.aliases.length > 0);
    if (custom) throw invalid("in a user namespace (rootless) only the default network 'bridge' (through pasta) is implemented: no user networks, aliases or fixed addresses");
    network = 'pasta';
  }

  const rootfs = spec.rootfs === undefined ? null : checkRootfs(checkString(spec.rootfs, 'rootfs'), restored);
  if (!namespaces.mount && rootfs !== null) throw invalid('a rootfs needs the mount namespace');
  const hostRoot = spec.hostRoot ?? 'full';
  if (hostRoot !== 'full' && hostRoot !== 'system') throw invalid(`hostRoot must be 'full' or 'system', got '${String(hostRoot)}'`);
  if (spec.hostRoot !== undefined && (rootfs !== null || image)) throw invalid('hostRoot is for containers on the host root: not with rootfs or image');
  if (hostRoot === 'system' && !namespaces.mount) throw invalid("hostRoot 'system' needs the mount namespace");

  const cwd = spec.cwd === undefined ? (image?.cwd ?? '/') : checkString(spec.cwd, 'cwd');
  if (!isAbsolute(cwd)) throw invalid(`cwd must be absolute, got '${cwd}'`);

  let user: ResolvedSpec['user'] = image?.user ?? null;
  if (spec.user !== undefined) {
    if (typeof spec.user === 'string') throw invalid(`user '${spec.user}' is a name: it is resolved before the spec (Runtime.create does it)`);
    if (typeof spec.user !== 'object' || spec.user === null) throw invalid('user must be { uid, gid, groups? } or a name');
    user = {
      uid: checkId(spec.user.uid, 'user.uid'),
      gid: checkId(spec.user.gid, 'user.gid'),
      groups: (spec.user.groups ?? []).map((g, i) => checkId(g, `user.groups[${i}]`)),
    };
  }

  const idMap = namespaces.user ? userMap : null;
  if (idMap && user) checkMapped(idMap, user);
  const hostname = spec.hostname === undefined ? id.slice(0, 63) : checkString(spec.hostname, 'hostname');
  if (!HOSTNAME_PATTERN.test(hostname)) throw invalid(`hostname '${hostname}' is not a valid host name`);
  if (spec.hostname !== undefined && !namespaces.uts) throw invalid('hostname needs the UTS namespace');
  const dns = resolveDns(spec);
  const extraHosts = resolveExtraHosts(spec.extraHosts, network);
  if (!namespaces.mount && (setsDns(dns) || extraHosts.length > 0)) throw invalid('dns, dnsSearch, dnsOptions and extraHosts need the mount namespace');

  const attach = network === 'bridge' && typeof requested === 'object'
    ? { network: requested.name, names: [...new Set([id, hostname, ...requested.aliases])], ip: requested.ip }
    : null;

  const stdio = spec.stdio ?? 'pipe';
  if (!['pipe', 'inherit', 'ignore'].includes(stdio)) throw invalid(`stdio must be 'pipe', 'inherit' or 'ignore', got '${String(stdio)}'`);

  if (spec.tty !== undefined && typeof spec.tty !== 'boolean') throw invalid('tty must be a boolean');
  if (spec.init !== undefined && typeof spec.init !== 'boolean') throw invalid('init must be a boolean');
  if (spec.consoleSize !== undefined && !spec.tty) throw invalid('consoleSize needs tty');
  // The terminal comes from the container's own devpts, which only a mount namespace has.
  if (spec.tty && !namespaces.mount) throw invalid('tty needs the mount namespace (the terminal comes from its /dev/pts)');
  const tty = spec.tty ? { size: spec.consoleSize === undefined ? null : checkTerminalSize(spec.consoleSize, 'consoleSize') } : null;

  const env = image
    ? { PATH: DEFAULT_PATH, ...image.env, ...stringRecord(spec.env, 'env') }
    : spec.env === undefined ? { PATH: DEFAULT_PATH } : stringRecord(spec.env, 'env');
  for (const key of Object.keys(env)) if (key === '' || key.includes('=')) throw invalid(`env key '${key}' is not a variable name`);

  const rootfsWritable = spec.rootfsWritable ?? 'overlay';
  if (rootfsWritable !== 'overlay' && rootfsWritable !== 'direct') throw invalid(`rootfsWritable must be 'overlay' or 'direct', got '${String(rootfsWritable)}'`);
  if (spec.readonlyRootfs !== undefined && typeof spec.readonlyRootfs !== 'boolean') throw invalid('readonlyRootfs must be a boolean');
  const requestedMounts = resolveMounts(spec.mounts, restored);
  if (requestedMounts.length > 0 && !namespaces.mount) throw invalid('mounts need the mount namespace');
  // A rootfs the caller does not own (root's /srv/rootfs): /tmp and /var/tmp in memory, see there.
  const mounts = idMap && rootfs !== null && namespaces.mount ? [...scratchOverUnmapped(rootfs, idMap, requestedMounts), ...requestedMounts] : requestedMounts;

  // test/security/device-*.test.ts: no device filter, no mknod (a user namespace denies it anyway).
  const capabilities = capabilityMask(spec.capabilities, deviceFilter || rootless ? DEFAULT_CAPABILITIES : DEFAULT_CAPABILITIES.filter((c) => c !== 'MKNOD'));
  const pathList = (value: unknown, what: string, fallback: string[]): string[] => {
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || value.some((p) => typeof p !== 'string' || !isAbsolute(p))) throw invalid(`${what} must be an array of absolute paths`);
    return value as string[];
  };

  return { id, image: image ? spec.image! : null, idMap, command, rootfs, hostRoot, mounts, hardening: resolveHardening(spec, capabilities),
    maskedPaths: pathList(spec.maskedPaths, 'maskedPaths', DEFAULT_MASKED_PATHS),
    readonlyPaths: pathList(spec.readonlyPaths, 'readonlyPaths', DEFAULT_READONLY_PATHS), readonlyRootfs: spec.readonlyRootfs ?? false, rootfsWritable, env, cwd, user, hostname, dns, extraHosts, network, attach, ports, namespaces, stdio, tty, init: spec.init ?? false, labels: stringRecord(spec.labels, 'labels'), capabilities, limits: limitWrites(spec.limits ?? {}), devices: deviceRules(spec.devices) };
}
