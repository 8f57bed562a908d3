import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CorralError } from '../../sys/errors.ts';
import { OCI_VERSION } from '../../container/oci-container.ts';

const NO_EXEC = ['nosuid', 'noexec', 'nodev'];

/** The config.json `spec` writes: runc's template (a shell on a terminal in rootfs/, read-only
 * root, pid/network/ipc/uts/mount namespaces, Docker's masked and read-only paths). */
export function specTemplate(): Record<string, unknown> {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true, user: { uid: 0, gid: 0 }, args: ['sh'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'], cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'corral',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: [...NO_EXEC, 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: NO_EXEC },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: [...NO_EXEC, 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: [...NO_EXEC, 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** `spec [--bundle DIR]`: writes a starting config.json (refuses to overwrite one, as runc). */
export function specCommand(_store: unknown, args: string[]): number {
  const { values } = parseArgs({ args, options: { bundle: { type: 'string', short: 'b' }, rootless: { type: 'boolean' } }, strict: true });
  if (values.rootless) throw new CorralError('spec --rootless: corral-oci runs containers as root only for now', { code: 'ERR_INVALID_ARG_VALUE', step: '--rootless' });
  const path = join(resolve(values.bundle ?? '.'), 'config.json');
  if (existsSync(path)) throw new CorralError(`File ${path} exists. Remove it first`, { code: 'ERR_INVALID_ARG_VALUE', path });
  writeFileSync(path, `${JSON.stringify(specTemplate(), null, '\t')}\n`);
  return 0;
}
