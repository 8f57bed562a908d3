// COPY ../x names a file outside the build context: refused, the file never read. Twin: the same
// file inside the context is copied.
import assert from 'node:assert/strict';
import { buildFixture, SECRET, type BuildFixture } from './build-fixture.ts';

describe('security: COPY of a source outside the context (../)', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('dotdot');
  });
  after(() => f.done());

  for (const source of ['../secret', 'sub/../../secret', './../secret']) {
    it(`refuses COPY ${source} naming the line, and the host file stays out of the store`, async () => {
      const ctx = f.context({ Dockerfile: `FROM base\nCOPY ${source} /x\n`, 'sub/keep': 'k' });
      await assert.rejects(f.rt.images.build({ context: ctx }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: COPY .*outside the build context/.test(e.message));
    });
  }

  it('twin: the same name inside the context is copied', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY sub/../secret /x\n', secret: 'context copy' });
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    const got = await f.out(manifestDigest, 'cat /x');
    assert.equal(got, 'context copy');
    assert.notEqual(got, SECRET);
  });
});
