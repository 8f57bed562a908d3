// corral-oci events in a pure cgroup v2 kernel (run by test/run.mjs inside the VM of test/vm):
// an OOM kill in the container's group is an {"type":"oom"} event, beside runc on the same bundle.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, makeBusyboxRoot, rmRoot } from '../helpers.ts';

const cli = fileURLToPath(new URL('../../lib/cli/oci/main.ts', import.meta.url));

describe('corral-oci events in a pure cgroup v2 kernel, beside runc', function () {
  this.timeout(300_000);
  let dir: string;
  let rootfs: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-events-'));
    rootfs = makeBusyboxRoot();
  });
  after(() => {
    if (dir) rmRoot(dir);
    if (rootfs) rmRoot(rootfs);
  });

  const command = (name: 'runc' | 'corral-oci', ...args: string[]): [string, string[]] => {
    const [bin, pre] = name === 'runc' ? ['runc', []] : [process.execPath, ['--import', 'tsx', cli]];
    return [bin, [...pre, '--root', join(dir, `root-${name}`), ...args]];
  };

  for (const name of ['runc', 'corral-oci'] as const) {
    it(`${name}: an OOM kill in the container is an oom event, between the stats events`, async function () {
      const bundle = mkdtempSync(join(dir, 'bundle-'));
      assert.equal(spawnSync('runc', ['spec', '--bundle', bundle]).status, 0);
      const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      // Once events runs (the test makes /go-NAME): tail keeps the line it reads, and /dev/zero has
      // no newline, so it grows until the OOM killer ends it.
      Object.assign(config.process, { terminal: false, args: ['sh', '-c', `while [ ! -e /go-${name} ]; do sleep 0.2; done; tail /dev/zero; sleep 100`] });
      config.root.path = rootfs;
      config.linux.cgroupsPath = `/corral-oci-events/${name}`;
      config.linux.resources = { ...config.linux.resources, memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
      const [bin, create] = command(name, 'create', '--bundle', bundle, 'o1');
      assert.equal(spawnSync(bin, create, { stdio: 'ignore' }).status, 0);
      let events: ReturnType<typeof spawn> | null = null;
      try {
        assert.equal(spawnSync(...command(name, 'start', 'o1'), { stdio: 'ignore' }).status, 0);
        events = spawn(...command(name, 'events', '--interval', '1s', 'o1'), { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        events.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
        const lines = (): { type: string; id: string }[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
        assert.ok(await eventually(() => lines().some((e) => e.type === 'stats'), 120_000), 'events started');
        writeFileSync(join(rootfs, `go-${name}`), '');
        assert.ok(await eventually(() => lines().some((e) => e.type === 'oom'), 120_000), `no oom event: ${out}`);
        assert.deepEqual(lines().find((e) => e.type === 'oom'), { type: 'oom', id: 'o1' });
      } finally {
        events?.kill();
        assert.equal(spawnSync(...command(name, 'delete', '--force', 'o1'), { stdio: 'ignore' }).status, 0);
      }
    });
  }
});
