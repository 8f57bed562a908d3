// A new user namespace inside the container would give back every capability over its own mounts
// (the way to remount them): the default seccomp filter refuses unshare(CLONE_NEWUSER).
import assert from 'node:assert/strict';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: unshare a user namespace to remount (${mode})`, () => {
  const h = hostileRoot();

  it('unshare(CLONE_NEWUSER) is refused', async () => {
    assert.equal(await h.probe(['unshare-userns']), 'EPERM');
  });

  it('twin: without the seccomp filter the unshare succeeds', async () => {
    assert.notEqual(await h.probe(['unshare-userns'], { seccomp: 'unconfined' }), 'EPERM');
  });
});
