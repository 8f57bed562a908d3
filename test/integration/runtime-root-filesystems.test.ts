// Issue 11, "Working everywhere": the writable layer with the runtime root on overlayfs (Node inside
// a container: overlayfs refuses an upper on overlayfs, and every default container failed with
// `mount an overlay over ROOTFS: EINVAL`), on tmpfs and on the default disk; run()'s layer in memory.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { processTag } from '../../lib/sys/process-tag.ts';
import { busyboxLayout } from '../image-fixtures.ts';
import { eventually, makeBusyboxRoot, mountTable, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

/** The layer directories this process has under a runtime root. */
function layers(state: string): string[] {
  const dir = join(state, 'containers', processTag());
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.trash-')) : [];
}

/** How the runtime root's filesystem is made: by a mount of the test's own (root), or the default disk. */
const FILESYSTEMS: { name: string; memoryLayer: boolean; mount: ((dir: string, scratch: string) => void) | null }[] = [
  { name: 'the default disk', memoryLayer: false, mount: null },
  { name: 'tmpfs', memoryLayer: false, mount: (dir) => execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=700', 'tmpfs', dir]) },
  {
    name: 'overlayfs', memoryLayer: true, mount: (dir, scratch) => {
      for (const d of ['lower', 'upper', 'work']) mkdirSync(join(scratch, d));
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${scratch}/lower,upperdir=${scratch}/upper,workdir=${scratch}/work`, dir]);
    },
  },
];

// A filesystem the test mounts itself needs root: rootless, only the default disk.
for (const fs of FILESYSTEMS.filter((f) => !f.mount || !rootless)) {
  describe(`the runtime root on ${fs.name} (${rootless ? 'rootless' : 'root'})`, function () {
    this.timeout(60_000);
    let work: string;
    let state: string;
    let rootfs: string;
    let rt: Runtime;
    before(() => {
      work = mkdtempSync(join(tmpdir(), 'corral-test-rootfs-'));
      state = join(work, 'state');
      mkdirSync(state);
      mkdirSync(join(work, 'scratch'));
      fs.mount?.(state, join(work, 'scratch'));
      rootfs = makeBusyboxRoot();
      rt = new Runtime({ root: state, cgroupParent: false });
    });
    after(() => {
      if (fs.mount) execFileSync('umount', [state]);
      rmSync(work, { recursive: true, force: true });
      rmRoot(rootfs);
    });

    it('run(): writes go to a layer in memory; no layer directory is made, nothing is left', async () => {
      const mounts = mountTable();
      const r = await rt.run({ rootfs, command: sh('echo new > /etc/added && cat /etc/added && rm /etc/marker && ls /etc') });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      // hostname and hosts: the container's own, bound over mount points in the in-memory layer.
      assert.equal(r.stdout.toString(), 'new\nadded\ngroup\nhostname\nhosts\npasswd\n');
      assert.ok(!existsSync(join(rootfs, 'etc/added')) && existsSync(join(rootfs, 'etc/marker')), 'the rootfs is untouched');
      assert.deepEqual(layers(state), []);
      assert.equal(mountTable(), mounts, 'nothing mounted on the host');
    });

    it(`create(): the layer is ${fs.memoryLayer ? 'in memory' : 'on disk'}, the container runs, remove() leaves nothing`, async () => {
      const c = await rt.create({ rootfs, id: 'layered', command: sh('echo new > /etc/added; mkdir -p /a/b; mv /a /c; touch /ready; sleep 100') });
      try {
        assert.deepEqual(layers(state), fs.memoryLayer ? [] : ['layered']);
        await c.start();
        assert.ok(await eventually(() => existsSync(`/proc/${c.pid}/root/ready`)), 'the container made its changes');
        assert.ok(existsSync(`/proc/${c.pid}/root/etc/added`) && existsSync(`/proc/${c.pid}/root/c/b`));
        assert.ok(!existsSync(join(rootfs, 'etc/added')), 'the rootfs is untouched');
      } finally {
        await c.remove({ force: true });
      }
      assert.deepEqual(layers(state), []);
    });

    it(`commit() ${fs.memoryLayer ? 'is refused with ERR_COMMIT_UNSUPPORTED naming why' : 'stores the change'}; images run`, async () => {
      mkdirSync(join(work, 'img'));
      const layout = busyboxLayout(join(work, 'img'));
      await rt.images.import(layout, { format: 'oci-layout' });
      const ran = await rt.run({ image: 'base:latest', command: sh('echo x > /x && cat /x') });
      assert.equal(ran.stdout.toString(), 'x\n', ran.stderr.toString());
      const c = await rt.create({ image: 'base:latest', command: sh('echo kept > /etc/kept; touch /ready; sleep 100') });
      try {
        await c.start();
        assert.ok(await eventually(() => existsSync(`/proc/${c.pid}/root/ready`)));
        if (fs.memoryLayer) {
          await assert.rejects(c.commit({ ref: 'never:1' }), (e: Error & { code?: string }) => e.code === 'ERR_COMMIT_UNSUPPORTED' && /in memory/.test(e.message) && /overlayfs/.test(e.message));
        } else {
          await c.commit({ ref: 'kept:1' });
          const r = await rt.run({ image: 'kept:1', command: ['cat', '/etc/kept'] });
          assert.equal(r.stdout.toString(), 'kept\n', r.stderr.toString());
        }
      } finally {
        await c.remove({ force: true });
      }
      assert.deepEqual(layers(state), []);
    });
  });
}
