import koffi from 'koffi';
import { fileURLToPath } from 'node:url';
import { CorralError } from './errors.ts';

// lib/sys (or dist/sys) → bindings/build/libcorral.so
const libraryPath = fileURLToPath(new URL('../../bindings/build/libcorral.so', import.meta.url));

function load(): ReturnType<typeof koffi.load> {
  try {
    return koffi.load(libraryPath);
  } catch (cause) {
    throw new CorralError(
      `cannot load corral's native executor ${libraryPath}: run "npm run build:native"`,
      { code: 'ERR_NATIVE_MISSING', path: libraryPath, cause },
    );
  }
}

const lib = load();

/** The loaded libcorral.so, for the bindings of its other parts (lib/sys/netns.ts). */
export const nativeLibrary = lib;
const spawnFn = lib.func('int64_t corral_spawn(void *plan, uint64_t flags, int32_t cgroupFd, _Out_ int32_t *pidfd)');

/** The raw result of a clone: the child's pid and pidfd, or a negative errno in pid. */
export interface CloneResult {
  pid: number;
  pidfd: number;
}

/** Clones a child that runs the encoded setup plan (see bindings/plan.h). */
export function cloneWithPlan(plan: Buffer, flags: bigint, cgroupFd = -1): CloneResult {
  const pidfd = [-1];
  const pid = Number(spawnFn(plan, flags, cgroupFd, pidfd));
  return { pid, pidfd: pidfd[0]! };
}
