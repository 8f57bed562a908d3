// ADD of a hostile local archive: entries climbing out of the destination ('../', absolute names
// are kept under it), entries written through a symlink of the archive to a host directory, a
// whiteout name that the layer would turn into a deletion of an image file, a hard link to a file
// outside the archive. Each is refused naming the entry; nothing reaches the host. Twin: with archiveWhiteouts lifted, the
// .wh. entry deletes the image's /etc.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liftedDefences } from '../../lib/spawn/lifted-defences.ts';
import { tarOf } from '../image-fixtures.ts';
import { buildFixture, type BuildFixture } from './build-fixture.ts';

describe('security: ADD of an archive whose entries reach outside the destination', function () {
  this.timeout(60_000);
  let f: BuildFixture;
  before(async () => {
    f = await buildFixture('add-archive');
  });
  after(() => f.done());

  const buildWith = async (archive: Buffer, dest = '/x/'): Promise<string> => {
    const ctx = f.context({ Dockerfile: `FROM base\nADD a.tar ${dest}\n` });
    writeFileSync(join(ctx, 'a.tar'), archive);
    return (await f.rt.images.build({ context: ctx, noCache: true })).manifestDigest;
  };
  const refused = (re: RegExp) => (e: { code: string; message: string }): boolean => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: ADD a.tar/.test(e.message) && re.test(e.message);

  it('refuses an entry climbing out with ../', async () => {
    await assert.rejects(buildWith(await tarOf([{ name: 'ok', content: 'ok' }, { name: '../../escaped', content: 'x' }])), refused(/"..\/..\/escaped": it climbs out of the destination/));
  });

  it('keeps an absolute name under the destination', async () => {
    const image = await buildWith(await tarOf([{ name: '/etc/abs', content: 'abs' }]));
    assert.equal(await f.out(image, 'cat /x/etc/abs; ls /etc/abs 2>&1 || true'), 'absls: /etc/abs: No such file or directory\n');
  });

  it('refuses an entry through a symlink of the archive, the host directory left empty', async () => {
    const host = join(f.work, 'host-target');
    mkdirSync(host);
    await assert.rejects(buildWith(await tarOf([{ name: 'link', type: 'symlink', linkname: host }, { name: 'link/planted', content: 'x' }])), refused(/"link\/planted": its parent link is not a directory in the archive/));
    assert.ok(!existsSync(join(host, 'planted')));
  });

  it('refuses a whiteout name and a hard link to nothing of the archive', async () => {
    await assert.rejects(buildWith(await tarOf([{ name: '.wh.etc', content: '' }]), '/'), refused(/"\.wh\.etc": a whiteout name/));
    await assert.rejects(buildWith(await tarOf([{ name: 'h', type: 'link', linkname: '/etc/passwd' }])), refused(/"h": its hard link target "\/etc\/passwd" is no earlier file of the archive/));
  });

  it('twin: with archiveWhiteouts lifted, the .wh. entry deletes the image\'s /etc', async () => {
    liftedDefences.archiveWhiteouts = true;
    try {
      const image = await buildWith(await tarOf([{ name: '.wh.etc', content: '' }]), '/');
      // /etc/passwd, not /etc: the container's own /etc/hostname and /etc/hosts recreate /etc.
      assert.equal(await f.out(image, 'test -e /etc/passwd && echo present || echo deleted'), 'deleted\n');
    } finally {
      liftedDefences.archiveWhiteouts = false;
    }
  });
});
