import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { run } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless, singleIdRootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

describe(`isolation (${rootless ? 'rootless, uid ' + process.getuid!() : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('runs the command as PID 1 that sees only its own processes', async () => {
    const r = await run({ command: sh('echo $$; ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "'), rootfs: root });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const [pid, pids] = r.stdout.toString().split('\n');
    assert.equal(pid, '1');
    // sh (1), and the pipeline's ls/grep/sort/tr: nothing of the host's
    assert.ok(pids!.trim().split(' ').every((p) => Number(p) < 10), pids);
  });

  it('gives the container its own hostname', async () => {
    const r = await run({ command: ['hostname'], rootfs: root, hostname: 'corral-box' });
    assert.equal(r.stdout.toString().trim(), 'corral-box');
    assert.notEqual(hostname(), 'corral-box');
  });

  it('shows the rootfs, not the host files', async () => {
    const r = await run({ command: sh('cat /etc/marker; ls /'), rootfs: root });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const out = r.stdout.toString();
    assert.match(out, /^busybox-root\n/);
    assert.doesNotMatch(out, /\bwork\b|\busr\b/);
  });

  it('provides /proc, a minimal /dev and /tmp', async () => {
    const r = await run({
      command: sh('ls /dev | tr "\\n" " "; echo; test -r /proc/self/status && echo proc; echo x > /dev/null && head -c 4 /dev/zero | wc -c; echo t > /tmp/t && cat /tmp/t; test -d /dev/pts && test -d /dev/shm && echo ptsshm'),
      rootfs: root,
    });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const [devs, proc, zeros, tmp, ptsshm] = r.stdout.toString().split('\n');
    for (const dev of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'ptmx']) {
      assert.ok(devs!.split(' ').includes(dev), `/dev/${dev} missing: ${devs}`);
    }
    assert.equal(proc, 'proc');
    assert.equal(zeros!.trim(), '4');
    assert.equal(tmp, 't');
    assert.equal(ptsshm, 'ptsshm');
  });

  it('can allocate a pty in its own devpts', async () => {
    const r = await run({ command: sh('exec 3<>/dev/ptmx && ls /dev/pts | grep -c "^[0-9]"'), rootfs: root });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().trim(), '1');
  });

  it('without a rootfs gets the host root read-only, its own /proc and /dev, and an empty writable /tmp', async () => {
    const r = await run({ command: sh('test -x /usr/bin/env && echo hostroot; touch /etc/corral-probe 2>/dev/null || echo readonly; ls -A /tmp | wc -l; echo ok > /tmp/x && cat /tmp/x; echo $$') });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['hostroot', 'readonly', '0', 'ok', '1']);
  });

  it(rootless ? 'maps the calling user to root in a user namespace' : 'runs as real root without a user namespace', async () => {
    const r = await run({ command: sh('id -u; cat /proc/self/uid_map'), rootfs: root });
    const [uid, map] = r.stdout.toString().split('\n');
    assert.equal(uid, '0');
    const fields = map!.trim().split(/\s+/).map(Number);
    if (rootless) assert.deepEqual(fields, [0, process.getuid!(), 1]);
    else assert.deepEqual(fields, [0, 0, 4294967295]);
  });

  it('has its own network namespace with only lo, up, by default', async () => {
    const r = await run({ command: sh('ls /sys/class/net; echo --; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'), rootfs: root });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['lo', '--', 'lo']);
    const ping = await run({ command: sh('nc -l -p 7777 -w 2 & sleep 0.1; echo hi | nc -w 1 127.0.0.1 7777 && echo sent'), rootfs: root });
    assert.match(ping.stdout.toString(), /sent/, ping.stderr.toString());
  });

  it("shares the host's network with network: 'host'", async () => {
    const r = await run({ command: sh('cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | sort'), rootfs: root, network: 'host' });
    const hostIfs = (await import('node:fs')).readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    assert.deepEqual(r.stdout.toString().trim().split('\n'), hostIfs);
  });

  it('applies env, cwd and user', async () => {
    const r = await run({
      command: sh('echo $FOO; pwd; id -u; id -g'),
      rootfs: root,
      env: { PATH: '/bin', FOO: 'bar' },
      cwd: '/tmp',
      // Another user needs ids beyond the caller's: as root, or rootless with a subordinate range.
      ...(singleIdRootless ? {} : { user: { uid: 1000, gid: 1000 } }),
    });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['bar', '/tmp', singleIdRootless ? '0' : '1000', singleIdRootless ? '0' : '1000']);
  });

  it("keeps only Docker's default capabilities, none inheritable or ambient", async () => {
    const r = await run({ command: sh('grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status'), rootfs: root });
    const caps = Object.fromEntries(r.stdout.toString().trim().split('\n').map((l) => l.split(/:\s+/) as [string, string]));
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    const docker = '00000000a80425fb';
    assert.deepEqual(caps, { CapInh: '0000000000000000', CapPrm: docker, CapEff: docker, CapBnd: docker, CapAmb: '0000000000000000' });
    const added = await run({ command: sh('grep CapEff /proc/self/status'), rootfs: root, capabilities: { add: ['SYS_ADMIN'], drop: ['NET_RAW'] } });
    assert.match(added.stdout.toString(), /CapEff:\s+00000000a82405fb/);
    await assert.rejects(run({ command: ['true'], rootfs: root, capabilities: { add: ['FLY'] } }), { code: 'ERR_INVALID_SPEC' });
  });

  it('can turn single namespaces off', async () => {
    const r = await run({ command: sh('echo $$'), rootfs: root, namespaces: { pid: false } });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.notEqual(r.stdout.toString().trim(), '1');
  });
});
