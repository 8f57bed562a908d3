import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../../lib/image/layer/apply.ts';
import { imageDefaults } from '../../lib/image/run-config.ts';
import { rootless } from '../helpers.ts';
import { packTar } from '../tar-fixtures.ts';
import type { ImageConfig } from '../../lib/image/oci.ts';

describe('what an image config gives a container', () => {
  let upper: string;
  let lower: string;
  before(() => {
    const base = mkdtempSync(join(tmpdir(), 'corral-test-runcfg-'));
    upper = join(base, 'upper');
    lower = join(base, 'lower');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    mkdirSync(join(lower, 'etc'), { recursive: true });
    // The top layer's passwd wins over the lower one's.
    writeFileSync(join(upper, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:33:44::/srv:/bin/sh\n');
    writeFileSync(join(lower, 'etc/passwd'), 'web:x:1:1::/:/bin/sh\n');
    writeFileSync(join(lower, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  });
  after(() => rmSync(join(upper, '..'), { recursive: true, force: true }));

  const config = (c: NonNullable<ImageConfig['config']>): ImageConfig => ({ architecture: 'amd64', os: 'linux', config: c, rootfs: { type: 'layers', diff_ids: [] } });

  it('takes Entrypoint, Cmd, Env and WorkingDir', async () => {
    const d = await imageDefaults(config({ Entrypoint: ['/init'], Cmd: ['serve'], Env: ['A=1', 'B=x=y'], WorkingDir: '/srv' }), [upper, lower]);
    assert.deepEqual(d, { entrypoint: ['/init'], cmd: ['serve'], env: { A: '1', B: 'x=y' }, cwd: '/srv', user: undefined });
  });

  it('resolves user and group names through the layers, top first', async () => {
    const layers = [upper, lower];
    assert.deepEqual((await imageDefaults(config({ User: 'web' }), layers)).user, { uid: 33, gid: 44, groups: [] });
    assert.deepEqual((await imageDefaults(config({ User: 'web:staff' }), layers)).user, { uid: 33, gid: 50, groups: [] });
    assert.deepEqual((await imageDefaults(config({ User: '33' }), layers)).user, { uid: 33, gid: 44, groups: [] });
    assert.deepEqual((await imageDefaults(config({ User: '7:8' }), layers)).user, { uid: 7, gid: 8, groups: [] });
    await assert.rejects(imageDefaults(config({ User: 'ghost' }), layers), { code: 'ERR_INVALID_SPEC', message: /ghost/ });
    await assert.rejects(imageDefaults(config({ User: 'web:nogroup' }), layers), { code: 'ERR_INVALID_SPEC', message: /nogroup/ });
  });

  describe('through the overlay view: a higher layer hides the /etc/passwd below', () => {
    let stack: string;
    before(() => {
      stack = mkdtempSync(join(tmpdir(), 'corral-test-runcfg-stack-'));
    });
    after(() => rmSync(stack, { recursive: true, force: true }));

    /** Layer directories made by applying tars as an import does, top first. */
    async function layers(...tars: Parameters<typeof packTar>[0][]): Promise<string[]> {
      const dirs: string[] = [];
      for (const entries of tars) {
        const dir = mkdtempSync(join(stack, 'layer-'));
        await applyLayer(Readable.from([await packTar(entries, new Date())]), dir, { rootless, lowerDirs: [...dirs].reverse() });
        dirs.push(dir);
      }
      return dirs.reverse();
    }
    const base = [
      { name: 'etc', type: 'directory', mode: 0o755 },
      { name: 'etc/passwd', content: 'web:x:33:44::/srv:/bin/sh\n' },
    ];

    it('the user of the layer below resolves while nothing hides it', async () => {
      const stackDirs = await layers(base, [{ name: 'srv', type: 'directory', mode: 0o755 }]);
      assert.deepEqual((await imageDefaults(config({ User: 'web' }), stackDirs)).user, { uid: 33, gid: 44, groups: [] });
    });

    it('a whiteout of /etc hides it', async () => {
      const stackDirs = await layers(base, [{ name: '.wh.etc', content: '' }]);
      await assert.rejects(imageDefaults(config({ User: 'web' }), stackDirs), { code: 'ERR_INVALID_SPEC', message: /'web' is not in the container's \/etc\/passwd/ });
    });

    it('an opaque /etc hides it', async () => {
      const stackDirs = await layers(base, [
        { name: 'etc', type: 'directory', mode: 0o755 },
        { name: 'etc/.wh..wh..opq', content: '' },
        { name: 'etc/hostname', content: 'box\n' },
      ]);
      await assert.rejects(imageDefaults(config({ User: 'web' }), stackDirs), { code: 'ERR_INVALID_SPEC', message: /'web' is not in the container's \/etc\/passwd/ });
    });
  });
});
