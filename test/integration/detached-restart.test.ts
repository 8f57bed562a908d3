import assert from 'node:assert/strict';
import { Runtime } from '../../lib/index.ts';
import { rootless } from '../helpers.ts';
import { collect, detachedFixture } from '../detached-fixture.ts';

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

describe(`a stopped detached container started again, and logs as a stream (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(30_000);
  const fx = detachedFixture('corral-restart-');

  it('start() of an exited detached container runs it again, from this and from another process', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['/bin/sh', '-c', 'echo run; exit 3'], rootfs: fx.rootfs });
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    assert.equal(c.status, 'stopped');
    await c.start();
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    assert.equal(c.status, 'stopped');
    const other = new Runtime({ root: fx.store }).find(c.id);
    assert.equal(other.status, 'stopped');
    await other.start();
    assert.deepEqual(await other.wait(), { exitCode: 3, signal: null });
    assert.equal(await text(other.logsStream()), 'run\nrun\nrun\n');
  });

  it('a stopped container started again is running and can be stopped again', async () => {
    // As pid 1, sh ignores a SIGTERM that comes before its trap: wait for 'ready' each time.
    const c = await fx.runtime.run({ detached: true, command: ['/bin/sh', '-c', "trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done"], rootfs: fx.rootfs });
    const ready = async (n: number): Promise<void> => {
      for (let i = 0; (await collect(c.logs())).filter((e) => e.log === 'ready\n').length < n; i++) {
        assert.ok(i < 100, `run ${n} never got ready`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await ready(1);
    assert.deepEqual(await c.stop({ timeout: 5000 }), { exitCode: 9, signal: null });
    await c.start();
    await ready(2);
    assert.equal(c.status, 'running');
    assert.deepEqual(await c.stop({ timeout: 5000 }), { exitCode: 9, signal: null });
  });

  it('start(), restart() and the restart policy after a stop() that had to SIGKILL: it runs again, exec reaches it', async () => {
    // As pid 1, sh has no default action for SIGTERM: every stop() escalates to SIGKILL. /tmp/fail
    // is in the container's layer, so it outlives a run.
    const c = await fx.runtime.run({ detached: true, restart: 'on-failure:1', command: ['/bin/sh', '-c', 'echo up; while [ ! -e /tmp/fail ]; do sleep 0.05; done; exit 1'], rootfs: fx.rootfs });
    assert.deepEqual(await c.stop({ timeout: 100 }), { exitCode: null, signal: 'SIGKILL' });
    await c.start();
    assert.equal(c.status, 'running');
    assert.equal((await c.exec(['/bin/sh', '-c', 'echo in'])).stdout.toString(), 'in\n');
    await c.restart({ timeout: 100 });
    assert.equal(c.status, 'running');
    assert.deepEqual(c.exitInfo, null);
    // Its exit 1 is restarted once by the policy, which fails again at once.
    await c.exec(['touch', '/tmp/fail']);
    assert.deepEqual(await c.wait(), { exitCode: 1, signal: null });
    assert.equal(c.inspect().supervision!.restartCount, 1);
    assert.deepEqual((await collect(c.logs())).map((e) => e.log), ['up\n', 'up\n', 'up\n', 'up\n']);
  });

  it('an attached container cannot start again once stopped', async () => {
    const c = await fx.runtime.create({ command: ['/bin/true'], rootfs: fx.rootfs });
    await c.start();
    await c.wait();
    await assert.rejects(c.start(), { code: 'ERR_CONTAINER_STATE', message: `container ${c.id} is stopped; start needs it created` });
    await c.remove();
  });

  it('logsStream() pipes the text, filtered by stream, and ends with a followed container', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['/bin/sh', '-c', 'echo out; echo err >&2; sleep 0.3; echo late'], rootfs: fx.rootfs });
    assert.equal(await text(c.logsStream({ follow: true, stderr: false })), 'out\nlate\n');
    assert.equal(await text(c.logsStream({ stdout: false })), 'err\n');
  });
});
