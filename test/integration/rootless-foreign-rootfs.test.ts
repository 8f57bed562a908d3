// Issue 12: a rootless container over a root filesystem the caller does not own (root's, as a
// system-wide /srv/rootfs is). overlayfs cannot copy up a directory whose owner the user namespace
// does not map (EOVERFLOW, even in a 1777 /tmp), so /tmp and /var/tmp are given in memory there;
// other writes into root's directories still fail, with that errno. Run from the root pass as
// uid 65534 (the rootfs must belong to another user than the caller).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const NOBODY = 65534;
const fixture = fileURLToPath(new URL('../fixtures/foreign-rootfs-run.ts', import.meta.url));

if (!rootless) describe('a rootless container over a root-owned rootfs (run as uid 65534 from the root pass)', function () {
  this.timeout(60_000);
  let rootfs: string;
  let work: string;
  before(() => {
    rootfs = makeBusyboxRoot();
    mkdirSync(join(rootfs, 'var/tmp'), { recursive: true });
    chmodSync(join(rootfs, 'var/tmp'), 0o1777);
    work = mkdtempSync(join(tmpdir(), 'corral-test-foreign-'));
    chmodSync(work, 0o777);
  });
  after(() => {
    rmRoot(rootfs);
    rmSync(work, { recursive: true, force: true });
  });

  it('writes to /tmp and /var/tmp (in memory); other writes into the directories of root fail', () => {
    const script = 'echo a > /tmp/x && cat /tmp/x && echo b > /var/tmp/y && cat /var/tmp/y; touch /etc/z 2>&1; grep -E " /(var/)?tmp " /proc/mounts | cut -d" " -f2,3';
    const r = spawnSync(process.execPath, [...process.execArgv, fixture, rootfs, join(work, 'state'), script], {
      encoding: 'utf8', uid: NOBODY, gid: NOBODY, env: { ...process.env, HOME: work, TMPDIR: work },
    });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { exitCode: number; stdout: string; stderr: string };
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['a', 'b']);
    assert.match(lines[2]!, /Permission denied|Value too large for defined data type/, "root's 0755 /etc stays root's");
    assert.deepEqual(lines.slice(3).sort(), ['/tmp tmpfs', '/var/tmp tmpfs']);
  });
});
