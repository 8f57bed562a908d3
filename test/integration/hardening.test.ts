// The hardening knobs of a spec that are not an escape route of their own: rlimits, oomScoreAdj,
// and seccomp profiles in Docker's format (the attacks are in test/security/).
import assert from 'node:assert/strict';
import { Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

describe(`hardening knobs (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  const rt = new Runtime({ cgroupParent: false });
  before(() => { root = makeBusyboxRoot(); });
  after(() => rmRoot(root));

  it('applies rlimits and oomScoreAdj, and rejects bad ones', async () => {
    const r = await rt.run({ command: ['sh', '-c', 'ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj'], rootfs: root, rlimits: { nofile: [64, 128] }, oomScoreAdj: 300 });
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['64', '128', '300']);
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, rlimits: { files: 1 } as never }), { code: 'ERR_INVALID_SPEC', message: /unknown rlimit 'files'/ });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, rlimits: { nofile: [10, 5] } }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, oomScoreAdj: 5000 }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, seccomp: { defaultAction: 'SCMP_ACT_NOPE' } as never }), { code: 'ERR_INVALID_SECCOMP' });
  });

  it('takes a seccomp profile in Docker format', async () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW' as const, syscalls: [{ names: ['mkdirat', 'mkdir'], action: 'SCMP_ACT_ERRNO' as const, errnoRet: 13 }] };
    const r = await rt.run({ command: ['sh', '-c', 'mkdir /tmp/x 2>&1; echo $?'], rootfs: root, seccomp: profile });
    assert.match(r.stdout.toString(), /Permission denied/);
    const without = await rt.run({ command: ['sh', '-c', 'mkdir /tmp/x 2>&1; echo $?'], rootfs: root });
    assert.equal(without.stdout.toString(), '0\n', 'without the profile mkdir works');
  });
});
