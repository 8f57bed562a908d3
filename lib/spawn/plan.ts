/** The setup plan: an ordered list of operations the child performs between clone and exec,
 * encoded into one buffer for bindings/executor.c. Op codes mirror bindings/plan.h. */

export const OP = {
  USERNS_MAPS: 1,
  PRCTL: 2,
  SETSID: 3,
  MOUNT: 4,
  OPEN_TREE: 5,
  MOUNT_SETATTR: 6,
  MOVE_MOUNT: 7,
  MKDIR: 8,
  MKNOD: 9,
  CREATE_FILE: 10,
  SYMLINK: 11,
  PIVOT_ROOT: 12,
  SETHOSTNAME: 13,
  LOOPBACK_UP: 14,
  CHDIR: 15,
  SETGROUPS: 16,
  SETRESGID: 17,
  SETRESUID: 18,
  DUP2: 19,
  CLOSE_FDS: 20,
  RESOLVE_COMMAND: 21,
  WAIT_START: 22,
  SETNS: 23,
  FORK_INTO_PARENT: 24,
  EXEC: 25,
  UMASK: 26,
  CLOEXEC_FROM: 27,
  CAPBSET_LIMIT: 28,
  CAPSET: 29,
  UNSHARE: 30,
  OPEN_IN_ROOT: 31,
  MOUNT_AT: 32,
  MOVE_MOUNT_AT: 33,
  SETATTR_ONE: 34,
  SECCOMP: 35,
  SETRLIMIT: 36,
  WRITE_FILE: 37,
  MASK_PATH: 38,
  READONLY_PATH: 39,
} as const;

/** One planned operation, with the words that name it in an error. */
export interface PlanOp {
  code: number;
  /** What this step does, e.g. "mount proc on /proc". */
  step: string;
  /** The path the step works on, reported in errors. */
  path?: string;
  /** The system call that can fail, reported in errors. */
  syscall: string;
  n?: readonly (number | bigint)[];
  s?: readonly (string | null)[];
  /** String lists (argv, envp) by slot; they take the place of s[i] and need pointer scratch at n[i]. */
  lists?: readonly (readonly string[] | undefined)[];
  /** u32 lists (fds to keep, groups) by slot, in place of s[i]. */
  u32Lists?: readonly (readonly number[] | undefined)[];
  /** Raw bytes (a BPF program), 8-byte aligned: its offset goes in s[0], its length in n[0]. */
  blob?: Buffer;
}

const HEADER_SIZE = 16;
const OP_SIZE = 56;
const MAGIC = 0x314c5243;

/** Encodes ops into the binary plan; statusFd is the write end of the status pipe. */
export function encodePlan(ops: readonly PlanOp[], statusFd: number): Buffer {
  const chunks: Buffer[] = [];
  let dataSize = 0;
  const dataStart = HEADER_SIZE + OP_SIZE * ops.length;
  const put = (buf: Buffer, align = 1): number => {
    const pad = (align - ((dataStart + dataSize) % align)) % align;
    if (pad) {
      chunks.push(Buffer.alloc(pad));
      dataSize += pad;
    }
    const at = dataStart + dataSize;
    chunks.push(buf);
    dataSize += buf.length;
    return at;
  };
  const putString = (text: string): number => put(Buffer.from(`${text}\0`));
  const putU32List = (values: readonly number[]): number => {
    const b = Buffer.alloc(4 * (values.length + 1));
    b.writeUInt32LE(values.length, 0);
    values.forEach((v, i) => b.writeUInt32LE(v, 4 * (i + 1)));
    return put(b, 4);
  };

  const table = Buffer.alloc(HEADER_SIZE + OP_SIZE * ops.length);
  table.writeUInt32LE(MAGIC, 0);
  table.writeUInt32LE(ops.length, 4);
  table.writeInt32LE(statusFd, 8);
  ops.forEach((op, i) => {
    const base = HEADER_SIZE + OP_SIZE * i;
    table.writeUInt32LE(op.code, base);
    const n = [...(op.n ?? [])].map((v) => BigInt(v));
    const s: number[] = (op.s ?? []).map((v) => (v == null ? 0 : putString(v)));
    op.u32Lists?.forEach((values, slot) => {
      if (values) s[slot] = putU32List(values);
    });
    op.lists?.forEach((values, slot) => {
      if (!values) return;
      const offsets = values.map(putString);
      s[slot] = putU32List(offsets);
      n[slot] = BigInt(put(Buffer.alloc(8 * (values.length + 1)), 8));
    });
    if (op.blob) {
      s[0] = put(op.blob, 8);
      n[0] = BigInt(op.blob.length);
    }
    for (let k = 0; k < 4; k++) table.writeBigInt64LE(n[k] ?? 0n, base + 8 + 8 * k);
    for (let k = 0; k < 4; k++) table.writeUInt32LE(s[k] ?? 0, base + 40 + 4 * k);
  });
  return Buffer.concat([table, ...chunks]);
}
