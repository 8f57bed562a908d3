import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { create, run } from '../../lib/index.ts';
import { mochaInOwnNetns, rootless, tcpAnswer } from '../helpers.ts';
import { pastaHostGateway } from '../../lib/net/pasta.ts';

describe(`bridge networks (${rootless ? 'rootless' : 'root'})`, () => {
  if (rootless) {
    // pasta publishes on the host's loopback: the only address these tests send to.
    const pastaOf = (id: string): number[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`pasta-${id}.pid`);
      } catch {
        return false;
      }
    }).map(Number);

    const gone = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(check(), 'pasta is still running');
    };

    it('publishes a port on 127.0.0.1 through pasta (create and run paths); pasta ends with the container', async () => {
      const c = await create({ ports: [{ container: 80 }], command: ['busybox', 'sh', '-c', 'while true; do echo via-pasta | busybox nc -l -p 80; done'] });
      await c.start();
      const [port] = c.ports();
      assert.equal(port!.hostIp, '127.0.0.1');
      assert.ok(port!.host > 0);
      assert.equal(pastaOf(c.id).length, 1);
      assert.equal(await tcpAnswer('127.0.0.1', port!.host), 'via-pasta\n');
      await c.remove({ force: true });
      await gone(() => pastaOf(c.id).length === 0);
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const fixed = (probe.address() as { port: number }).port;
      await assert.rejects(run({ ports: [{ host: fixed, container: 80 }], command: ['true'] }), { code: 'ERR_PORT_IN_USE', path: `127.0.0.1:${fixed}/tcp` });
      await new Promise((r) => probe.close(r));
      const served = run({ id: 'pasta-run', ports: [{ host: fixed, container: 80 }], command: ['busybox', 'sh', '-c', 'echo once | busybox nc -l -p 80'] });
      assert.equal(await tcpAnswer('127.0.0.1', fixed), 'once\n');
      assert.equal((await served).exitCode, 0);
      await gone(() => pastaOf('pasta-run').length === 0);
    });

    it("extraHosts 'host-gateway' is the gateway pasta maps to the host: a server of the test on 127.0.0.1 answers", async () => {
      // wget, not `nc` with an empty stdin: pasta 2023-03 loses the FIN (and sends the reply again
      // and again) of a connection the container half-closed first, so such an nc never ends (README,
      // "pasta and half-closed connections").
      const server = createHttpServer((_request, response) => response.end('hello from the host\n'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const port = (server.address() as { port: number }).port;
        const r = await run({ network: 'bridge', extraHosts: { 'host.corral.internal': 'host-gateway' }, command: ['busybox', 'sh', '-c', `cat /etc/hosts; busybox wget -q -O- http://host.corral.internal:${port}/`] });
        const out = r.stdout.toString();
        assert.equal(r.exitCode, 0, r.stderr.toString());
        assert.match(out, new RegExp(`^${pastaHostGateway().replaceAll('.', '\\.')}\thost\\.corral\\.internal$`, 'm'), r.stderr.toString());
        assert.match(out, /\nhello from the host\n$/, r.stderr.toString());
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });

    it('refuses user networks, aliases and fixed addresses without root', async () => {
      await assert.rejects(run({ network: 'mine', command: ['true'] }), { code: 'ERR_INVALID_SPEC', message: /rootless/ });
      await assert.rejects(run({ network: { name: 'bridge', aliases: ['x'] }, command: ['true'] }), { code: 'ERR_INVALID_SPEC' });
    });
    return;
  }

  // The suite creates bridges, veth pairs, nftables rules and sysctls: it runs in a network
  // namespace of its own so the host's are never touched (and nothing can outlive it).
  it('test/netns/bridge-network.spec.ts passes under unshare --net', function () {
    this.timeout(300_000);
    mochaInOwnNetns('test/netns/bridge-network.spec.ts');
  });

  // A guard for the whole suite: no test (of this file or another) attached a container to a bridge
  // in the host's own network namespace.
  it("the host's network namespace has no corral bridge, veth or nftables table", () => {
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(links, /^\d+: (cr[0-9a-f]{12}|vc[0-9a-f]{12})[:@]/m);
    const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    assert.equal(tables.status, 0, tables.stderr);
    assert.doesNotMatch(tables.stdout, /table ip corral\b/);
  });
});
