import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { mochaInOwnNetns, rootless, tcpAnswer } from '../helpers.ts';
import { createIn, detachedFixture, sigkill } from '../detached-fixture.ts';

/** The pasta processes serving a detached container (their pid file is in its state directory). */
function pastaOf(store: string, id: string): number[] {
  const pidFile = join(store, 'containers', id, 'network.pid');
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv[0] === 'pasta' && argv.includes(pidFile);
    } catch {
      return false;
    }
  }).map(Number);
}

describe(`detached containers on networks (${rootless ? 'rootless: pasta' : 'root: bridges'})`, function () {
  if (!rootless) {
    // Bridges, veths and nftables rules: in a network namespace of the test's own.
    it('test/netns/detached-network.spec.ts passes under unshare --net', function () {
      this.timeout(300_000);
      mochaInOwnNetns('test/netns/detached-network.spec.ts');
    });
    return;
  }
  this.timeout(30_000);
  const fx = detachedFixture('corral-detached-pasta-');

  // pasta publishes on the host's loopback: the only address these tests send to.
  it('outlive their creator on pasta (ports on 127.0.0.1); each run gets its pasta; removed by another process, no pasta is left', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'web', 'while true; do echo "hello from web" | nc -l -p 80; done', { spec: { ports: [{ container: 80 }] } });
    await sigkill(proc);
    const c = fx.runtime.find('web');
    const [port] = c.ports();
    assert.equal(port!.hostIp, '127.0.0.1');
    assert.ok(port!.host > 0);
    const first = pastaOf(fx.store, id);
    assert.equal(first.length, 1);
    assert.equal(await tcpAnswer('127.0.0.1', port!.host), 'hello from web\n');
    await new Runtime({ root: fx.store }).find(id).restart({ timeout: 100 });
    const second = pastaOf(fx.store, id);
    assert.equal(second.length, 1);
    assert.notEqual(second[0], first[0], 'the new run has a pasta of its own');
    assert.equal(await tcpAnswer('127.0.0.1', port!.host), 'hello from web\n');
    await new Runtime({ root: fx.store }).find(id).remove({ force: true });
    assert.deepEqual(pastaOf(fx.store, id), []);
  });

  it('without pasta the create fails with ERR_NETWORK_SETUP saying so, and leaves nothing', async () => {
    const path = process.env.PATH;
    // The supervisor runs pasta from its PATH, which it takes from ours.
    process.env.PATH = '/nonexistent';
    try {
      await assert.rejects(fx.runtime.run({ detached: true, ports: [{ container: 80 }], command: ['sleep', '1000'], rootfs: fx.rootfs }), { code: 'ERR_NETWORK_SETUP', message: /^cannot run pasta: No such file or directory \(rootless networking needs pasta: install the passt package\)$/ });
    } finally {
      process.env.PATH = path;
    }
    assert.deepEqual(fx.runtime.list({ all: true }), []);
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), []);
  });

  it('a host port in use fails the create with ERR_PORT_IN_USE and leaves nothing', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const taken = (probe.address() as { port: number }).port;
    try {
      await assert.rejects(fx.runtime.run({ detached: true, name: 'clash', ports: [{ host: taken, container: 80 }], command: ['sleep', '1000'], rootfs: fx.rootfs }), { code: 'ERR_PORT_IN_USE', path: `127.0.0.1:${taken}/tcp` });
    } finally {
      await new Promise((r) => probe.close(r));
    }
    assert.deepEqual(fx.runtime.list({ all: true }), []);
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), []);
    assert.equal(fx.runtime.get('clash'), undefined);
  });
});
