// RUN --mount=type=bind names a source outside the context ('../', or a symlink in the context
// pointing out): refused, or resolved inside the context; the host file is never mounted or read.
// Twin: the same source inside the context is mounted.
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildFixture, SECRET, type BuildFixture } from './build-fixture.ts';

describe('security: RUN --mount=type=bind of a source outside the context', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('mount-outside');
  });
  after(() => f.done());

  for (const source of ['../secret', 'sub/../../secret']) {
    it(`refuses source=${source} naming the line`, async () => {
      const ctx = f.context({ Dockerfile: `FROM base\nRUN --mount=type=bind,source=${source},target=/m cat /m > /got\n`, 'sub/keep': 'k' });
      await assert.rejects(f.rt.images.build({ context: ctx }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: RUN --mount.*outside the build context/.test(e.message));
    });
  }

  it('resolves a symlink source inside the context (an absolute link to the host file finds nothing)', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nRUN --mount=type=bind,source=link,target=/m cat /m > /got\n' });
    symlinkSync(f.secret, join(ctx, 'link'));
    await assert.rejects(f.rt.images.build({ context: ctx }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /link: no such file or directory in the build context/.test(e.message));
    const dir = f.context({ Dockerfile: 'FROM base\nRUN --mount=type=bind,source=d,target=/m cat /m/up > /got 2>&1 || readlink /m/up > /got\n', 'd/x': 'x' });
    symlinkSync('../../secret', join(dir, 'd/up'));
    const { manifestDigest } = await f.rt.images.build({ context: dir });
    const got = await f.out(manifestDigest, 'cat /got');
    assert.equal(got, '../../secret\n', 'inside the step the link leads nowhere, never to the host file');
    assert.ok(!got.includes(SECRET));
  });

  it('twin: the same names inside the context are mounted', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nRUN --mount=type=bind,source=sub/../secret,target=/m cat /m > /got\n', secret: 'context copy' });
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    assert.equal(await f.out(manifestDigest, 'cat /got'), 'context copy');
  });
});
