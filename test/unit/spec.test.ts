import assert from 'node:assert/strict';
import { resolveSpec, DEFAULT_PATH } from '../../lib/container/spec.ts';
import { capabilityMask, DEFAULT_CAPABILITIES } from '../../lib/container/capabilities.ts';
import { cloneFlags, containerSetupOps } from '../../lib/container/setup.ts';
import { CLONE } from '../../lib/sys/constants.ts';

describe('container spec', () => {
  it('fills in the defaults', () => {
    const s = resolveSpec({ command: ['true'] }, false);
    assert.match(s.id, /^[0-9a-f]{12}$/);
    assert.equal(s.hostname, s.id);
    assert.deepEqual(s.env, { PATH: DEFAULT_PATH });
    assert.equal(s.cwd, '/');
    assert.equal(s.rootfs, null);
    assert.equal(s.network, 'none');
    assert.equal(s.stdio, 'pipe');
    assert.deepEqual(s.namespaces, { pid: true, mount: true, uts: true, ipc: true, net: true, cgroup: true, user: false });
    assert.equal(resolveSpec({ command: ['true'] }, true).namespaces.user, true);
  });

  it('checks dns, dnsSearch, dnsOptions and extraHosts (absent: the host\'s, none)', () => {
    const plain = resolveSpec({ command: ['true'] }, false);
    assert.deepEqual(plain.dns, { servers: null, search: null, options: null });
    assert.deepEqual(plain.extraHosts, []);
    const set = resolveSpec({ command: ['true'], dns: ['10.0.0.53', '::1'], dnsSearch: ['corp.test', 'a-b.example.'], dnsOptions: ['ndots:2'], extraHosts: { db: '10.0.0.7', 'v6.test': 'fd00::7' } }, false);
    assert.deepEqual(set.dns, { servers: ['10.0.0.53', '::1'], search: ['corp.test', 'a-b.example.'], options: ['ndots:2'] });
    assert.deepEqual(set.extraHosts, [{ ip: '10.0.0.7', names: ['db'] }, { ip: 'fd00::7', names: ['v6.test'] }]);
    // host-gateway stays symbolic until the network is known (its gateway, pasta's, 127.0.0.1 on 'host').
    assert.deepEqual(resolveSpec({ command: ['true'], network: 'bridge', extraHosts: { gw: 'host-gateway' } }, false).extraHosts, [{ ip: 'host-gateway', names: ['gw'] }]);
    const bad: [object, RegExp][] = [
      [{ dns: '10.0.0.53' }, /dns must be an array of IP addresses/],
      [{ dns: ['dns.example'] }, /dns must be an array of IP addresses/],
      [{ dnsSearch: ['has space'] }, /dnsSearch must be an array of domain names/],
      [{ dnsOptions: ['two words'] }, /dnsOptions must be an array of resolver options/],
      [{ extraHosts: ['db:10.0.0.7'] }, /extraHosts must be an object/],
      [{ extraHosts: { 'bad name': '10.0.0.7' } }, /extraHosts name 'bad name' is not a host name/],
      [{ extraHosts: { db: '10.0.0' } }, /extraHosts\.db must be an IP address or 'host-gateway'/],
      [{ extraHosts: { gw: 'host-gateway' } }, /extraHosts\.gw: host-gateway needs a network/],
      [{ dns: ['10.0.0.53'], namespaces: { mount: false } }, /need the mount namespace/],
    ];
    for (const [extra, message] of bad) assert.throws(() => resolveSpec({ command: ['true'], ...extra } as never, false), { code: 'ERR_INVALID_SPEC', message });
  });

  it('maps namespaces to clone flags', () => {
    const all = cloneFlags(resolveSpec({ command: ['true'] }, true));
    assert.equal(all, CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC | CLONE.NEWNET | CLONE.NEWCGROUP);
    const hostNet = cloneFlags(resolveSpec({ command: ['true'], network: 'host', namespaces: { ipc: false } }, false));
    assert.equal(hostNet & CLONE.NEWNET, 0n);
    assert.equal(hostNet & CLONE.NEWIPC, 0n);
    assert.equal(hostNet & CLONE.NEWUSER, 0n);
  });

  it('rejects contradictions and impossible requests', () => {
    assert.throws(() => resolveSpec({ command: ['true'], network: 'host', namespaces: { net: true } }, false), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['true'], namespaces: { user: false } }, true), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['true'], rootfs: '/', namespaces: { mount: false } }, false), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['true'], id: '../x' }, false), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['a\0b'] }, false), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['true'], env: { 'A=B': 'x' } }, false), { code: 'ERR_INVALID_SPEC' });
    assert.throws(() => resolveSpec({ command: ['true'], cwd: 'tmp' }, false), { code: 'ERR_INVALID_SPEC' });
  });

  it("computes capability masks from Docker's default set", () => {
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    assert.equal(capabilityMask(undefined), 0xa80425fbn);
    assert.equal(capabilityMask({ drop: ['ALL'], add: ['CAP_KILL'] }), 1n << 5n);
    assert.ok(capabilityMask('all') > 0xffffffffn);
  });

  it('plans setup steps in a safe order: user namespace, die-with-parent, filesystem, then identity', () => {
    const ops = containerSetupOps(resolveSpec({ command: ['true'], user: { uid: 0, gid: 0 } }, true), { ownCgroup: false, layer: null, image: null, mounts: [], hostEntries: null, ownFiles: [] });
    const order = ops.map((o) => o.name);
    /** Where the first op of that name is; a missing op fails the test instead of counting as -1. */
    const at = (name: string): number => {
      const i = order.indexOf(name as (typeof order)[number]);
      assert.ok(i >= 0, `the plan has no ${name} op: ${order.join(' ')}`);
      return i;
    };
    assert.equal(order[0], 'USERNS_MAPS');
    assert.ok(at('PRCTL') < at('MOUNT'));
    assert.ok(at('MOUNT') < at('PIVOT_ROOT'));
    const proc = ops.findIndex((o) => o.step === 'mount proc on /proc');
    assert.ok(proc >= 0 && proc < at('PIVOT_ROOT'), 'proc is mounted before pivot_root (needed without privileges)');
    assert.ok(at('PIVOT_ROOT') < at('CLOSE_SLOTS'), 'the setup fds are closed once the root is entered');
    assert.ok(at('CLOSE_SLOTS') < at('CHDIR_IN_ROOT'), 'and before the working directory is resolved');
    assert.ok(at('CHDIR_IN_ROOT') < at('CHECK_CWD'));
    assert.ok(at('PIVOT_ROOT') < at('CAPBSET_LIMIT'));
    assert.ok(at('CAPBSET_LIMIT') < at('SETRESUID'));
    assert.ok(at('SETRESUID') < at('CAPSET'));
    for (const op of ops) assert.ok(op.step.length > 0 && op.syscall.length > 0);
  });
});
