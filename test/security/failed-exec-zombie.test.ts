// A container that makes every exec fail (it deleted its own working directory) must not be able to
// leave unreaped processes behind: the forked process's error record can arrive before the helper's
// pid record, and exec used to give up on it then. The zombie kept the container's init in
// zap_pid_ns_processes, so remove() never resolved (issue 10, item 7).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless, zombieChildren } from '../helpers.ts';

const EXECS = 300;

describe(`failed execs leave no zombie and remove() resolves (${rootless ? 'rootless' : 'root'})`, () => {
  const rt = new Runtime();
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
    mkdirSync(join(root, 'work'));
  });
  after(() => rmRoot(root));

  it(`${EXECS} execs into a container that removed its cwd: each fails, all are reaped`, async function () {
    this.timeout(120_000);
    const c = await rt.create({ command: ['sh', '-c', 'rmdir /work && echo gone && exec sleep 1000'], rootfs: root, cwd: '/work' });
    await c.start();
    // The container removes its cwd once it runs: wait for that before the failing execs.
    for (let i = 0; i < 100 && (await c.exec(['test', '-e', '/work'], { cwd: '/' })).exitCode === 0; i++) await new Promise((r) => setTimeout(r, 20));
    let failures = 0;
    for (let i = 0; i < EXECS; i++) {
      await c.exec(['true']).then(
        () => assert.fail('exec with a deleted cwd succeeded'),
        (e: { code?: string }) => {
          assert.equal(e.code, 'ENOENT');
          failures++;
        },
      );
    }
    assert.equal(failures, EXECS);
    assert.deepEqual(zombieChildren(), [], 'every failed exec process was reaped');
    let timer: NodeJS.Timeout | undefined;
    const removed = await Promise.race([
      c.remove({ force: true }).then(() => 'removed'),
      new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'remove() still pending after 10 s'); }),
    ]);
    clearTimeout(timer);
    assert.equal(removed, 'removed');
  });
});
