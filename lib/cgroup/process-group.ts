import createDebug from 'debug';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const debug = createDebug('corral:cgroup');
const NAME = /^proc-(\d+)-(\d+)$/;

/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const made = new Map<string, string>();

/** This process's own group under parent ('proc-PID-STARTTIME'): container groups go inside it, so
 * groups left behind by a process that died (SIGKILL leaves no time to clean up) can be told from
 * live ones; those are swept the first time a process asks for its group. */
export function processGroup(parent: string): string {
  const known = made.get(parent);
  if (known) return known;
  const dir = join(parent, `proc-${process.pid}-${startTime(process.pid)}`);
  mkdirSync(dir, { recursive: true });
  made.set(parent, dir);
  // Gone with us when empty; what a crash leaves is swept by the next process.
  process.once('exit', () => {
    try {
      rmdirSync(dir);
    } catch {
      // containers still in it: the next sweep takes them
    }
  });
  void sweepStale(parent);
  return dir;
}

async function emptyAndRemove(group: string): Promise<void> {
  for (const child of readdirSync(group, { withFileTypes: true })) {
    if (child.isDirectory()) await emptyAndRemove(join(group, child.name));
  }
  if (readFileSync(join(group, 'cgroup.events'), 'utf8').includes('populated 1')) {
    writeFileSync(join(group, 'cgroup.kill'), '1');
    for (let i = 0; i < 100 && readFileSync(join(group, 'cgroup.events'), 'utf8').includes('populated 1'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  rmdirSync(group);
}

/** Removes the groups of processes that no longer exist, with whatever they still hold. */
async function sweepStale(parent: string): Promise<void> {
  for (const name of readdirSync(parent)) {
    const m = NAME.exec(name);
    if (!m || startTime(Number(m[1])) === m[2]) continue;
    const group = join(parent, name);
    try {
      if (existsSync(group)) await emptyAndRemove(group);
      debug('swept stale group %s', group);
    } catch (e) {
      debug('could not sweep %s: %o', group, e);
    }
  }
}
