// A RUN --mount=type=cache id that reads as a path out of the cache directory ('../../..', an
// absolute host path): the id only names a directory (it is hashed), so the step's writes land in
// the build's own cache and nowhere on the host. Twin: the same id is one cache across builds.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildFixture, type BuildFixture } from './build-fixture.ts';

describe('security: a RUN --mount=type=cache id naming a host path', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('cache-id');
  });
  after(() => f.done());

  it('keeps the writes in the build cache (../ and absolute ids)', async () => {
    const target = join(f.work, 'host-dir');
    mkdirSync(target);
    for (const id of ['../../../../../../../..', target, `../../../host-dir`]) {
      const ctx = f.context({ Dockerfile: `FROM base\nRUN --mount=type=cache,id=${id},target=/c touch /c/planted\n` });
      await f.rt.images.build({ context: ctx });
      assert.deepEqual(readdirSync(target), [], `id=${id}`);
    }
    assert.ok(!existsSync('/planted') && !existsSync(join(f.work, 'planted')) && !existsSync(join(f.work, 'state/planted')) && !existsSync(join(f.work, 'state/build/planted')));
    const dirs = readdirSync(join(f.work, 'state/build/cache-mounts'));
    assert.equal(dirs.length, 3, 'three ids, three cache directories, each named by its hash');
    for (const d of dirs) assert.match(d, /^[0-9a-f]{32}$/);
  });

  it('twin: the same id is the same directory in the next build', async () => {
    await f.rt.images.build({ context: f.context({ Dockerfile: 'FROM base\nRUN --mount=type=cache,id=shared,target=/c echo kept > /c/file\n' }) });
    const { manifestDigest } = await f.rt.images.build({ context: f.context({ Dockerfile: 'FROM base\nRUN --mount=type=cache,id=shared,target=/other cat /other/file > /got\n' }) });
    assert.equal(await f.out(manifestDigest, 'cat /got'), 'kept\n');
  });
});
