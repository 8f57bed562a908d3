import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../sys/errors.ts';

/** Where the cgroup v2 hierarchy is mounted ('/sys/fs/cgroup', or '/sys/fs/cgroup/unified' on
 * hybrid hosts), read from this process's mount table. */
export function findV2Mount(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | null {
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    if (right.split(' ')[0] !== 'cgroup2') continue;
    const fields = left.split(' ');
    if (fields[3] !== '/') continue; // a bind of a sub-tree is not the hierarchy's root
    return fields[4]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

/** This process's cgroup in the v2 hierarchy, as a path below the mount ('/', '/user.slice/…'). */
export function ownV2Path(procCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string {
  const line = procCgroup.split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new CorralError('this process has no cgroup v2 membership (/proc/self/cgroup has no 0:: line)', { code: 'ERR_CGROUP_UNAVAILABLE', path: '/proc/self/cgroup' });
  return line.slice(3) || '/';
}

/** The controllers a group offers its children (its cgroup.controllers). */
export function availableControllers(dir: string): Set<string> {
  return new Set(readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
}

/** The default parent of container groups: 'corral' under the v2 root as root, else under our own. */
export function defaultParent(mount: string, isRoot: boolean): string {
  return join(mount, isRoot ? '' : ownV2Path(), 'corral');
}
