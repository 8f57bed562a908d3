import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../lib/net/ipam.ts';
import { formatAddress, overlaps, parseSubnet } from '../../lib/net/ipv4.ts';
import { renderHosts } from '../../lib/net/hosts-file.ts';
import { rewriteInPlace } from '../../lib/net/in-place-file.ts';
import { containerResolvConf, HOST_DNS } from '../../lib/net/resolv-conf.ts';
import { resolveSpec } from '../../lib/container/spec.ts';
import { parsePublishFlag } from '../../lib/cli/parse.ts';
import { processTag } from '../../lib/sys/process-tag.ts';

describe('networks: addresses, IPAM, hosts files, specs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-ipam-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('parses subnets and refuses host bits, bad prefixes and non-addresses', () => {
    const s = parseSubnet('10.88.0.0/16');
    assert.equal(formatAddress(s.base), '10.88.0.0');
    assert.throws(() => parseSubnet('10.88.0.1/16'), /host bits/);
    assert.throws(() => parseSubnet('10.88.0.0/31'), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => parseSubnet('10.300.0.0/16'), /not an IPv4 address/);
    assert.ok(overlaps(parseSubnet('10.0.0.0/8'), parseSubnet('10.89.1.0/24')));
    assert.ok(!overlaps(parseSubnet('10.89.0.0/24'), parseSubnet('10.89.1.0/24')));
  });

  it('hands out each address once (O_EXCL files), skips the gateway, reuses freed ones last, and fills up', () => {
    const ipam = new Ipam(dir, parseSubnet('10.1.0.0/29'), ['10.1.0.1']);
    const ep = (c: string) => ({ container: c, owner: processTag(), veth: 'v', names: [c], rules: [] });
    const got = ['a', 'b', 'c', 'd', 'e'].map((c) => ipam.allocate(ep(c), null).ip);
    assert.deepEqual(got, ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
    assert.throws(() => ipam.allocate(ep('f'), null), { code: 'ERR_NETWORK_ADDRESS' });
    ipam.release('10.1.0.3');
    assert.equal(ipam.allocate(ep('g'), null).ip, '10.1.0.3');
    assert.throws(() => ipam.allocate(ep('h'), '10.1.0.4'), /already in use/);
    assert.throws(() => ipam.allocate(ep('h'), '10.1.0.1'), /not a free host address/);
    assert.throws(() => ipam.allocate(ep('h'), '10.1.0.7'), /not a free host address/);
    assert.deepEqual(ipam.endpoints().map((e) => e.container).sort(), ['a', 'c', 'd', 'e', 'g']);
  });

  it('rewrites the hosts file in place: the inode stays, so a bind mount of it sees the change', () => {
    const path = join(dir, 'hosts');
    rewriteInPlace(path, renderHosts([{ ip: '10.0.0.2', names: ['db', 'database', 'db'] }, { ip: '10.0.0.3', names: ['web'] }]), 'hosts');
    const inode = statSync(path).ino;
    const held = openSync(path, 'r');
    assert.match(readFileSync(path, 'utf8'), /^127\.0\.0\.1\tlocalhost\n.*\n10\.0\.0\.2\tdb database\n10\.0\.0\.3\tweb\n$/s);
    rewriteInPlace(path, renderHosts([]), 'hosts');
    assert.equal(statSync(path).ino, inode);
    assert.doesNotMatch(readFileSync(held, 'utf8'), /db/);
    closeSync(held);
  });

  it("drops loopback nameservers from the host's resolv.conf, keeping the rest", () => {
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'search example.test\nnameserver 127.0.0.53\nnameserver 10.1.2.3\nnameserver ::1\noptions ndots:2\n');
    assert.equal(containerResolvConf(path), 'search example.test\nnameserver 10.1.2.3\noptions ndots:2\n');
  });

  it("falls back to Docker's nameservers when only loopback ones are left, not on the host's network", () => {
    const path = join(dir, 'resolv-stub.conf');
    writeFileSync(path, '# stub\nnameserver 127.0.0.53\noptions edns0\n');
    assert.equal(containerResolvConf(path), '# stub\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n');
    assert.equal(containerResolvConf(join(dir, 'missing')), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    assert.equal(containerResolvConf(path, HOST_DNS, true), '# stub\nnameserver 127.0.0.53\noptions edns0\n');
  });

  it('replaces the host\'s nameservers, search domains and options with the spec\'s (docker run --dns, --dns-search, --dns-option)', () => {
    const path = join(dir, 'resolv-full.conf');
    writeFileSync(path, 'domain host.test\nsearch a.test b.test\nnameserver 10.1.2.3\noptions ndots:5\n');
    assert.equal(containerResolvConf(path, { servers: ['10.9.9.9', 'fd00::53'], search: null, options: null }), 'domain host.test\nsearch a.test b.test\nnameserver 10.9.9.9\nnameserver fd00::53\noptions ndots:5\n');
    assert.equal(containerResolvConf(path, { servers: null, search: ['corp.test'], options: ['ndots:1', 'rotate'] }), 'search corp.test\nnameserver 10.1.2.3\noptions ndots:1 rotate\n');
    // An empty list removes the host's lines and names none.
    assert.equal(containerResolvConf(path, { servers: null, search: [], options: [] }), 'nameserver 10.1.2.3\n');
  });

  it('resolves spec.network and spec.ports', () => {
    const plain = resolveSpec({ command: ['true'], ports: [{ container: 80 }] }, false);
    assert.equal(plain.network, 'bridge');
    assert.deepEqual(plain.attach, { network: 'bridge', names: [plain.id], ip: null });
    assert.deepEqual(plain.ports, [{ hostIp: '127.0.0.1', host: 0, container: 80, protocol: 'tcp' }]);
    const named = resolveSpec({ command: ['true'], id: 'api', hostname: 'apihost', network: { name: 'apps', aliases: ['web'], ip: '10.89.0.9' } }, false);
    assert.deepEqual(named.attach, { network: 'apps', names: ['api', 'apihost', 'web'], ip: '10.89.0.9' });
    assert.equal(named.namespaces.net, true);
    assert.throws(() => resolveSpec({ command: ['true'], network: 'none', ports: [{ container: 80 }] }, false), /ports need a bridge network/);
    assert.throws(() => resolveSpec({ command: ['true'], ports: [{ container: 0 }] }, false), /ports\[0\]\.container/);
    assert.throws(() => resolveSpec({ command: ['true'], ports: [{ container: 80, hostIp: 'localhost' }] }, false), /not an IPv4 address/);
    assert.equal(resolveSpec({ command: ['true'], ports: [{ container: 80 }] }, true).network, 'pasta');
    assert.equal(resolveSpec({ command: ['true'], network: 'bridge' }, true).attach, null);
    assert.throws(() => resolveSpec({ command: ['true'], network: 'apps' }, true), /rootless/);
    assert.throws(() => resolveSpec({ command: ['true'], network: 'bad name' }, false), { code: 'ERR_INVALID_SPEC' });
  });

  it('parses -p as docker does', () => {
    assert.deepEqual(parsePublishFlag('80'), { container: 80 });
    assert.deepEqual(parsePublishFlag('8080:80'), { container: 80, host: 8080 });
    assert.deepEqual(parsePublishFlag('0.0.0.0:8080:80/udp'), { container: 80, host: 8080, hostIp: '0.0.0.0', protocol: 'udp' });
    assert.deepEqual(parsePublishFlag('127.0.0.1::80'), { container: 80, hostIp: '127.0.0.1' });
    assert.throws(() => parsePublishFlag('80/sctp'), /-p must be/);
  });
});
