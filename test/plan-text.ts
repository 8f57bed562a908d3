// Renders a setup plan as text, one op a line with its named fields, for the golden plan tests:
// flags by name, modes in octal, slots as @N, the executor image's fd as exe, so that a change to a plan reads well in review.
import { AT_RECURSIVE, CLONE, MOUNT_ATTR, MS, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, PR } from '../lib/sys/constants.ts';
import { lastCapability } from '../lib/container/capabilities.ts';
import { executorImageFd } from '../lib/spawn/executor-image.ts';
import type { PlanOp } from '../lib/spawn/ops.ts';

type Names = Readonly<Record<string, number | bigint>>;

function flagNames(value: number | bigint, names: Names): string {
  let rest = BigInt(value);
  const parts: string[] = [];
  for (const [name, bit] of Object.entries(names)) {
    const b = BigInt(bit);
    if (b !== 0n && (rest & b) === b) {
      parts.push(name);
      rest &= ~b;
    }
  }
  if (rest !== 0n) parts.push(`0x${rest.toString(16)}`);
  return parts.length ? parts.join('|') : '0';
}

const OPEN_TREE = { CLONE: OPEN_TREE_CLONE, CLOEXEC: OPEN_TREE_CLOEXEC, RECURSIVE: AT_RECURSIVE };
const PR_NAMES = Object.fromEntries(Object.entries(PR).map(([k, v]) => [v, k]));
/** The fields that hold a slot (lib/spawn/ops.ts types them Slot). */
const SLOT_FIELDS = new Set([
  'OPEN_TREE.into', 'MOUNT_SETATTR.slot', 'MOVE_MOUNT.slot', 'MKDIR.dir', 'MKNOD.dir', 'CREATE_FILE.dir', 'SYMLINK.dir',
  'OPEN_IN_ROOT.root', 'OPEN_IN_ROOT.into', 'MOUNT_AT.slot', 'MOVE_MOUNT_AT.from', 'MOVE_MOUNT_AT.to', 'SETATTR_ONE.slot',
  'MASK_PATH.root', 'READONLY_PATH.root', 'FSOPEN.into', 'FSCONFIG.context', 'FSCONFIG.fd', 'OVERLAY_LOWERS.context',
  'OVERLAY_LOWERS.dir', 'OVERLAY_LOWERS.park', 'FSMOUNT.context', 'FSMOUNT.into', 'BIND_OWN_FILE.root', 'BIND_OWN_FILE.dir',
]);

/** How one field of an op reads. */
function fieldText(opName: string, field: string, value: unknown): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return '<bpf>';
  if (Array.isArray(value)) return `[${value.map((v) => (v === executorImageFd() && opName === 'CLOSE_FDS' ? 'exe' : JSON.stringify(v))).join(' ')}]`;
  if (typeof value === 'string') {
    if (field === 'uidMap') return JSON.stringify(value.replace(` ${process.getuid!()} `, ' $UID '));
    if (field === 'gidMap') return JSON.stringify(value.replace(` ${process.getgid!()} `, ' $GID '));
    return JSON.stringify(value);
  }
  const v = value as number | bigint;
  if (opName === 'REEXEC' && field === 'exe') return 'exe';
  if (SLOT_FIELDS.has(`${opName}.${field}`)) return `@${v}`;
  if (field === 'flags' && (opName === 'MOUNT' || opName === 'MOUNT_AT')) return flagNames(v, MS);
  if (field === 'flags' && opName === 'OPEN_TREE') return flagNames(v, OPEN_TREE);
  if (field === 'flags' || field === 'nstype') return flagNames(v, CLONE);
  if (field === 'set' || field === 'clear' || field === 'attrs') return flagNames(v, MOUNT_ATTR);
  if (field === 'propagation') return flagNames(v, { PRIVATE: MS.PRIVATE, SLAVE: MS.SLAVE, SHARED: MS.SHARED });
  if (field === 'option') return `PR_${PR_NAMES[Number(v)] ?? v}`;
  if (field === 'mode' || field === 'mask') return `0o${v.toString(8)}`;
  if (field === 'dev') return `${Number(v) >> 8}:${Number(v) & 0xff}`;
  if (field === 'keep' && typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (field === 'lastCap' && v === lastCapability()) return 'cap_last_cap';
  return String(v);
}

/** One line per op: NAME field=value … # step (path, unless the step names it). The caller's uid and gid read $UID and $GID. */
export function planText(ops: readonly PlanOp[]): string {
  return ops.map((o) => {
    const fields = Object.entries(o.fields).map(([k, v]) => `${k}=${fieldText(o.name, k, v)}`);
    const step = o.name === 'USERNS_MAPS' ? o.step.replace(/uid \d+ and gid \d+/, 'uid $UID and gid $GID') : o.step;
    return `${[o.name, ...fields].join(' ')}  # ${step}${o.path === undefined || step.includes(o.path) ? '' : ` (${o.path})`}`;
  }).join('\n') + '\n';
}
