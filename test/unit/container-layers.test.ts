// Issue 10 item 13: a raw Node EACCES escaped createLayer's per-process directory; every failure
// making a container's layer is a CorralError naming the path.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLayer, removeLayer } from '../../lib/fs/container-layers.ts';
import { processTag } from '../../lib/sys/process-tag.ts';
import { rootless } from '../helpers.ts';

const NOBODY = 65534;

describe('container layers: failures are CorralErrors naming the path', () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'corral-test-layers-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it("a containers directory that root made in a user's runtime root (sudo): refused by name, not a raw EACCES", function () {
    if (rootless) return this.skip(); // needs a directory of another user's
    chmodSync(base, 0o755);
    const root = join(base, 'root');
    mkdirSync(join(root, 'containers'), { recursive: true, mode: 0o755 });
    chownSync(root, NOBODY, NOBODY);
    const script = `
      import { createLayer } from ${JSON.stringify(fileURLToPath(new URL('../../lib/fs/container-layers.ts', import.meta.url)))};
      try { createLayer(${JSON.stringify(root)}, 'c1'); console.log('{}'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, path: e.path })); }`;
    const home = join(base, 'home');
    mkdirSync(home);
    chownSync(home, NOBODY, NOBODY);
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, HOME: home, TMPDIR: home }, uid: NOBODY, gid: NOBODY });
    assert.deepEqual(JSON.parse(out), { name: 'CorralError', code: 'ERR_UNSAFE_RUNTIME_ROOT', path: join(root, 'containers') });
  });

  it("this process's directory that cannot be made: a CorralError with its errno and path", () => {
    const root = join(base, 'root');
    mkdirSync(join(root, 'containers'), { recursive: true });
    writeFileSync(join(root, 'containers', processTag()), 'in the way');
    assert.throws(() => createLayer(root, 'c1'), { name: 'CorralError', code: 'EEXIST', path: join(root, 'containers', processTag()) });
  });

  it('a layer that cannot be made: a CorralError with its errno and path', () => {
    const root = join(base, 'root');
    assert.throws(() => createLayer(root, 'missing/c1'), { name: 'CorralError', code: 'ENOENT', path: join(root, 'containers', processTag(), 'missing/c1') });
  });

  it('makes a layer 0700 under root/containers/<process tag>; removeLayer removes it', async () => {
    const root = join(base, 'root');
    const layer = createLayer(root, 'c1');
    assert.equal(layer.dir, join(root, 'containers', processTag(), 'c1'));
    assert.equal(statSync(layer.dir).mode & 0o777, 0o700);
    removeLayer(layer);
    for (let i = 0; i < 200 && readdirSync(join(root, 'containers', processTag())).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(readdirSync(join(root, 'containers', processTag())), []);
  });
});
