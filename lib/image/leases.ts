/** Leases: what holds stored content in use. Containers hold their image (remove() refuses it), and
 * imports and commits in progress hold the blobs and layers they have stored but not yet indexed
 * (gc keeps unreferenced content while one runs). All of them are lib/fs/use-markers.ts markers. */

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { UseMarkers } from '../fs/use-markers.ts';

/** The leases of an image store under `dir`. */
export class Leases {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Marks an image as used by a container until release(); owner: the process tag the mark
   * belongs to (a detached container's supervisor), default ours. */
  holdImage(manifestDigest: string, containerId: string, owner?: string): void {
    this.#image(manifestDigest).add(containerId, owner);
  }

  /** The container no longer uses the image. */
  releaseImage(manifestDigest: string, containerId: string, owner?: string): void {
    this.#image(manifestDigest).remove(containerId, owner);
  }

  /** Containers (of live processes) using an image. */
  imageUsers(manifestDigest: string): string[] {
    return this.#image(manifestDigest).holders();
  }

  /** Marks an import or commit as running; the id ends it with endWrite(). */
  beginWrite(): string {
    const id = randomBytes(4).toString('hex');
    this.#writes().add(id);
    return id;
  }

  /** The import or commit `id` is over. */
  endWrite(id: string): void {
    this.#writes().remove(id);
  }

  /** How many imports and commits (of live processes) are running, besides `except`. */
  writesRunning(except?: string): number {
    return this.#writes().holders().filter((id) => id !== except).length;
  }

  #image(manifestDigest: string): UseMarkers {
    return new UseMarkers(join(this.#dir, 'in-use', manifestDigest.replace(':', '-')), `image ${manifestDigest}`, { makeDir: true });
  }

  #writes(): UseMarkers {
    return new UseMarkers(join(this.#dir, 'importing'), 'the image store', { makeDir: true });
  }
}
