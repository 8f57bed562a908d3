import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromNodeError } from '../sys/errors.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';

/** Who uses a thing (an image, a volume, an import in progress), kept as empty files
 * `<owner-tag>.<holder>` in one directory: the one liveness scheme for every in-use marker, so a
 * holder whose owning process died (SIGKILL leaves no time to clean up) stops counting by itself. */
export class UseMarkers {
  readonly #dir: string;
  readonly #what: string;
  readonly #makeDir: boolean;

  /** dir holds the markers; what names the thing in errors ('volume data'); makeDir: add() makes
   * dir when missing (false where dir belongs to the thing, so a removed thing stays removed). */
  constructor(dir: string, what: string, options: { makeDir: boolean }) {
    this.#dir = dir;
    this.#what = what;
    this.#makeDir = options.makeDir;
  }

  /** Marks holder as a user, owned by this process (or by owner, a processTag of another). */
  add(holder: string, owner: string = processTag()): void {
    const marker = join(this.#dir, `${owner}.${holder}`);
    try {
      try {
        writeFileSync(marker, '');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !this.#makeDir) throw e;
        mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
        writeFileSync(marker, '');
      }
    } catch (e) {
      throw fromNodeError(e, `mark ${this.#what} as used by ${holder}`, marker);
    }
  }

  /** holder no longer uses it; a marker already gone (removed with force) is fine. */
  remove(holder: string, owner: string = processTag()): void {
    try {
      unlinkSync(join(this.#dir, `${owner}.${holder}`));
    } catch {
      // already gone
    }
  }

  /** The holders whose owner is alive; markers of dead owners are deleted on the way. */
  holders(): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.#dir);
    } catch {
      return [];
    }
    const live: string[] = [];
    for (const entry of entries) {
      const dot = entry.indexOf('.');
      if (dot < 0) continue;
      if (isStaleTag(entry.slice(0, dot))) {
        try {
          unlinkSync(join(this.#dir, entry));
        } catch {
          // another process swept it first
        }
        continue;
      }
      live.push(entry.slice(dot + 1));
    }
    return live;
  }
}
