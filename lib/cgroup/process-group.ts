import createDebug from 'debug';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { join } from 'node:path';
import { removeAtExitWhenEmpty } from '../sys/remove-at-exit.ts';

const debug = createDebug('corral:cgroup');
const made = new Map<string, string>();

/** This process's own group under parent ('proc-PID-STARTTIME'): container groups go inside it, so
 * groups left behind by a process that died (SIGKILL leaves no time to clean up) can be told from
 * live ones; those are swept the first time a process asks for its group. */
export function processGroup(parent: string): string {
  const known = made.get(parent);
  if (known) return known;
  const dir = join(parent, processTag());
  mkdirSync(dir, { recursive: true });
  made.set(parent, dir);
  // Gone with us when empty; what a crash leaves is swept by the next process.
  removeAtExitWhenEmpty(dir);
  sweepStale(parent).catch((e: unknown) => debug('could not sweep %s: %o', parent, e));
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
    if (!isStaleTag(name)) continue;
    const group = join(parent, name);
    try {
      if (existsSync(group)) await emptyAndRemove(group);
      debug('swept stale group %s', group);
    } catch (e) {
      debug('could not sweep %s: %o', group, e);
    }
  }
}
