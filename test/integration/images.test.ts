import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, deriveImage, layoutOf, tarOf, umoci } from '../image-fixtures.ts';
import { openFds, removeWork, rootless, singleIdRootless } from '../helpers.ts';
import { blobStaging, storedBlobs, storedLayers } from '../image-store-contents.ts';
import { CorralError } from '../../lib/sys/errors.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

/** The store behind a runtime's images, with the layer and blob stores its public type hides. */

describe(`images (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let layout: string;
  let rt: Runtime;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-images-'));
    layout = busyboxLayout(work);
    deriveImage(work, layout, 'base', 'derived', { 'data/big': Buffer.alloc(3 * 1024 * 1024, 7), 'etc/motd': 'derived\n' }, ['etc/doomed']);
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
  });
  after(async () => {
    await removeWork(work);
  });

  it('imports an OCI layout made by umoci and runs its command, env and user', async () => {
    const imported = await rt.images.import(layout, { format: 'oci-layout' });
    assert.deepEqual(imported.flatMap((i) => i.tags).sort(), ['base:latest', 'derived:latest']);
    await assert.rejects(rt.images.import(layout, { tag: 'one:name' }), { code: 'ERR_INVALID_ARG_VALUE' });
    const ref = 'base:latest';
    const r = await rt.run({ image: ref });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), 'hi from image\n');
    const env = await rt.run({ image: ref, command: sh('echo $FROM_IMAGE $MINE; id -u'), env: { MINE: 'spec' } });
    assert.equal(env.stdout.toString(), 'yes spec\n0\n');
    // Another user needs ids beyond the caller's: as root, or rootless with a subordinate range.
    const user = await rt.run({ image: ref, command: ['id', '-u'], ...(singleIdRootless ? {} : { user: { uid: 1000, gid: 1000 } }) });
    assert.equal(user.stdout.toString().trim(), singleIdRootless ? '0' : '1000');
  });

  it('imports the same image from a docker archive and an OCI archive (skopeo), sharing layers', async () => {
    const docker = join(work, 'docker.tar');
    const ociArchive = join(work, 'oci.tar');
    execFileSync('skopeo', ['copy', `oci:${layout}:derived`, `docker-archive:${docker}:corral/derived:1`], { stdio: 'ignore' });
    execFileSync('skopeo', ['copy', `oci:${layout}:derived`, `oci-archive:${ociArchive}:derived-oci`], { stdio: 'ignore' });
    const layersBefore = storedLayers(join(work, 'state')).length;
    const [fromDocker] = await rt.images.import(docker);
    const [fromOci] = await rt.images.import(ociArchive, { tag: 'derived:oci' });
    // Tags are stored in Docker's short form: every spelling of a reference names the same image.
    assert.deepEqual(fromDocker!.tags, ['corral/derived:1']);
    for (const spelling of ['docker.io/corral/derived:1', 'index.docker.io/corral/derived:1', `corral/derived:1@${fromDocker!.manifestDigest}`, fromDocker!.manifestDigest.slice(7, 19)]) {
      assert.equal((await rt.images.inspect(spelling)).manifestDigest, fromDocker!.manifestDigest, spelling);
    }
    // the OCI archive holds the very manifest the layout's 'derived' has: one image, two tags
    assert.deepEqual(fromOci!.tags, ['derived:latest', 'derived:oci']);
    assert.deepEqual(fromDocker!.layers.map((l) => l.diffId), fromOci!.layers.map((l) => l.diffId));
    // the layout's import stored both layers already: the archives add none
    assert.equal(storedLayers(join(work, 'state')).length, layersBefore);
    const r = await rt.run({ image: 'docker.io/corral/derived:1', command: sh('cat /etc/motd; test -e /etc/doomed || echo doomed-gone; wc -c < /data/big') });
    assert.equal(r.stdout.toString(), 'derived\ndoomed-gone\n3145728\n');
  });

  it('imports and runs an image whose layers skopeo compressed with zstd', async () => {
    const zstdLayout = join(work, 'zstd-layout');
    execFileSync('skopeo', ['copy', '--dest-compress-format', 'zstd', `oci:${layout}:derived`, `oci:${zstdLayout}:zstd`], { stdio: 'ignore' });
    const manifest = JSON.parse(readFileSync(join(zstdLayout, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
    const layers = JSON.parse(readFileSync(join(zstdLayout, 'blobs/sha256', manifest), 'utf8')).layers as { mediaType: string }[];
    assert.ok(layers.every((l) => l.mediaType.endsWith('+zstd')), JSON.stringify(layers));
    const [image] = await rt.images.import(zstdLayout, { tag: 'derived:zstd' });
    assert.deepEqual(image!.layers.map((l) => l.diffId), (await rt.images.inspect('derived:latest')).layers.map((l) => l.diffId));
    const r = await rt.run({ image: 'derived:zstd', command: sh('cat /etc/motd') });
    assert.equal(r.stdout.toString(), 'derived\n');
  });

  it('counts shared base layers once in diskUsage', async () => {
    const only = new Runtime({ root: join(work, 'state-du'), cgroupParent: false });
    await only.images.import(layout);
    const du = only.images.diskUsage();
    const derived = await only.images.inspect('derived:latest');
    const [baseLayer, extra] = derived.layers;
    assert.equal(baseLayer!.sharedWith.length, 1, 'the base layer is shared with base');
    assert.equal(du.totalBytes, baseLayer!.unpackedBytes + extra!.unpackedBytes);
    assert.equal(du.sharedBytes, baseLayer!.unpackedBytes);
    assert.ok(extra!.unpackedBytes >= 3 * 1024 * 1024);
  });

  it('exports layouts that skopeo, umoci and oci-image-tool accept, with the same tree', async () => {
    const out = join(work, 'exported');
    await rt.images.tag('docker.io/corral/derived:1', 'exported:1');
    await rt.images.export('exported:1', out, { format: 'oci-layout' });
    execFileSync('skopeo', ['copy', `oci:${out}:exported:1`, `dir:${join(work, 'skopeo-dir')}`]);
    execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=exported:1', out]);
    umoci('unpack', '--image', `${out}:exported:1`, join(work, 'ours'));
    umoci('unpack', '--image', `${layout}:derived`, join(work, 'theirs'));
    const list = (dir: string): string => execFileSync('sh', ['-c', `cd ${dir}/rootfs && find . | sort`], { encoding: 'utf8' });
    assert.equal(list(join(work, 'ours')), list(join(work, 'theirs')));
    await rt.images.export('docker.io/corral/derived:1', join(work, 'exported.tar'), { format: 'docker-archive' });
    assert.match(execFileSync('skopeo', ['inspect', `docker-archive:${join(work, 'exported.tar')}`], { encoding: 'utf8' }), /"Layers"/);
  });

  it('commits a container: the change is there, a deleted file is gone', async () => {
    await using c = await rt.create({ image: 'docker.io/corral/derived:1', command: sh('echo new > /etc/added; rm /etc/motd; touch /etc/ready; sleep 100') });
    await c.start();
    // Both changes are made before the commit: wait for the marker written after them.
    for (let i = 0; i < 500 && !existsSync(`/proc/${c.pid}/root/etc/ready`); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(existsSync(`/proc/${c.pid}/root/etc/ready`), 'the container made its changes');
    const { manifestDigest } = await c.commit({ ref: 'committed:1', message: 'test commit', changes: { Cmd: ['/bin/sh', '-c', 'cat /etc/added'] } });
    assert.match(manifestDigest, /^sha256:/);
    const r = await rt.run({ image: 'committed:1' });
    assert.equal(r.stdout.toString(), 'new\n');
    const gone = await rt.run({ image: 'committed:1', command: sh('test -e /etc/motd && echo present || echo gone') });
    assert.equal(gone.stdout.toString(), 'gone\n');
    const info = await rt.images.inspect('committed:1');
    assert.equal(info.layers.length, 3);
    assert.equal(info.config.history!.at(-1)!.comment, 'test commit');
  });

  it('a failed commit leaves no fd open and no staging file behind (issue 10 item 13)', async () => {
    const root = join(work, 'state');
    const blobsBefore = storedBlobs(root);
    await using c = await rt.create({ image: 'docker.io/corral/derived:1', command: sh("touch \"$(printf '\\377')\"; touch /ready; sleep 100") });
    await c.start();
    for (let i = 0; i < 100 && !existsSync(`/proc/${c.pid}/root/ready`); i++) await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(c.commit({ ref: 'never:1' }), { code: 'ERR_UNSUPPORTED_FILE_NAME' });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(blobStaging(root), []);
    const intoStore = openFds().map((fd) => fdTarget(fd)).filter((target) => target.startsWith(join(root, 'images')));
    assert.deepEqual(intoStore, [], 'no fd left open on the store');
    assert.deepEqual(storedBlobs(root), blobsBefore);
    await assert.rejects(rt.images.inspect('never:1'), { code: 'ERR_IMAGE_NOT_FOUND' });
  });

  it('reports a missing source as a CorralError naming it, not a raw Node error', async () => {
    await assert.rejects(rt.images.import('/nope.tar'), (e: unknown) => e instanceof CorralError && e.code === 'ENOENT' && e.path === '/nope.tar' && /import an image/.test(e.message));
  });

  it('refuses hostile layers and leaves the store as it was', async () => {
    const before = { images: rt.images.list().length, layers: storedLayers(join(work, 'state')), blobs: storedBlobs(join(work, 'state')) };
    const cases: [string, Buffer[], object][] = [
      ['dotdot', [await tarOf([{ name: '../escape', content: 'x' }])], {}],
      ['absolute', [await tarOf([{ name: '/etc/evil', content: 'x' }])], {}],
      ['through-symlink', [await tarOf([{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/evil', content: 'x' }])], {}],
      ['hardlink-out', [await tarOf([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }])], {}],
    ];
    for (const [name, layers] of cases) {
      const dir = layoutOf(join(work, `hostile-${name}`), name, layers);
      await assert.rejects(rt.images.import(dir), (e: { code: string }) => ['ERR_INVALID_LAYER', 'ERR_DIGEST_MISMATCH'].includes(e.code), name);
    }
    const corrupt = layoutOf(join(work, 'hostile-digest'), 'corrupt', [await tarOf([{ name: 'f', content: 'x'.repeat(1000) }])], { corruptLayer: 0 });
    await assert.rejects(rt.images.import(corrupt), (e: { code: string }) => ['ERR_DIGEST_MISMATCH', 'Z_BUF_ERROR', 'ERR_INVALID_LAYER'].includes(e.code));
    assert.equal(rt.images.list().length, before.images);
    assert.deepEqual(storedLayers(join(work, 'state')), before.layers);
    assert.deepEqual(storedBlobs(join(work, 'state')), before.blobs, 'a failed import takes its blobs back out');
    await rt.images.gc();
    assert.equal(existsSync(join(work, '..', 'escape')), false);
    assert.ok(!readdirSync(join(work, 'state/images/layers')).some((n) => n.startsWith('.tmp-')));
  });

  it('imports two images that share layers at once, storing the shared layer once', async () => {
    const fresh = new Runtime({ root: join(work, 'state-concurrent'), cgroupParent: false });
    const a = join(work, 'a.tar');
    const b = join(work, 'b.tar');
    execFileSync('skopeo', ['copy', `oci:${layout}:derived`, `oci-archive:${a}:a`], { stdio: 'ignore' });
    execFileSync('skopeo', ['copy', `oci:${layout}:base`, `oci-archive:${b}:b`], { stdio: 'ignore' });
    const other = new Runtime({ root: join(work, 'state-concurrent'), cgroupParent: false });
    await Promise.all([fresh.images.import(a), other.images.import(b)]);
    assert.deepEqual(fresh.images.list().flatMap((i) => i.tags).filter((t) => t === 'a:latest' || t === 'b:latest').sort(), ['a:latest', 'b:latest']);
    assert.equal(storedLayers(join(work, 'state-concurrent')).length, 2);
  });

  it('runs an image of 200 layers (overlay options fit in a page)', async () => {
    const layers = [
      await tarOfBuffer('bin/busybox', readFileSync('/bin/busybox')),
      ...await Promise.all(Array.from({ length: 199 }, (_, i) => tarOf([{ name: `f${i + 1}`, content: String(i + 1) }]))),
    ];
    const dir = layoutOf(join(work, 'tall'), 'tall', layers);
    await rt.images.import(dir);
    const r = await rt.run({ image: 'tall:latest', command: ['/bin/busybox', 'sh', '-c', 'cat /f1 /f199; /bin/busybox ls / | /bin/busybox wc -l'] });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    // f1 and f199 (no newlines), then the entries of /: bin, 199 files, and the mount points.
    const m = /^1199(\d+)\n$/.exec(r.stdout.toString());
    assert.ok(m && Number(m[1]) >= 200, r.stdout.toString());
  });

  it('leaves no half-image after a kill -9 mid-import, and gc reclaims the debris', async () => {
    const root = join(work, 'state-crash');
    const script = fileURLToPath(new URL('../fixtures/import-image.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, root, join(work, 'tall')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('layer')) resolve(); }));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = new Runtime({ root, cgroupParent: false });
    assert.deepEqual(after.images.list(), []);
    const result = await after.images.gc();
    assert.ok(result.blobs + result.layers + result.debris > 0, JSON.stringify(result));
    assert.deepEqual(storedLayers(root), []);
    assert.deepEqual(storedBlobs(root), []);
  });

  it('tags, refuses to remove an image in use, and removes it after', async () => {
    await rt.images.tag('docker.io/corral/derived:1', 'alias:x');
    await using c = await rt.create({ image: 'alias:x', command: ['sleep', '100'] });
    await c.start();
    await rt.images.remove('docker.io/corral/derived:1');
    await rt.images.remove('exported:1');
    await assert.rejects(rt.images.remove('alias:x'), { code: 'ERR_IMAGE_IN_USE' });
    await c.remove({ force: true });
    await rt.images.remove('alias:x');
    await assert.rejects(rt.images.inspect('alias:x'), { code: 'ERR_IMAGE_NOT_FOUND' });
    await assert.rejects(rt.run({ image: 'nope:1', pull: 'never' }), { code: 'ERR_IMAGE_NOT_FOUND' });
  });
});

/** Where an fd of this process points ('' when it closed meanwhile). */
function fdTarget(fd: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
}

/** A one-file layer whose content is binary. */
async function tarOfBuffer(name: string, content: Buffer): Promise<Buffer> {
  const { pack } = await import('tar-stream');
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  p.entry({ name: 'bin', type: 'directory', mode: 0o755 });
  p.entry({ name, mode: 0o755 }, content);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}
