import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, run, Runtime, type Container } from '../../lib/index.ts';
import { findV2Mount, availableControllers, ownV2Path } from '../../lib/cgroup/hierarchy.ts';
import { alive, eventually, makeBusyboxRoot, requirePrerequisite, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

/** Reads the counter a container keeps rewriting in /tmp/n, from the host side through
 * /proc/PID/root (an exec would be frozen too); the container renames each new value into place. */
function counter(c: Container): number {
  return Number(readFileSync(`/proc/${c.pid}/root/tmp/n`, 'utf8'));
}

/** Why the runtime cannot make container groups here, or null when it can: as root always; rootless
 * when this process's own group is delegated to it (test/run.mjs delegates one in its rootless pass). */
function noGroups(): string | null {
  const mount = findV2Mount();
  if (!mount) return 'no cgroup v2 hierarchy is mounted';
  if (!rootless) return null;
  const own = join(mount, ownV2Path());
  try {
    accessSync(own, constants.W_OK);
    return null;
  } catch {
    return `this process's cgroup ${own} is not delegated to uid ${process.getuid!()}`;
  }
}

describe(`cgroups on this host (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  if (rootless) {
    it('runs without a cgroup when none can be made, and says so for cgroup features', async () => {
      // A parent in the root-owned part of the hierarchy: nothing there is delegated to us.
      const rt = new Runtime({ cgroupParent: join(findV2Mount()!, 'corral-not-delegated') });
      await using c = await rt.create({ command: ['sleep', '100'], rootfs: root });
      await c.start();
      assert.equal(c.cgroupPath, null);
      await assert.rejects(c.pause(), { code: 'ERR_CGROUP_UNAVAILABLE' });
      assert.throws(() => c.stats(), { code: 'ERR_CGROUP_UNAVAILABLE', message: /no cgroup/ });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, limits: { pids: 10 } }), { code: 'ERR_CGROUP_UNAVAILABLE', message: /cannot make groups in .*EACCES/ });
    });
  }

  it('rejects bad limits before anything is created', async () => {
    for (const limits of [{ memory: -1 }, { memory: '12 parsecs' }, { memory: '1k' }, { cpus: 0 }, { pids: 0 }, { cpuset: 'a-b' }, { cpuWeight: 20000 }, { swap: 1 }]) {
      await assert.rejects(run({ command: ['true'], rootfs: root, limits: limits as never }), { code: 'ERR_INVALID_LIMITS' }, JSON.stringify(limits));
    }
  });

  describe('with a group per container', () => {
    before(function () {
      const why = noGroups();
      requirePrerequisite(this, why && `${why} (test/run.mjs delegates a group for its rootless pass)`);
    });

    it('gives each container its own group, born in it, removed with it', async () => {
      const c = await create({ command: sh('cat /proc/self/cgroup; sleep 100'), rootfs: root });
      const path = c.cgroupPath!;
      assert.ok(path && existsSync(path), `no group at ${path}`);
      assert.match(path, /\/corral\/proc-\d+-\d+\//);
      // Born in it: the process is in the group before it was started.
      assert.deepEqual(readFileSync(`${path}/cgroup.procs`, 'utf8').trim().split('\n'), [String(c.pid)]);
      await c.start();
      const exec = await c.exec(['cat', '/proc/self/cgroup']);
      const v2 = exec.stdout.toString().split('\n').find((l) => l.startsWith('0::'));
      assert.equal(v2, '0::/', 'the cgroup namespace is rooted at the container group');
      assert.ok(readFileSync(`${path}/cgroup.procs`, 'utf8').trim().split('\n').length >= 1);
      await c.remove({ force: true });
      assert.equal(existsSync(path), false);
    });

    it("cannot write to the host's cgroups", async () => {
      const mount = findV2Mount()!;
      const r = await run({ command: sh(`echo 1 > ${mount}/cgroup.procs; echo "+pids" > ${mount}/cgroup.subtree_control; mkdir ${mount}/escape`) });
      assert.notEqual(r.exitCode, 0);
      // /sys is a fresh read-only sysfs: the host's hierarchy is not even there to write to.
      assert.match(r.stderr.toString(), /Read-only file system|nonexistent|No such file/);
      assert.equal(existsSync(`${mount}/escape`), false);
    });

    it('removes the group after a failed create and after run()', async () => {
      const before = readFileSync('/proc/self/cgroup', 'utf8');
      const rt = new Runtime();
      await assert.rejects(rt.create({ command: ['no-such-program'], rootfs: root, id: 'failing-create' }), { code: 'ENOENT' });
      const mount = findV2Mount()!;
      const parent = (await rt.create({ command: ['true'], rootfs: root, id: 'probe' }));
      const dir = parent.cgroupPath!.replace(/\/probe$/, '');
      await parent.remove({ force: true });
      assert.equal(existsSync(`${dir}/failing-create`), false);
      await rt.run({ command: ['true'], rootfs: root, id: 'ran' });
      assert.equal(existsSync(`${dir}/ran`), false);
      assert.ok(dir.startsWith(mount));
      assert.equal(readFileSync('/proc/self/cgroup', 'utf8'), before, 'corral never moves the host process');
    });

    it('pause stops progress, resume continues it', async () => {
      await using c = await create({ command: sh('i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv -f /tmp/n.new /tmp/n; done'), rootfs: root });
      await c.start();
      assert.ok(await eventually(() => existsSync(`/proc/${c.pid}/root/tmp/n`)));
      await c.pause();
      assert.equal(c.status, 'paused');
      const frozenAt = readFileSync(`${c.cgroupPath}/cgroup.events`, 'utf8');
      assert.match(frozenAt, /frozen 1/);
      const a = counter(c);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(counter(c), a, 'the counter moved while paused');
      await c.resume();
      assert.equal(c.status, 'running');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((counter(c)) > a, 'the counter did not move after resume');
      await assert.rejects(c.resume(), { code: 'ERR_CONTAINER_STATE' });
    });

    it('kill and remove reach a double-forked grandchild through cgroup.kill', async () => {
      // Without a PID namespace only the cgroup holds the escaped grandchild.
      const c = await create({ command: sh('(setsid sleep 1000 & echo $! > /tmp/pid); sleep 1000'), rootfs: root, namespaces: { pid: false } });
      await c.start();
      assert.ok(await eventually(() => existsSync(`/proc/${c.pid}/root/tmp/pid`) && readFileSync(`/proc/${c.pid}/root/tmp/pid`, 'utf8').trim() !== ''));
      const grandchild = Number(readFileSync(`/proc/${c.pid}/root/tmp/pid`, 'utf8'));
      assert.ok(alive(grandchild));
      await c.remove({ force: true });
      assert.ok(await eventually(() => !alive(grandchild)), `grandchild ${grandchild} survived`);
    });

    it('stats() reports CPU usage everywhere and null for missing controllers', async () => {
      await using c = await create({ command: sh('while :; do :; done'), rootfs: root });
      await c.start();
      const first = c.stats();
      await new Promise((r) => setTimeout(r, 300));
      const second = c.stats();
      assert.ok(second.cpu.usageUsec > first.cpu.usageUsec, 'cpu.usageUsec did not move');
      assert.ok(second.cpu.userUsec + second.cpu.systemUsec > 0);
      const offered = availableControllers(c.cgroupPath!.replace(/\/[^/]+$/, ''));
      assert.equal(second.memory === null, !offered.has('memory'));
      assert.equal(second.pids === null, !offered.has('pids'));
    });

    it('names the controller and the reason when a limit cannot be had', async function () {
      const mount = findV2Mount()!;
      if (availableControllers(mount).has('pids')) {
        // A pure v2 host: the limit works (the VM suite tests what it does).
        const r = await run({ command: ['true'], rootfs: root, limits: { pids: 10 } });
        assert.equal(r.exitCode, 0);
      } else {
        await assert.rejects(run({ command: ['true'], rootfs: root, limits: { pids: 10 } }), {
          code: 'ERR_CGROUP_CONTROLLER',
          message: /controller 'pids' is not available in .*hybrid host/,
        });
      }
    });
  });
});
