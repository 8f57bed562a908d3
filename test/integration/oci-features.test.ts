// corral-oci against runc on the same bundles, for what containerd and podman pass besides the
// lifecycle: linux.sysctl, --preserve-fds, and the hooks of every point. As root only.
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alive, eventually, rootless } from '../helpers.ts';
import { runtime, runtimeWithFds, useBundles } from '../oci-cli.ts';

const RUNTIMES = ['runc', 'corral-oci'] as const;

// corral-oci is root only for now (its rootless mode is not built): the root pass runs these.
if (!rootless) describe('corral-oci: sysctl, --preserve-fds and hooks, against runc', function () {
  const bundles = useBundles('corral-oci-features-');
  const make = bundles.make;
  let dir: string;
  let rootfs: string;
  before(() => {
    [dir, rootfs] = [bundles.dir(), bundles.rootfs()];
  });
  it('features lists the hook points runc does', function () {
    const hooks = (name: 'runc' | 'corral-oci'): string[] => JSON.parse(runtime(name, join(dir, 'features'), 'features').stdout).hooks;
    assert.deepEqual(hooks('corral-oci'), hooks('runc'));
  });

  const host = (key: string): string => readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8');

  for (const name of RUNTIMES) {
    it(`${name}: linux.sysctl is written in the container's own net, ipc and uts namespaces; the host's values stay`, function () {
      const before = ['net.ipv4.ip_forward', 'kernel.shmmax', 'kernel.domainname'].map(host);
      const b = make(['sh', '-c', 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname'], (c) => {
        c.linux.sysctl = { 'net.ipv4.ip_forward': before[0]!.trim() === '1' ? '0' : '1', 'kernel.shmmax': '123456', 'kernel.domainname': 'oci.example' };
      });
      const r = runtime(name, join(dir, `sysctl-${name}`), 'run', '--bundle', b, 's1');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${before[0]!.trim() === '1' ? '0' : '1'}\n123456\noci.example\n`);
      assert.deepEqual(['net.ipv4.ip_forward', 'kernel.shmmax', 'kernel.domainname'].map(host), before);
    });
  }

  it('corral-oci: refuses a sysctl outside the container\'s own namespaces, naming the key, and leaves nothing', function () {
    const cases: [Record<string, string>, (c: any) => void, RegExp][] = [
      [{ 'vm.swappiness': '10' }, () => {}, /"vm.swappiness" is refused: it is not in a separate kernel namespace/],
      [{ 'kernel.pid_max': '4096' }, () => {}, /"kernel.pid_max" is refused/],
      [{ 'net.ipv4.ip_forward': '1' }, (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'network'); }, /host's network namespace/],
      [{ 'net.ipv4.ip_forward': '1' }, (c) => { c.linux.namespaces.find((n: any) => n.type === 'network').path = `/proc/${process.pid}/ns/net`; }, /host's network namespace/],
      [{ 'kernel.shmmax': '1' }, (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'ipc'); }, /host's ipc namespace/],
      [{ 'kernel.hostname': 'x' }, () => {}, /conflicts with the hostname field/],
      [{ 'net.ipv4/../../kernel/pid_max': '1' }, () => {}, /is not a sysctl name/],
    ];
    const root = join(dir, 'sysctl-refused');
    for (const [sysctl, edit, message] of cases) {
      const r = runtime('corral-oci', root, 'create', '--bundle', make(['true'], (c) => { c.linux.sysctl = sysctl; edit(c); }), 'x1');
      assert.equal(r.status, 1, JSON.stringify(sysctl));
      assert.match(r.stderr, message);
      assert.equal(existsSync(join(root, 'x1')), false);
    }
  });

  for (const name of RUNTIMES) {
    it(`${name}: --preserve-fds N passes fds 3..3+N-1 to the process of run, create and exec, and no more`, async function () {
      const root = join(dir, `fds-${name}`);
      const files = ['three', 'four'].map((f) => join(dir, `${name}-${f}`));
      const fds = files.map((f) => openSync(f, 'w'));
      try {
        const write = ['sh', '-c', 'echo run-3 >&3; echo run-4 >&4'];
        const run = runtimeWithFds(fds, name, root, 'run', '--preserve-fds', '2', '--bundle', make(write), 'p1');
        assert.equal(run.status, 0, run.stderr);
        const one = runtimeWithFds(fds, name, root, 'run', '--preserve-fds', '1', '--bundle', make(['sh', '-c', 'echo one-3 >&3; echo one-4 >&4 || exit 9']), 'p2');
        assert.equal(one.status, 9, 'fd 4 is not passed with --preserve-fds 1');
        assert.equal(runtimeWithFds(fds, name, root, 'create', '--preserve-fds', '1', '--bundle', make(['sh', '-c', 'echo created-3 >&3; sleep 100']), 'p3').status, 0);
        try {
          assert.equal(runtime(name, root, 'start', 'p3').status, 0);
          const exec = runtimeWithFds(fds, name, root, 'exec', '--preserve-fds', '2', 'p3', 'sh', '-c', 'echo exec-4 >&4');
          assert.equal(exec.status, 0, exec.stderr);
          assert.ok(await eventually(() => readFileSync(files[0]!, 'utf8').includes('created-3')));
        } finally {
          runtime(name, root, 'delete', '--force', 'p3');
        }
      } finally {
        fds.forEach((fd) => closeSync(fd));
      }
      assert.equal(readFileSync(files[0]!, 'utf8'), 'run-3\none-3\ncreated-3\n');
      assert.equal(readFileSync(files[1]!, 'utf8'), 'run-4\nexec-4\n');
    });
  }

  it('corral-oci: --preserve-fds names an fd that is not open', function () {
    const r = runtime('corral-oci', join(dir, 'fds-closed'), 'run', '--preserve-fds', '40', '--bundle', make(['true']), 'p4');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--preserve-fds 40: fd \d+ is not open \(EBADF\)/);
  });

  for (const name of RUNTIMES) {
    it(`${name}: joins the pid and cgroup namespaces a config names by path (a pod sharing its processes); exec joins them too`, function () {
      const root = join(dir, `pidns-${name}`);
      // runc's spec has no cgroup namespace: the sandbox gets one of its own to share.
      assert.equal(runtime(name, root, 'create', '--bundle', make(['sleep', '100'], (c) => c.linux.namespaces.push({ type: 'cgroup' })), 'sandbox').status, 0);
      try {
        assert.equal(runtime(name, root, 'start', 'sandbox').status, 0);
        const sandbox = JSON.parse(runtime(name, root, 'state', 'sandbox').stdout).pid as number;
        const pidFile = join(dir, `pidns-member-${name}`);
        const member = make(['sleep', '100'], (c) => {
          c.linux.namespaces.find((n: { type: string }) => n.type === 'pid').path = `/proc/${sandbox}/ns/pid`;
          c.linux.namespaces.push({ type: 'cgroup', path: `/proc/${sandbox}/ns/cgroup` });
        });
        const created = runtime(name, root, 'create', '--bundle', member, '--pid-file', pidFile, 'member');
        assert.equal(created.status, 0, created.stderr);
        const pid = Number(readFileSync(pidFile, 'utf8'));
        for (const type of ['pid', 'cgroup']) assert.equal(readlinkSync(`/proc/${pid}/ns/${type}`), readlinkSync(`/proc/${sandbox}/ns/${type}`), type);
        assert.equal(JSON.parse(runtime(name, root, 'state', 'member').stdout).pid, pid);
        assert.equal(runtime(name, root, 'start', 'member').status, 0);
        const exec = runtime(name, root, 'exec', 'member', 'sh', '-c', 'readlink /proc/self/ns/pid; readlink /proc/self/ns/cgroup; tr "\\0" " " < /proc/1/cmdline');
        assert.equal(exec.stdout, `${readlinkSync(`/proc/${sandbox}/ns/pid`)}\n${readlinkSync(`/proc/${sandbox}/ns/cgroup`)}\nsleep 100 `, exec.stderr);
        assert.equal(runtime(name, root, 'delete', '--force', 'member').status, 0);
        assert.ok(!alive(pid));
      } finally {
        for (const id of ['member', 'sandbox']) runtime(name, root, 'delete', '--force', id);
      }
    });
  }

  /** A hook that appends "NAME $X <its stdin>" to log (X from its env, NAME its argv[0]). */
  const logHook = (point: string, log: string, extra: object = {}): object => ({
    path: '/bin/sh', args: [point, '-c', `echo "$0 $X $(cat)" >> ${log}`], env: [`X=env-of-${point}`], ...extra,
  });

  for (const name of RUNTIMES) {
    it(`${name}: hooks run in order with the state on stdin, their argv and env; startContainer inside the container; poststop after delete`, async function () {
      const root = join(dir, `hooks-${name}`);
      const log = join(dir, `hooks-${name}.log`);
      rmSync(join(rootfs, 'start.log'), { force: true });
      const b = make(['sh', '-c', 'echo main >> /start.log; sleep 100'], (c) => {
        c.root.readonly = false;
        c.hooks = {
          prestart: [logHook('prestart', log)], createRuntime: [logHook('createRuntime', log)], createContainer: [{ path: '/bin/true' }],
          startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo "startContainer $X $(cat) $(cat /etc/marker)" >> /start.log'], env: ['X=inside'] }],
          poststart: [logHook('poststart', log)], poststop: [logHook('poststop', log)],
        };
      });
      const pidFile = join(dir, `hooks-pid-${name}`);
      assert.equal(runtime(name, root, 'create', '--bundle', b, '--pid-file', pidFile, 'h1').status, 0);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const start = runtime(name, root, 'start', 'h1');
      assert.equal(start.status, 0, start.stderr);
      assert.ok(await eventually(() => existsSync(join(rootfs, 'start.log')) && readFileSync(join(rootfs, 'start.log'), 'utf8').includes('main')));
      assert.equal(runtime(name, root, 'delete', '--force', 'h1').status, 0);
      const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => {
        const [point, env, ...state] = l.split(' ');
        return { point, env, state: JSON.parse(state.join(' ')) };
      });
      assert.deepEqual(lines.map((l) => [l.point, l.env, l.state.status]), [
        ['prestart', 'env-of-prestart', 'creating'], ['createRuntime', 'env-of-createRuntime', 'creating'],
        // runc 1.1 hands poststart the state it read before the start ("created"); corral-oci the
        // one of that point, as the spec has it.
        ['poststart', 'env-of-poststart', name === 'runc' ? 'created' : 'running'], ['poststop', 'env-of-poststop', 'stopped'],
      ]);
      for (const { state } of lines) {
        assert.equal(state.id, 'h1');
        assert.equal(state.bundle, b);
        if (state.status !== 'stopped') assert.equal(state.pid, pid);
      }
      const inside = readFileSync(join(rootfs, 'start.log'), 'utf8').trim().split('\n');
      assert.equal(inside.length, 2);
      const [point, env, ...rest] = inside[0]!.split(' ');
      assert.deepEqual([point, env, rest.pop()], ['startContainer', 'inside', 'busybox-root'], 'startContainer runs in the container, before its process');
      assert.equal(JSON.parse(rest.join(' ')).status, 'created');
      assert.equal(inside[1], 'main');
    });
  }

  for (const name of RUNTIMES) {
    it(`${name}: a failing createRuntime or createContainer hook fails create and leaves nothing`, function () {
      const root = join(dir, `hook-fail-${name}`);
      for (const point of ['createRuntime', 'createContainer']) {
        const b = make(['true'], (c) => { c.hooks = { [point]: [{ path: '/bin/sh', args: ['sh', '-c', 'cat; echo; readlink /proc/self/ns/pid; exit 3'] }] }; });
        const r = runtime(name, root, 'create', '--bundle', b, 'f1');
        assert.notEqual(r.status, 0, point);
        assert.equal(existsSync(join(root, 'f1')), false);
        assert.equal(existsSync('/sys/fs/cgroup/unified/corral-oci/f1'), false);
        if (name === 'corral-oci') {
          assert.match(r.stderr, new RegExp(`${point} hook 0 \\(/bin/sh\\) exited with status 3: \\{.*"status":"creating"`));
          const ns = /pid:\[\d+\]/.exec(r.stderr)?.[0];
          assert.equal(ns === readlinkSync('/proc/self/ns/pid'), point === 'createRuntime', `${point}: ${r.stderr}`);
        }
      }
    });
  }

  it('corral-oci: a hook past its timeout is killed and fails its step, a failing poststart kills the container, a failing poststop is a warning in the log', async function () {
    const root = join(dir, 'hook-timeout');
    const sleeper = { path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 };
    const slow = runtime('corral-oci', root, 'create', '--bundle', make(['true'], (c) => { c.hooks = { createRuntime: [sleeper] }; }), 't1');
    assert.equal(slow.status, 1);
    assert.match(slow.stderr, /createRuntime hook 0 \(\/bin\/sleep\) ran past its timeout of 1s/);
    assert.equal(existsSync(join(root, 't1')), false);

    for (const [point, hook, message] of [
      ['startContainer', sleeper, /startContainer hook 0 \(\/bin\/sleep\) ran past its timeout of 1s/],
      ['poststart', { path: '/bin/false' }, /poststart hook 0 \(\/bin\/false\) exited with status 1/],
    ] as const) {
      const pidFile = join(dir, `timeout-pid-${point}`);
      assert.equal(runtime('corral-oci', root, 'create', '--pid-file', pidFile, '--bundle', make(['sleep', '100'], (c) => { c.hooks = { [point]: [hook] }; }), 't2').status, 0);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const start = runtime('corral-oci', root, 'start', 't2');
      assert.equal(start.status, 1, point);
      assert.match(start.stderr, message);
      assert.ok(await eventually(() => !alive(pid)), `${point}: the container is killed`);
      assert.equal(JSON.parse(runtime('corral-oci', root, 'state', 't2').stdout).status, 'stopped');
      assert.equal(runtime('corral-oci', root, 'delete', 't2').status, 0);
    }

    const log = join(dir, 'poststop.log');
    const b = make(['true'], (c) => { c.hooks = { poststop: [{ path: '/bin/sh', args: ['sh', '-c', 'echo gone; exit 5'] }] }; });
    const run = runtime('corral-oci', root, '--log', log, '--log-format', 'json', 'run', '--bundle', b, 't3');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /warning: poststop hook 0 \(\/bin\/sh\) exited with status 5: gone/);
    const line = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop()!);
    assert.equal(line.level, 'warning');
    assert.equal(existsSync(join(root, 't3')), false);
  });
});
