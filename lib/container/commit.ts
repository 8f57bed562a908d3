import { CorralError } from '../sys/errors.ts';
import type { WritableLayer } from '../fs/container-layers.ts';
import { removeMountStubs } from '../fs/mount-stubs.ts';
import type { IdMap } from '../sys/id-map.ts';
import type { CommitChanges, CommitRequest } from './image-provider.ts';

/** Options of commit(). */
export interface CommitOptions {
  /** The new image's name ('name:tag'); without it the image is untagged (known by its digest). */
  ref?: string;
  /** What the history entry says made the layer (default 'corral commit'). */
  createdBy?: string;
  /** Recorded in the image history. */
  message?: string;
  /** Config fields to set: Cmd, Entrypoint, Env, WorkingDir, User, Labels. */
  changes?: CommitChanges;
  /** Mount points (absolute paths) made for this run only, left out of the layer when still empty:
   * a build's RUN --mount targets the image lacked. For a container that has exited. */
  mountStubs?: string[];
  /** SOURCE_DATE_EPOCH (seconds): the image is dated then and no file of the layer later, so the
   * same changes give the same image digest (reproducible builds). */
  sourceDateEpoch?: number;
}

/** What commit needs of a container. */
export interface CommitSource {
  id: string;
  layer: WritableLayer | null;
  imageDigest: string | null;
  /** The container's user namespace map, null without one. */
  idMap: IdMap | null;
  /** Freezes the container for the duration of the commit when it runs and can be frozen;
   * returns the thaw (or null when nothing was frozen). */
  freeze(): Promise<(() => Promise<void>) | null>;
}

/** Stores a container's writable layer as one new layer on top of its image: the container is
 * frozen meanwhile where it can be, so the layer is consistent. */
export async function commitContainer(
  source: CommitSource,
  store: ((request: CommitRequest) => Promise<{ manifestDigest: string }>) | null,
  options: CommitOptions,
): Promise<{ manifestDigest: string }> {
  if (!store) throw new CorralError('this runtime has no image store to commit to', { code: 'ERR_COMMIT_UNSUPPORTED' });
  if (!source.layer) {
    throw new CorralError(`container ${source.id} has no writable layer to commit (it runs on the host root or with rootfsWritable: 'direct')`, { code: 'ERR_COMMIT_UNSUPPORTED' });
  }
  if (source.layer.kind === 'memory') {
    throw new CorralError(`container ${source.id} cannot be committed: its writable layer is in memory inside its own mount namespace, where commit cannot read it (${source.layer.why})`, { code: 'ERR_COMMIT_UNSUPPORTED' });
  }
  if (options.mountStubs) removeMountStubs(source.layer.upper, options.mountStubs);
  const thaw = await source.freeze();
  try {
    return await store({
      upper: source.layer.upper,
      baseManifestDigest: source.imageDigest,
      idMap: source.idMap,
      ...(options.ref === undefined ? {} : { ref: options.ref }),
      ...(options.createdBy === undefined ? {} : { createdBy: options.createdBy }),
      ...(options.message === undefined ? {} : { message: options.message }),
      ...(options.changes === undefined ? {} : { changes: options.changes }),
      ...(options.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: checkEpoch(options.sourceDateEpoch) }),
    });
  } finally {
    await thaw?.();
  }
}

/** A SOURCE_DATE_EPOCH as commit and build take it: whole seconds since 1970, as a number or the
 * decimal string the environment variable and build arg hold. */
export function checkEpoch(value: number | string, what = 'sourceDateEpoch'): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new CorralError(`${what} must be whole seconds since 1970 (SOURCE_DATE_EPOCH), got ${JSON.stringify(value)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return n;
}
