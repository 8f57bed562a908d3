// Loading a kernel module (finit_module) from a container: the default seccomp filter refuses it,
// as does the bounding set (no SYS_MODULE); rootless the user namespace blocks it as well.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rootless } from '../helpers.ts';
import { hostileRoot, mode } from './hostile.ts';

// A kernel built without module support has no finit_module (ENOSYS) once nothing filters it.
const modules = existsSync('/proc/modules');
const SYS_MODULE = 16n;

describe(`security: kernel module load (${mode})`, () => {
  const h = hostileRoot();
  const lifted = { capabilities: 'all', seccomp: 'unconfined' } as const;

  it('finit_module is refused', async () => {
    assert.equal(await h.probe(['load-module']), 'EPERM');
  });

  it('twin: with all capabilities and no seccomp filter the call gets past them', async () => {
    const status = (await h.sh('grep -E "^(CapEff|Seccomp):" /proc/self/status', lifted)).stdout.toString();
    const effective = BigInt(`0x${/CapEff:\s+(\w+)/.exec(status)![1]}`);
    assert.equal((effective >> SYS_MODULE) & 1n, 1n, `CAP_SYS_MODULE not effective: ${status}`);
    assert.match(status, /Seccomp:\s+0\n/);
    const got = await h.probe(['load-module'], lifted);
    // Rootless, CAP_SYS_MODULE counts only in the host's user namespace: the kernel still says EPERM.
    if (!modules) assert.equal(got, 'ENOSYS');
    else if (rootless) assert.equal(got, 'EPERM');
    else assert.notEqual(got, 'EPERM');
  });
});
