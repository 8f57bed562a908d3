// The kernel keyring is not namespaced: keyctl would reach keys of the host's users. The default
// seccomp filter refuses it.
import assert from 'node:assert/strict';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: kernel keyring (${mode})`, () => {
  const h = hostileRoot();

  it('keyctl is refused', async () => {
    assert.equal(await h.probe(['keyctl']), 'EPERM');
  });

  it('twin: without the seccomp filter keyctl works', async () => {
    assert.equal(await h.probe(['keyctl'], { seccomp: 'unconfined' }), 'ok');
  });
});
