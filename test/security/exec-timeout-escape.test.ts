// Issue 10 item 8: exec's timeout and signal did not bound exec(): a background child holding stdout
// kept the promise pending, and the kill reached only the exec'd process. The kill now reaches the
// exec'd process's whole process group, and output held open past the kill is cut off.
import assert from 'node:assert/strict';
import { create } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

describe(`attack: outlive exec's timeout with a background child (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  /** The command lines of the container's processes. */
  async function processes(c: { exec(cmd: string[]): Promise<{ stdout: Buffer }> }): Promise<string> {
    return (await c.exec(sh('for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done'))).stdout.toString();
  }

  it('settles on timeout and kills the background child with the exec\'d process', async () => {
    await using c = await create({ command: ['sleep', '1000'], rootfs: root });
    await c.start();
    const started = Date.now();
    const r = await c.exec(sh('sleep 201 & sleep 202'), { timeout: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(Date.now() - started < 3000, `exec took ${Date.now() - started} ms`);
    assert.doesNotMatch(await processes(c), /sleep 20[12]/);
  });

  it('settles on abort the same way', async () => {
    await using c = await create({ command: ['sleep', '1000'], rootfs: root });
    await c.start();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await assert.rejects(c.exec(sh('sleep 203 & sleep 204'), { signal: controller.signal }), { code: 'ABORT_ERR' });
    assert.ok(Date.now() - started < 3000, `exec took ${Date.now() - started} ms`);
    assert.doesNotMatch(await processes(c), /sleep 20[34]/);
  });

  it('settles even when a child left the process group and holds stdout', async () => {
    await using c = await create({ command: ['sleep', '1000'], rootfs: root });
    await c.start();
    const started = Date.now();
    const r = await c.exec(sh('setsid sleep 205 & sleep 206'), { timeout: 300 });
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - started < 3000, `exec took ${Date.now() - started} ms`);
  });

  it('without a timeout, exec waits for the output like child_process (the child is what holds it)', async () => {
    await using c = await create({ command: ['sleep', '1000'], rootfs: root });
    await c.start();
    const started = Date.now();
    const r = await c.exec(sh('(sleep 0.5; echo late) & echo early'));
    assert.equal(r.stdout.toString(), 'early\nlate\n');
    assert.ok(Date.now() - started >= 450);
  });
});
