import createDebug from 'debug';
import { fileURLToPath } from 'node:url';
import { clonePlan, clonePlanAsync } from '../spawn/launch.ts';
import { encodePlan } from '../spawn/plan.ts';
import { op, slot, type PlanOp } from '../spawn/ops.ts';
import { parseRecords } from '../spawn/status-channel.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';
import { close, pipe, readNow } from '../sys/libc.ts';
import { CLONE, MS } from '../sys/constants.ts';
import { detachedOverlayOps, type OverlayMount } from './overlay-mount.ts';

const debug = createDebug('corral:fs');

let probed: OverlayMount | undefined;
let background: Promise<OverlayMount> | undefined;

/** The probe's lower layer: this file's directory, which no mount is under (a user namespace may
 * clone no mount that has locked mounts under it, as / has). */
const PROBE_LOWER = fileURLToPath(new URL('.', import.meta.url));

/** How this kernel mounts a container's overlay: 'fds' when overlayfs takes its layers on detached
 * mounts by fd (fsconfig FSCONFIG_SET_FD "lowerdir+", "upperdir", "workdir": Linux 6.13; detached
 * mounts as layers: 6.15), else 'paths'. Probed once per process: a throwaway child (in a user
 * namespace of its own when not root) makes the overlay a container with an in-memory writable
 * layer would get, attaches it nowhere, and exits. The answer of probeOverlayMount() once it is
 * in; before that the probe runs here, synchronously (on the vfork path). */
export function overlayMount(): OverlayMount {
  if (liftedDefences.overlayFromPaths) return 'paths';
  probed ??= probe();
  return probed;
}

/** overlayMount() without blocking: the probe started once per process (by the Runtime's
 * constructor, so it is off the first container's start path) on a libuv worker thread, whose
 * vfork parent waits for the child there instead of holding the event loop (2-60 ms). Never
 * rejects: a probe that cannot run answers 'paths'. */
export function probeOverlayMount(): Promise<OverlayMount> {
  if (liftedDefences.overlayFromPaths) return Promise.resolve('paths');
  if (probed) return Promise.resolve(probed);
  background ??= probeOffLoop().then((found) => {
    // A synchronous probe may have answered first: the kernel is the same, so is the answer.
    probed ??= found;
    return probed;
  });
  return background;
}

/** The probe's plan: in its own mount namespace, made private first (its layers' mounts are
 * attached on the lower itself there, as a container's are on its staging directory). */
function probeOps(rootless: boolean): PlanOp[] {
  const slots = { context: slot(0), layer: slot(1), upper: slot(2), work: slot(3), lowers: slot(4), park: slot(5), mounted: slot(6) };
  return [
    ...(rootless ? [op.usernsMaps({ step: 'map the caller to root', uidMap: `0 ${process.getuid!()} 1\n`, gidMap: `0 ${process.getgid!()} 1\n` })] : []),
    op.mount({ step: 'make the mount tree private', path: '/', source: null, target: '/', fstype: null, data: null, flags: MS.REC | MS.PRIVATE }),
    ...detachedOverlayOps({ layer: 'memory', lowers: { dir: PROBE_LOWER }, mount: 'fds', rootless, nodev: true }, PROBE_LOWER, slots),
    op.exit({ step: 'exit', status: 0 }),
  ];
}

/** The flags of the probe's child: on the vfork path, in a user namespace of its own when not root. */
function probeFlags(rootless: boolean): bigint {
  return CLONE.NEWNS | (rootless ? CLONE.NEWUSER : 0n) | CLONE.VM | CLONE.VFORK;
}

/** Runs the probe on the vfork path: the call returns once the child is exiting, and its status
 * pipe holds its one record by then: ready (every step passed) or the error of the step that
 * failed; its exit is reaped later, on the event loop. */
function probe(): OverlayMount {
  const launch = probeLaunch();
  let child: { pidfd: number } | Error;
  try {
    child = clonePlan(launch.plan, launch.flags, undefined);
  } catch (e) {
    child = e as Error;
  }
  return probeOutcome(launch, child);
}

/** probe() with the clone on a libuv worker thread (it returns once the child is exiting). */
async function probeOffLoop(): Promise<OverlayMount> {
  const launch = probeLaunch();
  return probeOutcome(launch, await clonePlanAsync(launch.plan, launch.flags).catch((e: Error) => e));
}

/** What a probe clones: its plan (reporting on the write end of a fresh status pipe) and flags. */
interface ProbeLaunch {
  ops: PlanOp[];
  plan: Buffer;
  flags: bigint;
  read: number;
  write: number;
}

function probeLaunch(): ProbeLaunch {
  const rootless = process.getuid!() !== 0;
  const ops = probeOps(rootless);
  const [read, write] = pipe();
  return { ops, plan: encodePlan(ops, write), flags: probeFlags(rootless), read, write };
}

/** After the clone (the child, or what it threw): the child's exit watched, the answer read; a
 * probe that could not run answers 'paths'. */
function probeOutcome(launch: ProbeLaunch, child: { pidfd: number } | Error): OverlayMount {
  close(launch.write);
  try {
    if (child instanceof Error) throw child;
    exitWatcher.watch(child.pidfd, () => close(child.pidfd));
  } catch (e) {
    close(launch.read);
    debug('overlay probe could not run: %s', (e as Error).message);
    return 'paths';
  }
  return probeAnswer(launch.ops, launch.read);
}

/** Reads the probe's one record from its status pipe (read, closed here) and says what it means. */
function probeAnswer(ops: PlanOp[], read: number): OverlayMount {
  let data = Buffer.alloc(0);
  try {
    while (parseRecords(data).length === 0) {
      const chunk = readNow(read, 16);
      if (!chunk?.length) break;
      data = Buffer.concat([data, chunk]);
    }
  } catch (e) {
    debug('overlay probe could not be read: %s', (e as Error).message);
    return 'paths';
  } finally {
    close(read);
  }
  const [record] = parseRecords(data);
  if (record?.kind === 'ready') return 'fds';
  debug('overlay layers by fd: no, %s', record ? `"${ops[record.step]?.step}" failed with errno ${record.errno}` : 'the probe exited without a word');
  return 'paths';
}
