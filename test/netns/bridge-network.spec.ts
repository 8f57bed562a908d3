// Bridge networks on real kernels: bridges, veth pairs, nftables, published ports. Runs inside a
// network namespace of its own (test/integration/network.test.ts starts it under unshare --net),
// so the host's interfaces and nftables are never touched; packets only go to loopback and to
// addresses these tests assign.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, CorralError, type Container } from '../../lib/index.ts';
import { makeBusyboxRoot, openFds, rmRoot } from '../helpers.ts';
import { containerResolvConf } from '../../lib/net/resolv-conf.ts';
import { INTERNET_GATEWAY, INTERNET_PORT, INTERNET_SERVER, startInternet, type FakeInternet } from './fake-internet.ts';

/** The links of this namespace, by name. */
function links(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]!).sort();
}

function ruleset(): string {
  return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
}

/** Veth pairs go away with their namespace, which the kernel tears down in the background. */
async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tcpRequest(host: string, port: number, payload = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.end(payload));
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(3000, () => s.destroy(new Error(`timeout talking to ${host}:${port}`)));
  });
}

function udpRequest(host: string, port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => { s.close(); reject(new Error('udp timeout')); }, 3000);
    s.on('message', (m) => { clearTimeout(timer); s.close(); resolve(m.toString()); });
    s.send(payload, port, host);
  });
}

/** A container command serving "hello from NAME" once per TCP connection on port 80, forever. */
const tcpServer = (name: string): string[] => ['busybox', 'sh', '-c', `while true; do echo "hello from ${name}" | busybox nc -l -p 80; done`];

describe('bridge networks (in a network namespace of their own)', function () {
  this.timeout(60_000);
  let root: string;
  let rt: Runtime;
  let internet: FakeInternet;
  let linksBefore: string[];
  const live: Container[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'corral-net-'));
    rt = new Runtime({ root });
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    internet = await startInternet();
    linksBefore = links();
  });
  afterEach(async () => {
    for (const c of live.splice(0)) await c.remove({ force: true });
  });
  after(async () => {
    await rt.networks.prune();
    internet.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function started(spec: Parameters<Runtime['create']>[0]): Promise<Container> {
    const c = await rt.create(spec);
    live.push(c);
    await c.start();
    return c;
  }

  it('creates, lists, inspects, refuses to remove while in use, removes and prunes networks', async () => {
    const a = await rt.networks.create('apps', { subnet: '10.90.0.0/24', labels: { team: 'x' } });
    assert.equal(a.subnet, '10.90.0.0/24');
    assert.equal(a.gateway, '10.90.0.1');
    await assert.rejects(rt.networks.create('apps'), { code: 'ERR_NETWORK_EXISTS' });
    await assert.rejects(rt.networks.create('other', { subnet: '10.90.0.128/25' }), { code: 'ERR_NETWORK_ADDRESS' });
    await assert.rejects(rt.networks.inspect('nope'), { code: 'ERR_NETWORK_NOT_FOUND' });
    const auto = await rt.networks.create('auto');
    assert.match(auto.subnet, /^10\.89\.\d+\.0\/24$/);
    assert.deepEqual((await rt.networks.list()).map((n) => n.name), ['apps', 'auto']);
    const c = await started({ network: { name: 'apps', aliases: ['web'], ip: '10.90.0.50' }, command: ['sleep', '30'] });
    assert.equal(c.ip, '10.90.0.50');
    const info = await rt.networks.inspect('apps');
    assert.deepEqual(info.containers, [{ id: c.id, ip: '10.90.0.50', names: [c.id, 'web'] }]);
    await assert.rejects(rt.networks.remove('apps'), { code: 'ERR_NETWORK_IN_USE' });
    await assert.rejects(rt.create({ network: { name: 'apps', ip: '10.90.0.50' }, command: ['true'] }), { code: 'ERR_NETWORK_ADDRESS' });
    assert.deepEqual((await rt.networks.prune()).sort(), ['auto']);
    await c.remove({ force: true });
    await rt.networks.remove('apps');
    assert.deepEqual(await rt.networks.list(), []);
  });

  it('containers on one network reach each other by name and alias (run and create paths); resolv.conf is the host\'s without loopback', async () => {
    await rt.networks.create('talk');
    const server = await started({ id: 'db', network: { name: 'talk', aliases: ['database'] }, command: tcpServer('db') });
    for (const name of ['db', 'database', server.ip!]) {
      const r = await rt.run({ network: 'talk', command: ['busybox', 'sh', '-c', `for i in 1 2 3 4 5; do busybox nc ${name} 80 && exit 0; sleep 0.1; done; exit 1`] });
      assert.equal(r.stdout.toString(), 'hello from db\n', `${name}: ${r.stderr}`);
    }
    const resolv = await rt.run({ network: 'talk', command: ['cat', '/etc/resolv.conf'] });
    assert.equal(resolv.stdout.toString(), containerResolvConf());
    const hosts = await rt.run({ network: 'talk', id: 'peer', hostname: 'peerhost', command: ['cat', '/etc/hosts'] });
    assert.match(hosts.stdout.toString(), /\tdb database\n/);
    assert.match(hosts.stdout.toString(), /\tpeer peerhost\n/);
    await server.remove({ force: true });
    const after = await rt.run({ network: 'talk', command: ['cat', '/etc/hosts'] });
    assert.doesNotMatch(after.stdout.toString(), /\tdb /);
  });

  it('a container with extraHosts gets a hosts file of its own that still follows the network; dns gives it its own resolv.conf', async () => {
    await rt.networks.create('extras');
    const c = await started({ id: 'ext', hostname: 'exthost', network: 'extras', extraHosts: { 'db.corp': '10.0.0.7' }, dns: ['10.0.0.53'], dnsSearch: ['corp.test'], command: ['sleep', '30'] });
    const cat = async (path: string): Promise<string> => (await c.exec(['cat', path])).stdout.toString();
    assert.equal(await cat('/etc/hostname'), 'exthost\n');
    assert.match(await cat('/etc/hosts'), new RegExp(`^${c.ip!.replaceAll('.', '\\.')}\text exthost$`, 'm'));
    assert.match(await cat('/etc/hosts'), /^10\.0\.0\.7\tdb\.corp$/m);
    assert.equal(await cat('/etc/resolv.conf'), containerResolvConf('/etc/resolv.conf', { servers: ['10.0.0.53'], search: ['corp.test'], options: null }));
    // A peer that joins later shows in its hosts file; the network's own file has no extra line.
    const peer = await started({ id: 'later', network: 'extras', command: ['sleep', '30'] });
    assert.match(await cat('/etc/hosts'), /\tlater$/m);
    assert.doesNotMatch((await peer.exec(['cat', '/etc/hosts'])).stdout.toString(), /db\.corp/);
    assert.equal((await peer.exec(['cat', '/etc/resolv.conf'])).stdout.toString(), containerResolvConf());
    const own = readdirSync(join(root, 'networks/extras')).filter((n) => n.startsWith('hosts-'));
    assert.deepEqual(own, [`hosts-${c.ip}`]);
    await c.remove({ force: true });
    assert.deepEqual(readdirSync(join(root, 'networks/extras')).filter((n) => n.startsWith('hosts-')), []);
    await peer.remove({ force: true });
    await rt.networks.remove('extras');
  });

  it("extraHosts 'host-gateway' is the network's gateway: the container reaches a server of the host by that name", async () => {
    await rt.networks.create('gw', { subnet: '10.123.0.0/24' });
    const gateway = (await rt.networks.inspect('gw')).gateway;
    // A server of the test process, in the test's own namespace (the bridge, whose address is the
    // gateway, is made on the first attach).
    const server = createServer((s) => s.end('hello from the host\n'));
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await rt.run({ network: 'gw', extraHosts: { 'host.corral.internal': 'host-gateway' }, command: ['busybox', 'sh', '-c', `cat /etc/hosts; busybox nc -w 2 host.corral.internal ${port}`] });
      const out = r.stdout.toString();
      assert.equal(gateway, '10.123.0.1');
      assert.match(out, /^10\.123\.0\.1\thost\.corral\.internal$/m, r.stderr.toString());
      assert.match(out, /hello from the host\n$/);
    } finally {
      await new Promise((r) => server.close(r));
    }
    await assert.rejects(rt.run({ network: 'none', extraHosts: { h: 'host-gateway' }, command: ['true'] }), { code: 'ERR_INVALID_SPEC', message: /host-gateway needs a network/ });
    await rt.networks.remove('gw');
  });

  it('a container on its own root filesystem (no /etc/hosts in it) gets the network\'s hosts file and reaches a peer by name', async () => {
    const busybox = makeBusyboxRoot();
    try {
      const server = await started({ id: 'peer-on-root', network: 'bridge', rootfs: busybox, command: tcpServer('root') });
      const r = await rt.run({ network: 'bridge', rootfs: busybox, readonlyRootfs: true, command: ['sh', '-c', 'for i in 1 2 3 4 5; do nc peer-on-root 80 && exit 0; sleep 0.1; done; exit 1'] });
      assert.equal(r.stdout.toString(), 'hello from root\n', r.stderr.toString());
      await server.remove({ force: true });
      assert.ok(!existsSync(join(busybox, 'etc/hosts')), 'the bind target was made in the overlay, not in the rootfs');
    } finally {
      rmRoot(busybox);
    }
  });

  it('publishes tcp and udp ports on 127.0.0.1 (host port 0: a free one, reported)', async () => {
    const c = await started({
      network: 'bridge',
      ports: [{ container: 80 }, { container: 53, protocol: 'udp' }],
      // Node (from the host root) serves udp: busybox's nc has no -u.
      command: [process.execPath, '-e', "const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send('udp got ' + m, r.port, r.address)); s.bind(53); require('net').createServer((c) => c.end('hello from tcp\\n')).listen(80);"],
    });
    const [tcp, udp] = c.ports();
    assert.equal(tcp!.hostIp, '127.0.0.1');
    assert.ok(tcp!.host > 0 && udp!.host > 0);
    let answer = '';
    for (let i = 0; i < 20 && answer === ''; i++) {
      answer = await tcpRequest('127.0.0.1', tcp!.host).catch(() => '');
      if (!answer) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(answer, 'hello from tcp\n');
    assert.equal(await udpRequest('127.0.0.1', udp!.host, 'ping'), 'udp got ping');
  });

  it('publishes on 0.0.0.0 to another namespace, and to containers of the same network (hairpin)', async () => {
    const c = await started({ network: 'bridge', ports: [{ container: 80, hostIp: '0.0.0.0' }], command: tcpServer('published') });
    const port = c.ports()[0]!.host;
    let outside = { code: 1 as number | null, stdout: '' };
    for (let i = 0; i < 20 && outside.stdout === ''; i++) {
      outside = await internet.exec(['busybox', 'nc', '-w', '2', INTERNET_GATEWAY, String(port)]);
      if (!outside.stdout) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(outside.stdout, 'hello from published\n');
    const gateway = (await rt.networks.inspect('bridge')).gateway;
    // Retried: the server's nc listens again only once the previous connection is done.
    const peer = await rt.run({ network: 'bridge', command: ['busybox', 'sh', '-c', `for i in 1 2 3 4 5; do busybox nc -w 2 ${gateway} ${port} && exit 0; sleep 0.1; done; exit 1`] });
    assert.equal(peer.stdout.toString(), 'hello from published\n', peer.stderr.toString());
  });

  it('masquerades outbound traffic; internal networks and network none have no way out', async () => {
    const out = await rt.run({ network: 'bridge', command: ['busybox', 'nc', '-w', '2', INTERNET_SERVER, String(INTERNET_PORT)] });
    assert.equal(out.stdout.toString(), `${INTERNET_GATEWAY}\n`, `masqueraded as the host's address: ${out.stderr}`);
    await rt.networks.create('sealed', { internal: true });
    const sealed = await rt.run({ network: 'sealed', command: ['busybox', 'nc', '-w', '1', INTERNET_SERVER, String(INTERNET_PORT)] });
    assert.notEqual(sealed.exitCode, 0);
    assert.equal(sealed.stdout.toString(), '');
    const none = await rt.run({ network: 'none', command: ['busybox', 'nc', '-w', '1', INTERNET_SERVER, String(INTERNET_PORT)] });
    assert.notEqual(none.exitCode, 0);
    await rt.networks.remove('sealed');
  });

  it('isolates networks from each other, but a published port is reachable from another network', async () => {
    await rt.networks.create('left');
    await rt.networks.create('right');
    const server = await started({ network: 'left', ports: [{ container: 80, hostIp: '0.0.0.0' }], command: tcpServer('left') });
    const port = server.ports()[0]!.host;
    const direct = await rt.run({ network: 'right', command: ['busybox', 'nc', '-w', '1', server.ip!, '80'] });
    assert.equal(direct.stdout.toString(), '', 'a container of another network reached the server directly');
    const same = await rt.run({ network: 'left', command: ['busybox', 'sh', '-c', `for i in 1 2 3 4 5; do busybox nc -w 1 ${server.ip} 80 && exit 0; sleep 0.1; done; exit 1`] });
    assert.equal(same.stdout.toString(), 'hello from left\n');
    const gateway = (await rt.networks.inspect('right')).gateway;
    const published = await rt.run({ network: 'right', command: ['busybox', 'nc', '-w', '2', gateway, String(port)] });
    assert.equal(published.stdout.toString(), 'hello from left\n', published.stderr.toString());
    await server.remove({ force: true });
    await rt.networks.remove('left');
    await rt.networks.remove('right');
  });

  it('a host port in use fails with ERR_PORT_IN_USE naming it, before the container starts, leaving nothing', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const rules = ruleset();
    const before = links();
    try {
      await assert.rejects(rt.run({ ports: [{ host: port, container: 80 }], command: ['true'] }), (e: CorralError) => {
        assert.equal(e.code, 'ERR_PORT_IN_USE');
        assert.equal(e.errno, 98);
        assert.equal(e.path, `127.0.0.1:${port}/tcp`);
        assert.match(e.message, /EADDRINUSE/);
        return true;
      });
    } finally {
      blocker.close();
    }
    // A setup failure after the attachment (no such command) also leaves nothing.
    await assert.rejects(rt.run({ ports: [{ container: 80 }], command: ['no-such-command'] }), { code: 'ENOENT' });
    assert.equal(ruleset(), rules);
    await eventually(() => links().every((l) => before.includes(l)), 'the failed attachment\'s veth to go');
    assert.deepEqual((await rt.networks.inspect('bridge')).containers, []);
  });

  it('200 runs with a published port leave no veth, rule, address or hosts entry behind', async function () {
    this.timeout(120_000);
    await rt.run({ network: 'bridge', ports: [{ container: 80 }], command: ['true'] });
    const rules = ruleset();
    const before = links();
    const hosts = readFileSync(join(root, 'networks/bridge/hosts'), 'utf8');
    const fds = openFds();
    for (let i = 0; i < 200; i++) {
      const r = await rt.run({ network: 'bridge', ports: [{ container: 80 }], command: ['true'] });
      assert.equal(r.exitCode, 0);
    }
    assert.equal(ruleset(), rules);
    await eventually(() => openFds().join() === fds.join(), 'the held ports\' sockets to close');
    assert.equal(readFileSync(join(root, 'networks/bridge/hosts'), 'utf8'), hosts);
    assert.deepEqual(readdirSync(join(root, 'networks/bridge/endpoints')).filter((n) => n !== 'last'), []);
    await eventually(() => links().every((l) => before.includes(l)), 'the veth pairs to go', 15_000);
  });

  it('a host process killed with SIGKILL leaves nothing the next runtime does not sweep', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'hold-on-network.ts'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(String(d)));
      child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    });
    assert.match(ready, /^ready/);
    assert.match(ruleset(), /dnat to/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const next = new Runtime({ root });
    const info = await next.networks.inspect('bridge');
    assert.deepEqual(info.containers, []);
    assert.doesNotMatch(ruleset(), /dnat to/);
    assert.doesNotMatch(readFileSync(join(root, 'networks/bridge/hosts'), 'utf8'), /held/);
  });

  it('corral network … and corral run --network --network-alias -p work', async () => {
    const cli = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => new Promise((resolve) => {
      const child = spawn(process.execPath, [join(import.meta.dirname, '../../dist/cli/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => { stdout += d; });
      child.stderr!.on('data', (d) => { stderr += d; });
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal((await cli(['network', 'create', 'clinet', '--subnet', '10.91.0.0/24', '--root', root])).stdout, 'clinet\n');
    assert.match((await cli(['network', 'ls', '--root', root])).stdout, /^clinet\t10\.91\.0\.0\/24\tcr[0-9a-f]{12}\t0$/m);
    const hosts = await cli(['run', '--root', root, '--network', 'clinet', '--network-alias', 'cache', '--', 'cat', '/etc/hosts']);
    assert.match(hosts.stdout, /^10\.91\.0\.\d+\t\S+ cache$/m, hosts.stderr);
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const served = cli(['run', '--root', root, '--network', 'clinet', '-p', `127.0.0.1:${port}:80`, '--', 'busybox', 'sh', '-c', 'echo from-cli | busybox nc -l -p 80']);
    let answer = '';
    for (let i = 0; i < 100 && answer === ''; i++) {
      answer = await tcpRequest('127.0.0.1', port).catch(() => '');
      if (!answer) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(answer, 'from-cli\n');
    assert.equal((await served).code, 0);
    assert.equal(JSON.parse((await cli(['network', 'inspect', 'clinet', '--root', root])).stdout).containers.length, 0);
    assert.equal((await cli(['network', 'rm', 'clinet', '--root', root])).code, 0);
    const missing = await cli(['network', 'inspect', 'clinet', '--root', root]);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /no network named clinet/);
  });

  it('removing every network removes the bridges, the table and every veth', async () => {
    await rt.networks.prune();
    assert.doesNotMatch(ruleset(), /corral/);
    assert.ok(!existsSync(join(root, 'networks/bridge')));
    await eventually(() => links().join() === linksBefore.filter((l) => !l.startsWith('cr')).join(), 'links to match the start');
  });
});
