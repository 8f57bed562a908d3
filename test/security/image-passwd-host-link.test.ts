// Issue 10 item 4: an image whose /etc/passwd is a symlink to a host file must not have its User
// resolved from that host file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../../lib/image/layer/apply.ts';
import { imageDefaults } from '../../lib/image/run-config.ts';
import type { ImageConfig } from '../../lib/image/oci.ts';
import { rootless } from '../helpers.ts';
import { packTar } from '../tar-fixtures.ts';

describe('security: an image /etc/passwd linking to a host file', () => {
  let work: string;
  let layer: string;
  let hostFile: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-sec-passwd-link-'));
    hostFile = join(work, 'host-passwd');
    writeFileSync(hostFile, 'evil:x:4242:4343::/:/bin/sh\n', { mode: 0o600 });
    layer = join(work, 'layer');
    mkdirSync(layer);
    const tar = await packTar([
      { name: 'etc', type: 'directory', mode: 0o755 },
      { name: 'etc/passwd', type: 'symlink', linkname: hostFile },
    ], new Date());
    await applyLayer(Readable.from([tar]), layer, { rootless });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const config: ImageConfig = { architecture: 'amd64', os: 'linux', config: { User: 'evil' }, rootfs: { type: 'layers', diff_ids: [] } };

  it('resolves the link inside the image, where it leads nowhere: the user is unknown', async () => {
    await assert.rejects(imageDefaults(config, [layer]), { code: 'ERR_INVALID_SPEC', message: /'evil' is not in the container's \/etc\/passwd/ });
  });

  it('(defence lifted) a path-based read that follows links gets the host file', () => {
    assert.match(readFileSync(join(layer, 'etc/passwd'), 'utf8'), /^evil:x:4242:/);
  });
});
