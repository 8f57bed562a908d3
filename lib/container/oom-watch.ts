import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Cgroup } from '../cgroup/cgroup.ts';

/** Watches a container group's memory.events for OOM kills and reports each new one, so 'oom'
 * fires while the container runs and RunResult.oomKilled is right at exit. */
export class OomWatch {
  readonly #cgroup: Cgroup;
  readonly #onOom: () => void;
  #kills = 0;
  #watcher: FSWatcher | null = null;
  #closed = false;

  /** seen: the kills already counted (corral-oci's events reports later ones only). */
  constructor(cgroup: Cgroup, onOom: () => void, seen = 0) {
    this.#cgroup = cgroup;
    this.#onOom = onOom;
    this.#kills = seen;
  }

  /** True once the OOM killer has killed in the group. */
  get killed(): boolean {
    this.check();
    return this.#kills > 0;
  }

  /** Starts watching (once); without an inotify watch the OOM is still seen by check(). */
  start(): void {
    if (this.#watcher || this.#closed) return;
    try {
      this.#watcher = watch(join(this.#cgroup.path, 'memory.events'), () => this.check());
      this.#watcher.on('error', () => {});
    } catch {
      // no inotify watch to be had: check() at exit still sees it
    }
  }

  /** Reads the kill count and reports a new kill (until closed: the group may be gone then). */
  check(): void {
    if (this.#closed) return;
    const kills = this.#cgroup.oomKills();
    if (kills > this.#kills) {
      this.#kills = kills;
      this.#onOom();
    }
  }

  /** Stops watching and reading; the count stays as last seen. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = null;
  }
}
