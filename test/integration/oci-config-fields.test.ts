// corral-oci against runc on config fields besides the lifecycle: mount options (ro, rro, nosuid,
// noexec, a tmpfs's atime), domainname and a LINUX personality are honoured as runc does; the fields
// corral cannot honour are refused by name and leave nothing. As root only.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootless } from '../helpers.ts';
import { runtime, useBundles } from '../oci-cli.ts';

const RUNTIMES = ['runc', 'corral-oci'] as const;

// corral-oci is root only for now (its rootless mode is not built): the root pass runs these.
if (!rootless) describe('corral-oci: config fields honoured as runc does, or refused by name', function () {
  const bundles = useBundles('corral-oci-fields-');
  const make = bundles.make;
  let dir: string;
  let rootfs: string;
  let shared: string;
  before(() => {
    [dir, rootfs] = [bundles.dir(), bundles.rootfs()];
    for (const d of ['data', 'ro', 'scratch', 'run']) mkdirSync(join(rootfs, d));
    shared = join(dir, 'shared');
    mkdirSync(shared);
  });

  // The per-mount options of /proc/self/mountinfo (field 6) for the mounts the config asked for.
  const showMounts = 'for m in /data /ro /scratch /run; do awk -v m=$m \'$5 == m { print m, $6 }\' /proc/self/mountinfo; done';
  it('bind and tmpfs mount options (ro, rro, nosuid, noexec, strictatime, noatime) as the mounts\' flags, as runc sets them', function () {
    const out: Record<string, string> = {};
    for (const name of RUNTIMES) {
      const b = make(['sh', '-c', showMounts], (c) => {
        c.mounts.push(
          { destination: '/data', type: 'bind', source: shared, options: ['rbind', 'nosuid', 'noexec', 'rprivate'] },
          { destination: '/ro', type: 'bind', source: shared, options: ['rbind', 'rro'] },
          { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['rprivate', 'nosuid', 'noexec', 'noatime', 'mode=755'] },
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        );
      });
      const r = runtime(name, join(dir, `mounts-${name}`), 'run', '--bundle', b, 'm1');
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      out[name] = r.stdout;
    }
    assert.equal(out.runc, '/data rw,nosuid,noexec,relatime\n/ro ro,relatime\n/scratch rw,nosuid,noexec,noatime\n/run rw,nosuid\n');
    // corral makes every bind and tmpfs nodev (test/security/device-nodes-nodev.test.ts) besides (a tmpfs nosuid too, so 'suid' on one is refused).
    assert.equal(out['corral-oci']!.replaceAll(',nodev', ''), out.runc);
  });

  it('corral-oci: domainname is the container\'s, in its own UTS namespace (runc 1.1 leaves it out), and a LINUX personality is taken', function () {
    const b = make(['sh', '-c', 'cat /proc/sys/kernel/domainname /proc/self/personality'], (c) => {
      c.domainname = 'corral.example';
      c.linux.personality = { domain: 'LINUX' };
    });
    const before = readFileSync('/proc/sys/kernel/domainname', 'utf8');
    const r = runtime('corral-oci', join(dir, 'domain'), 'run', '--bundle', b, 'd1');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'corral.example\n00000000\n');
    assert.equal(readFileSync('/proc/sys/kernel/domainname', 'utf8'), before, 'the host\'s domainname stays');
  });
  it('corral-oci: refuses what it cannot honour, naming the field, and leaves nothing', function () {
    const bind = (options: string[], more: object = {}) => (c: any) => { c.mounts.push({ destination: '/data', type: 'bind', source: shared, options, ...more }); };
    const cases: [string, (c: any) => void, RegExp][] = [
      ['idmap', bind(['rbind'], { uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] }), /mounts\[\d+\]\.uidMappings is not supported by corral-oci: idmapped mounts/],
      ['idmap option', bind(['rbind', 'idmap']), /mounts\[\d+\]\.options\[1\] is not supported by corral-oci: 'idmap'/],
      ['dev', bind(['rbind', 'dev']), /mounts\[\d+\]\.options\[1\] is not supported by corral-oci: 'dev' on the bind mount at \/data/],
      ['tmpfs ro', (c) => { c.mounts.push({ destination: '/scratch', type: 'tmpfs', options: ['ro'] }); }, /mounts\[\d+\]\.options\[0\] is not supported by corral-oci: 'ro' on the tmpfs/],
      ['tmpfs shared', (c) => { c.mounts.push({ destination: '/scratch', type: 'tmpfs', options: ['rshared'] }); }, /'rshared' on the tmpfs/],
      ['tmpcopyup', (c) => { c.mounts.push({ destination: '/scratch', type: 'tmpfs', options: ['tmpcopyup'] }); }, /'tmpcopyup' on the tmpfs/],
      ['tmpfs suid', (c) => { c.mounts.push({ destination: '/scratch', type: 'tmpfs', options: ['suid'] }); }, /'suid' on the tmpfs/],
      ['overlay', (c) => { c.mounts.push({ destination: '/scratch', type: 'overlay', source: 'overlay', options: [] }); }, /a overlay mount at \/scratch/],
      ['capability set', (c) => { c.process.capabilities.bounds = ['CAP_KILL']; }, /process\.capabilities\.bounds is not supported/],
      ['personality', (c) => { c.linux.personality = { domain: 'LINUX32' }; }, /linux\.personality\.domain is not supported by corral-oci: 'LINUX32'/],
      ['personality flags', (c) => { c.linux.personality = { domain: 'LINUX', flags: ['ADDR_NO_RANDOMIZE'] }; }, /linux\.personality\.flags is not supported/],
      ['domainname', (c) => { c.domainname = 'a'; c.linux.sysctl = { 'kernel.domainname': 'b' }; }, /domainname is not supported by corral-oci: it conflicts with linux.sysctl/],
      ['domainname no uts', (c) => { c.domainname = 'a'; c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'uts'); }, /"kernel.domainname" is refused/],
      ['rootfsPropagation', (c) => { c.linux.rootfsPropagation = 'shared'; }, /linux\.rootfsPropagation is not supported/],
      ['intelRdt', (c) => { c.linux.intelRdt = { closID: 'x' }; }, /linux\.intelRdt is not supported/],
      ['root key', (c) => { c.root.idmap = true; }, /root\.idmap is not supported/],
      ['hugetlb', (c) => { c.linux.resources.hugepageLimits = [{ pageSize: '2MB', limit: 1 }]; }, /linux\.resources\.hugepageLimits is not supported/],
      ['io', (c) => { c.linux.resources.blockIO = { weight: 10 }; }, /linux\.resources\.blockIO is not supported/],
      ['unified', (c) => { c.linux.resources.unified = { 'memory.high': '1M' }; }, /linux\.resources\.unified is not supported/],
      ['memory', (c) => { c.linux.resources.memory = { reservation: 1 }; }, /linux\.resources\.memory\.reservation is not supported/],
      ['linux.devices', (c) => { c.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]; }, /linux\.devices is not supported/],
      ['user namespace', (c) => { c.linux.namespaces.push({ type: 'user' }); }, /linux\.namespaces\[\d+\] is not supported by corral-oci: user namespaces/],
      ['mount by path', (c) => { c.linux.namespaces.find((n: any) => n.type === 'mount').path = '/proc/1/ns/mnt'; }, /linux\.namespaces\[\d+\]\.path is not supported by corral-oci: joining a mount namespace .*moving the root of every process/],
      ['user by path', (c) => { c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' }); }, /joining a user namespace .*owned by it/],
      ['oomScoreAdj', (c) => { c.process.oomScoreAdj = 'high'; }, /oomScoreAdj/],
      ['apparmor', (c) => { c.process.apparmorProfile = 'x'; }, /process\.apparmorProfile is not supported/],
      ['seccomp flags', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'] }; }, /seccomp profile: .*flags/],
      ['seccomp listener', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock' }; }, /seccomp profile: .*listenerPath/],
    ];
    const root = join(dir, 'refused');
    for (const [what, edit, message] of cases) {
      const r = runtime('corral-oci', root, 'create', '--bundle', make(['true'], edit), 'x1');
      assert.equal(r.status, 1, what);
      assert.match(r.stderr, message, what);
      assert.equal(existsSync(join(root, 'x1')), false, what);
    }
  });
});
