// The hostile-container suite: escape routes from the CVE history of runc, crun and bubblewrap,
// each tried from inside a container with default settings, as root and as uid 65534.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findV2Mount } from '../../lib/cgroup/hierarchy.ts';
import { Runtime, type ContainerSpec } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const probeSource = fileURLToPath(new URL('../fixtures/probe.c', import.meta.url));

describe(`hostile containers: the defaults hold (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  const rt = new Runtime({ cgroupParent: false });
  /** Runs the probe with default settings (plus extra) and returns what it printed. */
  const probe = async (args: string[], extra: Partial<ContainerSpec> = {}): Promise<string> => {
    const r = await rt.run({ command: ['/bin/probe', ...args], rootfs: root, ...extra });
    assert.equal(r.exitCode, 0, `probe ${args.join(' ')}: ${r.stderr.toString()}`);
    return r.stdout.toString().trim();
  };

  before(function () {
    this.timeout(60_000);
    root = makeBusyboxRoot();
    execFileSync('cc', ['-static', '-O2', '-o', join(root, 'bin/probe'), probeSource]);
    copyFileSync(join(root, 'bin/probe'), join(root, 'bin/probe-suid'));
    chmodSync(join(root, 'bin/probe-suid'), 0o4755);
  });
  after(() => rmRoot(root));

  it('cannot load a kernel module', async () => {
    assert.equal(await probe(['load-module']), 'EPERM');
  });

  it('cannot mount a new proc', async () => {
    assert.equal(await probe(['mount-proc']), 'EPERM');
  });

  it('cannot unshare a user namespace to remount', async () => {
    assert.equal(await probe(['unshare-userns']), 'EPERM');
  });

  it('cannot use the kernel keyring (keyctl)', async () => {
    assert.equal(await probe(['keyctl']), 'EPERM');
  });

  it('cannot ptrace a process outside', async () => {
    // The host's pid means nothing inside the PID namespace, and ptrace is not allowed anyway.
    assert.match(await probe(['ptrace', String(process.pid)]), /^(EPERM|ESRCH)$/);
    assert.equal(await probe(['ptrace', '1']), 'EPERM');
  });

  it('cannot read /proc/kcore or /proc/keys', async () => {
    for (const path of ['/proc/kcore', '/proc/keys', '/proc/timer_list']) {
      assert.match(await probe(['read', path]), /^(read 0|ENOENT)$/, path);
    }
  });

  it('cannot reach /proc/sysrq-trigger (masked with /dev/null) or write /proc/sys', async () => {
    // Kernels without magic SysRq have no such file: then there is nothing to reach.
    assert.equal(await probe(['stat-dev', '/proc/sysrq-trigger']), existsSync('/proc/sysrq-trigger') ? 'char 1:3' : 'ENOENT');
    // As root the read-only bind answers (EROFS); rootless the file's owner is not even mapped.
    assert.equal(await probe(['write', '/proc/sys/kernel/hostname', 'pwned']), rootless ? 'EACCES' : 'EROFS');
    const mounts = await rt.run({ command: ['cat', '/proc/self/mountinfo'], rootfs: root });
    const procSys = mounts.stdout.toString().split('\n').find((l) => l.split(' ')[4] === '/proc/sys');
    assert.ok(procSys, 'no mount on /proc/sys');
    assert.match(procSys.split(' ')[5]!, /^ro,/);
  });

  it('cannot write /sys', async () => {
    const targets = ['/sys/kernel/uevent_helper', '/sys/kernel/profiling', '/sys/power/state'].filter((p) => existsSync(p));
    assert.ok(targets.length > 0, 'no writable sysfs attribute to try on this kernel');
    for (const target of targets) assert.equal(await probe(['write', target, '1']), 'EROFS', target);
  });

  it("cannot write to a cgroup file of the host", async () => {
    const mount = findV2Mount()!;
    assert.match(await probe(['write', `${mount}/cgroup.procs`, '1']), /^(EROFS|ENOENT)$/);
    const onHostRoot = await rt.run({ command: ['sh', '-c', `echo 1 > ${mount}/cgroup.subtree_control`] });
    assert.notEqual(onHostRoot.exitCode, 0);
  });

  it('TIOCSTI cannot push input into the terminal (CVE-2017-5226, bubblewrap)', async () => {
    assert.equal(await probe(['tiocsti']), 'EPERM');
    // and the container is in its own session, with no controlling terminal to push into
    const r = await rt.run({ command: ['sh', '-c', 'ps -o pid,sid | tail -n +2 | head -1; cat /dev/tty 2>&1'], rootfs: root });
    assert.match(r.stdout.toString(), /^\s*1\s+1\n/);
    assert.match(r.stdout.toString(), /No such device or address/);
  });

  it('sees only fds 0, 1 and 2', async () => {
    assert.equal(await probe(['fds']), '0 1 2');
    const c = await rt.create({ command: ['/bin/probe', 'fds'], rootfs: root });
    const out: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    await c.start();
    await c.wait();
    await c.remove();
    assert.equal(Buffer.concat(out).toString().trim(), '0 1 2');
  });

  it('CVE-2024-21626: no leaked fd lets the working directory escape the root', async () => {
    // Every inherited fd is closed before exec, so /proc/self/fd/N cannot lead to a host directory.
    assert.equal(await probe(['cwd'], { cwd: '/tmp' }), '/tmp');
    const escape = await rt.run({ command: ['sh', '-c', 'for fd in /proc/self/fd/*; do cd $fd 2>/dev/null && pwd; done; true'], rootfs: root });
    assert.doesNotMatch(escape.stdout.toString(), /^\/(?!proc)/m);
  });

  it('a setuid binary gains no privilege (no_new_privs)', async () => {
    assert.match(await probe(['read', '/proc/self/status']), /read \d+/);
    const status = await rt.run({ command: ['grep', 'NoNewPrivs', '/proc/self/status'], rootfs: root });
    assert.match(status.stdout.toString(), /NoNewPrivs:\s+1/);
    if (!rootless) {
      // uid 1000 runs a setuid-root copy of the probe: its effective uid stays 1000.
      assert.equal(await probe(['ids'], { command: ['/bin/probe-suid', 'ids'], user: { uid: 1000, gid: 1000 } } as Partial<ContainerSpec>), 'uid=1000 euid=1000');
      const without = await probe(['ids'], { command: ['/bin/probe-suid', 'ids'], user: { uid: 1000, gid: 1000 }, noNewPrivileges: false } as Partial<ContainerSpec>);
      assert.equal(without, 'uid=1000 euid=0', 'without no_new_privs the setuid bit works, so the default is what blocks it');
    }
  });

  it('with SYS_ADMIN and seccomp unconfined the same mount works: the defaults are what block it', async () => {
    assert.equal(await probe(['mount-proc'], { capabilities: { add: ['SYS_ADMIN'] }, seccomp: 'unconfined' }), 'ok');
    assert.equal(await probe(['keyctl'], { seccomp: 'unconfined' }), 'ok');
    assert.equal(await probe(['tiocsti'], { seccomp: 'unconfined' }), 'ENOTTY');
  });

  it('applies rlimits and oomScoreAdj, and rejects bad ones', async () => {
    const r = await rt.run({ command: ['sh', '-c', 'ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj'], rootfs: root, rlimits: { nofile: [64, 128] }, oomScoreAdj: 300 });
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['64', '128', '300']);
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, rlimits: { files: 1 } as never }), { code: 'ERR_INVALID_SPEC', message: /unknown rlimit 'files'/ });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, rlimits: { nofile: [10, 5] } }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, oomScoreAdj: 5000 }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(rt.run({ command: ['true'], rootfs: root, seccomp: { defaultAction: 'SCMP_ACT_NOPE' } as never }), { code: 'ERR_INVALID_SECCOMP' });
  });

  it('takes a seccomp profile in Docker format', async () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW' as const, syscalls: [{ names: ['mkdirat', 'mkdir'], action: 'SCMP_ACT_ERRNO' as const, errnoRet: 13 }] };
    const r = await rt.run({ command: ['sh', '-c', 'mkdir /tmp/x 2>&1; echo $?'], rootfs: root, seccomp: profile });
    assert.match(r.stdout.toString(), /Permission denied/);
  });
});
