import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { processTag } from '../../lib/sys/process-tag.ts';
import { overlayMount } from '../../lib/fs/overlay-probe.ts';
import { makeBusyboxRoot, mountTable, rmRoot, rootless, singleIdRootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

describe(`filesystems: mounts, volumes, the writable layer (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  let state: string;
  let rt: Runtime;
  before(() => {
    root = makeBusyboxRoot();
    state = mkdtempSync(join(tmpdir(), 'corral-test-state-'));
    rt = new Runtime({ root: state });
  });
  after(() => {
    rmRoot(root);
    rmSync(state, { recursive: true, force: true });
  });

  describe('volumes', () => {
    it('keeps what one container wrote for the next, and survives both', async () => {
      const w = await rt.run({ command: sh('echo hello > /data/greeting'), rootfs: root, mounts: [{ type: 'volume', source: 'shared', target: '/data' }] });
      assert.equal(w.exitCode, 0, w.stderr.toString());
      const r = await rt.run({ command: ['cat', '/data/greeting'], rootfs: root, mounts: [{ type: 'volume', source: 'shared', target: '/data', readonly: true }] });
      assert.equal(r.stdout.toString(), 'hello\n');
      const info = await rt.volumes.inspect('shared');
      assert.equal(info.name, 'shared');
      assert.deepEqual(info.usedBy, []);
      assert.equal(info.sizeBytes, 6);
      assert.equal(readFileSync(join(info.path, 'greeting'), 'utf8'), 'hello\n');
    });

    it('takes writes from two containers at once', async () => {
      const writer = (n: number) => rt.run({ command: sh(`for i in $(seq 100); do echo ${n} >> /v/log; done`), rootfs: root, mounts: [{ type: 'volume', source: 'busy', target: '/v' }] });
      const results = await Promise.all([writer(1), writer(2)]);
      assert.ok(results.every((r) => r.exitCode === 0));
      const lines = readFileSync(join((await rt.volumes.inspect('busy')).path, 'log'), 'utf8').trim().split('\n');
      assert.equal(lines.length, 200);
      assert.equal(lines.filter((l) => l === '1').length, 100);
    });

    it('is seen by a new Runtime in a new process', () => {
      const script = `
        import { Runtime } from ${JSON.stringify(fileURLToPath(new URL('../../lib/index.ts', import.meta.url)))};
        const rt = new Runtime({ root: ${JSON.stringify(state)} });
        const r = await rt.run({ command: ['cat', '/data/greeting'], rootfs: ${JSON.stringify(root)}, mounts: [{ type: 'volume', source: 'shared', target: '/data' }] });
        console.log(JSON.stringify({ names: (await rt.volumes.list()).map((v) => v.name), out: r.stdout.toString() }));
      `;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
      const seen = JSON.parse(out);
      assert.ok(seen.names.includes('shared'));
      assert.equal(seen.out, 'hello\n');
    });

    it('refuses to remove a volume in use and loses nothing; prune keeps it too', async () => {
      await rt.volumes.create('precious', { labels: { owner: 'test' } });
      await using c = await rt.create({ command: sh('echo keep > /p/file; sleep 100'), rootfs: root, mounts: [{ type: 'volume', source: 'precious', target: '/p' }], id: 'user-of-precious' });
      await c.start();
      const path = (await rt.volumes.inspect('precious')).path;
      for (let i = 0; i < 100 && !existsSync(join(path, 'file')); i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual((await rt.volumes.inspect('precious')).usedBy, ['user-of-precious']);
      await assert.rejects(rt.volumes.remove('precious'), { code: 'ERR_VOLUME_IN_USE', message: /user-of-precious/ });
      assert.ok(!(await rt.volumes.prune()).includes('precious'));
      assert.equal(readFileSync(join(path, 'file'), 'utf8'), 'keep\n');
      await c.remove({ force: true });
      const info = await rt.volumes.inspect('precious');
      assert.deepEqual(info.usedBy, []);
      assert.deepEqual(info.labels, { owner: 'test' });
      assert.ok(info.createdAt instanceof Date && info.createdAt.getTime() <= Date.now());
      await rt.volumes.remove('precious');
      await assert.rejects(rt.volumes.inspect('precious'), { code: 'ERR_VOLUME_NOT_FOUND' });
      await assert.rejects(rt.volumes.create('bad/name'), { code: 'ERR_INVALID_ARG_VALUE' });
      await rt.volumes.create('dup');
      await assert.rejects(rt.volumes.create('dup'), { code: 'ERR_VOLUME_EXISTS' });
      assert.ok((await rt.volumes.prune()).includes('dup'));
    });

    it("creates a volume with an owner and mode (podman's -o uid=, gid=), which that user writes to; removes what it wrote", async () => {
      const volumesDir = join(state, 'volumes');
      await assert.rejects(rt.volumes.create('bad', { uid: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(rt.volumes.create('bad', { mode: 0o10000 }), { code: 'ERR_INVALID_ARG_VALUE' });
      const private_ = await rt.volumes.create('private', { mode: 0o700 });
      assert.deepEqual(private_.options, { mode: 0o700 });
      const r = await rt.run({ command: sh('ls -lnd /v | cut -c1-10; echo root > /v/f'), rootfs: root, mounts: [{ type: 'volume', source: 'private', target: '/v' }] });
      assert.equal(r.stdout.toString(), 'drwx------\n', r.stderr.toString());
      await rt.volumes.remove('private');
      if (singleIdRootless) {
        // One id mapped: 1000 cannot own anything; refused before anything is made.
        await assert.rejects(rt.volumes.create('owned', { uid: 1000, gid: 1000 }), { code: 'ERR_ROOTLESS_IDS', message: /volume owned cannot be owned by 1000:1000: uid 1000 and gid 1000 not mapped: .*\/etc\/subuid/ });
      } else {
        assert.deepEqual((await rt.volumes.create('owned', { uid: 1000, gid: 1000, mode: 0o750 })).options, { uid: 1000, gid: 1000, mode: 0o750 });
        const user = { uid: 1000, gid: 1000 };
        const w = await rt.run({ command: sh('ls -lnd /v | cut -c1-10; mkdir /v/d && echo mine > /v/d/f && chmod 700 /v/d'), rootfs: root, user, mounts: [{ type: 'volume', source: 'owned', target: '/v' }] });
        assert.equal(w.stdout.toString(), 'drwxr-x---\n', w.stderr.toString());
        const back = await rt.run({ command: sh('stat -c "%u:%g %a" /v /v/d/f'), rootfs: root, mounts: [{ type: 'volume', source: 'owned', target: '/v' }] });
        assert.equal(back.stdout.toString(), '1000:1000 750\n1000:1000 644\n', back.stderr.toString());
        // Measured though the caller cannot read 1000's directories (rootless: through the map).
        assert.equal((await rt.volumes.inspect('owned')).sizeBytes, 'mine\n'.length);
        // What 1000 wrote (a 0700 directory of its own) goes with the volume, rootless too.
        await rt.volumes.remove('owned');
      }
      assert.deepEqual(readdirSync(volumesDir).filter((n) => n.startsWith('.') || n === 'owned' || n === 'private'), [], 'no volume, staging or trash left');
    });
  });

  describe('the root filesystem', () => {
    it('sends writes to a per-container overlay layer by default, discarded with the container', async () => {
      const before = readdirSync(root).sort();
      const r = await rt.run({ command: sh('echo x > /new-file && rm /etc/marker && ls / | grep -c new-file'), rootfs: root });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.equal(r.stdout.toString().trim(), '1');
      assert.deepEqual(readdirSync(root).sort(), before);
      assert.ok(existsSync(join(root, 'etc/marker')), 'the deletion leaked into the rootfs');
      // the layers of this process live under its tag until it exits
      const ours = join(state, 'containers', processTag());
      assert.ok(existsSync(ours), `no directory of this process's layers: ${ours}`);
      const c = await rt.create({ command: ['true'], rootfs: root });
      assert.ok(existsSync(join(ours, c.id, 'upper')), 'the container has no layer of its own');
      await c.start();
      await c.wait();
      await c.remove();
      // the layer is renamed away at once and deleted in the background
      assert.deepEqual(readdirSync(ours).filter((d) => !d.startsWith('.trash-')), [], 'the layer was not removed');
    });

    it('takes a rootfs whose path has a comma or colon where the overlay is mounted from fds (from paths: ERR_INVALID_SPEC)', async () => {
      const odd = mkdtempSync(join(tmpdir(), 'corral-test-odd,name:'));
      try {
        execFileSync('cp', ['-a', `${root}/.`, odd]);
        const run = rt.run({ command: sh('echo x > /f && cat /f'), rootfs: odd });
        if (overlayMount() === 'fds') {
          const r = await run;
          assert.equal(r.stdout.toString(), 'x\n', r.stderr.toString());
        } else {
          await assert.rejects(run, { code: 'ERR_INVALID_SPEC', message: /comma, colon or backslash/ });
        }
      } finally {
        rmRoot(odd);
      }
    });

    it("writes into the directory itself with rootfsWritable: 'direct'", async () => {
      const r = await rt.run({ command: sh('echo direct > /direct-file'), rootfs: root, rootfsWritable: 'direct' });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.equal(readFileSync(join(root, 'direct-file'), 'utf8'), 'direct\n');
      rmSync(join(root, 'direct-file'));
    });

    it('gives EROFS with readonlyRootfs, while mounts stay writable', async () => {
      const r = await rt.run({ command: sh('touch /x 2>&1; touch /scratch/y && echo mount-ok; touch /tmp/z 2>&1'), rootfs: root, readonlyRootfs: true, mounts: [{ type: 'tmpfs', target: '/scratch' }] });
      assert.match(r.stdout.toString(), /touch: \/x: Read-only file system/);
      assert.match(r.stdout.toString(), /mount-ok/);
    });
  });

  describe('mounts', () => {
    it('binds a host directory and a host file, read-write or read-only', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-test-bind-'));
      writeFileSync(join(dir, 'in.txt'), 'from host\n');
      try {
        const r = await rt.run({
          command: sh('cat /in/in.txt; echo out > /in/out.txt; cat /one.txt; echo nope > /ro/x 2>&1 || echo ro-refused'),
          rootfs: root,
          mounts: [
            { type: 'bind', source: dir, target: '/in' },
            { type: 'bind', source: join(dir, 'in.txt'), target: '/one.txt' },
            { type: 'bind', source: dir, target: '/ro', readonly: true },
          ],
        });
        assert.equal(r.exitCode, 0, r.stderr.toString());
        assert.equal(r.stdout.toString(), 'from host\nfrom host\nro-refused\n');
        assert.match(r.stderr.toString(), /Read-only file system/);
        assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'out\n');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    if (!rootless) {
      it('makes submounts of a recursive read-only bind read-only too', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'corral-test-sub-'));
        mkdirSync(join(dir, 'sub'));
        execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'sub')]);
        writeFileSync(join(dir, 'sub/in-submount'), '');
        try {
          const r = await rt.run({ command: sh('ls /m/sub; echo x > /m/sub/f 2>&1 || echo refused'), rootfs: root, mounts: [{ type: 'bind', source: dir, target: '/m', readonly: true }] });
          assert.match(r.stdout.toString(), /^in-submount\n.*refused/s);
          // without recursive the submount stays behind: the empty directory under it shows
          const nonRecursive = await rt.run({ command: sh('ls /m/sub | wc -l'), rootfs: root, mounts: [{ type: 'bind', source: dir, target: '/m', recursive: false }] });
          assert.equal(nonRecursive.stdout.toString().trim(), '0', nonRecursive.stderr.toString());
        } finally {
          execFileSync('umount', [join(dir, 'sub')]);
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    it("gives ENOSPC past a tmpfs's size", async () => {
      const r = await rt.run({ command: sh('dd if=/dev/zero of=/small/f bs=64k count=32 2>&1; echo rc=$?'), rootfs: root, mounts: [{ type: 'tmpfs', target: '/small', size: '1m' }] });
      assert.match(r.stdout.toString(), /No space left on device/);
      assert.match(r.stdout.toString(), /rc=1/);
    });

    it('rejects bad mounts before anything is created', async () => {
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, mounts: [{ type: 'bind', source: '/no/such/dir', target: '/x' }] }), { code: 'ENOENT', path: '/no/such/dir' });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, mounts: [{ type: 'bind', source: 'relative', target: '/x' }] }), { code: 'ERR_INVALID_SPEC' });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, mounts: [{ type: 'tmpfs', target: 'relative' }] }), { code: 'ERR_INVALID_SPEC' });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, mounts: [{ type: 'volume', source: '../x', target: '/x' }] }), { code: 'ERR_INVALID_SPEC' });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, mounts: [{ type: 'nfs', target: '/x' } as never] }), { code: 'ERR_INVALID_SPEC' });
    });
  });

  describe('mount targets cannot escape the root', () => {
    let evil: string;
    let victim: string;
    before(() => {
      evil = makeBusyboxRoot();
      victim = mkdtempSync(join(tmpdir(), 'corral-test-victim-'));
      writeFileSync(join(victim, 'precious'), 'untouched\n');
      // Absolute and relative links out of the rootfs, and a /dev that points at a host directory.
      symlinkSync('/etc', join(evil, 'data'));
      symlinkSync('../../../../../../..', join(evil, 'up'));
      symlinkSync(victim, join(evil, 'victim'));
    });
    after(() => {
      rmRoot(evil);
      rmSync(victim, { recursive: true, force: true });
    });

    it('CVE-2021-30465: a target symlinked out of the rootfs is mounted inside it', async () => {
      const hostMounts = mountTable();
      const hostEtc = readdirSync('/etc').sort();
      const r = await rt.run({
        command: sh('ls /etc | wc -l; ls /data | wc -l'),
        rootfs: evil,
        rootfsWritable: 'direct',
        mounts: [
          { type: 'tmpfs', target: '/data' },
          { type: 'tmpfs', target: '/up/escaped' },
        ],
      });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      // /data -> /etc resolved inside the root: the tmpfs covers the rootfs's own /etc.
      const [etc, data] = r.stdout.toString().split('\n');
      assert.equal(etc, '0');
      assert.equal(data, '0');
      assert.deepEqual(readdirSync('/etc').sort(), hostEtc);
      assert.equal(mountTable(), hostMounts);
      // ../../.. stops at the root: /up/escaped was made inside the rootfs, not at the host's /.
      assert.ok(existsSync(join(evil, 'escaped')));
      assert.equal(existsSync('/escaped'), false);
      // /victim -> a host directory dangles inside the root: a clear error, no directory made there.
      await assert.rejects(
        rt.run({ command: ['true'], rootfs: evil, rootfsWritable: 'direct', mounts: [{ type: 'bind', source: victim, target: '/victim/inner', readonly: true }] }),
        { code: 'ENOENT', path: '/victim/inner' },
      );
      assert.deepEqual(readdirSync(victim).sort(), ['precious']);
      assert.equal(readFileSync(join(victim, 'precious'), 'utf8'), 'untouched\n');
    });

    it('a /dev symlinked to a host directory never gets devices on the host', async () => {
      const devLink = makeBusyboxRoot();
      try {
        rmSync(join(devLink, 'dev'), { recursive: true });
        symlinkSync(victim, join(devLink, 'dev'));
        // Resolved inside the root the link dangles: a clear error, and the host directory untouched.
        await assert.rejects(rt.run({ command: ['true'], rootfs: devLink, rootfsWritable: 'direct' }), { code: 'ENOENT', path: '/dev', message: /open \/dev inside the root/ });
        assert.deepEqual(readdirSync(victim).sort(), ['precious'], 'device nodes landed in the host directory');
        // With the link's target present inside the rootfs, the devices go there.
        mkdirSync(join(devLink, victim), { recursive: true });
        const r = await rt.run({ command: sh('ls /dev | grep -c null'), rootfs: devLink, rootfsWritable: 'direct' });
        assert.equal(r.stdout.toString().trim(), '1', r.stderr.toString());
        assert.deepEqual(readdirSync(victim).sort(), ['precious']);
      } finally {
        rmRoot(devLink);
      }
    });
  });

  it('leaves the host mount table as it was after 200 runs with mounts', async function () {
    this.timeout(120_000);
    const dir = mkdtempSync(join(tmpdir(), 'corral-test-bind-'));
    try {
      const before = mountTable();
      for (let i = 0; i < 200; i++) {
        const r = await rt.run({
          command: ['true'],
          rootfs: root,
          mounts: [{ type: 'bind', source: dir, target: '/b' }, { type: 'tmpfs', target: '/t', size: '1m' }, { type: 'volume', source: 'loop', target: '/v' }],
        });
        assert.equal(r.exitCode, 0);
      }
      assert.equal(mountTable(), before);
      assert.equal(spawnSync('sh', ['-c', `grep -c corral /proc/self/mountinfo`]).stdout.toString().trim(), '0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
