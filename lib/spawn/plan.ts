/** The setup plan's binary form: the ordered ops (lib/spawn/ops.ts) encoded into one buffer for
 * bindings/executor.c, laid out as bindings/plan.h says. */
import type { PlanOp } from './ops.ts';

const HEADER_SIZE = 16;
const OP_SIZE = 56;
/** PLAN_MAGIC in bindings/plan.h: "CRL1". */
export const PLAN_MAGIC = 0x314c5243;

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

  const table = Buffer.alloc(dataStart);
  table.writeUInt32LE(PLAN_MAGIC, 0);
  table.writeUInt32LE(ops.length, 4);
  table.writeInt32LE(statusFd, 8);
  ops.forEach(({ code, words }, i) => {
    const base = HEADER_SIZE + OP_SIZE * i;
    table.writeUInt32LE(code, base);
    const n = [...(words.n ?? [])].map((v) => BigInt(v));
    const s: number[] = (words.s ?? []).map((v) => (v == null ? 0 : putString(v)));
    words.u32Lists?.forEach((values, at) => {
      if (values) s[at] = putU32List(values);
    });
    words.lists?.forEach((values, at) => {
      if (!values) return;
      const offsets = values.map(putString);
      s[at] = putU32List(offsets);
      n[at] = BigInt(put(Buffer.alloc(8 * (values.length + 1)), 8));
    });
    if (words.blob) {
      s[0] = put(words.blob, 8);
      n[0] = BigInt(words.blob.length);
    }
    for (let k = 0; k < 4; k++) table.writeBigInt64LE(n[k] ?? 0n, base + 8 + 8 * k);
    for (let k = 0; k < 4; k++) table.writeUInt32LE(s[k] ?? 0, base + 40 + 4 * k);
  });
  const plan = Buffer.concat([table, ...chunks]);
  plan.writeUInt32LE(plan.length, 12);
  return plan;
}
