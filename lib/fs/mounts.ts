import { statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { parseBytes } from '../sys/units.ts';

/** How mount events propagate between the source and the container's copy. */
export type Propagation = 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared';

/** spec.mounts entries. */
export type MountSpec =
  | { type: 'bind'; source: string; target: string; readonly?: boolean; recursive?: boolean; propagation?: Propagation } & MountFlags
  | { type: 'tmpfs'; target: string; size?: number | string; mode?: number; atime?: TmpfsAtime } & MountFlags
  | { type: 'volume'; source: string; target: string; readonly?: boolean };

/** Flags a bind or tmpfs mount may add to corral's own (every such mount is nodev, a tmpfs nosuid):
 * OCI configs ask for them (podman's volumes are nosuid,noexec). */
export interface MountFlags {
  nosuid?: boolean;
  noexec?: boolean;
}

/** A tmpfs's access-time updates (the kernel's default: relatime); containerd's /run is strictatime. */
export type TmpfsAtime = 'relatime' | 'strictatime' | 'noatime';

/** A mount checked and normalized: binds know whether their source is a directory. */
export type ResolvedMount =
  | { type: 'bind'; source: string; target: string; readonly: boolean; recursive: boolean; propagation: Propagation; sourceIsDir: boolean } & MountFlags
  | { type: 'tmpfs'; target: string; size: number | null; mode: number; atime?: TmpfsAtime } & MountFlags
  | { type: 'volume'; name: string; target: string; readonly: boolean };

/** Most mounts a spec may have (each needs fds in the child's setup). */
export const MAX_MOUNTS = 32;
const ATIMES = new Set(['relatime', 'strictatime', 'noatime']);
const PROPAGATIONS = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']);
/** Volume names: what docker accepts. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

function bad(message: string, path?: string): CorralError {
  return new CorralError(`invalid container spec: ${message}`, { code: 'ERR_INVALID_SPEC', ...(path ? { path } : {}) });
}

function target(value: unknown, i: number): string {
  if (typeof value !== 'string' || !isAbsolute(value) || value.includes('\0')) throw bad(`mounts[${i}].target must be an absolute path`);
  const normal = posix.normalize(value).replace(/\/+$/, '');
  if (normal === '') throw bad(`mounts[${i}].target cannot be /`);
  return normal;
}

function flags(m: MountFlags): MountFlags {
  return { ...(m.nosuid === true ? { nosuid: true } : {}), ...(m.noexec === true ? { noexec: true } : {}) };
}

/** Checks spec.mounts before anything is created: bind sources must exist on the host (restored:
 * of a container made earlier, whose bind sources may have been deleted since: not required). */
export function resolveMounts(mounts: unknown, restored = false): ResolvedMount[] {
  if (mounts === undefined) return [];
  if (!Array.isArray(mounts)) throw bad('mounts must be an array');
  if (mounts.length > MAX_MOUNTS) throw bad(`at most ${MAX_MOUNTS} mounts, got ${mounts.length}`);
  return mounts.map((m: MountSpec, i): ResolvedMount => {
    if (typeof m !== 'object' || m === null) throw bad(`mounts[${i}] must be an object`);
    switch (m.type) {
      case 'bind': {
        if (typeof m.source !== 'string' || !isAbsolute(m.source)) throw bad(`mounts[${i}].source must be an absolute path`);
        let isDir: boolean;
        try {
          isDir = restored ? statSync(m.source, { throwIfNoEntry: false })?.isDirectory() ?? true : statSync(m.source).isDirectory();
        } catch (e) {
          throw fromNodeError(e, `check mounts[${i}] bind mount source`, m.source);
        }
        const propagation = m.propagation ?? 'rprivate';
        if (!PROPAGATIONS.has(propagation)) throw bad(`mounts[${i}].propagation '${String(propagation)}' is not one of ${[...PROPAGATIONS].join(', ')}`);
        return { type: 'bind', source: m.source, target: target(m.target, i), readonly: m.readonly === true, recursive: m.recursive !== false, propagation, sourceIsDir: isDir, ...flags(m) };
      }
      case 'tmpfs': {
        const mode = m.mode ?? 0o1777;
        if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw bad(`mounts[${i}].mode must be a file mode such as 0o755`);
        let size: number | null = null;
        if (m.size !== undefined) {
          size = parseBytes(m.size, `mounts[${i}].size`, bad);
        }
        if (m.atime !== undefined && !ATIMES.has(m.atime)) throw bad(`mounts[${i}].atime '${String(m.atime)}' is not one of ${[...ATIMES].join(', ')}`);
        return { type: 'tmpfs', target: target(m.target, i), size, mode, ...flags(m), ...(m.atime ? { atime: m.atime } : {}) };
      }
      case 'volume': {
        if (typeof m.source !== 'string' || !VOLUME_NAME.test(m.source)) throw bad(`mounts[${i}].source must be a volume name matching ${VOLUME_NAME}`);
        return { type: 'volume', name: m.source, target: target(m.target, i), readonly: m.readonly === true };
      }
      default:
        throw bad(`mounts[${i}].type must be 'bind', 'tmpfs' or 'volume'`);
    }
  });
}
