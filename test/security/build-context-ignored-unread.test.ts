// A .dockerignore'd path is never read: here it is a fifo, which would block any read forever, and
// the build of `COPY . /` completes without it. Twin: the same fifo, not ignored, is refused (not
// opened: the build does not hang either).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildFixture, type BuildFixture } from './build-fixture.ts';

describe('security: .dockerignored files are not read at all', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('ignored');
  });
  after(() => f.done());

  it('an ignored fifo is not opened, the build completes without it', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY . /ctx/\n', '.dockerignore': 'blocker\n', 'ok': 'ok' });
    execFileSync('mkfifo', [join(ctx, 'blocker')]);
    const { manifestDigest } = await f.rt.images.build({ context: ctx });
    assert.equal(await f.out(manifestDigest, 'ls /ctx'), 'Dockerfile\nok\n');
  });

  it('twin: the same fifo not ignored is refused without being opened', async () => {
    const ctx = f.context({ Dockerfile: 'FROM base\nCOPY . /ctx/\n', 'ok': 'ok' });
    execFileSync('mkfifo', [join(ctx, 'blocker')]);
    await assert.rejects(f.rt.images.build({ context: ctx }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /blocker is not a regular file/.test(e.message));
  });
});
