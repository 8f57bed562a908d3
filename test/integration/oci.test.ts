// corral-oci against runc on the same bundles: lifecycle, state JSON, exit codes, signals, the json
// error log, what delete leaves behind, and the config.json fields it refuses. As root only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, eventually, makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { availableControllers, findV2Mount } from '../../lib/cgroup/hierarchy.ts';
import { bundle, removeRuntimeOutput, runtime } from '../oci-cli.ts';

// corral-oci is root only for now (its rootless mode is not built): the root pass runs these.
if (!rootless) describe('corral-oci (runc command line) against runc', function () {
  let dir: string;
  let rootfs: string;
  before(() => {
    assert.equal(spawnSync('runc', ['--version']).status, 0, 'runc is the peer these tests compare with (apt-get install runc)');
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-'));
    rootfs = makeBusyboxRoot();
  });
  after(() => {
    if (dir) rmRoot(dir);
    removeRuntimeOutput();
    if (rootfs) rmRoot(rootfs);
  });
  const withRoot = (b: string): string => {
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    config.root.path = rootfs;
    writeFileSync(join(b, 'config.json'), JSON.stringify(config));
    return b;
  };

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: create blocks the init until start, state follows created → running → stopped, delete leaves nothing`, async function () {
      const root = join(dir, `root-${name}`);
      const b = withRoot(bundle(dir, ['sh', '-c', 'read x < /dev/null; sleep 2; exit 7']));
      const pidFile = join(dir, `pid-${name}`);
      const made = runtime(name, root, 'create', '--bundle', b, '--pid-file', pidFile, 'c1');
      assert.equal(made.status, 0, made.stderr);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const created = JSON.parse(runtime(name, root, 'state', 'c1').stdout);
      assert.deepEqual(Object.keys(created).sort(), ['bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
      assert.equal(created.status, 'created');
      assert.equal(created.pid, pid);
      assert.equal(created.bundle, b);
      assert.ok(alive(pid), 'the init outlives create');
      assert.equal(runtime(name, root, 'start', 'c1').status, 0);
      assert.equal(JSON.parse(runtime(name, root, 'state', 'c1').stdout).status, 'running');
      assert.notEqual(runtime(name, root, 'delete', 'c1').status, 0, 'a running container is not deleted without --force');
      assert.ok(await eventually(() => JSON.parse(runtime(name, root, 'state', 'c1').stdout).status === 'stopped', 8000));
      assert.equal(runtime(name, root, 'delete', 'c1').status, 0);
      assert.equal(existsSync(join(root, 'c1')), false);
      assert.equal(existsSync('/sys/fs/cgroup/unified/corral-oci/c1'), false);
      assert.notEqual(runtime(name, root, 'state', 'c1').status, 0);
    });

    it(`${name}: run gives the exit code, kill takes names and numbers`, function () {
      const root = join(dir, `run-${name}`);
      const b = withRoot(bundle(dir, ['sh', '-c', 'echo out-$(hostname); exit 3']));
      const r = runtime(name, root, 'run', '--bundle', b, 'r1');
      assert.equal(r.status, 3);
      assert.equal(r.stdout, 'out-runc\n');
      for (const signal of ['KILL', 'SIGTERM', '15']) {
        const s = withRoot(bundle(dir, ['sleep', '100']));
        assert.equal(runtime(name, root, 'create', '--bundle', s, 'k1').status, 0);
        assert.equal(runtime(name, root, 'start', 'k1').status, 0);
        assert.equal(runtime(name, root, 'kill', 'k1', signal).status, 0, signal);
        const pid = JSON.parse(runtime(name, root, 'state', 'k1').stdout).pid as number;
        assert.equal(runtime(name, root, 'delete', '--force', 'k1').status, 0);
        assert.ok(pid === 0 || !alive(pid));
      }
    });

    it(`${name}: errors go to the json log as a "level":"error" line`, function () {
      const log = join(dir, `log-${name}`);
      const r = runtime(name, join(dir, 'empty'), '--log', log, '--log-format', 'json', 'state', 'missing');
      assert.notEqual(r.status, 0);
      const last = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop()!);
      assert.equal(last.level, 'error');
      assert.match(last.msg, /does not exist/);
    });
  }

  it('the native front end and Node agree: the same state JSON when created, running, paused and stopped, the same errors', async function () {
    const root = join(dir, 'agree');
    const b = withRoot(bundle(dir, ['sleep', '100'], (c) => { c.annotations = { 'org.example/a': 'x "quoted"\nline' }; }));
    assert.equal(runtime('corral-oci', root, 'create', '--bundle', b, 'a1').status, 0);
    try {
      const same = (status: string): void => {
        const ours = runtime('corral-oci', root, 'state', 'a1');
        assert.equal(ours.stdout, runtime('node', root, 'state', 'a1').stdout);
        assert.equal(JSON.parse(ours.stdout).status, status);
      };
      same('created');
      assert.equal(runtime('corral-oci', root, 'start', 'a1').status, 0);
      same('running');
      assert.equal(runtime('corral-oci', root, 'pause', 'a1').status, 0);
      same('paused');
      assert.equal(runtime('corral-oci', root, 'resume', 'a1').status, 0);
      assert.match(runtime('corral-oci', root, 'start', 'a1').stderr, /cannot start a container that is running/, 'an error is Node\'s');
      assert.match(runtime('corral-oci', root, 'kill', 'a1', 'NOSUCH').stderr, /unknown signal "NOSUCH"/);
      assert.match(runtime('corral-oci', root, 'delete', 'a1').stderr, /stop it first or use --force/);
      const pid = JSON.parse(runtime('corral-oci', root, 'state', 'a1').stdout).pid as number;
      assert.equal(runtime('corral-oci', root, 'kill', 'a1', 'sigkill').status, 0);
      assert.ok(await eventually(() => !alive(pid), 5000));
      same('stopped');
      assert.match(runtime('corral-oci', root, 'kill', 'a1', '9').stderr, /container not running/);
    } finally {
      assert.equal(runtime('corral-oci', root, 'delete', '--force', 'a1').status, 0);
    }
    assert.equal(existsSync(join(root, 'a1')), false);
    assert.equal(existsSync('/sys/fs/cgroup/unified/corral-oci/a1'), false);
    assert.match(runtime('corral-oci', root, 'state', 'a1').stderr, /container "a1" does not exist/);
  });

  it('maps the config: readonly root, hostname, env, cwd, user, rlimits, capabilities (the spec\'s ambient ones not raised, as runc 1.1), tmpfs and bind mounts, pids limit', function () {
    const b = withRoot(bundle(dir, ['sh', '-c', 'touch /x 2>/dev/null && echo rw || echo ro; hostname; echo $FOO; pwd; id -u; id -g; ulimit -n; grep -E "^Cap(Bnd|Amb)" /proc/self/status; touch /scratch/f && echo tmpfs-rw; cat /data/marker']));
    writeFileSync(join(b, 'marker'), 'bound\n');
    chmodSync(b, 0o755);
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    Object.assign(config.process, { env: ['PATH=/bin', 'FOO=bar'], cwd: '/tmp', user: { uid: 1000, gid: 1001 }, rlimits: [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 321 }] });
    config.hostname = 'mapped';
    config.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
    config.mounts.push({ destination: '/data', type: 'bind', source: b, options: ['rbind', 'ro'] });
    writeFileSync(join(b, 'config.json'), JSON.stringify(config));
    const expected = 'ro\nmapped\nbar\n/tmp\n1000\n1001\n321\nCapBnd:\t0000000020000420\nCapAmb:\t0000000000000000\ntmpfs-rw\nbound\n';
    const runc = runtime('runc', join(dir, 'map-runc'), 'run', '--bundle', b, 'm1');
    const ours = runtime('corral-oci', join(dir, 'map-oci'), 'run', '--bundle', b, 'm1');
    assert.equal(runc.stdout, expected, runc.stderr);
    assert.equal(ours.stdout, expected, ours.stderr);
  });

  it('refuses what it cannot map, naming the field', function () {
    const cases: [string, (c: any) => void][] = [
      ['linux.namespaces[4].path', (c) => { assert.equal(c.linux.namespaces[4].type, 'mount'); c.linux.namespaces[4].path = '/proc/self/ns/mnt'; }],
      ['process.apparmorProfile', (c) => { c.process.apparmorProfile = 'docker-default'; }],
      ['linux.sysctl', (c) => { c.linux.sysctl = { 'vm.swappiness': '10' }; }],
      ['mounts[7]', (c) => { c.mounts.push({ destination: '/x', type: 'nfs', source: 'h:/x' }); }],
    ];
    for (const [field, edit] of cases) {
      const b = withRoot(bundle(dir, ['true'], edit));
      const root = join(dir, 'refuse');
      const r = runtime('corral-oci', root, 'create', '--bundle', b, 'x1');
      assert.equal(r.status, 1, field);
      assert.ok(r.stderr.includes(field), `${field}: ${r.stderr}`);
      assert.equal(existsSync(join(root, 'x1')), false);
    }
  });

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: exec (command line, --process --detach --pid-file), ps --format json, list, pause/resume, events --stats, kill --all`, async function () {
      const root = join(dir, `exec-${name}`);
      const b = withRoot(bundle(dir, ['sleep', '100']));
      assert.equal(runtime(name, root, 'create', '--bundle', b, 'e1').status, 0);
      try {
        assert.equal(runtime(name, root, 'start', 'e1').status, 0);
        const init = JSON.parse(runtime(name, root, 'state', 'e1').stdout).pid as number;

        const inside = runtime(name, root, 'exec', 'e1', 'sh', '-c', 'echo in-$(hostname) $(cat /proc/1/cmdline | tr "\\0" " "); exit 4');
        assert.equal(inside.status, 4, inside.stderr);
        assert.equal(inside.stdout, 'in-runc sleep 100\n');

        const processFile = join(dir, `process-${name}.json`);
        writeFileSync(processFile, JSON.stringify({ ...JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')).process, args: ['sleep', '200'] }));
        const pidFile = join(dir, `exec-pid-${name}`);
        const detached = runtime(name, root, 'exec', '--process', processFile, '--detach', '--pid-file', pidFile, 'e1');
        assert.equal(detached.status, 0, detached.stderr);
        const execPid = Number(readFileSync(pidFile, 'utf8'));
        assert.ok(alive(execPid), 'a detached exec outlives the exec command');
        assert.deepEqual((JSON.parse(runtime(name, root, 'ps', '--format', 'json', 'e1').stdout) as number[]).sort(), [init, execPid].sort());
        assert.match(runtime(name, root, 'ps', 'e1').stdout, /^UID +PID/, 'ps prints the host ps table cut to the container');

        const listed = JSON.parse(runtime(name, root, 'list', '--format', 'json').stdout);
        assert.deepEqual(listed.map((c: { id: string; status: string; pid: number }) => [c.id, c.status, c.pid]), [['e1', 'running', init]]);
        assert.equal(runtime(name, root, 'pause', 'e1').status, 0);
        assert.equal(JSON.parse(runtime(name, root, 'state', 'e1').stdout).status, 'paused');
        assert.notEqual(runtime(name, root, 'pause', 'e1').status, 0, 'a paused container is not paused again');
        assert.equal(runtime(name, root, 'resume', 'e1').status, 0);
        assert.equal(JSON.parse(runtime(name, root, 'state', 'e1').stdout).status, 'running');

        const event = JSON.parse(runtime(name, root, 'events', '--stats', 'e1').stdout);
        assert.equal(event.type, 'stats');
        assert.equal(event.id, 'e1');
        assert.equal(typeof event.data.cpu.usage.total, 'number');

        assert.equal(runtime(name, root, 'kill', '--all', 'e1', 'KILL').status, 0);
        assert.ok(await eventually(() => !alive(init) && !alive(execPid), 5000), 'kill --all reached the exec\'d process');
        assert.equal(runtime(name, root, 'delete', 'e1').status, 0);
      } finally {
        // (after a failed assertion: nothing of the container stays for the next test)
        runtime(name, root, 'delete', '--force', 'e1');
      }
      assert.equal(existsSync(join(root, 'e1')), false);
    });
  }

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: exec into a created container: in its root, namespaces and cgroup, the init still held; start goes on; not when paused`, async function () {
      const root = join(dir, `exec-created-${name}`);
      const b = withRoot(bundle(dir, ['sleep', '100']));
      assert.equal(runtime(name, root, 'create', '--bundle', b, 'x1').status, 0);
      try {
        const init = JSON.parse(runtime(name, root, 'state', 'x1').stdout).pid as number;
        const inside = runtime(name, root, 'exec', 'x1', 'sh', '-c', 'echo in-$(hostname); cat /etc/marker; ls /proc | grep -c "^[0-9]"; grep -q sleep /proc/1/cmdline || echo not-started');
        assert.equal(inside.status, 0, inside.stderr);
        // Its own pid namespace: the held init, the shell and its ls and grep.
        assert.equal(inside.stdout, 'in-runc\nbusybox-root\n4\nnot-started\n');
        const pidFile = join(dir, `exec-created-pid-${name}`);
        assert.equal(runtime(name, root, 'exec', '--detach', '--pid-file', pidFile, 'x1', 'sleep', '300').status, 0);
        const execPid = Number(readFileSync(pidFile, 'utf8'));
        assert.equal(JSON.parse(runtime(name, root, 'state', 'x1').stdout).status, 'created', 'exec did not start it');
        assert.equal(runtime(name, root, 'start', 'x1').status, 0);
        assert.ok(await eventually(() => readFileSync(`/proc/${init}/cmdline`, 'utf8') === 'sleep\x00100\x00'), 'start ran the process after the exec');
        assert.equal(runtime(name, root, 'pause', 'x1').status, 0);
        const paused = runtime(name, root, 'exec', 'x1', 'true');
        assert.notEqual(paused.status, 0);
        assert.match(paused.stderr, /paused/);
        assert.equal(runtime(name, root, 'resume', 'x1').status, 0);
        assert.equal(runtime(name, root, 'kill', 'x1', 'KILL').status, 0);
        assert.ok(await eventually(() => !alive(init) && !alive(execPid), 5000), 'the process exec\'d while created goes with the init');
        assert.equal(runtime(name, root, 'delete', 'x1').status, 0);
      } finally {
        runtime(name, root, 'delete', '--force', 'x1');
      }
      assert.equal(existsSync(join(root, 'x1')), false);
    });
  }

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: joins the network, ipc and uts namespaces a config names by path (a pod's sandbox)`, function () {
      const root = join(dir, `join-${name}`);
      const sandbox = withRoot(bundle(dir, ['sleep', '100'], (c) => { c.hostname = 'sandbox'; }));
      assert.equal(runtime(name, root, 'create', '--bundle', sandbox, 'pod').status, 0);
      try {
        const pid = JSON.parse(runtime(name, root, 'state', 'pod').stdout).pid as number;
        assert.ok(pid > 0);
        const member = withRoot(bundle(dir, ['sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname'], (c) => {
          for (const ns of c.linux.namespaces) if (['network', 'ipc', 'uts'].includes(ns.type)) ns.path = `/proc/${pid}/ns/${ns.type === 'network' ? 'net' : ns.type}`;
          c.hostname = 'sandbox';
        }));
        const r = runtime(name, root, 'run', '--bundle', member, 'member');
        assert.equal(r.status, 0, r.stderr);
        const expected = ['net', 'ipc', 'uts'].map((t) => readlinkSync(`/proc/${pid}/ns/${t}`));
        assert.equal(r.stdout, `${expected.join('\n')}\nsandbox\n`);
        // A process exec'd into the member is in the namespaces it joined, not the runtime's.
        assert.equal(runtime(name, root, 'start', 'pod').status, 0);
        const exec = runtime(name, root, 'exec', 'pod', 'sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done');
        assert.equal(exec.stdout, `${expected.join('\n')}\n`, exec.stderr);
        const held = withRoot(bundle(dir, ['sleep', '100'], (c) => {
          for (const ns of c.linux.namespaces) if (['network', 'ipc', 'uts'].includes(ns.type)) ns.path = `/proc/${pid}/ns/${ns.type === 'network' ? 'net' : ns.type}`;
        }));
        assert.equal(runtime(name, root, 'create', '--bundle', held, 'held').status, 0);
        try {
          assert.equal(runtime(name, root, 'start', 'held').status, 0);
          const inMember = runtime(name, root, 'exec', 'held', 'sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done');
          assert.equal(inMember.stdout, `${expected.join('\n')}\n`, inMember.stderr);
        } finally {
          runtime(name, root, 'delete', '--force', 'held');
        }
      } finally {
        runtime(name, root, 'delete', '--force', 'pod');
      }
    });
  }

  it('spec writes a config that runc and corral-oci both run the same way', function () {
    const b = mkdtempSync(join(dir, 'spec-'));
    assert.equal(runtime('corral-oci', join(dir, 'spec-root'), 'spec', '--bundle', b).status, 0);
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    const theirs = bundle(dir, ['true']);
    assert.deepEqual(Object.keys(config).sort(), Object.keys(JSON.parse(readFileSync(join(theirs, 'config.json'), 'utf8'))).sort());
    assert.notEqual(runtime('corral-oci', join(dir, 'spec-root'), 'spec', '--bundle', b).status, 0, 'an existing config.json is not overwritten');
    Object.assign(config.process, { terminal: false, args: ['sh', '-c', 'hostname; grep CapBnd /proc/self/status; touch /x 2>/dev/null || echo read-only'] });
    config.root.path = rootfs;
    writeFileSync(join(b, 'config.json'), JSON.stringify(config));
    const runc = runtime('runc', join(dir, 'spec-runc'), 'run', '--bundle', b, 's1');
    const ours = runtime('corral-oci', join(dir, 'spec-oci'), 'run', '--bundle', b, 's1');
    assert.equal(runc.stdout, 'corral\nCapBnd:\t0000000020000420\nread-only\n', runc.stderr);
    assert.equal(ours.stdout, runc.stdout, ours.stderr);
  });

  it('update sets pids.max where the pids controller is in v2, and names the missing controller where it is not (a hybrid host)', function () {
    const root = join(dir, 'update');
    const b = withRoot(bundle(dir, ['sleep', '100']));
    assert.equal(runtime('corral-oci', root, 'create', '--bundle', b, 'u1').status, 0);
    try {
      const group = '/sys/fs/cgroup/unified/corral-oci/u1';
      const mount = findV2Mount()!;
      const r = runtime('corral-oci', root, 'update', '--pids-limit', '10', 'u1');
      if (availableControllers(mount).has('pids')) {
        assert.equal(r.status, 0, r.stderr);
        assert.equal(readFileSync(join(mount, 'corral-oci/u1/pids.max'), 'utf8').trim(), '10');
      } else {
        assert.equal(r.status, 1);
        assert.match(r.stderr, /cgroup controller 'pids' is not available/);
        assert.ok(existsSync(group));
      }
    } finally {
      assert.equal(runtime('corral-oci', root, 'delete', '--force', 'u1').status, 0);
    }
  });
});
