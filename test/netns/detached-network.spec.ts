// Detached containers on bridge networks, as root. Runs inside a network namespace of its own
// (test/integration/detached-network.test.ts starts it under unshare --net), so the host's
// interfaces and nftables are never touched; packets only go to loopback and to the addresses of
// the network these tests make.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { alive, eventually, tcpAnswer } from '../helpers.ts';
import { createIn, detachedFixture, sigkill } from '../detached-fixture.ts';

/** The links of this namespace, by name. */
function links(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]!).sort();
}

const veths = (): string[] => links().filter((l) => /^vc[0-9a-f]{12}$/.test(l));
const ruleset = (): string => execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });

/** A shell loop serving "hello from NAME" once per TCP connection on port 80. */
const serve = (name: string): string => `while true; do echo "hello from ${name}" | nc -l -p 80; done`;

describe('detached containers on bridge networks (in a network namespace of their own)', function () {
  this.timeout(60_000);
  const fx = detachedFixture('corral-detached-net-');
  before(() => execFileSync('ip', ['link', 'set', 'lo', 'up']));

  it('outlive their creator on the network (published port, address); run again from another process; removed by another, nothing is left', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'web', serve('web'), { spec: { network: 'bridge', ports: [{ hostIp: '127.0.0.1', host: 0, container: 80 }] } });
    await sigkill(proc);
    const c = fx.runtime.find('web');
    const [port] = c.ports();
    assert.equal(port!.hostIp, '127.0.0.1');
    assert.ok(port!.host > 0);
    assert.match(c.ip ?? '', /^10\.88\.\d+\.\d+$/);
    assert.equal(await tcpAnswer('127.0.0.1', port!.host), 'hello from web\n');
    const peer = await fx.runtime.run({ network: 'bridge', rootfs: fx.rootfs, command: ['/bin/sh', '-c', `for i in 1 2 3 4 5; do nc ${c.ip} 80 && exit 0; sleep 0.1; done; exit 1`] });
    assert.equal(peer.stdout.toString(), 'hello from web\n', peer.stderr.toString());
    // The peer's veth goes with its namespace, in the background.
    assert.ok(await eventually(() => veths().length === 1), `veths: ${veths()}`);
    // Its supervisor holds the namespace: a new run joins it again, with its address and port.
    await new Runtime({ root: fx.store }).find(id).restart({ timeout: 100 });
    assert.equal(await tcpAnswer('127.0.0.1', port!.host), 'hello from web\n');
    assert.deepEqual((await fx.runtime.networks.inspect('bridge')).containers.map((e) => [e.id, e.ip]), [[id, c.ip]]);
    await new Runtime({ root: fx.store }).find(id).remove({ force: true });
    assert.ok(await eventually(() => veths().length === 0), `veths left: ${veths()}`);
    assert.doesNotMatch(ruleset(), new RegExp(id));
    assert.deepEqual((await fx.runtime.networks.inspect('bridge')).containers, []);
    assert.doesNotMatch(readFileSync(join(fx.store, 'networks', 'bridge', 'hosts'), 'utf8'), new RegExp(id));
    await fx.runtime.networks.remove('bridge');
    assert.deepEqual(links(), ['lo']);
    assert.doesNotMatch(ruleset(), /table ip corral/);
  });

  it('extraHosts: its own hosts file outlives the creator and goes when another process removes it', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'extras', 'sleep 30', { spec: { network: 'bridge', hostname: 'exthost', extraHosts: { 'db.corp': '10.0.0.7' } } });
    await sigkill(proc);
    const c = new Runtime({ root: fx.store }).find(id);
    const hosts = (await c.exec(['cat', '/etc/hosts'])).stdout.toString();
    assert.match(hosts, /^10\.0\.0\.7\tdb\.corp$/m);
    assert.match(hosts, new RegExp(`^${c.ip!.replaceAll('.', '\\.')}\t${id} exthost$`, 'm'));
    const own = () => readdirSync(join(fx.store, 'networks', 'bridge')).filter((n) => n.startsWith('hosts-'));
    assert.deepEqual(own(), [`hosts-${c.ip}`]);
    await new Runtime({ root: fx.store }).find(id).remove({ force: true });
    assert.deepEqual(own(), []);
    await fx.runtime.networks.remove('bridge');
  });

  it('autoRemove: the supervisor, once its container ended, undoes its endpoint though no process watches', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'brief', 'sleep 0.5; exit 3', { spec: { network: 'bridge', autoRemove: true, ports: [{ hostIp: '127.0.0.1', host: 0, container: 80 }] } });
    await sigkill(proc);
    assert.ok(await eventually(() => fx.runtime.get(id) === undefined, 15_000), 'it was removed');
    assert.ok(await eventually(() => veths().length === 0), `veths left: ${veths()}`);
    assert.doesNotMatch(ruleset(), new RegExp(id));
    assert.deepEqual((await fx.runtime.networks.inspect('bridge')).containers, []);
  });

  it('a detached create that fails on a network leaves no endpoint, rule, veth or supervisor', async () => {
    await assert.rejects(fx.runtime.run({ detached: true, network: 'bridge', ports: [{ hostIp: '127.0.0.1', host: 0, container: 80 }], command: ['/nonexistent'], rootfs: fx.rootfs }), { errno: 2 });
    assert.deepEqual((await fx.runtime.networks.inspect('bridge')).containers, []);
    assert.ok(await eventually(() => veths().length === 0), `veths left: ${veths()}`);
    assert.doesNotMatch(ruleset(), /dnat to/);
    assert.deepEqual(fx.runtime.list({ all: true }), []);
  });

  it("a killed supervisor's endpoint is swept for the next container; removing the dead one later frees nothing of the new one's", async () => {
    const dead = await fx.runtime.run({ detached: true, network: { name: 'bridge', ip: '10.88.0.50' }, command: ['sleep', '1000'], rootfs: fx.rootfs });
    const supervisor = dead.inspect().supervision!.supervisorPid;
    process.kill(supervisor, 'SIGKILL');
    await dead.wait();
    assert.ok(await eventually(() => !alive(supervisor)));
    const next = await fx.runtime.run({ detached: true, network: { name: 'bridge', ip: '10.88.0.50' }, command: ['sleep', '1000'], rootfs: fx.rootfs });
    await dead.remove();
    assert.deepEqual((await fx.runtime.networks.inspect('bridge')).containers.map((e) => [e.id, e.ip]), [[next.id, '10.88.0.50']]);
    assert.equal(veths().length, 1);
    await next.remove({ force: true });
    assert.ok(await eventually(() => veths().length === 0), `veths left: ${veths()}`);
  });
});
