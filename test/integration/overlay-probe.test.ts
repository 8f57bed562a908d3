import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

describe(`the overlay probe, off the start path (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  let state: string;
  before(() => {
    root = makeBusyboxRoot();
    state = mkdtempSync(join(tmpdir(), 'corral-test-state-'));
  });
  after(() => {
    rmRoot(root);
    rmSync(state, { recursive: true, force: true });
  });

  it("a fresh process's first containers, started right after new Runtime(), get their writable layers, and the background probe agrees with the synchronous one", () => {
    // A fresh process: this one has probed already. Whether its containers are cloned while the
    // probe's child still runs depends on timing (bindings/spawn.c locks the shared stack for that
    // case); what must hold either way is checked here.
    const script = fileURLToPath(new URL('../fixtures/first-containers.ts', import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, root, state], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout) as { runs: { exitCode: number; stdout: string; stderr: string }[]; background: string; sync: string };
    out.runs.forEach((r, i) => {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `${i}\n`, 'each container wrote into its own writable layer');
    });
    assert.ok(['fds', 'paths'].includes(out.background), out.background);
    assert.equal(out.sync, out.background);
  });
});
