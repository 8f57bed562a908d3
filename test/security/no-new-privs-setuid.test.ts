// A setuid binary gains no privilege: no_new_privs is set by default.
import assert from 'node:assert/strict';
import { rootless } from '../helpers.ts';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: setuid binaries and no_new_privs (${mode})`, () => {
  const h = hostileRoot();
  const flag = async (extra = {}): Promise<string> => (await h.sh('grep NoNewPrivs /proc/self/status', extra)).stdout.toString();
  // Rootless the user namespace maps one id only: there is no other uid to run the binary as.
  const asUser1000 = { command: ['/bin/probe-suid', 'ids'], user: { uid: 1000, gid: 1000 } };

  it('no_new_privs is set, and a setuid-root binary run by uid 1000 stays uid 1000', async function () {
    assert.match(await flag(), /NoNewPrivs:\s+1\n/);
    if (!rootless) assert.equal(await h.probe(['ids'], asUser1000), 'uid=1000 euid=1000');
  });

  it('twin: with noNewPrivileges false the flag is clear and the setuid bit works', async () => {
    assert.match(await flag({ noNewPrivileges: false }), /NoNewPrivs:\s+0\n/);
    if (!rootless) assert.equal(await h.probe(['ids'], { ...asUser1000, noNewPrivileges: false }), 'uid=1000 euid=0');
  });
});
