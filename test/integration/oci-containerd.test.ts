// containerd drives corral-oci: Debian's containerd, started here with its own root, state and
// socket in a temp dir, runs a busybox image imported with `ctr image import` through its runc
// shim (io.containerd.runc.v2) with corral-oci as the runc binary, configured as a node would be
// (`containerd config default` plus the README's Kubernetes snippet, cri plugin on): output and
// exit codes, a terminal (--console-socket), exec, ps, pause/resume, kill, and nothing left
// behind. As root only.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, eventually, mountTable, rmRoot, rootless } from '../helpers.ts';
import { busyboxLayout } from '../image-fixtures.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(repo, 'dist/cli/oci/main.js');
// What the shim runs: the native front end, which execs Node (on PATH) on cli for what it leaves.
const front = join(repo, 'bindings/build/corral-oci');
const IMAGE = 'corral.test/busybox:base';
const V2 = '/sys/fs/cgroup/unified';
/** The README's Kubernetes recipe: its containerd snippet, as written there. */
const README = readFileSync(join(repo, 'README.md'), 'utf8');
const SNIPPET = /For Kubernetes[\s\S]*?```toml\n([\s\S]*?)```/.exec(README)?.[1] ?? '';
const INSTALLED = '/usr/local/bin/corral-oci';

/** A node's containerd config as the README has it made: `containerd config default` with the
 * README's snippet appended; here with its paths (root, state, socket, CNI dirs) in dir, the
 * snapshotters that probe the host off (native instead), and the snippet's BinaryName the build's. */
function nodeConfig(dir: string): string {
  const defaults = spawnSync('containerd', ['config', 'default'], { encoding: 'utf8' });
  assert.equal(defaults.status, 0, defaults.stderr);
  const replace = (text: string, from: string, to: string): string => {
    assert.ok(text.includes(from), `containerd config default has ${from}`);
    return text.replace(from, to);
  };
  let config = defaults.stdout;
  for (const [from, to] of [
    ['root = "/var/lib/containerd"', `root = "${dir}/root"`],
    ['state = "/run/containerd"', `state = "${dir}/state"`],
    ['address = "/run/containerd/containerd.sock"', `address = "${dir}/containerd.sock"`],
    ['conf_dir = "/etc/cni/net.d"', `conf_dir = "${dir}/cni/net.d"`],
    ['bin_dir = "/opt/cni/bin"', `bin_dir = "${dir}/cni/bin"`],
    ['snapshotter = "overlayfs"', 'snapshotter = "native"'],
    ['disabled_plugins = []', `disabled_plugins = ${JSON.stringify(['aufs', 'btrfs', 'zfs', 'devmapper', 'overlayfs'].map((s) => `io.containerd.snapshotter.v1.${s}`).concat(['io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing', 'io.containerd.internal.v1.opt']))}`],
  ]) config = replace(config, from!, to!);
  assert.equal(SNIPPET.split(INSTALLED).length, 2, `the README's snippet names ${INSTALLED} once: ${SNIPPET}`);
  return `${config}\n${SNIPPET.replace(INSTALLED, front)}`;
}

if (rootless) describe('corral-oci as an unprivileged user', function () {
  it('refuses --rootless=true with a clear error (root only for now)', function () {
    const r = spawnSync(front, ['--rootless=true', 'list'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /root only/);
  });
});

if (!rootless) describe('containerd with corral-oci as its runc binary', function () {
  this.timeout(60_000);
  let dir: string;
  let containerd: ChildProcess;
  let exited: Promise<unknown>;
  // A namespace of our own: its cgroups (/<namespace>/<id>) and runc root are this test's.
  const namespace = `corral-oci-test-${process.pid}`;

  const ctr = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync('ctr', ['--address', join(dir, 'containerd.sock'), '--namespace', namespace, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const runtime = (): string[] => ['--snapshotter', 'native', '--runc-binary', front, '--runc-root', join(dir, 'runc')];
  const taskStatus = (id: string): string | undefined => ctr('task', 'ls').stdout.split('\n').find((l) => l.startsWith(`${id} `))?.trim().split(/\s+/)[2];
  const shims = (): number[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmdline.includes('containerd-shim') && cmdline.includes(namespace);
    } catch {
      return false; // gone meanwhile
    }
  });

  before(async function () {
    for (const tool of ['containerd', 'ctr', 'containerd-shim-runc-v2']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} drives these tests (apt-get install containerd)`);
    }
    assert.ok(existsSync(cli) && existsSync(front), `${cli} and ${front} are built (npm run build)`);
    dir = mkdtempSync(join(tmpdir(), 'corral-containerd-'));
    writeFileSync(join(dir, 'config.toml'), nodeConfig(dir));
    containerd = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    containerd.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    exited = new Promise((done) => containerd.once('exit', done));
    assert.ok(await eventually(() => ctr('version').status === 0, 15_000), `containerd serves on its socket: ${log.slice(-2000)}`);
    const layout = busyboxLayout(dir);
    assert.equal(spawnSync('tar', ['-C', layout, '-cf', join(dir, 'busybox.tar'), '.']).status, 0);
    const imported = ctr('image', 'import', '--snapshotter', 'native', '--index-name', IMAGE, join(dir, 'busybox.tar'));
    assert.equal(imported.status, 0, imported.stderr);
  });

  after(async function () {
    if (!dir) return;
    if (containerd && containerd.exitCode === null) {
      // After a failed test: its tasks killed and deleted, so their shims exit too.
      for (const line of ctr('task', 'ls', '-q').stdout.split('\n').filter(Boolean)) {
        ctr('task', 'kill', '--all', '--signal', 'SIGKILL', line);
        await eventually(() => taskStatus(line) === 'STOPPED', 5000);
        ctr('task', 'rm', '-f', line);
      }
      for (const line of ctr('container', 'ls', '-q').stdout.split('\n').filter(Boolean)) ctr('container', 'rm', line);
      containerd.kill('SIGTERM');
      await exited;
    }
    // The tests' cgroup parent (/<namespace>) is made by corral-oci for the containers and, as
    // runc leaves it, left for the test to remove.
    if (existsSync(join(V2, namespace))) rmdirSync(join(V2, namespace));
    rmRoot(dir);
  });

  it('the README\'s Kubernetes recipe: containerd loads its snippet with the cri plugin ok, and ctr runs a container with the runtime type and binary it names', function () {
    const cri = ctr('plugins', 'ls').stdout.split('\n').find((l) => /^io\.containerd\.grpc\.v1\s+cri\s/.test(l));
    assert.match(cri ?? '', /\sok\s*$/, `the cri plugin loaded: ${cri}`);
    const dump = spawnSync('containerd', ['--config', join(dir, 'config.toml'), 'config', 'dump'], { encoding: 'utf8' });
    assert.equal(dump.status, 0, dump.stderr);
    const corral = /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.corral\][\s\S]*?runtime_type = "([^"]+)"[\s\S]*?\.runtimes\.corral\.options\][\s\S]*?BinaryName = "([^"]+)"/.exec(dump.stdout);
    assert.deepEqual(corral?.slice(1), ['io.containerd.runc.v2', front], 'the cri plugin has the corral handler');
    // ctr cannot pick a CRI handler by name: it is given the handler's runtime type and binary.
    const r = ctr('run', '--rm', '--snapshotter', 'native', '--runtime', corral![1]!, '--runc-binary', corral![2]!, '--runc-root', join(dir, 'runc'), IMAGE, 'k8s1', 'sh', '-c', 'readlink /proc/1/exe');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '/bin/busybox\n');
  });

  const yaml = /```yaml\n([\s\S]*?)```/.exec(README.slice(README.indexOf('For Kubernetes')))?.[1] ?? '';
  it('the README\'s RuntimeClass selects the handler its containerd snippet names', function () {
    assert.match(yaml, /^kind: RuntimeClass$/m);
    assert.match(yaml, /^handler: corral$/m);
    assert.match(SNIPPET, /\.containerd\.runtimes\.corral\]/);
  });

  it('ctr run: the output, the exit code, the config it got (namespaces, capabilities, no_new_privs)', function () {
    const r = ctr('run', '--rm', ...runtime(), IMAGE, 'echo1', 'sh', '-c', 'echo out-$(hostname); grep -E "^(CapBnd|NoNewPrivs)" /proc/self/status; readlink /proc/1/exe; exit 3');
    assert.equal(r.status, 3, r.stderr);
    // ctr's default spec: Docker's capability set (a80425fb, CAP_MKNOD in it), no_new_privs, pid 1 is the command.
    assert.equal(r.stdout, 'out-echo1\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n/bin/busybox\n');
    assert.equal(existsSync(join(dir, 'runc', namespace, 'echo1')), false, 'delete removed the state');
    assert.equal(existsSync(join(V2, namespace, 'echo1')), false, 'delete removed the cgroup');
  });

  it('the device filter holds under containerd: the host disk, mknod-ed inside with CAP_MKNOD, cannot be read', function () {
    // The block device holding / on the host (ctr's default spec grants CAP_MKNOD, as Docker does).
    const dev = statSync('/').dev;
    const [major, minor] = [(dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
    const r = ctr('run', '--rm', ...runtime(), IMAGE, 'disk1', 'sh', '-c', `mknod /tmp/disk b ${major} ${minor} && echo made; cat /tmp/disk > /dev/null && echo read || echo denied`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'made\ndenied\n');
  });

  it('ctr run -t: a terminal through --console-socket', function () {
    // script gives ctr the terminal it relays the container's pty master to.
    const r = spawnSync('script', ['-qec', `ctr --address ${join(dir, 'containerd.sock')} --namespace ${namespace} run --rm -t ${runtime().join(' ')} ${IMAGE} tty1 sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; exit 5'`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 5, r.stdout + r.stderr);
    // (script's terminal adds a \r of its own to each line)
    assert.match(r.stdout, /\/dev\/pts\/0\r+\nstdin-is-a-tty\r+\n/);
  });

  it('a detached task: exec (with and without a terminal), ps, pause/resume, kill --all, delete', async function () {
    const started = ctr('run', '-d', ...runtime(), IMAGE, 'task1', 'sleep', '1000');
    assert.equal(started.status, 0, started.stderr);
    assert.equal(taskStatus('task1'), 'RUNNING');
    const init = Number(ctr('task', 'ls').stdout.split('\n').find((l) => l.startsWith('task1 '))!.trim().split(/\s+/)[1]);
    assert.ok(alive(init));
    assert.ok(existsSync(join(V2, namespace, 'task1', 'cgroup.procs')), 'the task has its cgroup');

    const exec = ctr('task', 'exec', '--exec-id', 'e1', 'task1', 'sh', '-c', 'echo exec-out; cat /proc/1/cmdline | tr "\\0" " "; exit 4');
    assert.equal(exec.status, 4, exec.stderr);
    assert.equal(exec.stdout, 'exec-out\nsleep 1000 ', 'exec joined the task: its pid 1 is the task\'s init');
    const tty = spawnSync('script', ['-qec', `ctr --address ${join(dir, 'containerd.sock')} --namespace ${namespace} task exec -t --exec-id e2 task1 sh -c 'tty; exit 6'`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(tty.status, 6, tty.stdout + tty.stderr);
    assert.match(tty.stdout, /\/dev\/pts\/\d+\r+\n/);

    const background = ctr('task', 'exec', '-d', '--exec-id', 'e3', 'task1', 'sleep', '1000');
    assert.equal(background.status, 0, background.stderr);
    assert.ok(await eventually(() => ctr('task', 'ps', 'task1').stdout.trim().split('\n').length === 3), `ps lists the init and the exec'd sleep: ${ctr('task', 'ps', 'task1').stdout}`);
    const pids = ctr('task', 'ps', 'task1').stdout.trim().split('\n').slice(1).map((l) => Number(l.split(/\s+/)[0]));
    assert.ok(pids.includes(init));

    assert.equal(ctr('task', 'pause', 'task1').status, 0);
    assert.equal(taskStatus('task1'), 'PAUSED');
    assert.match(readFileSync(join(V2, namespace, 'task1', 'cgroup.events'), 'utf8'), /frozen 1/);
    assert.equal(ctr('task', 'resume', 'task1').status, 0);
    assert.equal(taskStatus('task1'), 'RUNNING');

    assert.equal(ctr('task', 'kill', '--all', '--signal', 'SIGKILL', 'task1').status, 0);
    assert.ok(await eventually(() => taskStatus('task1') === 'STOPPED', 10_000), `the task stops: ${ctr('task', 'ls').stdout}`);
    assert.ok(pids.every((pid) => !alive(pid)), 'kill --all reached the exec\'d process too');
    assert.equal(ctr('task', 'rm', 'task1').status, 0);
    assert.equal(ctr('container', 'rm', 'task1').status, 0);
    assert.equal(existsSync(join(V2, namespace, 'task1')), false);
    assert.deepEqual(readdirSync(join(dir, 'runc', namespace)), []);
  });

  it('a create error reaches ctr from the json log, and the failed create leaves nothing', function () {
    const r = ctr('run', '--rm', ...runtime(), '--with-ns', 'mount:/proc/self/ns/mnt', IMAGE, 'bad1', 'true');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /linux\.namespaces\[\d\]\.path is not supported by corral-oci/);
    assert.equal(existsSync(join(dir, 'runc', namespace, 'bad1')), false);
    assert.equal(existsSync(join(V2, namespace, 'bad1')), false);
    ctr('container', 'rm', 'bad1');
  });

  it('nothing is left once containerd stops: no shim, no mount, no cgroup, no state', async function () {
    containerd.kill('SIGTERM');
    await exited;
    assert.ok(await eventually(() => shims().length === 0, 10_000), `shims of ${namespace} are gone: ${shims().join(' ')}`);
    assert.equal(mountTable().includes(dir), false, 'no snapshot or rootfs stays mounted');
    const groups = existsSync(join(V2, namespace)) ? readdirSync(join(V2, namespace), { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
    assert.deepEqual(groups, [], 'no container cgroup');
    mkdirSync(join(dir, 'runc', namespace), { recursive: true });
    assert.deepEqual(readdirSync(join(dir, 'runc', namespace)), [], 'no container state in the runc root');
  });
});
