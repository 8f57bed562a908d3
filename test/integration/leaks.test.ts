import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { run, create } from '../../lib/index.ts';
import { makeBusyboxRoot, mountTable, openFds, rmRoot, rootless, tmpEntries, zombieChildren } from '../helpers.ts';

describe(`nothing leaks (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('1,000 sequential runs leave no zombie, fd, mount or directory behind', async function () {
    this.timeout(180_000);
    await run({ command: ['true'], rootfs: root });
    await run({ command: ['true'] });
    const fds = openFds();
    const mounts = mountTable();
    const tmp = tmpEntries();
    for (let i = 0; i < 1000; i++) {
      // Alternate the busybox root and the default host root, piped and ignored stdio.
      const r = await run({ command: ['sh', '-c', 'echo $$'], ...(i % 2 ? { rootfs: root } : {}), stdio: i % 4 < 2 ? 'pipe' : 'ignore' });
      assert.equal(r.exitCode, 0);
    }
    assert.deepEqual(zombieChildren(), []);
    assert.deepEqual(openFds(), fds);
    assert.equal(mountTable(), mounts);
    assert.deepEqual(tmpEntries(), tmp);
  });

  it('500 containers alive at once can be created, waited for and removed', async function () {
    this.timeout(180_000);
    const fds = openFds();
    const containers = await Promise.all(Array.from({ length: 500 }, () => create({ command: ['sleep', '60'], rootfs: root, network: 'host' })));
    await Promise.all(containers.map((c) => c.start()));
    assert.ok(containers.every((c) => c.status === 'running'));
    // Waiting for 500 exits holds no libuv pool thread: the pool (4 threads) still serves fs calls.
    const waits = containers.map((c) => c.wait());
    const poolFree = await Promise.race([
      Promise.all(Array.from({ length: 16 }, () => stat('/'))).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
    ]);
    assert.ok(poolFree, 'the libuv pool is blocked while containers run');
    for (const c of containers) c.kill('SIGKILL');
    const exits = await Promise.all(waits);
    assert.ok(exits.every((e) => e.signal === 'SIGKILL'));
    await Promise.all(containers.map((c) => c.remove()));
    assert.ok(containers.every((c) => c.status === 'removed'));
    assert.deepEqual(zombieChildren(), []);
    assert.deepEqual(openFds(), fds);
  });
});
