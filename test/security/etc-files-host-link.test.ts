// A container's own /etc/hostname, /etc/hosts and /etc/resolv.conf are bound over the root's files
// (lib/fs/rootfs.ts, ownFileOps). A hostile image or rootfs makes those files symlinks to host
// paths, absolute or climbing out with '..', that do not exist yet: a runtime that follows them as
// host paths creates the mount point on the host. corral resolves them inside the root, so the
// links lead to paths inside it. The twin lifts that (lib/spawn/lifted-defences.ts) and the files
// appear on the host.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { liftedDefences } from '../../lib/spawn/lifted-defences.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

describe(`security: an image's /etc/hosts and /etc/hostname linking to host paths (${rootless ? 'rootless' : 'root'})`, () => {
  const rt = new Runtime({ cgroupParent: false });
  let root: string;
  let hostDir: string;

  before(() => {
    root = makeBusyboxRoot();
    // Not under /tmp: the container's root is stacked on /tmp in its mount namespace, which would
    // hide a host directory there from the lifted twin too.
    hostDir = mkdtempSync('/var/tmp/corral-etc-link-');
    symlinkSync(join(hostDir, 'hosts'), join(root, 'etc/hosts'));
    symlinkSync(`../../../../../../../..${hostDir}/hostname`, join(root, 'etc/hostname'));
    symlinkSync(join(hostDir, 'resolv.conf'), join(root, 'etc/resolv.conf'));
  });
  after(() => {
    rmRoot(root);
    rmSync(hostDir, { recursive: true, force: true });
  });

  async function probe(): Promise<string> {
    const r = await rt.run({
      rootfs: root, hostname: 'probe', extraHosts: { db: '10.0.0.7' }, dns: ['10.0.0.53'],
      command: ['sh', '-c', `cat /etc/hostname /etc/hosts /etc/resolv.conf; echo "inside: $(cat ${hostDir}/hostname)"`],
    });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    return r.stdout.toString();
  }

  it('the links lead inside the root: the container reads its own files there, the host gets nothing', async () => {
    const out = await probe();
    assert.match(out, /^probe\n/);
    assert.match(out, /^10\.0\.0\.7\tdb$/m);
    assert.match(out, /^nameserver 10\.0\.0\.53$/m);
    assert.match(out, /^inside: probe$/m);
    assert.deepEqual(readdirSync(hostDir), []);
    // Nor was the rootfs written: the mount points were made in the container's writable layer.
    assert.ok(lstatSync(join(root, 'etc/hosts')).isSymbolicLink());
    assert.ok(!existsSync(join(root, hostDir.slice(1))));
  });

  it('twin: with the targets taken as host paths, the links create files on the host', async () => {
    liftedDefences.ownFilesOnHostPaths = true;
    try {
      await rt.run({ rootfs: root, dns: ['10.0.0.53'], command: ['true'] });
    } finally {
      liftedDefences.ownFilesOnHostPaths = false;
    }
    assert.deepEqual(readdirSync(hostDir).sort(), ['hostname', 'hosts', 'resolv.conf']);
  });
});
