import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { encodePlan, PLAN_MAGIC } from '../../lib/spawn/plan.ts';
import { OP, op, slot, SLOT_COUNT } from '../../lib/spawn/ops.ts';
import { parseRecords } from '../../lib/spawn/status-channel.ts';

const cString = (buf: Buffer, at: number): string => buf.toString('utf8', at, buf.indexOf(0, at));

describe('setup plan encoding', () => {
  it('writes the header, fixed-size ops and NUL-terminated strings', () => {
    const buf = encodePlan([
      op.mount({ step: 'm', source: 'proc', target: '/proc', fstype: 'proc', data: null, flags: 14 }),
      op.sethostname({ step: 'h', name: 'box' }),
    ], 7);
    assert.equal(buf.readUInt32LE(0), 0x314c5243);
    assert.equal(buf.readUInt32LE(4), 2);
    assert.equal(buf.readInt32LE(8), 7);
    assert.equal(buf.readUInt32LE(12), buf.length, 'the header holds the plan size');
    assert.equal(buf.readUInt32LE(16), OP.MOUNT);
    assert.equal(buf.readBigInt64LE(16 + 8), 14n);
    assert.equal(cString(buf, buf.readUInt32LE(16 + 40)), 'proc');
    assert.equal(cString(buf, buf.readUInt32LE(16 + 44)), '/proc');
    assert.equal(buf.readUInt32LE(16 + 52), 0, 'a null string is offset 0');
    assert.equal(cString(buf, buf.readUInt32LE(16 + 56 + 40)), 'box');
  });

  it('encodes string lists with aligned pointer scratch space', () => {
    const buf = encodePlan([op.exec({ step: 'e', argv: ['sh', '-c', 'x'], envp: ['A=1'] })], 3);
    const list = buf.readUInt32LE(16 + 40);
    assert.equal(list % 4, 0);
    assert.equal(buf.readUInt32LE(list), 3);
    assert.deepEqual([0, 1, 2].map((i) => cString(buf, buf.readUInt32LE(list + 4 + 4 * i))), ['sh', '-c', 'x']);
    const scratch = Number(buf.readBigInt64LE(16 + 8));
    assert.equal(scratch % 8, 0);
    assert.ok(scratch + 8 * 4 <= buf.length, 'room for 3 pointers and NULL');
  });

  it('encodes u32 lists (fds to keep, groups)', () => {
    const buf = encodePlan([op.closeFds({ step: 'c', keep: [9, 0, 2, 1, 2] })], 3);
    const list = buf.readUInt32LE(16 + 40);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => buf.readUInt32LE(list + 4 * i)), [4, 0, 1, 2, 9]);
  });

  it('uses the op codes, magic and slot count of bindings/plan.h', () => {
    const header = readFileSync(new URL('../../bindings/plan.h', import.meta.url), 'utf8');
    const inC = Object.fromEntries([...header.matchAll(/OP_([A-Z0-9_]+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual(inC, { ...OP });
    assert.equal(Number(/#define PLAN_MAGIC (0x[0-9a-f]+)u/.exec(header)?.[1]), PLAN_MAGIC);
    assert.equal(Number(/#define SLOT_COUNT (\d+)/.exec(header)?.[1]), SLOT_COUNT);
  });

  it('encodes named fields into the words plan.h documents: slots, dirs (slot + 1), create modes', () => {
    const o = op.openInRoot({ step: 'o', root: slot(0), inRoot: '/proc', into: slot(2), create: 'dirs' });
    assert.deepEqual(o.words, { s: ['/proc'], n: [1, 2, 1] });
    assert.equal(o.syscall, 'openat2');
    assert.equal(op.openInRoot({ step: 'o', root: null, inRoot: '/x', into: slot(0), create: 'none' }).syscall, 'openat');
    assert.deepEqual(op.mkdir({ step: 'm', name: 'pts', mode: 0o755, dir: null }).words.n, [0o755, 0, 0, 0]);
    assert.throws(() => slot(SLOT_COUNT), RangeError);
    assert.throws(() => slot(-1), RangeError);
  });

  it('parses status records', () => {
    const b = Buffer.alloc(32);
    b.writeInt32LE(2, 0); b.writeInt32LE(5, 4); b.writeInt32LE(13, 8);
    b.writeInt32LE(3, 16); b.writeInt32LE(9, 20); b.writeInt32LE(0, 24); b.writeInt32LE(4242, 28);
    assert.deepEqual(parseRecords(b), [
      { kind: 'error', step: 5, errno: 13, value: 0 },
      { kind: 'pid', step: 9, errno: 0, value: 4242 },
    ]);
  });
});
