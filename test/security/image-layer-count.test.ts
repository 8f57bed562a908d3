// Issue 10 item 11: an image with more layers than overlayfs can stack (500) could never run; it is
// refused at import, before anything is unpacked (2,000 layers used to take 15 s and then fail).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../lib/image/image-store.ts';
import { MAX_LAYERS } from '../../lib/image/import.ts';
import { layoutOf, tarOf } from '../image-fixtures.ts';
import { storedBlobs, storedLayers } from '../image-store-contents.ts';
import { rootless } from '../helpers.ts';

describe('security: an image of more layers than overlayfs stacks', function () {
  this.timeout(120_000);
  let work: string;
  let tars: Buffer[];
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-sec-layer-count-'));
    tars = await Promise.all(Array.from({ length: MAX_LAYERS + 1 }, (_, i) => tarOf([{ name: `f${i}`, content: String(i) }])));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it(`is refused with ERR_INVALID_IMAGE at ${MAX_LAYERS + 1} layers, before any blob is stored`, async () => {
    const root = join(work, 'over');
    await assert.rejects(new ImageStore(root, { rootless }).import(layoutOf(join(work, 'tall'), 'tall', tars)), { code: 'ERR_INVALID_IMAGE', message: /at most 500/ });
    assert.deepEqual(storedLayers(root), []);
    assert.deepEqual(storedBlobs(root), []);
  });

  it(`(at the limit) ${MAX_LAYERS} layers are imported`, async () => {
    const root = join(work, 'at');
    const [image] = await new ImageStore(root, { rootless }).import(layoutOf(join(work, 'limit'), 'limit', tars.slice(0, MAX_LAYERS)));
    assert.equal(image!.layers.length, MAX_LAYERS);
  });
});
