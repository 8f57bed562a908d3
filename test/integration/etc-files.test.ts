// Issues 11 and 17: every container has its own /etc/hostname and /etc/hosts (and /etc/resolv.conf
// when it has a network or the spec sets DNS), as Docker gives them: bound from a tmpfs of the
// container's own, writable by it, gone with it, never written into the rootfs, the image or the host.
// Bridge networks (shared hosts file, extraHosts there) are in test/netns/bridge-network.spec.ts.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, type ContainerSpec } from '../../lib/index.ts';
import { renderHosts } from '../../lib/net/hosts-file.ts';
import { containerResolvConf, HOST_DNS } from '../../lib/net/resolv-conf.ts';
import { busyboxLayout } from '../image-fixtures.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const cli = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const SHOW = 'cat /etc/hostname; echo --; cat /etc/hosts; echo --; cat /etc/resolv.conf 2>&1; echo --; hostname';

/** The four parts SHOW prints. */
function shown(stdout: string): { hostname: string; hosts: string; resolv: string; uts: string } {
  const [hostname, hosts, resolv, uts] = stdout.split('--\n');
  return { hostname: hostname!, hosts: hosts!, resolv: resolv!, uts: uts! };
}

describe(`a container's own /etc/hostname, /etc/hosts and /etc/resolv.conf (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(60_000);
  let work: string;
  let rootfs: string;
  let rt: Runtime;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-etc-files-'));
    rootfs = makeBusyboxRoot();
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
    await rt.images.import(busyboxLayout(work), { format: 'oci-layout' });
  });
  after(async () => {
    for (const c of rt.list({ all: true, onError: () => {} })) await c.remove({ force: true });
    rmRoot(rootfs);
    rmSync(work, { recursive: true, force: true });
  });

  async function show(spec: Partial<ContainerSpec>): Promise<ReturnType<typeof shown>> {
    const r = await rt.run({ rootfs, command: ['sh', '-c', SHOW], ...spec });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    return shown(r.stdout.toString());
  }

  it('by default: /etc/hostname is the id, /etc/hosts has localhost and the host name, no resolv.conf without a network', async () => {
    const got = await show({ id: 'etcdefault' });
    assert.equal(got.hostname, 'etcdefault\n');
    assert.equal(got.uts, 'etcdefault\n');
    assert.equal(got.hosts, renderHosts([{ ip: '127.0.1.1', names: ['etcdefault'] }]));
    assert.match(got.hosts, /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
    assert.match(got.resolv, /No such file/);
    assert.ok(!existsSync(join(rootfs, 'etc/hostname')) && !existsSync(join(rootfs, 'etc/hosts')), 'nothing was made in the rootfs');
  });

  it('they are its own: writable by its root, the next container gets fresh ones, the rootfs is untouched', async () => {
    writeFileSync(join(rootfs, 'etc/hosts'), '10.9.9.9\tfrom-rootfs\n');
    try {
      const r = await rt.run({ rootfs, hostname: 'writer', command: ['sh', '-c', 'echo "10.1.1.1 added" >> /etc/hosts && echo renamed > /etc/hostname && cat /etc/hostname /etc/hosts'] });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.match(r.stdout.toString(), /^renamed\n127\.0\.0\.1\tlocalhost\n(.*\n)*127\.0\.1\.1\twriter\n10\.1\.1\.1 added\n$/);
      assert.doesNotMatch(r.stdout.toString(), /from-rootfs/);
      const next = await show({ hostname: 'writer' });
      assert.equal(next.hostname, 'writer\n');
      assert.doesNotMatch(next.hosts, /added/);
      assert.equal(readFileSync(join(rootfs, 'etc/hosts'), 'utf8'), '10.9.9.9\tfrom-rootfs\n');
    } finally {
      rmSync(join(rootfs, 'etc/hosts'));
    }
  });

  it('hostname, extraHosts, dns, dnsSearch and dnsOptions', async () => {
    const got = await show({ hostname: 'web', extraHosts: { db: '10.0.0.7', 'v6.test': 'fd00::7' }, dns: ['10.0.0.53', 'fd00::53'], dnsSearch: ['corp.test'], dnsOptions: ['ndots:2', 'edns0'] });
    assert.equal(got.hostname, 'web\n');
    assert.equal(got.uts, 'web\n');
    assert.match(got.hosts, /\n127\.0\.1\.1\tweb\n10\.0\.0\.7\tdb\nfd00::7\tv6\.test\n$/);
    assert.equal(got.resolv, 'search corp.test\nnameserver 10.0.0.53\nnameserver fd00::53\noptions ndots:2 edns0\n');
    await assert.rejects(rt.run({ rootfs, command: ['true'], dns: ['not-an-ip'] }), { code: 'ERR_INVALID_SPEC', message: /dns must be an array of IP addresses/ });
    await assert.rejects(rt.run({ rootfs, command: ['true'], extraHosts: { db: 'nowhere' } }), { code: 'ERR_INVALID_SPEC', message: /extraHosts\.db must be an IP address/ });
    await assert.rejects(rt.run({ rootfs, command: ['true'], extraHosts: { gw: 'host-gateway' } }), { code: 'ERR_INVALID_SPEC', message: /extraHosts\.gw: host-gateway needs a network/ });
  });

  it("network 'host': the host's hosts file with the host name added, the host's resolv.conf with loopback nameservers kept", async () => {
    const got = await show({ hostname: 'onhostnet', network: 'host', extraHosts: { 'host.corral.internal': 'host-gateway' } });
    // host-gateway: on the host's own network the host is 127.0.0.1.
    assert.equal(got.hosts, renderHosts([{ ip: '127.0.1.1', names: ['onhostnet'] }, { ip: '127.0.0.1', names: ['host.corral.internal'] }], readFileSync('/etc/hosts', 'utf8')));
    assert.equal(got.resolv, containerResolvConf('/etc/resolv.conf', HOST_DNS, true));
  });

  /** The entry names of an image's top layer, read from an OCI layout export of it. */
  const topLayerNames = async (ref: string): Promise<string[]> => {
    const out = mkdtempSync(join(work, 'exported-'));
    rmSync(out, { recursive: true });
    await rt.images.export(ref, out, { format: 'oci-layout' });
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    const blob = (digest: string) => join(out, 'blobs/sha256', digest.slice('sha256:'.length));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    return execFileSync('tar', ['-tzf', blob(manifest.layers.at(-1).digest)], { encoding: 'utf8' }).split('\n').filter(Boolean);
  };

  it("an image's files are covered; exec sees the same ones; commit leaves the empty mount points out", async () => {
    const c = await rt.create({ image: 'base', hostname: 'imagebox', extraHosts: { db: '10.0.0.7' }, command: ['sleep', '30'] });
    try {
      await c.start();
      const r = await c.exec(['sh', '-c', 'cat /etc/hostname /etc/hosts']);
      assert.match(r.stdout.toString(), /^imagebox\n(.*\n)*10\.0\.0\.7\tdb\n$/);
      await c.exec(['sh', '-c', 'echo kept > /etc/kept']);
      await c.commit({ ref: 'etc-committed:1' });
    } finally {
      await c.remove({ force: true });
    }
    const names = await topLayerNames('etc-committed:1');
    assert.ok(names.some((n) => /(^|\/)etc\/kept$/.test(n)), names.join(' '));
    assert.ok(!names.some((n) => /(^|\/)etc\/(hostname|hosts|resolv\.conf)$/.test(n)), names.join(' '));
  });

  it('an untouched container commits an empty layer: no etc/ made only for the mount points', async () => {
    const c = await rt.create({ image: 'base', hostname: 'untouched', command: ['sleep', '30'] });
    try {
      await c.start();
      await c.commit({ ref: 'etc-untouched:1' });
    } finally {
      await c.remove({ force: true });
    }
    assert.deepEqual(await topLayerNames('etc-untouched:1'), []);
  });

  it("an image's /etc/resolv.conf that links to a file under an empty /run (as Ubuntu's) is followed inside the root", async () => {
    const linked = makeBusyboxRoot();
    try {
      symlinkSync('../run/systemd/resolve/stub-resolv.conf', join(linked, 'etc/resolv.conf'));
      const r = await rt.run({ rootfs: linked, dns: ['10.0.0.53'], command: ['sh', '-c', 'cat /etc/resolv.conf /run/systemd/resolve/stub-resolv.conf'] });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), 'nameserver 10.0.0.53\n'.repeat(2));
      assert.ok(!existsSync(join(linked, 'run')), 'the link target was made in the writable layer, not in the rootfs');
    } finally {
      rmRoot(linked);
    }
  });

  it('a mount on /etc/hosts, or on /etc, wins over the own file', async () => {
    const hostFile = join(work, 'my-hosts');
    writeFileSync(hostFile, '10.2.2.2\tmine\n');
    const etc = join(work, 'my-etc');
    mkdirSync(etc);
    assert.equal((await show({ mounts: [{ type: 'bind', source: hostFile, target: '/etc/hosts', readonly: true }] })).hosts, '10.2.2.2\tmine\n');
    const whole = await rt.run({ rootfs, mounts: [{ type: 'bind', source: etc, target: '/etc' }], command: ['ls', '-A', '/etc'] });
    assert.equal(whole.stdout.toString(), '', whole.stderr.toString());
    assert.deepEqual(readdirSync(etc), [], 'nothing was made in the bound host directory');
  });

  it('with a read-only root they are there and writable, as in Docker', async () => {
    const r = await rt.run({ rootfs, readonlyRootfs: true, hostname: 'ro', command: ['sh', '-c', 'echo x >> /etc/hosts && cat /etc/hostname && touch /etc/other'] });
    assert.equal(r.stdout.toString(), 'ro\n');
    assert.match(r.stderr.toString(), /Read-only file system/);
  });

  it('on the host root, /etc/hostname is the container\'s, not the host\'s', async () => {
    const r = await rt.run({ hostname: 'onhostroot', command: ['cat', '/etc/hostname', '/etc/hosts'] });
    // The host root is read-only: a file the host lacks is not made (and not bound).
    if (existsSync('/etc/hostname')) assert.match(r.stdout.toString(), /^onhostroot\n/);
    else assert.match(r.stderr.toString(), /\/etc\/hostname: No such file/);
    assert.match(r.stdout.toString(), /127\.0\.1\.1\tonhostroot\n/);
  });

  it('corral run -h, --add-host, --dns, --dns-search, --dns-option', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--root', join(work, 'state'), '--rootfs', rootfs, '-h', 'clibox',
      '--add-host', 'db:10.0.0.7', '--add-host', 'v6=[fd00::7]', '--dns', '10.0.0.53', '--dns-search', 'corp.test', '--dns-option', 'ndots:2', 'sh', '-c', SHOW], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = shown(r.stdout);
    assert.equal(got.hostname, 'clibox\n');
    assert.match(got.hosts, /\n127\.0\.1\.1\tclibox\n10\.0\.0\.7\tdb\nfd00::7\tv6\n$/);
    assert.equal(got.resolv, 'search corp.test\nnameserver 10.0.0.53\noptions ndots:2\n');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--root', join(work, 'state'), '--rootfs', rootfs, '--add-host', 'nocolon', 'true'], { encoding: 'utf8' });
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /--add-host must be NAME:IP, got 'nocolon'/);
    const gw = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--root', join(work, 'state'), '--rootfs', rootfs, '--network', 'host', '--add-host', 'gw:host-gateway', 'cat', '/etc/hosts'], { encoding: 'utf8' });
    assert.equal(gw.status, 0, gw.stderr);
    assert.match(gw.stdout, /^127\.0\.0\.1\tgw$/m);
  });
});

