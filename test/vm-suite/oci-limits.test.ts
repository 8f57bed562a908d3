// corral-oci's linux.resources and update in a pure cgroup v2 kernel (run by test/run.mjs inside
// the VM of test/vm): memory.max and pids.max of the container's group, beside runc on the same
// bundle, then changed by update --resources - (what containerd's shim sends) and update's flags.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findV2Mount } from '../../lib/cgroup/hierarchy.ts';
import { makeBusyboxRoot, rmRoot } from '../helpers.ts';

// The native front end, which execs Node on dist/cli/oci/main.js for create and update.
const front = fileURLToPath(new URL('../../bindings/build/corral-oci', import.meta.url));

describe('corral-oci resources in a pure cgroup v2 kernel, beside runc', function () {
  this.timeout(300_000);
  let dir: string;
  let rootfs: string;
  let mount: string;
  before(() => {
    mount = findV2Mount()!;
    assert.ok(mount, 'no cgroup v2 hierarchy');
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-vm-'));
    rootfs = makeBusyboxRoot();
  });
  after(() => {
    if (dir) rmRoot(dir);
    if (rootfs) rmRoot(rootfs);
  });

  /** Runs a runtime's command; its stdio are files (a created init keeps them open). */
  const runtime = (name: 'runc' | 'corral-oci', input: string | null, ...args: string[]): { status: number | null; stderr: string } => {
    const [bin, pre] = name === 'runc' ? ['runc', []] : [front, []];
    const err = join(dir, `err-${name}`);
    const fd = openSync(err, 'w');
    const r = spawnSync(bin, [...pre, '--root', join(dir, `root-${name}`), ...args], { input: input ?? '', stdio: ['pipe', 'ignore', fd] });
    closeSync(fd);
    return { status: r.status, stderr: readFileSync(err, 'utf8') };
  };

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: memory and pids limits land in the container's group, and update changes them`, function () {
      const bundle = mkdtempSync(join(dir, 'bundle-'));
      assert.equal(spawnSync('runc', ['spec', '--bundle', bundle]).status, 0);
      const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      Object.assign(config.process, { terminal: false, args: ['sleep', '100'] });
      config.root.path = rootfs;
      config.linux.cgroupsPath = `/corral-oci-vm/${name}`;
      config.linux.resources = { ...config.linux.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 32 } };
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
      const group = join(mount, 'corral-oci-vm', name);
      const created = runtime(name, null, 'create', '--bundle', bundle, 'l1');
      assert.equal(created.status, 0, created.stderr);
      try {
        assert.equal(readFileSync(join(group, 'memory.max'), 'utf8').trim(), String(64 * 1024 * 1024));
        assert.equal(readFileSync(join(group, 'pids.max'), 'utf8').trim(), '32');
        const fromStdin = runtime(name, JSON.stringify({ memory: { limit: 128 * 1024 * 1024 }, pids: { limit: 16 } }), 'update', '--resources', '-', 'l1');
        assert.equal(fromStdin.status, 0, fromStdin.stderr);
        assert.equal(readFileSync(join(group, 'memory.max'), 'utf8').trim(), String(128 * 1024 * 1024));
        assert.equal(readFileSync(join(group, 'pids.max'), 'utf8').trim(), '16');
        const flags = runtime(name, null, 'update', '--pids-limit', '8', 'l1');
        assert.equal(flags.status, 0, flags.stderr);
        assert.equal(readFileSync(join(group, 'pids.max'), 'utf8').trim(), '8');
      } finally {
        assert.equal(runtime(name, null, 'delete', '--force', 'l1').status, 0);
      }
      assert.equal(existsSync(group), false, 'delete removed the group');
    });
  }
});
