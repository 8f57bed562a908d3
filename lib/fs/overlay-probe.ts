import createDebug from 'debug';
import { fileURLToPath } from 'node:url';
import { clonePlan } from '../spawn/launch.ts';
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

/** The probe's lower layer: this file's directory, which no mount is under (a user namespace may
 * clone no mount that has locked mounts under it, as / has). */
const PROBE_LOWER = fileURLToPath(new URL('.', import.meta.url));

/** How this kernel mounts a container's overlay: 'fds' when overlayfs takes its layers on detached
 * mounts by fd (fsconfig FSCONFIG_SET_FD "lowerdir+", "upperdir", "workdir": Linux 6.13; detached
 * mounts as layers: 6.15), else 'paths'. Probed once per process: a throwaway child (in a user
 * namespace of its own when not root) makes the overlay a container with an in-memory writable
 * layer would get, attaches it nowhere, and exits. */
export function overlayMount(): OverlayMount {
  if (liftedDefences.overlayFromPaths) return 'paths';
  probed ??= probe();
  return probed;
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

/** Runs the probe on the vfork path: the call returns once the child is exiting, and its status
 * pipe holds its one record by then: ready (every step passed) or the error of the step that
 * failed; its exit is reaped later, on the event loop. */
function probe(): OverlayMount {
  const rootless = process.getuid!() !== 0;
  const ops = probeOps(rootless);
  const [read, write] = pipe();
  let data = Buffer.alloc(0);
  try {
    try {
      const child = clonePlan(encodePlan(ops, write), CLONE.NEWNS | (rootless ? CLONE.NEWUSER : 0n) | CLONE.VM | CLONE.VFORK, undefined);
      exitWatcher.watch(child.pidfd, () => close(child.pidfd));
    } finally {
      close(write);
    }
    while (parseRecords(data).length === 0) {
      const chunk = readNow(read, 16);
      if (!chunk?.length) break;
      data = Buffer.concat([data, chunk]);
    }
  } catch (e) {
    debug('overlay probe could not run: %s', (e as Error).message);
    return 'paths';
  } finally {
    close(read);
  }
  const [record] = parseRecords(data);
  if (record?.kind === 'ready') return 'fds';
  debug('overlay layers by fd: no, %s', record ? `"${ops[record.step]?.step}" failed with errno ${record.errno}` : 'the probe exited without a word');
  return 'paths';
}
