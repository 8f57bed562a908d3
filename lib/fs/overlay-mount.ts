import { relative } from 'node:path';
import { op, type PlanOp, type Slot } from '../spawn/ops.ts';
import { CorralError } from '../sys/errors.ts';
import { MOUNT_ATTR, MS, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE } from '../sys/constants.ts';

/** How a container's overlay is mounted. 'fds': with the new mount API, every layer a detached
 * clone given by fd, so the overlay's options in /proc/self/mountinfo name each by its path inside
 * its clone ("/", "/upper") and not by its host path (Linux 6.15+, see overlay-probe.ts). 'paths':
 * mount(2) with the lower layers named relative to their directory (entered first) and the
 * writable layer by its path, which mountinfo then shows. */
export type OverlayMount = 'fds' | 'paths';

/** The overlay over a container's root: where its writable layer is, what its lowers are. */
export interface OverlayPlan {
  /** The writable layer: its directory with upper and work in it, or 'memory', a tmpfs of the
   * child's own (gone with its mount namespace). */
  layer: { dir: string; upper: string; work: string } | 'memory';
  /** The lower layers: an image's (names relative to base, top first), or one directory. */
  lowers: { base: string; names: readonly string[] } | { dir: string };
  mount: OverlayMount;
  /** Inside a user namespace: overlayfs keeps its xattrs in user.* (userxattr). */
  rootless: boolean;
  /** Device nodes on it do not open (false only when a test lifts the defence). */
  nodev: boolean;
}

/** The slots the overlay's ops use: the filesystem context, the writable layer's mount and its
 * upper and work directories, the lowers' directory, the target directory (the layers' mounts are
 * parked there); the overlay's mount ends up in `mounted`. */
export interface OverlaySlots {
  context: Slot;
  layer: Slot;
  upper: Slot;
  work: Slot;
  lowers: Slot;
  park: Slot;
  mounted: Slot;
}

/** Characters overlayfs cannot take in a lowerdir/upperdir option (mount(2) from paths). */
const OVERLAY_UNSAFE = /[,:\\]/;

/** The ops that mount the overlay on target (the staging directory of the new root). The
 * container reads the overlay's options in /proc/self/mountinfo: mounted from fds, they show no
 * host path (test/security/mountinfo-host-paths.test.ts). */
export function overlayOps(plan: OverlayPlan, target: string, slots: OverlaySlots): PlanOp[] {
  const { lowers, step } = layersOf(plan);
  if (plan.mount === 'paths') return pathOps(plan, lowers, target, slots.layer, step);
  return [
    ...detachedOverlayOps(plan, target, slots),
    op.moveMountAt({ step: `attach the root at ${target}`, path: target, from: slots.mounted, to: slots.park }),
  ];
}

/** The lowers as a directory and names in it, and the step that names them in an error. */
function layersOf(plan: OverlayPlan): { lowers: { base: string; names: readonly string[] }; step: string } {
  const lowers = 'names' in plan.lowers ? plan.lowers : { base: plan.lowers.dir, names: ['.'] };
  if (lowers.names.length === 0) throw new CorralError('an image without layers cannot be run', { code: 'ERR_INVALID_IMAGE' });
  return { lowers, step: `mount an overlay over ${'dir' in plan.lowers ? plan.lowers.dir : `${lowers.names.length} image layers`}` };
}

/** The new mount API up to the overlay's detached mount (in slots.mounted; overlay-probe.ts stops
 * there): the writable layer's directory (or a fresh tmpfs) and each lower a detached mount,
 * handed to fsconfig by fd; the overlay made with fsmount. Those mounts are then attached on
 * target, where the overlay goes on top of them: the last close of a detached mount waits for an
 * RCU grace period (about 0.1 ms each), while attached ones go in the one unmount of the old root
 * after pivot_root. */
export function detachedOverlayOps(plan: OverlayPlan, target: string, slots: OverlaySlots): PlanOp[] {
  const { lowers, step } = layersOf(plan);
  const { context } = slots;
  const ops: PlanOp[] = [];
  const dirs = { upper: 'upper', work: 'work' };
  if (plan.layer === 'memory') {
    const tmpfs = `create a tmpfs for the writable layer`;
    ops.push(
      op.fsopen({ step: tmpfs, fstype: 'tmpfs', into: context }),
      op.fsconfig({ step: tmpfs, context, command: 'string', key: 'mode', value: '755', fd: null }),
      op.fsconfig({ step: tmpfs, context, command: 'create', key: null, value: null, fd: null }),
      op.fsmount({ step: tmpfs, context, attrs: MOUNT_ATTR.NOSUID | (plan.nodev ? MOUNT_ATTR.NODEV : 0), into: slots.layer }),
      op.mkdir({ step: 'create the upper directory', name: dirs.upper, mode: 0o755, dir: slots.layer }),
      op.mkdir({ step: 'create the work directory', name: dirs.work, mode: 0o700, dir: slots.layer }),
    );
  } else {
    const dir = plan.layer.dir;
    dirs.upper = relative(dir, plan.layer.upper);
    dirs.work = relative(dir, plan.layer.work);
    ops.push(op.openTree({ step: `clone the writable layer ${dir}`, path: dir, source: dir, flags: OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC, into: slots.layer }));
  }
  const path = lowers.base;
  const set = (key: string, value: string | null = null): PlanOp =>
    op.fsconfig({ step, path, context, command: value === null ? 'flag' : 'string', key, value, fd: null });
  const layerPath = plan.layer === 'memory' ? {} : { path: plan.layer.dir };
  ops.push(
    op.openInRoot({ step: 'open the upper directory', ...layerPath, root: slots.layer, inRoot: dirs.upper, into: slots.upper, create: 'none' }),
    op.openInRoot({ step: 'open the work directory', ...layerPath, root: slots.layer, inRoot: dirs.work, into: slots.work, create: 'none' }),
    op.fsopen({ step, path, fstype: 'overlay', into: context }),
    set('source', 'overlay'),
    op.fsconfig({ step, path, context, command: 'fd', key: 'upperdir', value: null, fd: slots.upper }),
    op.fsconfig({ step, path, context, command: 'fd', key: 'workdir', value: null, fd: slots.work }),
    ...overlayOptions(plan.rootless).map(([key, value]) => set(key, value)),
    op.openInRoot({ step: `open ${lowers.base}`, path: lowers.base, root: null, inRoot: lowers.base, into: slots.lowers, create: 'none' }),
    op.openInRoot({ step: `open ${target}`, path: target, root: null, inRoot: target, into: slots.park, create: 'none' }),
    op.overlayLowers({ step, path: lowers.base, context, dir: slots.lowers, names: lowers.names, park: slots.park }),
    op.fsmount({ step, path, context, attrs: plan.nodev ? MOUNT_ATTR.NODEV : 0, into: slots.mounted }),
    op.moveMountAt({ step: `attach the writable layer's mount on ${target}, under the root`, path: target, from: slots.layer, to: slots.park }),
  );
  return ops;
}

/** The options both ways share. 'volatile': the writable layer is thrown away with the container,
 * so overlayfs need not sync it at unmount; no redirect_dir or metacopy (userxattr, rootless, has
 * neither), so the upper directory alone holds every change (for commit). */
function overlayOptions(rootless: boolean): [key: string, value: string | null][] {
  return rootless ? [['volatile', null], ['userxattr', null]] : [['volatile', null], ['redirect_dir', 'off'], ['metacopy', 'off']];
}

/** mount(2) from paths, for kernels that take no layers on detached mounts. An image's layers are
 * named relative to their directory, which the child enters first: the option string must fit in
 * a page, and 200 absolute layer paths would not. The lower is entered before the in-memory
 * upper's tmpfs covers the staging directory, which may hold it (a rootfs under /tmp): named
 * relative to the working directory, it stays reachable. */
function pathOps(plan: OverlayPlan, lowers: { base: string; names: readonly string[] }, target: string, scratch: Slot, step: string): PlanOp[] {
  const layer = plan.layer === 'memory' ? { upper: `${target}/upper`, work: `${target}/work` } : plan.layer;
  for (const p of [layer.upper, layer.work, lowers.base]) {
    if (OVERLAY_UNSAFE.test(p)) throw new CorralError(`overlay cannot take the path ${p} (it has a comma, colon or backslash); use rootfsWritable: 'direct'`, { code: 'ERR_INVALID_SPEC', path: p });
  }
  const ops: PlanOp[] = [op.chdir({ step: `enter ${'dir' in plan.lowers ? 'the lower directory' : 'the layer store'} ${lowers.base}`, path: lowers.base, dir: lowers.base })];
  if (plan.layer === 'memory') ops.push(...memoryUpperOps(target, plan.nodev, scratch));
  const options = overlayOptions(plan.rootless).map(([key, value]) => (value === null ? key : `${key}=${value}`));
  const data = [`lowerdir=${lowers.names.join(':')}`, `upperdir=${layer.upper}`, `workdir=${layer.work}`, ...options].join(',');
  if (data.length >= 4096) throw new CorralError(`the overlay options take ${data.length} bytes, more than the page the kernel accepts`, { code: 'E2BIG', path: lowers.base });
  ops.push(op.mount({ step, path: lowers.base, source: 'overlay', target, fstype: 'overlay', data, flags: plan.nodev ? MS.NODEV : 0 }));
  return ops;
}

/** A tmpfs on the staging directory holding the overlay's upper and work directories: the overlay
 * is then mounted over it (it keeps its references to them), and the tmpfs goes with the mount
 * namespace (bubblewrap's --tmp-overlay). */
function memoryUpperOps(root: string, nodev: boolean, scratch: Slot): PlanOp[] {
  const step = `mount tmpfs on ${root} for the writable layer`;
  return [
    op.mount({ step, path: root, source: 'tmpfs', target: root, fstype: 'tmpfs', data: 'mode=755', flags: MS.NOSUID | (nodev ? MS.NODEV : 0) }),
    op.openInRoot({ step: `open ${root} for the writable layer`, path: root, root: null, inRoot: root, into: scratch, create: 'none' }),
    op.mkdir({ step: `create ${root}/upper`, path: `${root}/upper`, name: 'upper', mode: 0o755, dir: scratch }),
    op.mkdir({ step: `create ${root}/work`, path: `${root}/work`, name: 'work', mode: 0o700, dir: scratch }),
  ];
}
