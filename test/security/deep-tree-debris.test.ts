// Issue 10 item 10: a container writes a tree deeper than a path can name (3,003 levels) into a
// volume and into its writable layer. Removal used to leave it behind (rm: ENAMETOOLONG), the next
// process's sweeper overflowed the stack and failed that process's first overlay container, and
// volumes.list()/remove() threw ENAMETOOLONG. (test/unit/remove-tree.test.ts shows Node's rm fail on it.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { removeTree } from '../../lib/fs/remove-tree.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { deepTreeBytes, deepTreeScript } from '../deep-tree.ts';

const OUTSIDE = '/etc/marker';
const writeDeep = (dir: string): string[] => ['/bin/sh', '-c', deepTreeScript(dir, 'deep', 3, OUTSIDE)];
const index = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

/** Waits until test() holds (background removal), or fails after ms. */
async function eventually(test: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !test(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) assert.fail(`still not true after ${ms} ms: ${what}`);
  }
}

describe(`security: a container leaves a 3,003-deep tree behind (issue 10 item 10, ${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let busybox: string;
  let state: string;
  let rt: Runtime;
  before(() => {
    busybox = makeBusyboxRoot();
    state = mkdtempSync(join(tmpdir(), 'corral-test-deep-'));
    rt = new Runtime({ root: state, cgroupParent: false });
  });
  after(() => {
    rmRoot(busybox);
    removeTree(state);
  });

  it('in a volume: list() sizes it, remove() removes all of it', async () => {
    const w = await rt.run({ command: writeDeep('/v'), rootfs: busybox, mounts: [{ type: 'volume', source: 'deep', target: '/v' }] });
    assert.equal(w.exitCode, 0, w.stderr.toString());
    const listed = (await rt.volumes.list()).find((v) => v.name === 'deep');
    assert.equal(listed?.sizeBytes, deepTreeBytes(OUTSIDE));
    await rt.volumes.remove('deep');
    assert.deepEqual(readdirSync(join(state, 'volumes')), []);
    assert.deepEqual(await rt.volumes.list(), []);
  });

  it("in a container's writable layer: remove() removes all of it", async () => {
    const c = await rt.create({ command: writeDeep('/'), rootfs: busybox });
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    const layers = join(state, 'containers');
    const [tag] = readdirSync(layers);
    assert.ok(readdirSync(join(layers, tag!)).length > 0);
    await c.remove();
    await eventually(() => readdirSync(join(layers, tag!)).length === 0, `${layers}/${tag} is empty`);
  });

  it("left by a killed process: the next process's sweeper removes it and its first overlay container runs", () => {
    const killed = `
      import { Runtime } from ${JSON.stringify(index)};
      const rt = new Runtime({ root: ${JSON.stringify(state)}, cgroupParent: false });
      const c = await rt.create({ command: ${JSON.stringify(writeDeep('/'))}, rootfs: ${JSON.stringify(busybox)} });
      await c.start();
      if ((await c.wait()).exitCode !== 0) process.exit(3);
      process.kill(process.pid, 'SIGKILL');`;
    const layers = join(state, 'containers');
    const before = new Set(readdirSync(layers));
    assert.throws(() => execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', killed], { stdio: 'pipe' }), { signal: 'SIGKILL' });
    const stale = readdirSync(layers).filter((n) => !before.has(n));
    assert.equal(stale.length, 1, 'the killed process left its layers');
    const next = `
      import { Runtime } from ${JSON.stringify(index)};
      const rt = new Runtime({ root: ${JSON.stringify(state)}, cgroupParent: false });
      const r = await rt.run({ command: ['cat', '/etc/marker'], rootfs: ${JSON.stringify(busybox)} });
      console.log(r.exitCode, r.stdout.toString().trim());`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', next], { encoding: 'utf8' });
    assert.equal(out.trim(), '0 busybox-root');
    assert.ok(!readdirSync(layers).includes(stale[0]!), 'the sweeper removed the stale layers');
  });
});
