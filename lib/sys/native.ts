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
const spawnFn = lib.func('int64_t corral_spawn(void *plan, uint64_t size, uint64_t flags, int32_t cgroupFd, _Out_ int32_t *pidfd, _Out_ int32_t *badOp)');

/** The pid corral_spawn returns (negated) for a plan its check refuses. */
export const EBADMSG = 74;

/** The raw result of a clone: the child's pid and pidfd, or a negative errno in pid; with
 * -EBADMSG, badOp is the index of the op the plan check refused (op_count: the header). */
export interface CloneResult {
  pid: number;
  pidfd: number;
  badOp: number;
}

/** Clones a child that runs the encoded setup plan (see bindings/plan.h), once the native side has
 * checked the plan against its own bounds. */
export function cloneWithPlan(plan: Buffer, flags: bigint, cgroupFd = -1): CloneResult {
  const pidfd = [-1];
  const badOp = [-1];
  const pid = Number(spawnFn(plan, plan.length, flags, cgroupFd, pidfd, badOp));
  return { pid, pidfd: pidfd[0]!, badOp: badOp[0]! };
}

/** cloneWithPlan on a libuv worker thread, so a vfork parent waiting for its child holds no event
 * loop (the overlay probe's); the native side lets one CLONE_VM caller at a time use its stack. */
export function cloneWithPlanAsync(plan: Buffer, flags: bigint, cgroupFd = -1): Promise<CloneResult> {
  const pidfd = [-1];
  const badOp = [-1];
  return new Promise((resolve, reject) => {
    spawnFn.async(plan, plan.length, flags, cgroupFd, pidfd, badOp, (err: unknown, pid: bigint | number) => {
      if (err) reject(err);
      else resolve({ pid: Number(pid), pidfd: pidfd[0]!, badOp: badOp[0]! });
    });
  });
}
