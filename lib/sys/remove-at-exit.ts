/** Directories of this process (its layer and cgroup directories) that go with it when empty: one
 * 'exit' listener for all of them, however many runtime roots a process uses. */

import { rmdirSync } from 'node:fs';

const dirs = new Set<string>();

/** Removes `dir` when this process exits, if it is empty then; what is left is swept by the next process. */
export function removeAtExitWhenEmpty(dir: string): void {
  if (dirs.size === 0) process.once('exit', removeAll);
  dirs.add(dir);
}

function removeAll(): void {
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      // still in use (layers being deleted, containers in a group): the next sweep takes it
    }
  }
  dirs.clear();
}
