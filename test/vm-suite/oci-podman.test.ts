// podman (Debian's, with conmon) driving corral-oci in a pure cgroup v2 kernel (run by
// test/run.mjs inside the VM of test/vm): run with exit codes, exec, logs through conmon, stop,
// rm, with its own storage (vfs) and state under a temp dir, cgroupfs, no network.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot } from '../helpers.ts';

const cli = fileURLToPath(new URL('../../dist/cli/oci/main.js', import.meta.url));

describe('podman with conmon drives corral-oci in a pure cgroup v2 kernel', function () {
  this.timeout(600_000);
  let dir: string;
  let rootfs: string;
  let podman: (...args: string[]) => { status: number | null; stdout: string; stderr: string };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-podman-'));
    rootfs = makeBusyboxRoot();
    // podman takes a runtime path: this one runs the built corral-oci with this Node.
    const wrapper = join(dir, 'corral-oci');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${cli} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const global = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'tmp'), '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', wrapper];
    podman = (...args) => {
      const r = spawnSync('podman', [...global, ...args], { encoding: 'utf8', timeout: 300_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    execFileSync('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
    const imported = podman('import', join(dir, 'rootfs.tar'), 'localhost/busybox:corral');
    assert.equal(imported.status, 0, imported.stderr);
  });
  after(() => {
    if (podman) podman('rm', '--all', '--force');
    if (dir) rmRoot(dir);
    if (rootfs) rmRoot(rootfs);
  });

  it('run: the output and the exit code', function () {
    const r = podman('run', '--rm', '--network', 'none', 'localhost/busybox:corral', 'sh', '-c', 'echo hello-from-$(cat /etc/marker); exit 3');
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, 'hello-from-busybox-root\n');
  });

  it('a detached container: exec, logs through conmon, stop, rm', function () {
    const started = podman('run', '-d', '--name', 'c1', '--network', 'none', 'localhost/busybox:corral', 'sh', '-c', 'echo logged-line; trap "exit 0" TERM; while true; do sleep 0.2; done');
    assert.equal(started.status, 0, started.stderr);
    const exec = podman('exec', 'c1', 'sh', '-c', 'echo in-$(cat /etc/marker); exit 4');
    assert.equal(exec.status, 4, exec.stderr);
    assert.equal(exec.stdout, 'in-busybox-root\n');
    const logs = podman('logs', 'c1');
    assert.equal(logs.stdout, 'logged-line\n', logs.stderr);
    const stopped = podman('stop', '-t', '10', 'c1');
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.equal(podman('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'c1').stdout.trim(), 'exited 0');
    assert.equal(podman('rm', 'c1').status, 0);
    assert.equal(podman('ps', '-a', '--format', '{{.Names}}').stdout.trim(), '');
  });
});
