// Every fd the host process has open, whatever its close-on-exec flag, stays out of the container:
// it sees only 0, 1 and 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rt, hostileRoot, leakDirectoryFd, mode } from './hostile.ts';

describe(`security: inherited fds (${mode})`, () => {
  const h = hostileRoot();
  let leaked: { fd: number; close(): void };
  before(() => { leaked = leakDirectoryFd('/'); });
  after(() => leaked.close());

  it('twin: an ordinary child of this process inherits the leaked fd', () => {
    const fds = spawnSync('ls', ['/proc/self/fd'], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(fds.includes(String(leaked.fd)), `fd ${leaked.fd} not in ${fds.join(' ')}`);
  });

  it('run() and create() containers see only 0, 1 and 2', async () => {
    assert.equal(await h.probe(['fds']), '0 1 2');
    const c = await rt.create({ command: ['/bin/probe', 'fds'], rootfs: h.root });
    const out: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    await c.start();
    await c.wait();
    await c.remove();
    assert.equal(Buffer.concat(out).toString().trim(), '0 1 2');
  });

  it('twin: the probe does list an fd that is open in the container', async () => {
    assert.equal((await h.sh('exec 5</etc/marker; /bin/probe fds')).stdout.toString().trim(), '0 1 2 5');
  });
});
