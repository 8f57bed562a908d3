// The executor checks a plan before it clones (bindings/plan-check.c): a corrupt or mismatched plan
// is an ERR_INVALID_PLAN naming the op, and no process is started; the same plan uncorrupted runs.
import assert from 'node:assert/strict';
import { clonePlan } from '../../lib/spawn/launch.ts';
import { encodePlan } from '../../lib/spawn/plan.ts';
import { op, slot, type PlanOp, type Slot } from '../../lib/spawn/ops.ts';
import { close, pipe, reapPidfd } from '../../lib/sys/libc.ts';
import { eventually, openFds, zombieChildren } from '../helpers.ts';

const HEADER = 16;
const OP_SIZE = 56;
/** Byte offsets of an op's n[k] and s[k] words. */
const nAt = (i: number, k: number): number => HEADER + OP_SIZE * i + 8 + 8 * k;
const sAt = (i: number, k: number): number => HEADER + OP_SIZE * i + 40 + 4 * k;

/** A plan that runs /bin/true: a mount op to corrupt first (on a path that does not matter, the
 * plan stops there), then the command. */
function truePlan(statusFd: number, extra: PlanOp[] = []): Buffer {
  return encodePlan([
    op.closeFds({ step: 'close', keep: [0, 1, 2, statusFd] }),
    ...extra,
    op.resolveCommand({ step: 'resolve', name: '/bin/true', searchPath: '' }),
    op.cloexecFrom({ step: 'cloexec', fd: 3 }),
    op.exec({ step: 'exec', argv: ['true'], envp: [] }),
  ], statusFd);
}

describe('the executor checks every plan before it runs it', () => {
  let statusRead = -1;
  let statusWrite = -1;
  beforeEach(() => { [statusRead, statusWrite] = pipe(); });
  afterEach(() => { close(statusRead); close(statusWrite); });

  it('runs a plan that fits (the control: the corruptions below are what is refused)', async () => {
    const child = clonePlan(truePlan(statusWrite), 0n, undefined);
    let status = null;
    assert.ok(await eventually(() => (status = reapPidfd(child.pidfd)) !== null));
    close(child.pidfd);
    assert.deepEqual(status, { exitCode: 0, signal: null });
  });

  const corruptions: [string, (plan: Buffer) => void, RegExp][] = [
    ['a wrong magic', (p) => p.writeUInt32LE(0xdeadbeef, 0), /in its header/],
    ['a size that is not the buffer size', (p) => p.writeUInt32LE(p.length + 8, 12), /in its header/],
    ['more ops than the plan holds', (p) => p.writeUInt32LE(10_000, 4), /in its header/],
    ['an unknown op code', (p) => p.writeUInt32LE(999, HEADER + OP_SIZE * 1), /at op 1\b/],
    ['a string offset past the end', (p) => p.writeUInt32LE(p.length + 100, sAt(1, 0)), /at op 1\b/],
    ['a string offset into the header', (p) => p.writeUInt32LE(4, sAt(1, 0)), /at op 1\b/],
    ['a string that runs off the end', (p) => { p.writeUInt32LE(p.length - 1, sAt(1, 0)); p[p.length - 1] = 0x41; }, /at op 1\b/],
    ['an argv list longer than the plan', (p) => p.writeUInt32LE(1 << 20, p.readUInt32LE(sAt(4, 0))), /at op 4\b/],
    ['argv pointer scratch past the end', (p) => p.writeBigInt64LE(BigInt(p.length), nAt(4, 0)), /at op 4\b/],
    ['a missing required string', (p) => p.writeUInt32LE(0, sAt(2, 0)), /at op 2\b/],
  ];
  for (const [what, corrupt, where] of corruptions) {
    it(`refuses ${what}, starting nothing`, () => {
      const plan = truePlan(statusWrite, [op.openTree({ step: 'open', source: '/nonexistent', flags: 0, into: slot(3) })]);
      corrupt(plan);
      const fds = openFds();
      assert.throws(() => clonePlan(plan, 0n, undefined), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_INVALID_PLAN');
        assert.match(e.message, where);
        return true;
      });
      assert.deepEqual(openFds(), fds);
      assert.deepEqual(zombieChildren(), []);
    });
  }

  it('refuses a slot or dir index outside the executor table', () => {
    const bad: PlanOp[] = [
      op.openTree({ step: 'open', source: '/', flags: 0, into: 64 as Slot }),
      op.mkdir({ step: 'mkdir', name: 'x', mode: 0o755, dir: 64 as Slot }),
      op.moveMountAt({ step: 'move', from: slot(1), to: -1 as Slot }),
      op.bindOwnFile({ step: 'own file', root: slot(0), dir: 64 as Slot, inRoot: '/etc/hosts', text: '', name: 'hosts' }),
      op.fsopen({ step: 'fsopen', fstype: 'tmpfs', into: 64 as Slot }),
      op.fsconfig({ step: 'fsconfig', context: slot(1), command: 'fd', key: 'upperdir', value: null, fd: 64 as Slot }),
      op.overlayLowers({ step: 'lowers', context: slot(1), dir: null, names: ['a'], park: 64 as Slot }),
      op.fsmount({ step: 'fsmount', context: slot(1), attrs: 0, into: 64 as Slot }),
    ];
    for (const o of bad) {
      assert.throws(() => clonePlan(truePlan(statusWrite, [o]), 0n, undefined), { code: 'ERR_INVALID_PLAN', message: /at op 1\b/ });
    }
  });

  it('takes the last slot (63): the bound is exact', async () => {
    // Slot 63 holds no fd, so the mkdir fails in the child (EBADF) and it exits 127: it did run.
    const child = clonePlan(truePlan(statusWrite, [op.mkdir({ step: 'mkdir', name: 'x', mode: 0o755, dir: slot(63) })]), 0n, undefined);
    let status = null;
    assert.ok(await eventually(() => (status = reapPidfd(child.pidfd)) !== null));
    close(child.pidfd);
    assert.deepEqual(status, { exitCode: 127, signal: null });
  });
});
