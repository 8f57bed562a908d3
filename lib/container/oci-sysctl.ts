import { statSync } from 'node:fs';
import { CorralError } from '../sys/errors.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';

/** The ipc namespace's sysctls (with fs.mqueue.*), as runc's validator lists them. */
const IPC_KEYS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

function refused(key: string, why: string): CorralError {
  return new CorralError(`config.json: linux.sysctl "${key}" is refused: ${why}`, { code: 'ERR_INVALID_SPEC', step: 'linux.sysctl' });
}

/** Whether a namespace file names the runtime's own namespace of that type (runc's isHostNetNS). */
function isOurs(path: string, type: string): boolean {
  let theirs;
  try {
    theirs = statSync(path);
  } catch (e) {
    throw new CorralError(`linux.namespaces: cannot stat the ${type} namespace ${path}: ${(e as Error).message}`, { code: 'ERR_INVALID_SPEC', step: 'linux.sysctl', path, syscall: 'stat', errno: Math.abs((e as NodeJS.ErrnoException).errno ?? 0) });
  }
  const ours = statSync(`/proc/self/ns/${type === 'network' ? 'net' : type}`);
  return theirs.ino === ours.ino && theirs.dev === ours.dev;
}

/** Refuses a key outside the namespaces the container has of its own (own(type)), as runc's
 * validator does. */
function checkNamespaced(key: string, own: (type: string) => boolean): void {
  if (IPC_KEYS.has(key) || key.startsWith('fs.mqueue.')) {
    if (!own('ipc')) throw refused(key, 'it is not allowed in the host\'s ipc namespace (the config has no ipc namespace of its own)');
  } else if (key.startsWith('net.')) {
    if (!own('network')) throw refused(key, 'it is not allowed in the host\'s network namespace (the config has no network namespace of its own)');
  } else if (key === 'kernel.hostname') {
    throw refused(key, 'it conflicts with the hostname field');
  } else if (key !== 'kernel.domainname' || !own('uts')) {
    throw refused(key, 'it is not in a separate kernel namespace of the container');
  }
}

/** linux.sysctl as writes under /proc/sys inside the container's root (made once its namespaces
 * exist and its /proc is mounted). Only keys of a namespace the container does not share with the
 * runtime are accepted (runc's validator): net.* with a network namespace of its own, the ipc keys
 * and fs.mqueue.* with an ipc one, kernel.domainname with a uts one; anything else (vm.*, kernel.*)
 * would change the host, and is refused (test/security/oci-sysctl-host.test.ts). */
export function sysctlWrites(sysctl: Record<string, unknown> | undefined, namespaces: { type: string; path?: string }[]): { path: string; text: string }[] {
  if (sysctl === undefined) return [];
  const own = (type: string): boolean => namespaces.some((ns) => ns.type === type && (!ns.path || !isOurs(ns.path, type)));
  return Object.entries(sysctl).map(([key, value]) => {
    if (typeof value !== 'string') throw refused(key, 'its value must be a string');
    // A key names a file under /proc/sys: dots or slashes between plain names, nothing else.
    if (!/^[A-Za-z0-9_-]+([./][A-Za-z0-9_:@+-]+)*$/.test(key)) throw refused(key, 'it is not a sysctl name');
    if (!liftedDefences.sysctlAnyKey) checkNamespaced(key, own);
    // runc's conversion: every dot becomes a slash.
    return { path: `/proc/sys/${key.replaceAll('.', '/')}`, text: value };
  });
}
