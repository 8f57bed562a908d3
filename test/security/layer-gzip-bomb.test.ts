// Issue 10 item 11: a small gzip layer that unpacks to a huge tar (a gzip bomb) is refused at the
// unpack bound (maxLayerBytes), with a named error, and leaves the store as it was.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore } from '../../lib/image/image-store.ts';
import { layoutOf } from '../image-fixtures.ts';
import { blobStaging, storedBlobs, storedLayers } from '../image-store-contents.ts';
import { rootless } from '../helpers.ts';
import { packTar } from '../tar-fixtures.ts';

const MiB = 1024 * 1024;

describe('security: a gzip bomb layer', () => {
  let work: string;
  let layout: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-sec-gzip-bomb-'));
    const tar = await packTar([{ name: 'zeros', content: Buffer.alloc(32 * MiB) }], new Date(0));
    assert.ok(gzipSync(tar).length < 64 * 1024, 'the layer is small compressed');
    layout = layoutOf(join(work, 'layout'), 'bomb', [tar]);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is refused past maxLayerBytes with ERR_LAYER_TOO_LARGE, the store unchanged', async () => {
    const root = join(work, 'bounded');
    const store = new ImageStore(root, { rootless, maxLayerBytes: 4 * MiB });
    await assert.rejects(store.import(layout), { code: 'ERR_LAYER_TOO_LARGE', message: /maxLayerBytes/ });
    assert.deepEqual(store.list(), []);
    assert.deepEqual(storedLayers(root), []);
    assert.deepEqual(storedBlobs(root), []);
    assert.deepEqual(blobStaging(root), []);
    const layers = join(root, 'images/layers');
    assert.deepEqual(existsSync(layers) ? readdirSync(layers) : [], [], 'no unpack debris');
  });

  it('(defence lifted) under the default bound the same layer unpacks to its full size', async () => {
    const root = join(work, 'default');
    const store = new ImageStore(root, { rootless });
    const [image] = await store.import(layout);
    assert.ok(image!.layers[0]!.unpackedBytes >= 32 * MiB);
  });
});
