import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync,
  utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { packTar } from '../tar-fixtures.ts';
import { applyLayer, type ApplyLayerOptions } from '../../lib/image/layer/apply.ts';
import { devMajor, devMinor, lgetxattr, lsetxattr } from '../../lib/sys/fs-ops.ts';
import { requirePrerequisite } from '../helpers.ts';

const isRoot = process.getuid!() === 0;
const MTIME = new Date(1_600_000_000_000);

/** One tar entry as tar-stream takes it, plus its content for files. */
interface Item {
  name: string;
  type?: 'file' | 'link' | 'symlink' | 'directory' | 'character-device' | 'block-device' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
  content?: string | Buffer;
}

/** A tar built by tar-stream (an independent writer), every entry at MTIME unless it says otherwise. */
function tarOf(items: Item[]): Promise<Buffer> {
  return packTar(items as Parameters<typeof packTar>[0], MTIME);
}

/** Rewrites a field of the first header block (and its checksum), for headers tar-stream will not write. */
function patch(data: Buffer, offset: number, text: string): Buffer {
  const copy = Buffer.from(data);
  copy.write(text, offset, 'latin1');
  copy.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += copy[i]!;
  copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return copy;
}

/** Removes a tree even when the test left read-only directories in it. */
function forceRemove(path: string): void {
  spawnSync('chmod', ['-R', 'u+rwx', path]);
  rmSync(path, { recursive: true, force: true });
}

const xattr = (path: string, name: string): string | undefined => lgetxattr(path, name)?.toString('latin1');

describe('applyLayer', () => {
  let scratch: string;
  let count = 0;
  const fresh = (): string => {
    const dir = join(scratch, `layer-${count++}`);
    mkdirSync(dir);
    return dir;
  };
  const apply = async (data: Buffer, options: Partial<ApplyLayerOptions> = {}, dir = fresh()): Promise<string> => {
    await applyLayer(Readable.from([data]), dir, { rootless: !isRoot, ...options });
    return dir;
  };

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'corral-layer-apply-'));
  });
  after(() => forceRemove(scratch));

  describe('entries', () => {
    it('writes files, directories, symlinks and hard links with their modes and mtimes', async () => {
      const dir = await apply(await tarOf([
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/tool', mode: 0o4755, content: 'tool!' },
        { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
        { name: 'bin/sym', type: 'symlink', linkname: '../etc/missing', mtime: new Date(1_500_000_000_000) },
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
        { name: 'ro/', type: 'directory', mode: 0o555, mtime: new Date(1_400_000_000_000) },
        { name: 'ro/inside', mode: 0o400, content: 'still written' },
      ]));
      const tool = lstatSync(join(dir, 'bin/tool'));
      assert.equal(readFileSync(join(dir, 'bin/tool'), 'utf8'), 'tool!');
      assert.equal(tool.mode & 0o7777, 0o4755, 'setuid kept');
      assert.equal(tool.mtimeMs, MTIME.getTime());
      assert.equal(lstatSync(join(dir, 'bin/alias')).ino, tool.ino, 'hard link shares the inode');
      assert.equal(readlinkSync(join(dir, 'bin/sym')), '../etc/missing');
      assert.equal(lstatSync(join(dir, 'bin/sym')).mtimeMs, 1_500_000_000_000, 'symlink mtime set with lutimes');
      assert.equal(lstatSync(join(dir, 'tmp')).mode & 0o7777, 0o1777, 'sticky bit kept');
      const ro = lstatSync(join(dir, 'ro'));
      assert.equal(ro.mode & 0o7777, 0o555, 'a read-only directory gets its mode after its contents');
      assert.equal(ro.mtimeMs, 1_400_000_000_000, 'and keeps its mtime although a file was added after it');
      assert.equal(readFileSync(join(dir, 'ro/inside'), 'utf8'), 'still written');
    });

    it('sets owners (root)', async function () {
      if (!isRoot) this.skip();
      const dir = await apply(await tarOf([
        { name: 'd/', type: 'directory', uid: 1000, gid: 1001 },
        { name: 'd/f', uid: 12, gid: 34, mode: 0o2755, content: 'x' },
        { name: 'd/l', type: 'symlink', linkname: 'f', uid: 56, gid: 78 },
      ]), { rootless: false });
      const f = lstatSync(join(dir, 'd/f'));
      assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [12, 34, 0o2755], 'setgid survives the chown');
      assert.deepEqual([lstatSync(join(dir, 'd')).uid, lstatSync(join(dir, 'd')).gid], [1000, 1001]);
      assert.deepEqual([lstatSync(join(dir, 'd/l')).uid, lstatSync(join(dir, 'd/l')).gid], [56, 78]);
    });

    it('returns the sha256 and size of the uncompressed tar, for plain and gzip alike', async () => {
      const data = await tarOf([{ name: 'a', content: 'x'.repeat(100_000) }, { name: 'b/', type: 'directory' }]);
      const expected = { diffId: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, ownersToShift: [] };
      assert.deepEqual(await applyLayer(Readable.from([data]), fresh(), { rootless: true }), expected);
      const gz = gzipSync(data);
      const chunks = Array.from({ length: Math.ceil(gz.length / 1000) }, (_, i) => gz.subarray(i * 1000, i * 1000 + 1000));
      assert.deepEqual(await applyLayer(Readable.from(chunks), fresh(), { rootless: true }), expected);
    });

    it('strips a leading ./ and applies the root entry to the layer directory', async () => {
      const dir = await apply(await tarOf([
        { name: './', type: 'directory', mode: 0o711 },
        { name: './etc/', type: 'directory' },
        { name: './etc/hostname', content: 'box\n' },
      ]));
      assert.equal(readFileSync(join(dir, 'etc/hostname'), 'utf8'), 'box\n');
      assert.equal(lstatSync(dir).mode & 0o7777, 0o711);
    });

    it('makes char and block devices and fifos (root)', async function () {
      if (!isRoot) this.skip();
      const dir = await apply(await tarOf([
        { name: 'null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 },
        { name: 'pipe', type: 'fifo', mode: 0o620 },
      ]), { rootless: false });
      const nul = lstatSync(join(dir, 'null'));
      assert.ok(nul.isCharacterDevice());
      assert.deepEqual([devMajor(nul.rdev), devMinor(nul.rdev), nul.mode & 0o7777], [1, 3, 0o666]);
      const loop = lstatSync(join(dir, 'loop9'));
      assert.ok(loop.isBlockDevice());
      assert.deepEqual([devMajor(loop.rdev), devMinor(loop.rdev)], [7, 9]);
      assert.ok(lstatSync(join(dir, 'pipe')).isFIFO());
      assert.equal(lstatSync(join(dir, 'pipe')).mode & 0o7777, 0o620);
    });

    it('rootless: skips devices but still makes fifos', async () => {
      const dir = await apply(await tarOf([
        { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'pipe', type: 'fifo', mode: 0o600 },
      ]), { rootless: true });
      assert.deepEqual(readdirSync(dir), ['pipe']);
      assert.ok(lstatSync(join(dir, 'pipe')).isFIFO());
    });

    it('a later entry replaces an earlier one of the same name', async () => {
      const dir = await apply(await tarOf([
        { name: 'a', content: 'file first' },
        { name: 'a/', type: 'directory' },
        { name: 'a/in', content: 'x' },
        { name: 'b/', type: 'directory' },
        { name: 'b/deep/', type: 'directory' },
        { name: 'b', content: 'now a file' },
        { name: 'c', content: 'one' },
        { name: 'c', content: 'two' },
        { name: 'd', type: 'symlink', linkname: 'x' },
        { name: 'd', type: 'symlink', linkname: 'y' },
      ]));
      assert.ok(lstatSync(join(dir, 'a')).isDirectory());
      assert.equal(readFileSync(join(dir, 'b'), 'utf8'), 'now a file');
      assert.equal(readFileSync(join(dir, 'c'), 'utf8'), 'two');
      assert.equal(readlinkSync(join(dir, 'd')), 'y');
    });

    it('reads pax long names and GNU long names and link targets', async () => {
      const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
      const dir = await apply(await tarOf([{ name: long, content: 'pax' }, { name: 'ünï', content: 'utf8' }]));
      assert.equal(readFileSync(join(dir, long), 'utf8'), 'pax');
      assert.equal(readFileSync(join(dir, 'ünï'), 'utf8'), 'utf8');

      const src = join(scratch, 'gnu-src');
      mkdirSync(join(src, 'g'.repeat(130)), { recursive: true });
      writeFileSync(join(src, 'g'.repeat(130), 'h'.repeat(130)), 'gnu');
      symlinkSync('t'.repeat(200), join(src, 'longlink'));
      const gnu = execFileSync('tar', ['--format=gnu', '-cf', '-', '-C', src, '.']);
      const out = await apply(gnu);
      assert.equal(readFileSync(join(out, 'g'.repeat(130), 'h'.repeat(130)), 'utf8'), 'gnu');
      assert.equal(readlinkSync(join(out, 'longlink')), 't'.repeat(200));
    });
  });

  describe('whiteouts and opaque directories', () => {
    const layer = (): Promise<Buffer> => tarOf([
      { name: '.wh.gone' },
      { name: 'd/', type: 'directory' },
      { name: 'd/keep', content: 'k' },
      { name: 'd/.wh..wh..opq' },
    ]);

    it('turns .wh.NAME into a char device 0/0 and .wh..wh..opq into trusted.overlay.opaque=y (root)', async function () {
      if (!isRoot) this.skip();
      const dir = await apply(await layer(), { rootless: false });
      const gone = lstatSync(join(dir, 'gone'));
      assert.ok(gone.isCharacterDevice());
      assert.equal(gone.rdev, 0);
      assert.equal(xattr(join(dir, 'd'), 'trusted.overlay.opaque'), 'y', 'an opaque marker after its siblings still counts');
      assert.deepEqual(readdirSync(join(dir, 'd')), ['keep']);
    });

    it('rootless: marks opaque directories with user.overlay.opaque=y instead', async () => {
      const dir = await apply(await layer(), { rootless: true });
      assert.ok(lstatSync(join(dir, 'gone')).isCharacterDevice(), 'unprivileged whiteouts (Linux 5.8+)');
      assert.equal(xattr(join(dir, 'd'), 'user.overlay.opaque'), 'y');
      assert.equal(xattr(join(dir, 'd'), 'trusted.overlay.opaque'), undefined);
    });

    it('a whiteout never deletes what the same layer wrote; a directory of its own then becomes opaque', async () => {
      const dir = await apply(await tarOf([
        { name: 'f', content: 'kept' },
        { name: '.wh.f' },
        { name: '.wh.g' },
        { name: 'g/', type: 'directory' },
        { name: 'h/', type: 'directory' },
        { name: '.wh.h' },
        { name: '.wh.i' },
        { name: 'i/x', content: 'x' },
      ]), { rootless: true });
      assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'kept');
      for (const name of ['g', 'h', 'i']) {
        assert.ok(lstatSync(join(dir, name)).isDirectory(), name);
        assert.equal(xattr(join(dir, name), 'user.overlay.opaque'), 'y', `${name} hides the layers below`);
      }
    });

    it('skips aufs metadata (.wh..wh.plnk and the like)', async () => {
      const dir = await apply(await tarOf([{ name: '.wh..wh.plnk/', type: 'directory' }, { name: '.wh..wh.aufs' }, { name: 'ok' }]));
      assert.deepEqual(readdirSync(dir), ['ok']);
    });
  });

  describe('xattrs', () => {
    // GNU tar writes the binary values raw, as images carry them; tar-stream would UTF-8-encode them.
    const CAPS = Buffer.from([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // cap_setuid,cap_net_raw+ep
    const BINARY = Buffer.from([0x80, 0xff, 0x00, 0x01]);
    let gnuTar: Buffer;

    before(() => {
      const src = join(scratch, 'xattr-src');
      mkdirSync(join(src, 'dir'), { recursive: true });
      writeFileSync(join(src, 'ping'), 'ping');
      lsetxattr(join(src, 'ping'), 'user.bin', BINARY);
      lsetxattr(join(src, 'dir'), 'user.dir', Buffer.from('on a directory'));
      if (isRoot) {
        lsetxattr(join(src, 'ping'), 'security.capability', CAPS);
        lsetxattr(join(src, 'ping'), 'trusted.t', Buffer.from('t'));
      }
      gnuTar = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, '.']);
    });

    it('sets SCHILY.xattr pax records with lsetxattr, binary values intact, security.capability included (root)', async function () {
      if (!isRoot) this.skip();
      const dir = await apply(gnuTar, { rootless: false });
      assert.deepEqual(lgetxattr(join(dir, 'ping'), 'security.capability'), CAPS);
      assert.deepEqual(lgetxattr(join(dir, 'ping'), 'user.bin'), BINARY);
      assert.equal(xattr(join(dir, 'ping'), 'trusted.t'), 't');
      assert.equal(xattr(join(dir, 'dir'), 'user.dir'), 'on a directory');
    });

    it('rootless: sets only user.* xattrs', async () => {
      const dir = await apply(gnuTar, { rootless: true });
      assert.deepEqual(lgetxattr(join(dir, 'ping'), 'user.bin'), BINARY);
      assert.equal(lgetxattr(join(dir, 'ping'), 'security.capability'), null);
      assert.equal(xattr(join(dir, 'dir'), 'user.dir'), 'on a directory');
    });

    it('drops overlay xattrs a layer tries to forge (redirect, opaque)', async () => {
      const dir = await apply(await tarOf([{
        name: 'd/',
        type: 'directory',
        pax: { 'SCHILY.xattr.user.overlay.redirect': '/etc', 'SCHILY.xattr.user.overlay.opaque': 'y', 'SCHILY.xattr.user.fine': 'ok' },
      }]), { rootless: true });
      assert.equal(xattr(join(dir, 'd'), 'user.overlay.redirect'), undefined);
      assert.equal(xattr(join(dir, 'd'), 'user.overlay.opaque'), undefined);
      assert.equal(xattr(join(dir, 'd'), 'user.fine'), 'ok');
    });

    it('reports a file system without user.* xattrs clearly (root, ramfs)', async function () {
      requirePrerequisite(this, isRoot ? null : 'mounting a ramfs needs root');
      const mnt = fresh();
      const mounted = spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt], { encoding: 'utf8' });
      requirePrerequisite(this, mounted.status === 0 ? null : `ramfs cannot be mounted here: ${mounted.stderr.trim() || mounted.error}`);
      try {
        await assert.rejects(
          apply(await tarOf([{ name: 'f', pax: { 'SCHILY.xattr.user.x': '1' } }]), { rootless: true }, mnt),
          { code: 'EOPNOTSUPP', message: /without user\.\* extended attributes/ },
        );
      } finally {
        spawnSync('umount', [mnt]);
      }
    });
  });

  describe('layers below', () => {
    let lower: string;

    before(() => {
      lower = fresh();
      mkdirSync(join(lower, 'usr/lib'), { recursive: true });
      chmodSync(join(lower, 'usr'), 0o750);
      utimesSync(join(lower, 'usr'), 1_234_567_890, 1_234_567_890);
      writeFileSync(join(lower, 'usr/lib/busybox'), 'BB');
      chmodSync(join(lower, 'usr/lib/busybox'), 0o4755);
      lsetxattr(join(lower, 'usr/lib/busybox'), 'user.origin', Buffer.from('lower'));
      if (isRoot) chownSync(join(lower, 'usr'), 12, 34);
      writeFileSync(join(lower, 'hidden'), 'h');
    });

    it('creates missing parent directories with the mode, owner and mtime they have below', async () => {
      const dir = await apply(await tarOf([{ name: 'usr/lib/new/tool', content: 't' }]), { lowerDirs: [lower] });
      const usr = lstatSync(join(dir, 'usr'));
      assert.equal(usr.mode & 0o7777, 0o750);
      assert.equal(usr.mtimeMs, 1_234_567_890_000);
      if (isRoot) assert.deepEqual([usr.uid, usr.gid], [12, 34]);
      assert.equal(lstatSync(join(dir, 'usr/lib/new')).mode & 0o7777, 0o755, 'new to this layer: 0755');
    });

    it('rootless with a range, gives a missing parent the owner it has below as the id inside, not its host id', async () => {
      // The lower is on disk as the map shifted it: its owner (this process's ids) is 100:101 inside.
      const usr = lstatSync(join(lower, 'usr'));
      const idMap = {
        uids: [{ inside: 0, outside: 1_000_000, count: 1 }, { inside: 100, outside: usr.uid, count: 1 }],
        gids: [{ inside: 0, outside: 1_000_000, count: 1 }, { inside: 101, outside: usr.gid, count: 1 }],
      };
      const dir = fresh();
      const { ownersToShift } = await applyLayer(Readable.from([await tarOf([{ name: 'usr/lib/new/tool', content: 't' }])]), dir, { rootless: true, lowerDirs: [lower], idMap });
      assert.deepEqual(ownersToShift.find((o) => o.rel === 'usr'), { rel: 'usr', uid: 100, gid: 101, mode: 0o750 });
    });

    it("materialises a hard link to a lower layer's file as a copy, shared by further links", async () => {
      const dir = await apply(await tarOf([
        { name: 'bin/sh', type: 'link', linkname: 'usr/lib/busybox' },
        { name: 'bin/ls', type: 'link', linkname: 'usr/lib/busybox' },
      ]), { lowerDirs: [fresh(), lower] });
      const sh = lstatSync(join(dir, 'bin/sh'));
      assert.equal(readFileSync(join(dir, 'bin/sh'), 'utf8'), 'BB');
      assert.equal(sh.mode & 0o7777, 0o4755);
      assert.notEqual(sh.ino, lstatSync(join(lower, 'usr/lib/busybox')).ino, 'a copy, not a link into the lower layer');
      assert.equal(lstatSync(join(dir, 'bin/ls')).ino, sh.ino);
      assert.equal(xattr(join(dir, 'bin/sh'), 'user.origin'), 'lower');
    });

    it('refuses a hard link to a lower file this layer whited out', async () => {
      await assert.rejects(
        apply(await tarOf([{ name: '.wh.hidden' }, { name: 'x', type: 'link', linkname: 'hidden' }]), { lowerDirs: [lower] }),
        { code: 'ERR_INVALID_LAYER', message: /neither in this layer nor in the layers below/ },
      );
    });
  });

  describe('hostile layers', () => {
    let victim: string;

    beforeEach(() => {
      victim = fresh();
    });
    afterEach(() => {
      assert.deepEqual(readdirSync(victim), [], 'nothing was written outside the layer');
    });

    const refuses = async (items: Item[] | Buffer, message: RegExp, options: Partial<ApplyLayerOptions> = {}): Promise<void> => {
      const data = Buffer.isBuffer(items) ? items : await tarOf(items);
      await assert.rejects(apply(data, options), (e: NodeJS.ErrnoException) => {
        assert.equal(e.name, 'CorralError');
        assert.equal(e.code, 'ERR_INVALID_LAYER');
        assert.match(e.message, message);
        return true;
      });
    };

    it('refuses an entry that climbs out with ..', async () => {
      await refuses([{ name: `../${victim.split('/').pop()}/evil`, content: 'x' }], /climbs out with '\.\.'/);
      await refuses([{ name: 'a/../../evil', content: 'x' }], /"a\/\.\.\/\.\.\/evil".*climbs out/);
    });

    it('refuses an absolute entry name', async () => {
      await refuses([{ name: `${victim}/evil`, content: 'x' }], /is absolute/);
    });

    it('refuses writing through a symlink planted by an earlier entry (CVE-2018-15664-style)', async () => {
      await refuses([
        { name: 'escape', type: 'symlink', linkname: victim },
        { name: 'escape/pwned', content: 'x' },
      ], /"escape\/pwned".*parent escape is a symlink/);
    });

    it('refuses a symlink that replaced a directory, then is written through', async () => {
      await refuses([
        { name: 'a/', type: 'directory' },
        { name: 'a/ok', content: 'x' },
        { name: 'a', type: 'symlink', linkname: victim },
        { name: 'a/pwned', content: 'x' },
      ], /parent a is a symlink/);
    });

    it('refuses a whiteout or opaque marker under a planted symlink', async () => {
      await refuses([{ name: 'l', type: 'symlink', linkname: victim }, { name: 'l/.wh.x' }], /parent l is a symlink/);
      await refuses([{ name: 'l', type: 'symlink', linkname: victim }, { name: 'l/.wh..wh..opq' }], /parent l is a symlink/);
    });

    it('refuses a whiteout that names the directory itself (.wh..)', async () => {
      await refuses([{ name: 'a/', type: 'directory' }, { name: 'a/.wh..' }], /whiteout names no file/);
    });

    it('refuses a hard link to a file outside the layer', async () => {
      writeFileSync(join(scratch, 'secret'), 'secret');
      await refuses([{ name: 'x', type: 'link', linkname: '../secret' }], /hard link target climbs out/);
      await refuses([{ name: 'x', type: 'link', linkname: join(scratch, 'secret') }], /hard link target is absolute/);
    });

    it('refuses a hard link through a symlink planted by an earlier entry', async () => {
      writeFileSync(join(scratch, 'secret2'), 'secret');
      await refuses([
        { name: 'up', type: 'symlink', linkname: scratch },
        { name: 'x', type: 'link', linkname: 'up/secret2' },
      ], /neither in this layer nor in the layers below/);
    });

    it('refuses a hard link to a file that is in no layer, or to a directory', async () => {
      await refuses([{ name: 'x', type: 'link', linkname: 'nowhere' }], /"x".*nowhere is neither in this layer/);
      await refuses([{ name: 'd/', type: 'directory' }, { name: 'x', type: 'link', linkname: 'd' }], /hard link to the directory d/);
    });

    it('reports a truncated gzip', async () => {
      const gz = gzipSync(await tarOf([{ name: 'big', content: Buffer.alloc(200_000, 7) }]));
      await refuses(gz.subarray(0, gz.length - 100), /gzip stream is truncated or corrupt/);
    });

    it('reports a tar truncated inside an entry', async () => {
      const data = await tarOf([{ name: 'big', content: Buffer.alloc(5000, 7) }]);
      await refuses(data.subarray(0, 2048), /"big".*ends inside this entry/);
    });

    it('reports a tar cut off between entries (no end-of-archive marker)', async () => {
      const data = await tarOf([{ name: 'a', content: 'x' }]);
      await refuses(data.subarray(0, 1024), /no end-of-archive marker/);
      await refuses(Buffer.alloc(0), /no end-of-archive marker/);
    });

    it('refuses input that is not a tar', async () => {
      await refuses(Buffer.alloc(4096, 'not a tar, just text '), /checksum does not match/);
    });

    it('refuses entry types it does not know', async () => {
      const data = await tarOf([{ name: 'vol', content: '' }]);
      await refuses(patch(data, 156, 'V'), /unsupported entry type 'V' \(GNU volume label\)/);
      await refuses(patch(data, 156, 'Z'), /unsupported entry type 'Z'/);
    });

    it('refuses data on an entry type that has none', async () => {
      const data = await tarOf([{ name: 'd/', type: 'directory' }]);
      await refuses(patch(data, 124, '00000000005'), /a directory entry with 5 bytes of data/);
    });

    it('refuses a non-directory layer root', async () => {
      await refuses([{ name: './', type: 'symlink', linkname: '/' }], /layer root must be a directory/);
    });
  });

  describe('compression', () => {
    it('refuses xz with ERR_UNSUPPORTED_COMPRESSION and destroys the source', async () => {
      const source = Readable.from([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0])]);
      await assert.rejects(applyLayer(source, fresh(), { rootless: true }), { code: 'ERR_UNSUPPORTED_COMPRESSION', message: /xz/ });
      assert.ok(source.destroyed);
    });

    it('applies a zstd layer (zstd CLI-compressed) with the DiffID of its tar, on every Node', async () => {
      const tar = await tarOf([{ name: 'hello', content: 'zstd works\n' }]);
      const compressed = execFileSync('zstd', ['-q', '-c'], { input: tar });
      const dir = fresh();
      const result = await applyLayer(Readable.from([compressed]), dir, { rootless: true });
      assert.equal(readFileSync(join(dir, 'hello'), 'utf8'), 'zstd works\n');
      assert.equal(result.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    });

    it('refuses a corrupt zstd layer with ERR_INVALID_LAYER', async () => {
      const compressed = execFileSync('zstd', ['-q', '-c'], { input: await tarOf([{ name: 'f', content: 'x'.repeat(5000) }]) });
      compressed[compressed.length - 6]! ^= 0xff;
      await assert.rejects(applyLayer(Readable.from([compressed.subarray(0, compressed.length - 3)]), fresh(), { rootless: true }), { code: 'ERR_INVALID_LAYER' });
    });

    it('reports a failing source as a read error, not as a fault of the entry being written', async () => {
      const data = await tarOf([{ name: 'big', content: Buffer.alloc(100_000) }]);
      const source = new Readable({ read() {} });
      source.push(data.subarray(0, 10_000));
      setImmediate(() => source.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' })));
      await assert.rejects(applyLayer(source, fresh(), { rootless: true }), { code: 'EIO', step: 'read the layer', message: /disk on fire/ });
    });

    it('destroys the source when a hostile entry stops it early', async () => {
      const data = await tarOf([{ name: '../x', content: 'x' }, { name: 'pad', content: Buffer.alloc(100_000) }]);
      const source = Readable.from([gzipSync(data)]);
      await assert.rejects(applyLayer(source, fresh(), { rootless: true }), { code: 'ERR_INVALID_LAYER' });
      assert.ok(source.destroyed);
    });
  });
});
