// A COPY source that is itself a symlink out of the context, or passes through a directory symlink
// out of it: followed as if the context were '/', so it finds nothing (or the context's own file)
// and never the host's. Twin: a symlink to a file inside the context copies that file.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildFixture, SECRET, type BuildFixture } from './build-fixture.ts';

describe('security: a COPY source that is a symlink out of the context', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('source-link');
  });
  after(() => f.done());

  it('a source symlink to a host file is not followed out: not found', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY link /x\n' });
    symlinkSync(f.secret, join(ctx, 'link'));
    await assert.rejects(f.rt.images.build({ context: ctx }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: COPY link \/x: link: no such file/.test(e.message));
  });

  it('a directory symlink on the way resolves inside the context, finding its file, not the host\'s', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY hostdir/secret /x\n' });
    symlinkSync(dirname(f.secret), join(ctx, 'hostdir'));
    mkdirSync(join(ctx, dirname(f.secret).slice(1)), { recursive: true });
    await assert.rejects(f.rt.images.build({ context: ctx }), { code: 'ERR_BUILD_CONTEXT' });
    const ctx2 = f.context({ Dockerfile: 'FROM base\nCOPY hostdir/secret /x\n', [join(dirname(f.secret).slice(1), 'secret')]: 'the context\'s own' });
    symlinkSync(dirname(f.secret), join(ctx2, 'hostdir'));
    const { manifestDigest } = await f.rt.images.build({ context: ctx2 });
    const got = await f.out(manifestDigest, 'cat /x');
    assert.equal(got, 'the context\'s own');
    assert.ok(!got.includes(SECRET));
  });

  it('twin: a symlink to a file inside the context copies that file', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY link /x\n', 'real.txt': 'inside' });
    symlinkSync('real.txt', join(ctx, 'link'));
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    assert.equal(await f.out(manifestDigest, 'cat /x'), 'inside');
  });
});
