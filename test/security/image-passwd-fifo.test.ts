// Issue 10 item 4: an image whose /etc/passwd links to a fifo must not block the event loop while
// its User is resolved (a synchronous read of a fifo waits for a writer forever).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../../lib/image/layer/apply.ts';
import { imageDefaults } from '../../lib/image/run-config.ts';
import type { ImageConfig } from '../../lib/image/oci.ts';
import { rootless } from '../helpers.ts';
import { packTar } from '../tar-fixtures.ts';

describe('security: an image /etc/passwd linking to a fifo', () => {
  let work: string;
  let layer: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-sec-passwd-fifo-'));
    layer = join(work, 'layer');
    mkdirSync(layer);
    const tar = await packTar([
      { name: 'etc', type: 'directory', mode: 0o755 },
      { name: 'run', type: 'directory', mode: 0o755 },
      { name: 'run/pipe', type: 'fifo', mode: 0o644 },
      { name: 'etc/passwd', type: 'symlink', linkname: '../run/pipe' },
    ], new Date());
    await applyLayer(Readable.from([tar]), layer, { rootless });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const config: ImageConfig = { architecture: 'amd64', os: 'linux', config: { User: 'app' }, rootfs: { type: 'layers', diff_ids: [] } };

  it('refuses the fifo at once, without opening it', async () => {
    const started = Date.now();
    await assert.rejects(imageDefaults(config, [layer]), { code: 'ERR_INVALID_IMAGE', message: /\/etc\/passwd is not a regular file/ });
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  it('(defence lifted) a synchronous read through the link blocks until killed', () => {
    const read = `require('fs').readFileSync(${JSON.stringify(join(layer, 'etc/passwd'))})`;
    const result = spawnSync(process.execPath, ['-e', read], { timeout: 1000 });
    assert.equal(result.signal, 'SIGTERM', 'the read was still blocked when the timeout killed it');
  });
});
