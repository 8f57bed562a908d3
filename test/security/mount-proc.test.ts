// Mounting a new procfs (a way to a /proc without masks): needs CAP_SYS_ADMIN, which the default
// set does not have, and the default seccomp filter blocks mount for it too.
import assert from 'node:assert/strict';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: mount a new proc (${mode})`, () => {
  const h = hostileRoot();

  it('mount is refused', async () => {
    assert.equal(await h.probe(['mount-proc']), 'EPERM');
  });

  it('twin: with SYS_ADMIN and no seccomp filter the same mount works', async () => {
    assert.equal(await h.probe(['mount-proc'], { capabilities: { add: ['SYS_ADMIN'] }, seccomp: 'unconfined' }), 'ok');
  });
});
