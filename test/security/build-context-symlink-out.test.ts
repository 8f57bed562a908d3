// A symlink inside a copied directory points out of the context (absolute and ../): it is copied
// as the symlink it is, never followed, so the host file's content stays out of the image. Twin: a
// regular file next to it is copied with its content.
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildFixture, SECRET, type BuildFixture } from './build-fixture.ts';

describe('security: a symlink in the context pointing outside it', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('symlink-out');
  });
  after(() => f.done());

  it('is copied as a symlink (absolute and relative targets), the host file never read', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY dir /dir\n', 'dir/plain': 'plain' });
    symlinkSync(f.secret, join(ctx, 'dir/abs'));
    symlinkSync('../../secret', join(ctx, 'dir/rel'));
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    assert.equal(await f.out(manifestDigest, 'readlink /dir/abs; readlink /dir/rel'), `${f.secret}\n../../secret\n`);
    assert.ok(!(await f.out(manifestDigest, 'cat /dir/abs /dir/rel 2>/dev/null')).includes(SECRET));
  });

  it('twin: a regular file beside it is copied with its content', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY dir /dir\n', 'dir/plain': 'plain' });
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    assert.equal(await f.out(manifestDigest, 'cat /dir/plain'), 'plain');
  });
});
