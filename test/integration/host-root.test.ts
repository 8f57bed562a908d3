// Issue 11, "the host-root default": a container on the host root (no rootfs, no image) can take a
// bind or tmpfs whose target does not exist on the host (it failed with EROFS), network 'host' works
// as root (it failed with `mount sysfs on /sys read-only: EBUSY`), and hostRoot 'system' shows
// untrusted code only the OS directories.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { mountTable, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];
const NOBODY = { uid: 65534, gid: 65534 };

describe(`the host root (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(30_000);
  let work: string;
  let rt: Runtime;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-hostroot-'));
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('a bind and a tmpfs whose targets are missing on the host are made in memory; / stays read-only', async () => {
    const name = `corral-${randomBytes(4).toString('hex')}`;
    writeFileSync(join(work, 'in-project'), 'project file\n');
    const mounts = mountTable();
    const r = await rt.run({
      command: sh(`cat /${name}-project/in-project && echo w > /${name}-scratch/x && cat /${name}-scratch/x; touch /${name}-new 2>&1; ls /etc/hostname >/dev/null && echo etc`),
      mounts: [{ type: 'bind', source: work, target: `/${name}-project`, readonly: true }, { type: 'tmpfs', target: `/${name}-scratch` }],
    });
    assert.equal(r.stdout.toString().replace(/touch: .*\n/, 'EROFS\n'), 'project file\nw\nEROFS\netc\n', r.stderr.toString());
    assert.match(r.stdout.toString(), /Read-only file system/);
    for (const suffix of ['project', 'scratch', 'new']) assert.ok(!existsSync(`/${name}-${suffix}`), `nothing made on the host: /${name}-${suffix}`);
    assert.equal(mountTable(), mounts, 'nothing mounted on the host');
  });

  it('a target missing inside a host directory (read-only there) is refused up front naming it; below /tmp or an earlier mount it is made', async () => {
    const name = `corral-${randomBytes(4).toString('hex')}`;
    await assert.rejects(rt.run({ command: ['true'], mounts: [{ type: 'tmpfs', target: `/usr/share/${name}/cache` }] }), {
      code: 'EROFS', path: `/usr/share/${name}/cache`, step: 'check the mount targets on the host root',
      message: new RegExp(`/usr/share/${name} does not exist in the host's /usr/share, which a container on the host root sees read-only`),
    });
    const r = await rt.run({
      command: sh(`ls -d /tmp/${name}/a /${name}/b/c`),
      mounts: [{ type: 'tmpfs', target: `/tmp/${name}/a` }, { type: 'tmpfs', target: `/${name}` }, { type: 'bind', source: work, target: `/${name}/b/c` }],
    });
    assert.equal(r.stdout.toString(), `/${name}/b/c\n/tmp/${name}/a\n`, r.stderr.toString());
    assert.ok(!existsSync(`/usr/share/${name}`) && !existsSync(`/${name}`) && !existsSync(`/tmp/${name}`), 'nothing made on the host');
  });

  it("network 'host': the host's /sys, read-only", async () => {
    const r = await rt.run({ command: sh('ls /sys/class/net >/dev/null && echo sys; touch /sys/x 2>/dev/null || echo ro'), network: 'host' });
    assert.equal(r.stdout.toString(), 'sys\nro\n', r.stderr.toString());
  });

  it("hostRoot 'system': a uid-65534 snippet sees the OS, not /home, /root, /etc/shadow, /etc/ssh or the service's code", async () => {
    const code = fileURLToPath(new URL('.', import.meta.url));
    assert.ok(existsSync('/etc/shadow') && readdirSync('/home').length > 0, 'the host has what the test hides');
    const r = await rt.run({
      hostRoot: 'system',
      ...(rootless ? {} : { user: NOBODY }),
      command: sh(`id -u; ls -A /home | wc -l; ls -A /root 2>/dev/null | wc -l; wc -c < /etc/shadow; ls -A /etc/ssh 2>/dev/null | wc -l; test -e ${code} || echo no-code; test -e /work || echo no-work; /usr/bin/env true && echo os; echo t > /tmp/t && cat /tmp/t`),
    });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), `${rootless ? 0 : 65534}\n0\n0\n0\n0\nno-code\nno-work\nos\nt\n`, r.stderr.toString());
  });

  it("hostRoot: refused with a rootfs, and a value it does not know", async () => {
    await assert.rejects(rt.run({ hostRoot: 'system', rootfs: work, command: ['true'] }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(rt.run({ hostRoot: 'nothing' as never, command: ['true'] }), { code: 'ERR_INVALID_SPEC' });
  });
});
