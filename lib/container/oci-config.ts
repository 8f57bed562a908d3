import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { DEFAULT_CAPABILITIES, type CapabilitySpec } from './capabilities.ts';
import type { ContainerSpec } from './spec.ts';
import type { MountSpec } from '../fs/mounts.ts';
import type { DeviceSpec } from './devices.ts';
import type { RlimitSpec } from './hardening.ts';
import type { Limits } from '../cgroup/limits.ts';
import { sysctlWrites } from './oci-sysctl.ts';
import { op, type PlanOp } from '../spawn/ops.ts';
import { envRecord } from './env-record.ts';
import { ociHooks, type OciHooks } from './oci-hooks.ts';

/** An OCI bundle's config.json turned into corral's terms. */
export interface OciContainer {
  /** The spec the library compiles (stdio inherited, root written directly). */
  spec: ContainerSpec;
  /** The absolute root filesystem path. */
  rootfs: string;
  annotations: Record<string, string>;
  /** linux.cgroupsPath, or null for the default place. */
  cgroupsPath: string | null;
  /** Namespaces given by path (a pod's sandbox: network, ipc, uts, pid; cgroup), joined instead of made. */
  joinNamespaces: { type: JoinableNamespace; path: string }[];
  /** linux.sysctl as writes under the container's /proc/sys. */
  sysctl: { path: string; text: string }[];
  hooks: OciHooks;
  /** process.user.umask: set right before exec (podman asks for 0022), or null to keep 0022. */
  umask: number | null;
}

/** The namespace types a config may name by path. */
export type JoinableNamespace = 'network' | 'ipc' | 'uts' | 'pid' | 'cgroup';
const JOINABLE = new Set(['network', 'ipc', 'uts', 'pid', 'cgroup']);
/** Why a namespace of these types cannot be joined: runc builds and pivots the root in a joined
 * mount namespace; the namespaces corral clones for the container exist before a join. */
const JOIN_REFUSED: Record<string, string> = {
  mount: ': the root would be pivoted in it, moving the root of every process that shares it',
  user: ': the namespaces made for the container would have to be owned by it',
};

/** Mounts every corral container gets anyway (its own /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
 * /sys and a read-only cgroup view): accepted from a config as they are. */
const BUILT_IN_MOUNTS = new Map([
  ['/proc', 'proc'], ['/dev', 'tmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs'], ['/dev/mqueue', 'mqueue'],
  ['/sys', 'sysfs'], ['/sys/fs/cgroup', 'cgroup'],
]);
const NAMESPACES: Readonly<Record<string, keyof NonNullable<ContainerSpec['namespaces']>>> = {
  pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mount', cgroup: 'cgroup', user: 'user',
};
/** Fields corral maps; any other key present is refused with its name. */
const KNOWN = {
  top: new Set(['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'linux', 'annotations', 'hooks']),
  process: new Set(['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj']),
  linux: new Set(['namespaces', 'resources', 'seccomp', 'maskedPaths', 'readonlyPaths', 'cgroupsPath', 'sysctl', 'personality']),
  root: new Set(['path', 'readonly']),
  resources: new Set(['memory', 'cpu', 'pids', 'devices']),
};

/** The error for a config field corral cannot honour. */
function unsupported(field: string, why: string): CorralError {
  return new CorralError(`config.json: ${field} is not supported by corral-oci: ${why}`, { code: 'ERR_INVALID_SPEC', step: field });
}

function checkKeys(value: object, known: Set<string>, where: string): void {
  for (const key of Object.keys(value)) if (!known.has(key)) throw unsupported(where ? `${where}.${key}` : key, 'not implemented');
}

const CAPABILITY_SETS = new Set(['bounding', 'effective', 'permitted', 'inheritable', 'ambient']);

function capabilities(caps: Record<string, string[] | undefined> | undefined): CapabilitySpec {
  if (caps === undefined) return { drop: [...DEFAULT_CAPABILITIES] };
  checkKeys(caps, CAPABILITY_SETS, 'process.capabilities');
  const names = (set: string[] | undefined): string[] => (set ?? []).map((c) => c.replace(/^CAP_/, '')).sort();
  const bounding = names(caps.bounding);
  for (const set of ['effective', 'permitted'] as const) {
    if (names(caps[set]).join() !== bounding.join()) throw unsupported(`process.capabilities.${set}`, 'must equal the bounding set');
  }
  if (names(caps.inheritable).length > 0) throw unsupported('process.capabilities.inheritable', 'inheritable capabilities are never granted');
  // Ambient ones (runc's spec lists three) are left as runc 1.1 leaves them: without inheritable
  // bits the kernel refuses to raise them and runc ignores that, so CapAmb is 0 under both
  // (test/integration/oci.test.ts, 'maps the config').
  // Exactly the listed set, whatever corral's defaults (which leave out MKNOD without a device filter).
  return { drop: ['ALL'], add: bounding };
}

function rlimits(list: { type: string; soft: number; hard: number }[]): RlimitSpec {
  const out: RlimitSpec = {};
  for (const r of list) out[r.type.replace(/^RLIMIT_/, '').toLowerCase()] = [r.soft, r.hard];
  return out;
}

const MOUNT_KEYS = new Set(['destination', 'type', 'source', 'options']);
const PROPAGATION_OPTION = /^r?(private|slave|shared)$/;
/** Mount options by where they are honoured: nodev is every bind's and tmpfs's anyway, exec and
 * rw the default, bind and rbind name the type; suid only a bind can keep (a tmpfs is nosuid);
 * ro and rro are the same on a bind (corral's mount_setattr is recursive); a tmpfs takes its
 * atime (relatime is the kernel's default) and size=, mode=, and is private as the whole tree is
 * (podman asks for rprivate), never slave or shared. */
const EITHER = ['bind', 'rbind', 'rw', 'nodev', 'exec', 'nosuid', 'noexec', 'private', 'rprivate'];
const BIND_ONLY = ['ro', 'rro', 'suid', 'slave', 'rslave', 'shared', 'rshared'];
const TMPFS_ONLY = ['relatime', 'strictatime', 'noatime'];
/** Every mount option corral-oci honours (`features` lists them); size and mode take a value. */
export const MOUNT_OPTIONS = [...EITHER, ...BIND_ONLY, ...TMPFS_ONLY, 'size', 'mode'].sort();

/** config.mounts as corral's: bind and tmpfs mounts with the options it can honour (ro and rro,
 * which corral's recursive mount_setattr makes the same, nosuid, noexec, propagation; a tmpfs's
 * size, mode and atime); any other option, an idmapped mount or another type is refused by name. */
function mounts(list: { destination: string; type?: string; source?: string; options?: string[] }[] | undefined, bundle: string): MountSpec[] {
  const out: MountSpec[] = [];
  (list ?? []).forEach((m, i) => {
    const options = m.options ?? [];
    if (BUILT_IN_MOUNTS.get(m.destination) === m.type) return;
    for (const key of Object.keys(m)) {
      if (!MOUNT_KEYS.has(key)) throw unsupported(`mounts[${i}].${key}`, key.endsWith('Mappings') ? 'idmapped mounts are not implemented' : 'not implemented');
    }
    const bind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
    const tmpfs = !bind && m.type === 'tmpfs';
    if (!bind && !tmpfs) throw unsupported(`mounts[${i}]`, `a ${m.type ?? 'typeless'} mount at ${m.destination} (bind and tmpfs mounts are, and the default ones)`);
    options.forEach((o, j) => {
      const honoured = EITHER.includes(o) || (bind && BIND_ONLY.includes(o)) || (tmpfs && (TMPFS_ONLY.includes(o) || /^(size|mode)=/.test(o)));
      if (!honoured) throw unsupported(`mounts[${i}].options[${j}]`, `'${o}' on the ${bind ? 'bind' : 'tmpfs'} mount at ${m.destination}`);
    });
    const flags = { ...(options.includes('nosuid') ? { nosuid: true } : {}), ...(options.includes('noexec') ? { noexec: true } : {}) };
    if (bind) {
      const propagation = options.find((o) => PROPAGATION_OPTION.test(o)) as 'rprivate' | undefined;
      const readonly = options.includes('ro') || options.includes('rro');
      out.push({ type: 'bind', source: resolve(bundle, m.source ?? ''), target: m.destination, readonly, recursive: options.includes('rbind'), ...(propagation ? { propagation } : {}), ...flags });
    } else {
      const size = options.find((o) => o.startsWith('size='))?.slice(5);
      const mode = options.find((o) => o.startsWith('mode='))?.slice(5);
      const atime = options.includes('strictatime') ? 'strictatime' : options.includes('noatime') ? 'noatime' : undefined;
      out.push({ type: 'tmpfs', target: m.destination, ...(size ? { size } : {}), ...(mode ? { mode: parseInt(mode, 8) } : {}), ...(atime ? { atime } : {}), ...flags });
    }
  });
  return out;
}

/** linux.resources.devices as corral's allow-list: a leading deny-all (corral's filter denies what
 * it does not allow), then allow rules; a deny rule after an allow cannot be expressed. */
function devices(list: { allow: boolean; type?: string; major?: number; minor?: number; access?: string }[] | undefined): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  (list ?? []).forEach((d, i) => {
    const denyAll = !d.allow && (d.type === undefined || d.type === 'a') && d.major === undefined && d.minor === undefined;
    if (denyAll && out.length === 0) return;
    if (!d.allow) throw unsupported(`linux.resources.devices[${i}]`, 'a deny rule is only accepted as a leading deny-all (corral allows a list of devices)');
    const type = d.type ?? 'a';
    if (type !== 'a' && type !== 'b' && type !== 'c') throw unsupported(`linux.resources.devices[${i}].type`, `unknown device type '${type}'`);
    out.push({ type, major: d.major ?? '*', minor: d.minor ?? '*', access: d.access ?? 'rwm' });
  });
  return out;
}

const DEFAULT_CPU_WEIGHT = 100;

/** crun's conversion of cgroup v1 cpu shares (2-262144, default 1024) to a v2 weight (1-10000,
 * default 100): the defaults meet, which runc's linear one misses (1024 → 39). */
export function sharesToWeight(shares: number): number {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

/** linux.resources (memory, cpu, pids) as corral's limits (devices are the device filter's). */
export function ociLimits(res: Record<string, any> | undefined): Limits | undefined {
  if (!res) return undefined;
  checkKeys(res, KNOWN.resources, 'linux.resources');
  const limits: Limits = {};
  if (res.memory) {
    for (const key of Object.keys(res.memory)) if (key !== 'limit' && key !== 'swap') throw unsupported(`linux.resources.memory.${key}`, 'not implemented');
    if (res.memory.limit !== undefined) limits.memory = res.memory.limit;
    if (res.memory.swap !== undefined) limits.memorySwap = res.memory.swap === -1 ? -1 : res.memory.swap - (res.memory.limit ?? 0);
  }
  if (res.cpu) {
    for (const key of Object.keys(res.cpu)) if (!['quota', 'period', 'cpus', 'shares'].includes(key)) throw unsupported(`linux.resources.cpu.${key}`, 'not implemented');
    if (res.cpu.quota !== undefined && res.cpu.quota > 0) limits.cpus = res.cpu.quota / (res.cpu.period ?? 100_000);
    if (res.cpu.cpus !== undefined) limits.cpuset = res.cpu.cpus;
    // containerd asks for v1's default of 1024 shares on every container: that is v2's default
    // weight, which a new group has already (and a host without the cpu controller can honour).
    if (res.cpu.shares !== undefined && res.cpu.shares !== 0 && sharesToWeight(res.cpu.shares) !== DEFAULT_CPU_WEIGHT) limits.cpuWeight = sharesToWeight(res.cpu.shares);
  }
  if (res.pids?.limit !== undefined && res.pids.limit > 0) limits.pids = res.pids.limit;
  return limits;
}

/** linux.personality: only the one corral-oci runs with (LINUX, no flags) can be had; LINUX32 or
 * flags would need personality(2) in the init, not implemented. */
function personality(value: { domain?: string; flags?: string[] } | undefined): void {
  if (value === undefined) return;
  if (value.domain !== 'LINUX') throw unsupported('linux.personality.domain', `'${value.domain}' (only LINUX, the runtime's own, is)`);
  if ((value.flags ?? []).length > 0) throw unsupported('linux.personality.flags', 'personality flags are not implemented');
  if (readFileSync('/proc/self/personality', 'utf8').trim() !== '00000000') throw unsupported('linux.personality', 'corral-oci itself runs with another personality, which the container would inherit');
}

/** The domainname field as runc sets it, a kernel.domainname write in the container's own UTS
 * namespace (the sysctl checks refuse it without one). */
function withDomainname(sysctl: Record<string, unknown> | undefined, domainname: unknown): Record<string, unknown> | undefined {
  if (domainname === undefined) return sysctl;
  if (typeof domainname !== 'string') throw unsupported('domainname', 'it must be a string');
  const given = sysctl?.['kernel.domainname'];
  if (given !== undefined && given !== domainname) throw unsupported('domainname', `it conflicts with linux.sysctl's kernel.domainname '${String(given)}'`);
  return { ...sysctl, 'kernel.domainname': domainname };
}

/** The process's umask (process.user.umask) as the step before it execs. */
export function umaskOps(umask: number | null): PlanOp[] {
  return umask === null ? [] : [op.umask({ step: `set umask ${umask.toString(8).padStart(4, '0')}`, mask: umask })];
}

/** Maps an OCI runtime config (config.json of the bundle directory) onto a ContainerSpec;
 * a field corral cannot honour is an ERR_INVALID_SPEC naming it, never ignored. */
export function ociToSpec(id: string, config: Record<string, any>, bundle: string): OciContainer {
  if (typeof config !== 'object' || config === null) throw unsupported('config.json', 'it must be a JSON object');
  checkKeys(config, KNOWN.top, '');
  const proc = config.process ?? {};
  const linux = config.linux ?? {};
  checkKeys(proc, KNOWN.process, 'process');
  checkKeys(linux, KNOWN.linux, 'linux');
  if (!config.root?.path) throw unsupported('root.path', 'it is required');
  const rootfs = isAbsolute(config.root.path) ? config.root.path : resolve(bundle, config.root.path);

  const joinNamespaces: OciContainer['joinNamespaces'] = [];
  const namespaces: NonNullable<ContainerSpec['namespaces']> = { pid: false, net: false, ipc: false, uts: false, mount: false, cgroup: false, user: false };
  (linux.namespaces ?? []).forEach((ns: { type: string; path?: string }, i: number) => {
    const key = NAMESPACES[ns.type];
    if (!key) throw unsupported(`linux.namespaces[${i}].type`, `unknown namespace '${ns.type}'`);
    if (ns.path) {
      if (!JOINABLE.has(ns.type)) throw unsupported(`linux.namespaces[${i}].path`, `joining a ${ns.type} namespace is not implemented (network, ipc, uts, pid and cgroup are)${JOIN_REFUSED[ns.type] ?? ''}`);
      joinNamespaces.push({ type: ns.type as JoinableNamespace, path: ns.path });
      // A joined pid namespace is the container's own as a new one would be (its /proc is mounted
      // for it, exec joins it); oci-create.ts enters it by a fork instead of the clone.
      if (ns.type === 'pid') namespaces.pid = true;
      return;
    }
    if (key === 'user') throw unsupported(`linux.namespaces[${i}]`, 'user namespaces need uid/gid mappings, not implemented yet');
    namespaces[key] = true;
  });

  const env = envRecord(proc.env ?? []);
  const user = proc.user ?? { uid: 0, gid: 0 };
  for (const key of Object.keys(user)) if (!['uid', 'gid', 'additionalGids', 'umask'].includes(key)) throw unsupported(`process.user.${key}`, 'not implemented');
  if (user.umask !== undefined && (!Number.isInteger(user.umask) || user.umask < 0 || user.umask > 0o777)) throw unsupported('process.user.umask', `${user.umask} is not a file mode mask`);

  checkKeys(config.root ?? {}, KNOWN.root, 'root');
  personality(linux.personality);
  const sysctl = sysctlWrites(withDomainname(linux.sysctl, config.domainname), linux.namespaces ?? []);
  if (sysctl.length > 0 && !namespaces.mount) throw unsupported('linux.sysctl', 'it needs a mount namespace (the container\'s /proc is where it is written)');
  const hooks = ociHooks(config.hooks);
  for (const kind of ['prestart', 'createRuntime', 'createContainer'] as const) {
    if (hooks[kind].length > 0 && !namespaces.mount) throw unsupported(`hooks.${kind}`, 'it needs a mount namespace (the hooks run before its pivot_root)');
  }
  const limits = ociLimits(linux.resources);
  const spec: ContainerSpec = {
    id,
    command: proc.args,
    rootfs,
    rootfsWritable: 'direct',
    readonlyRootfs: config.root.readonly === true,
    env,
    cwd: proc.cwd ?? '/',
    user: { uid: user.uid, gid: user.gid, groups: user.additionalGids ?? [] },
    namespaces,
    network: namespaces.net ? 'none' : 'host',
    stdio: 'inherit',
    ...(proc.terminal === true ? { tty: true, ...(proc.consoleSize ? { consoleSize: { rows: proc.consoleSize.height, cols: proc.consoleSize.width } } : {}) } : {}),
    capabilities: capabilities(proc.capabilities),
    noNewPrivileges: proc.noNewPrivileges === true,
    seccomp: linux.seccomp ?? 'unconfined',
    mounts: mounts(config.mounts, bundle),
    maskedPaths: linux.maskedPaths ?? [],
    readonlyPaths: linux.readonlyPaths ?? [],
    // In a joined UTS namespace the hostname is set by oci-create.ts, as runc does.
    ...(config.hostname === undefined || joinNamespaces.some((ns) => ns.type === 'uts') ? {} : { hostname: config.hostname }),
    ...(proc.oomScoreAdj === undefined ? {} : { oomScoreAdj: proc.oomScoreAdj }),
    ...(limits ? { limits } : {}),
    ...(linux.resources?.devices ? { devices: devices(linux.resources.devices) } : {}),
    ...(proc.rlimits ? { rlimits: rlimits(proc.rlimits) } : {}),
  };
  return { spec, rootfs, annotations: config.annotations ?? {}, cgroupsPath: linux.cgroupsPath ?? null, joinNamespaces, sysctl, hooks, umask: user.umask ?? null };
}
