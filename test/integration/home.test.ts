// Issue 11: HOME comes from the user's entry in the root's own /etc/passwd (or /root, / as Docker
// does) when neither the spec nor the image sets it; nyc, npm and git fail without it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

describe(`HOME (${rootless ? 'rootless' : 'root'})`, () => {
  let rootfs: string;
  let state: string;
  let rt: Runtime;
  before(() => {
    rootfs = makeBusyboxRoot();
    writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/srv/roothome:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
    state = mkdtempSync(join(tmpdir(), 'corral-test-home-'));
    rt = new Runtime({ root: state, cgroupParent: false });
  });
  after(() => {
    rmRoot(rootfs);
    rmSync(state, { recursive: true, force: true });
  });

  const home = async (spec: object): Promise<string> => (await rt.run({ rootfs, command: ['/bin/sh', '-c', 'echo "$HOME"'], ...spec })).stdout.toString().trim();

  it("is the user's home in the root's /etc/passwd", async () => {
    assert.equal(await home({}), '/srv/roothome');
    if (!rootless) assert.equal(await home({ user: { uid: 1000, gid: 1000 } }), '/home/app');
  });

  it("without an entry: /root for uid 0, / for others; the spec's HOME wins", async () => {
    if (!rootless) assert.equal(await home({ user: { uid: 4242, gid: 4242 } }), '/');
    assert.equal(await home({ env: { HOME: '/mine' } }), '/mine');
    const passwd = join(rootfs, 'etc/passwd');
    unlinkSync(passwd);
    // A link out of the root is resolved inside it, never on the host: /etc/passwd -> /etc/none.
    symlinkSync('/etc/none', passwd);
    try {
      assert.equal(await home({}), '/root');
    } finally {
      unlinkSync(passwd);
      writeFileSync(passwd, 'root:x:0:0:root:/srv/roothome:/bin/sh\n');
    }
  });

  it('follows an edit of /etc/passwd between runs (the lookup is cached only while the file is unchanged)', async () => {
    const passwd = join(rootfs, 'etc/passwd');
    assert.equal(await home({}), '/srv/roothome');
    writeFileSync(passwd, 'root:x:0:0:root:/srv/edited:/bin/sh\n');
    try {
      assert.equal(await home({}), '/srv/edited');
    } finally {
      writeFileSync(passwd, 'root:x:0:0:root:/srv/roothome:/bin/sh\n');
    }
    assert.equal(await home({}), '/srv/roothome');
  });
});
