import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync,
  symlinkSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import tar from 'tar-stream';
import { packTar } from '../tar-fixtures.ts';
import { applyLayer } from '../../lib/image/layer/apply.ts';
import { diffLayer } from '../../lib/image/layer/diff.ts';
import { lgetxattr, lsetxattr, makedev, mknod, NODE_TYPE } from '../../lib/sys/fs-ops.ts';

const isRoot = process.getuid!() === 0;
const T = 1_600_000_000;

/** What a tar header says about an entry, as tar-stream (an independent reader) decodes it. */
interface Listed {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname: string | null;
  dev: string;
  pax: Record<string, string> | null;
}

async function list(data: Buffer): Promise<Listed[]> {
  const extract = tar.extract();
  const entries: Listed[] = [];
  extract.on('entry', (h, stream, next) => {
    entries.push({
      name: h.name, type: h.type!, mode: h.mode!, uid: h.uid!, gid: h.gid!, mtime: h.mtime!.getTime() / 1000, size: h.size!,
      linkname: h.linkname ?? null, dev: `${h.devmajor}:${h.devminor}`, pax: (h.pax as Record<string, string> | null) ?? null,
    });
    stream.on('end', () => next());
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => extract.on('finish', () => resolve()).on('error', reject));
  extract.end(data);
  await done;
  return entries;
}

/** A tar built by tar-stream from headers (plus content for files), every entry at T. */
function tarOf(items: Array<Record<string, unknown> & { name: string; content?: string }>): Promise<Buffer> {
  return packTar(items as Parameters<typeof packTar>[0], new Date(T * 1000));
}

/** Diffs `upper` into memory. */
async function diff(upper: string, rootless = !isRoot): Promise<{ data: Buffer; diffId: string; size: number }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const result = await diffLayer(upper, out, { rootless });
  return { data: Buffer.concat(chunks), ...result };
}

function forceRemove(path: string): void {
  spawnSync('chmod', ['-R', 'u+rwx', path]);
  rmSync(path, { recursive: true, force: true });
}

describe('diffLayer', () => {
  let scratch: string;
  let count = 0;
  const fresh = (): string => {
    const dir = join(scratch, `upper-${count++}`);
    mkdirSync(dir);
    return dir;
  };

  /** An upper directory with one of everything, every mtime at T. */
  const everything = (): string => {
    const upper = fresh();
    mkdirSync(join(upper, 'b'));
    writeFileSync(join(upper, 'b/file'), 'content');
    if (isRoot) chownSync(join(upper, 'b/file'), 12, 34);
    chmodSync(join(upper, 'b/file'), 0o4755);
    linkSync(join(upper, 'b/file'), join(upper, 'b/hard'));
    symlinkSync('b/file', join(upper, 'a-sym'));
    mknod(join(upper, 'fifo'), NODE_TYPE.S_IFIFO | 0o640, 0n);
    if (isRoot) {
      mknod(join(upper, 'dev'), NODE_TYPE.S_IFCHR, makedev(1, 3));
      chmodSync(join(upper, 'dev'), 0o666);
    }
    chmodSync(join(upper, 'b'), 0o750);
    for (const name of ['b/file', 'fifo', 'b', ...(isRoot ? ['dev'] : [])]) utimesSync(join(upper, name), T, T);
    lutimesSync(join(upper, 'a-sym'), T, T);
    return upper;
  };

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'corral-layer-diff-'));
  });
  after(() => forceRemove(scratch));

  it('writes every kind of entry with its mode, numeric owner and whole-second mtime, sorted, without atime or ctime', async () => {
    const entries = await list((await diff(everything())).data);
    assert.deepEqual(entries.map((e) => e.name), ['a-sym', 'b/', 'b/file', 'b/hard', ...(isRoot ? ['dev'] : []), 'fifo']);
    const by = new Map(entries.map((e) => [e.name, e]));
    assert.equal(by.get('a-sym')!.type, 'symlink');
    assert.equal(by.get('a-sym')!.linkname, 'b/file');
    assert.deepEqual([by.get('b/')!.type, by.get('b/')!.mode], ['directory', 0o750]);
    assert.deepEqual([by.get('b/file')!.type, by.get('b/file')!.mode, by.get('b/file')!.size], ['file', 0o4755, 7]);
    assert.deepEqual([by.get('b/hard')!.type, by.get('b/hard')!.linkname, by.get('b/hard')!.size], ['link', 'b/file', 0], 'the second name of an inode is a link');
    assert.deepEqual([by.get('fifo')!.type, by.get('fifo')!.mode], ['fifo', 0o640]);
    if (isRoot) {
      assert.deepEqual([by.get('dev')!.type, by.get('dev')!.dev, by.get('dev')!.mode], ['character-device', '1:3', 0o666]);
      assert.deepEqual([by.get('b/file')!.uid, by.get('b/file')!.gid], [12, 34]);
    } else {
      assert.equal(by.get('b/file')!.uid, process.getuid!());
    }
    for (const e of entries) {
      if (e.type !== 'link') assert.equal(e.mtime, T, e.name);
      assert.equal(e.pax, null, `${e.name}: no pax header (so no atime/ctime) when ustar holds it all`);
    }
  });

  it('turns whiteout devices into .wh. entries and opaque directories into the directory plus .wh..wh..opq', async () => {
    for (const rootless of isRoot ? [false, true] : [true]) {
      const upper = fresh();
      mknod(join(upper, 'gone'), NODE_TYPE.S_IFCHR, 0n);
      mkdirSync(join(upper, 'opaque'));
      writeFileSync(join(upper, 'opaque/new'), 'n');
      lsetxattr(join(upper, 'opaque'), rootless ? 'user.overlay.opaque' : 'trusted.overlay.opaque', Buffer.from('y'));
      mkdirSync(join(upper, 'merged'));
      lsetxattr(join(upper, 'merged'), 'user.overlay.opaque', Buffer.from('x')); // 'x' is not opaque (xwhiteouts, Linux 6.7)
      const entries = await list((await diff(upper, rootless)).data);
      assert.deepEqual(entries.map((e) => `${e.type} ${e.name}`), [
        'file .wh.gone', 'directory merged/', 'directory opaque/', 'file opaque/.wh..wh..opq', 'file opaque/new',
      ], rootless ? 'rootless' : 'root');
      assert.ok(entries.every((e) => e.pax === null), 'overlay xattrs are not archived');
    }
  });

  it('writes xattrs as SCHILY.xattr pax records that GNU tar restores byte for byte', async () => {
    const upper = fresh();
    writeFileSync(join(upper, 'f'), 'x');
    const binary = Buffer.from([0x80, 0xff, 0x00, 0x01]);
    lsetxattr(join(upper, 'f'), 'user.bin', binary);
    lsetxattr(join(upper, 'f'), 'user.overlay.origin', Buffer.from('lower handle'));
    const caps = Buffer.from([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    if (isRoot) lsetxattr(join(upper, 'f'), 'security.capability', caps);
    const { data } = await diff(upper);
    const [entry] = await list(data);
    assert.deepEqual(Object.keys(entry!.pax!).sort(), [...(isRoot ? ['SCHILY.xattr.security.capability'] : []), 'SCHILY.xattr.user.bin']);
    const out = fresh();
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', '-', '-C', out], { input: data });
    assert.deepEqual(lgetxattr(join(out, 'f'), 'user.bin'), binary);
    if (isRoot) assert.deepEqual(lgetxattr(join(out, 'f'), 'security.capability'), caps);
  });

  it('gives the same bytes for the same tree, and again after a round trip through applyLayer', async () => {
    const upper = everything();
    lsetxattr(join(upper, 'b/file'), 'user.k', Buffer.from('v'));
    const first = await diff(upper);
    assert.deepEqual((await diff(upper)).data, first.data);
    const applied = fresh();
    await applyLayer(Readable.from([first.data]), applied, { rootless: !isRoot });
    const again = await diff(applied);
    assert.equal(again.diffId, first.diffId);
  });

  it('round trip: a layer applied and diffed again lists the same entries', async () => {
    const original = await tarOf([
      { name: '.wh.deleted', mode: 0o600 },
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/.wh..wh..opq', mode: 0o600 },
      { name: 'etc/hosts', mode: 0o644, content: '127.0.0.1 localhost\n' },
      { name: 'etc/hosts.link', type: 'link', linkname: 'etc/hosts', mode: 0o644 },
      { name: 'etc/pipe', type: 'fifo', mode: 0o600 },
      { name: 'etc/rc', type: 'symlink', linkname: '/etc/init.d', mode: 0o777 },
      { name: 'etc/shadow', mode: 0o640, uid: 1000, gid: 42, content: 'root:*:1::::::\n' },
      ...(isRoot ? [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 }] : []),
      { name: 'usr/', type: 'directory', mode: 0o1777 },
      { name: 'usr/bin/', type: 'directory', mode: 0o555 },
      { name: 'usr/bin/su', mode: 0o4755, content: '#!/bin/true\n' },
    ]);

    const dir = fresh();
    await applyLayer(Readable.from([original]), dir, { rootless: !isRoot });
    const roundTrip = await list((await diff(dir)).data);
    const summary = (e: Listed): string => {
      const marker = e.name.split('/').pop()!.startsWith('.wh.');
      if (marker) return `${e.name} marker`;
      return `${e.name} ${e.type} ${e.mode.toString(8)} ${e.mtime} ${e.size} ${e.linkname ?? ''} ${e.type.endsWith('device') ? e.dev : ''} ${isRoot ? `${e.uid}:${e.gid}` : ''}`;
    };
    assert.deepEqual(roundTrip.map(summary), (await list(original)).map(summary));
  });

  it('overlayfs agrees: applied layers mount as lowerdirs, and a diff of the changes made through the mount replays them (root)', async function () {
    if (!isRoot) this.skip();
    for (const rootless of [false, true]) {
      const [l0, l1, l2, upper, work, merged, replayed] = Array.from({ length: 7 }, fresh);
      const mount = (options: string, target: string): void => {
        execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `${options}${rootless ? ',userxattr' : ''}`, target]);
      };
      await applyLayer(Readable.from([await tarOf([
        { name: 'etc/', type: 'directory' }, { name: 'etc/a', content: 'a' }, { name: 'etc/b', content: 'b' },
        { name: 'opt/', type: 'directory' }, { name: 'opt/old', content: 'o' }, { name: 'bin/busybox', mode: 0o755, content: 'BB' },
      ])]), l0!, { rootless });
      await applyLayer(Readable.from([await tarOf([
        { name: 'etc/.wh.a' }, { name: 'opt/', type: 'directory' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/new', content: 'n' },
        { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
      ])]), l1!, { rootless, lowerDirs: [l0!] });
      mount(`lowerdir=${l1}:${l0},upperdir=${upper},workdir=${work}`, merged!);
      try {
        assert.deepEqual([readdirSync(join(merged!, 'etc')), readdirSync(join(merged!, 'opt'))], [['b'], ['new']]);
        assert.equal(readFileSync(join(merged!, 'bin/sh'), 'utf8'), 'BB');
        unlinkSync(join(merged!, 'etc/b'));
        writeFileSync(join(merged!, 'etc/c'), 'c');
        rmSync(join(merged!, 'opt'), { recursive: true });
        mkdirSync(join(merged!, 'opt'));
        writeFileSync(join(merged!, 'opt/fresh'), 'f');
      } finally {
        execFileSync('umount', [merged!]);
      }
      const { data } = await diff(upper!, rootless);
      assert.deepEqual((await list(data)).map((e) => e.name), ['etc/', 'etc/.wh.b', 'etc/c', 'opt/', 'opt/.wh..wh..opq', 'opt/fresh']);
      await applyLayer(Readable.from([data]), l2!, { rootless, lowerDirs: [l1!, l0!] });
      mount(`lowerdir=${l2}:${l1}:${l0}`, replayed!);
      try {
        assert.deepEqual([readdirSync(join(replayed!, 'etc')), readdirSync(join(replayed!, 'opt'))], [['c'], ['fresh']], rootless ? 'rootless' : 'root');
      } finally {
        execFileSync('umount', [replayed!]);
      }
    }
  });

  it('GNU tar lists and extracts the diff', async () => {
    const upper = everything();
    const { data } = await diff(upper);
    const listing = execFileSync('tar', ['-tvf', '-'], { input: data, encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing.map((line) => line.split(/\s+/).slice(5).join(' ')), [
      'a-sym -> b/file', 'b/', 'b/file', 'b/hard link to b/file', ...(isRoot ? ['dev'] : []), 'fifo',
    ]);
    const out = fresh();
    execFileSync('tar', ['-xpf', '-', '-C', out], { input: data });
    assert.equal(readFileSync(join(out, 'b/file'), 'utf8'), 'content');
    assert.equal(lstatSync(join(out, 'b/file')).mode & 0o7777, 0o4755);
    assert.equal(lstatSync(join(out, 'b/hard')).ino, lstatSync(join(out, 'b/file')).ino);
    assert.equal(readlinkSync(join(out, 'a-sym')), 'b/file');
    assert.ok(lstatSync(join(out, 'fifo')).isFIFO());
    assert.equal(lstatSync(join(out, 'b')).mtimeMs, T * 1000);
  });

  it('puts long and non-ASCII names and link targets where GNU tar finds them (ustar prefix or pax)', async () => {
    const upper = fresh();
    const split = `${'p'.repeat(140)}/${'n'.repeat(90)}`; // fits ustar's prefix + name
    const long = `${'d'.repeat(120)}/${'e'.repeat(200)}`; // needs a pax path
    mkdirSync(join(upper, split.split('/')[0]!));
    writeFileSync(join(upper, split), '1');
    mkdirSync(join(upper, long.split('/')[0]!));
    writeFileSync(join(upper, long), '2');
    writeFileSync(join(upper, 'ünïcödé'), '3');
    symlinkSync('t'.repeat(300), join(upper, 'far'));
    linkSync(join(upper, long), join(upper, 'z-link'));
    const { data } = await diff(upper);
    const names = execFileSync('tar', ['-tf', '-'], { input: data, encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(names.sort(), [`${long.split('/')[0]}/`, long, `${split.split('/')[0]}/`, split, 'far', 'z-link', 'ünïcödé'].sort());
    const out = fresh();
    execFileSync('tar', ['-xf', '-', '-C', out], { input: data });
    assert.equal(readFileSync(join(out, split), 'utf8'), '1');
    assert.equal(readFileSync(join(out, 'ünïcödé'), 'utf8'), '3');
    assert.equal(readlinkSync(join(out, 'far')), 't'.repeat(300));
    assert.equal(lstatSync(join(out, 'z-link')).ino, lstatSync(join(out, long)).ino);
  });

  it('returns the sha256 and size of what it wrote, waits for a slow destination and leaves it open', async () => {
    const upper = fresh();
    writeFileSync(join(upper, 'big'), Buffer.alloc(3_000_000, 'z'));
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        setImmediate(callback);
      },
    });
    const result = await diffLayer(upper, slow, { rootless: true });
    const data = Buffer.concat(received);
    assert.equal(result.size, data.length);
    assert.equal(result.diffId, `sha256:${createHash('sha256').update(data).digest('hex')}`);
    assert.equal(data.length % 512, 0);
    assert.equal(slow.writableEnded, false, 'the caller ends the destination');
  });

  it('refuses an upper directory written with metacopy or redirect_dir (its changes are partly elsewhere)', async () => {
    const upper = fresh();
    writeFileSync(join(upper, 'f'), '');
    lsetxattr(join(upper, 'f'), 'user.overlay.metacopy', Buffer.alloc(0));
    await assert.rejects(diff(upper, true), { code: 'ERR_UNSUPPORTED_OVERLAY', message: /metacopy=off,redirect_dir=off/ });
  });

  it('refuses a file name that is not UTF-8', async () => {
    const upper = fresh();
    writeFileSync(Buffer.concat([Buffer.from(`${upper}/`), Buffer.from([0x66, 0xff])]), 'x');
    await assert.rejects(diff(upper), { code: 'ERR_UNSUPPORTED_FILE_NAME' });
  });
});
