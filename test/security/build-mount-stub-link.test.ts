// A RUN step with a mount at a path the image lacks (/stub/m) moves the stub's parent away and
// puts a symlink to a host directory in its place, so that the removal of the empty mount point
// after the step (lib/fs/mount-stubs.ts) would unlink a host file: the removal never goes through a
// symlink, and the host file stays. Twin: with followStubLinks lifted, the host file is removed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liftedDefences } from '../../lib/spawn/lifted-defences.ts';
import { buildFixture, type BuildFixture } from './build-fixture.ts';

describe('security: a symlink swapped in for a RUN --mount stub', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  let n = 0;
  before(async () => {
    f = await buildFixture('stub-link');
  });
  after(() => f.done());

  /** A host directory holding an empty file 'm', and a build whose step points /stub at it. */
  const attack = async (): Promise<string> => {
    const host = join(f.work, `host-${++n}`);
    mkdirSync(host);
    writeFileSync(join(host, 'm'), '');
    const ctx = f.context({ Dockerfile: `FROM base\nRUN --mount=type=tmpfs,target=/stub/m mv /stub /moved && ln -s ${host} /stub\n` });
    const { manifestDigest } = await f.rt.images.build({ context: ctx, noCache: true });
    assert.equal(await f.out(manifestDigest, 'readlink /stub'), `${host}\n`, 'the step did plant its link');
    return join(host, 'm');
  };

  it('leaves the host file alone', async () => {
    assert.ok(existsSync(await attack()));
  });

  it('twin: removed through the link when the defence is lifted', async () => {
    liftedDefences.followStubLinks = true;
    try {
      assert.ok(!existsSync(await attack()));
    } finally {
      liftedDefences.followStubLinks = false;
    }
  });
});
