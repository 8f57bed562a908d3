import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { BlobStore } from '../../lib/image/blob-store.ts';
import { sha256Digest } from '../../lib/image/digest.ts';
import { detectFormat } from '../../lib/image/formats/detect.ts';
import { openDockerArchive } from '../../lib/image/formats/docker-archive.ts';
import { openImageSource } from '../../lib/image/formats/io.ts';
import { openOciArchive } from '../../lib/image/formats/oci-archive.ts';
import { openOciLayout } from '../../lib/image/formats/oci-layout.ts';
import { hostPlatform } from '../../lib/image/formats/platform.ts';
import type { ImageSource, SourceImage } from '../../lib/image/formats/source.ts';
import { TarIndex } from '../../lib/image/tar/tar-index.ts';
import { writeDockerArchive } from '../../lib/image/formats/write-docker-archive.ts';
import { writeOciArchive } from '../../lib/image/formats/write-oci-archive.ts';
import { writeOciLayout } from '../../lib/image/formats/write-oci-layout.ts';
import { MEDIA_TYPE, REF_NAME, type ImageConfig, type ImageIndex, type ImageManifest } from '../../lib/image/oci.ts';
import { requirePrerequisite } from '../helpers.ts';

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function hasTool(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

async function readAll(source: ImageSource): Promise<SourceImage[]> {
  try {
    return await source.images();
  } finally {
    await source.close();
  }
}

/** Copies every blob of a source's images into a store, as an import would, verifying each. */
async function copyToStore(source: ImageSource, store: BlobStore): Promise<SourceImage[]> {
  try {
    const images = await source.images();
    for (const image of images) {
      const descriptors = [
        { digest: image.manifestDigest, size: image.manifestSize },
        image.manifest.config,
        ...image.manifest.layers,
      ];
      for (const { digest, size } of descriptors) await store.put(await source.openBlob(digest), { digest, size });
    }
    return images;
  } finally {
    await source.close();
  }
}

describe('image formats', function () {
  this.timeout(120_000);
  let root: string;
  let layout: string; // umoci's OCI layout, tag 't'
  let dockerTar: string; // skopeo docker-archive of it, 'name:t'
  let ociTar: string; // skopeo oci-archive of it, 't'

  before(function () {
    requirePrerequisite(this, hasTool('skopeo') && hasTool('umoci') ? null : 'skopeo and umoci are needed (apt-get install -y skopeo umoci)');
    root = mkdtempSync(join(tmpdir(), 'corral-formats-'));
    layout = join(root, 'L');
    dockerTar = join(root, 'docker.tar');
    ociTar = join(root, 'oci.tar');
    // A two-layer busybox image: /bin/busybox and /bin/sh, then /etc/motd.
    mkdirSync(join(root, 'r1', 'bin'), { recursive: true });
    mkdirSync(join(root, 'r2'), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'r1', 'bin', 'busybox'));
    chmodSync(join(root, 'r1', 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', join(root, 'r1', 'bin', 'sh'));
    writeFileSync(join(root, 'r2', 'motd'), 'hello\n');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:t`]);
    run('umoci', ['insert', '--image', `${layout}:t`, join(root, 'r1', 'bin'), '/bin']);
    run('umoci', ['insert', '--image', `${layout}:t`, join(root, 'r2', 'motd'), '/etc/motd']);
    run('umoci', ['config', '--image', `${layout}:t`, '--config.cmd', '/bin/sh', '--config.env', 'PATH=/bin']);
    run('umoci', ['gc', '--layout', layout]);
    run('skopeo', ['copy', `oci:${layout}:t`, `docker-archive:${dockerTar}:name:t`]);
    run('skopeo', ['copy', `oci:${layout}:t`, `oci-archive:${ociTar}:t`]);
  });

  after(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  describe('detectFormat', () => {
    it('tells the three formats apart', async () => {
      assert.equal(await detectFormat(layout), 'oci-layout');
      assert.equal(await detectFormat(ociTar), 'oci-archive');
      assert.equal(await detectFormat(dockerTar), 'docker-archive');
    });

    it('refuses what is not an image, saying why', async () => {
      const text = join(root, 'not-an-image.txt');
      writeFileSync(text, 'x'.repeat(2000));
      const gz = join(root, 'image.tar.gz');
      writeFileSync(gz, gzipSync(readFileSync(ociTar)));
      const emptyDir = join(root, 'empty-dir');
      mkdirSync(emptyDir, { recursive: true });
      const otherTar = join(root, 'other.tar');
      run('tar', ['-cf', otherTar, '-C', root, 'r2']);
      await assert.rejects(detectFormat(text), { code: 'ERR_UNKNOWN_IMAGE_FORMAT', message: /not a tar archive/ });
      await assert.rejects(detectFormat(gz), { code: 'ERR_UNKNOWN_IMAGE_FORMAT', message: /gzip/ });
      await assert.rejects(detectFormat(emptyDir), { code: 'ERR_UNKNOWN_IMAGE_FORMAT', message: /oci-layout/ });
      await assert.rejects(detectFormat(otherTar), { code: 'ERR_UNKNOWN_IMAGE_FORMAT', message: /manifest\.json/ });
    });
  });

  describe('readers', () => {
    it('read the same image from an OCI layout, an OCI archive and a docker archive', async () => {
      const [fromLayout] = await readAll(await openOciLayout(layout));
      const [fromOciTar] = await readAll(await openOciArchive(ociTar));
      const fromDocker = await readAll(await openDockerArchive(dockerTar));
      assert.ok(fromLayout && fromOciTar);
      assert.equal(fromDocker.length, 1);
      const docker = fromDocker[0]!;

      assert.equal(fromLayout.ref, 't');
      assert.deepEqual(fromOciTar, fromLayout);
      assert.equal(fromLayout.manifest.layers.length, 2);
      assert.ok(fromLayout.manifest.layers.every((layer) => layer.mediaType === MEDIA_TYPE.layerGzip));
      assert.deepEqual(fromLayout.config.config?.Cmd, ['/bin/sh']);
      assert.equal(fromLayout.config.rootfs.diff_ids.length, 2);

      // skopeo keeps the config and stores the layers uncompressed, so they are named by their DiffIDs.
      assert.equal(docker.ref, 'docker.io/library/name:t');
      assert.equal(docker.configDigest, fromLayout.configDigest);
      assert.deepEqual(docker.config, fromLayout.config);
      assert.deepEqual(docker.manifest.config, fromLayout.manifest.config);
      assert.deepEqual(
        docker.manifest.layers.map((layer) => [layer.mediaType, layer.digest]),
        fromLayout.config.rootfs.diff_ids.map((diffId) => [MEDIA_TYPE.layer, diffId]),
      );
      assert.equal(docker.manifestDigest, sha256Digest(JSON.stringify(docker.manifest)));
    });

    it('serve blobs that match their descriptors (each is verified on the way into a store)', async () => {
      for (const open of [() => openOciLayout(layout), () => openOciArchive(ociTar), () => openDockerArchive(dockerTar)]) {
        const store = new BlobStore(join(mkdtempSync(join(root, 'store-')), 'blobs'));
        const [image] = await copyToStore(await open(), store);
        assert.deepEqual(await store.readJson<ImageManifest>(image!.manifestDigest), image!.manifest);
        assert.equal(store.list().length, 4);
      }
    });

    it('open what openImageSource detects', async () => {
      const images = await readAll(await openImageSource(dockerTar));
      assert.equal(images[0]!.ref, 'docker.io/library/name:t');
    });

    it('read a docker archive with gzip layers and several tags', async () => {
      const [image] = await readAll(await openOciLayout(layout));
      const blob = (digest: string): Buffer => readFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)));
      const archive = join(root, 'docker-gzip.tar');
      const pack = tar.pack();
      const written = pipeline(pack, createWriteStream(archive));
      const layerNames = image!.manifest.layers.map((layer) => `${layer.digest.slice(7)}.tar.gz`);
      pack.entry(
        { name: 'manifest.json' },
        JSON.stringify([{ Config: 'config.json', RepoTags: ['a:1', 'b:2'], Layers: layerNames.map((name) => `./${name}`) }]),
      );
      pack.entry({ name: 'config.json' }, blob(image!.configDigest));
      image!.manifest.layers.forEach((layer, i) => pack.entry({ name: layerNames[i]! }, blob(layer.digest)));
      pack.finalize();
      await written;

      const images = await readAll(await openDockerArchive(archive));
      assert.deepEqual(images.map((entry) => entry.ref), ['a:1', 'b:2']);
      assert.deepEqual(images[0]!.manifest.layers, image!.manifest.layers);
      assert.equal(images[0]!.configDigest, image!.configDigest);
    });

    it('follow nested indexes to the manifest of this platform', async () => {
      const store = new BlobStore(join(mkdtempSync(join(root, 'multi-')), 'blobs'));
      const host = hostPlatform();
      const other = { os: 'linux', architecture: host.architecture === 'amd64' ? 'arm64' : 'amd64' };
      const manifestFor = async (platform: { os: string; architecture: string }) => {
        const layer = await store.put(Buffer.from(`layer for ${platform.architecture}`));
        const config: ImageConfig = { ...platform, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
        const configBlob = await store.put(Buffer.from(JSON.stringify(config)));
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MEDIA_TYPE.manifest,
          config: { mediaType: MEDIA_TYPE.config, ...configBlob },
          layers: [{ mediaType: MEDIA_TYPE.layer, ...layer }],
        };
        return { mediaType: MEDIA_TYPE.manifest, ...(await store.put(Buffer.from(JSON.stringify(manifest)))), platform };
      };
      const putIndex = async (manifests: ImageIndex['manifests']) => {
        const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests };
        return { mediaType: MEDIA_TYPE.index, ...(await store.put(Buffer.from(JSON.stringify(index)))) };
      };
      const mine = await manifestFor(host);
      const theirs = await manifestFor(other);
      const inner = await putIndex([theirs, mine]);
      const outer = await putIndex([inner]);
      const foreign = await putIndex([theirs]);

      const dir = join(root, 'multi-layout');
      await writeOciLayout(dir, [{ ref: 'multi', manifestDigest: outer.digest, manifestSize: outer.size }], store);
      const [image] = await readAll(await openOciLayout(dir));
      assert.equal(image!.ref, 'multi');
      assert.equal(image!.manifestDigest, mine.digest);
      assert.equal(image!.config.architecture, host.architecture);
      const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
      assert.deepEqual(index.manifests, [{ mediaType: MEDIA_TYPE.index, digest: outer.digest, size: outer.size, annotations: { [REF_NAME]: 'multi' } }]);

      const foreignDir = join(root, 'foreign-layout');
      await writeOciLayout(foreignDir, [{ ref: 'arm', manifestDigest: foreign.digest }], store);
      await assert.rejects(readAll(await openOciLayout(foreignDir)), { code: 'ERR_NO_MATCHING_PLATFORM' });
    });

    it('refuse a tampered or hostile layout', async () => {
      const copy = join(root, 'tampered');
      run('cp', ['-r', layout, copy]);
      const index = JSON.parse(readFileSync(join(copy, 'index.json'), 'utf8')) as ImageIndex;
      const manifestPath = join(copy, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7));
      writeFileSync(manifestPath, readFileSync(manifestPath, 'utf8').replace('"schemaVersion":2', '"schemaVersion":2 '));
      await assert.rejects(readAll(await openOciLayout(copy)), { code: 'ERR_DIGEST_MISMATCH' });

      index.manifests[0]!.digest = 'sha256:../../../../../../etc/passwd';
      writeFileSync(join(copy, 'index.json'), JSON.stringify(index));
      await assert.rejects(readAll(await openOciLayout(copy)), { code: 'ERR_INVALID_DIGEST' });

      writeFileSync(join(copy, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
      await assert.rejects(openOciLayout(copy), { code: 'ERR_INVALID_IMAGE', message: /imageLayoutVersion/ });
    });
  });

  describe('writers', () => {
    let store: BlobStore;
    let image: SourceImage;
    let dockerImage: SourceImage;

    before(async () => {
      store = new BlobStore(join(root, 'store', 'blobs'));
      [image] = (await copyToStore(await openOciArchive(ociTar), store)) as [SourceImage];
      [dockerImage] = (await copyToStore(await openDockerArchive(dockerTar), store)) as [SourceImage];
    });

    it('write an OCI layout that skopeo and umoci accept', async () => {
      const out = join(root, 'out-layout');
      await writeOciLayout(out, [{ ref: 't', manifestDigest: image.manifestDigest, manifestSize: image.manifestSize }], store);
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
      const [again] = await readAll(await openOciLayout(out));
      assert.deepEqual(again, image);

      // skopeo copy to dir: reads every blob and checks its digest.
      run('skopeo', ['copy', `oci:${out}:t`, `dir:${join(root, 'out-dir')}`]);
      const bundle = join(root, 'bundle');
      run('umoci', ['unpack', '--image', `${out}:t`, bundle]);
      assert.equal(readFileSync(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8'), 'hello\n');
      assert.deepEqual(readFileSync(join(bundle, 'rootfs', 'bin', 'busybox')), readFileSync('/bin/busybox'));
    });

    it('write an OCI layout that oci-image-tool validates', async function () {
      requirePrerequisite(this, hasTool('oci-image-tool') ? null : 'oci-image-tool is needed (apt-get install -y oci-image-tool)');
      const out = join(root, 'out-layout-validated');
      await writeOciLayout(out, [{ ref: 't', manifestDigest: image.manifestDigest, manifestSize: image.manifestSize }], store);
      // Debian's oci-image-tool 1.0.0-rc1 says `--type imageLayout` is "unimplemented"; `--type image`
      // on a directory autodetects the layout and validates it (index, manifests, configs, blob digests).
      const output = run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=t', out]);
      assert.match(output, /Validation succeeded/);
    });

    it('rewrite the index of an existing layout, keeping the blobs it has', async () => {
      const out = join(root, 'out-layout-2');
      await writeOciLayout(out, [{ ref: 'a', manifestDigest: image.manifestDigest }], store);
      const configPath = join(out, 'blobs', 'sha256', image.configDigest.slice(7));
      const configInode = statSync(configPath).ino;
      await writeOciLayout(
        out,
        [
          { ref: 'a', manifestDigest: image.manifestDigest },
          { ref: 'b', manifestDigest: dockerImage.manifestDigest },
        ],
        store,
      );
      const images = await readAll(await openOciLayout(out));
      assert.deepEqual(images.map((entry) => [entry.ref, entry.manifestDigest]), [
        ['a', image.manifestDigest],
        ['b', dockerImage.manifestDigest],
      ]);
      assert.equal(statSync(configPath).ino, configInode);
      run('skopeo', ['copy', `oci:${out}:b`, `dir:${join(root, 'out-dir-2')}`]);
    });

    it('refuse to write an image whose blobs are missing', async () => {
      const partial = new BlobStore(join(root, 'partial', 'blobs'));
      await partial.put(await store.read(image.manifestDigest));
      await assert.rejects(
        writeOciLayout(join(root, 'never'), [{ ref: 't', manifestDigest: image.manifestDigest }], partial),
        { code: 'ERR_BLOB_NOT_FOUND' },
      );
      await assert.rejects(
        writeOciLayout(join(root, 'never'), [{ manifestDigest: image.manifestDigest, manifestSize: 1 }], store),
        { code: 'ERR_DIGEST_MISMATCH' },
      );
    });

    it('write an OCI archive that skopeo reads', async () => {
      const out = join(root, 'out-oci.tar');
      await writeOciArchive(out, [{ ref: 't', manifestDigest: image.manifestDigest }], store);
      assert.equal(await detectFormat(out), 'oci-archive');
      const [again] = await readAll(await openOciArchive(out));
      assert.deepEqual(again, image);
      run('skopeo', ['copy', `oci-archive:${out}:t`, `dir:${join(root, 'out-oci-dir')}`]);
    });

    it('write a docker archive from gzip layers, unpacked and checked against diff_ids', async () => {
      const out = join(root, 'out-docker.tar');
      await writeDockerArchive(out, [{ ref: 'name:t', manifestDigest: image.manifestDigest }, { ref: 'other', manifestDigest: image.manifestDigest }], store);
      const manifestList = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }));
      const diffIds = image.config.rootfs.diff_ids;
      assert.deepEqual(manifestList, [
        {
          Config: `${image.configDigest.slice(7)}.json`,
          RepoTags: ['name:t', 'other:latest'],
          Layers: diffIds.map((diffId) => `${diffId.slice(7)}/layer.tar`),
        },
      ]);

      const inspected = JSON.parse(run('skopeo', ['inspect', `docker-archive:${out}:name:t`]));
      assert.deepEqual(inspected.Layers, diffIds);
      const config = JSON.parse(run('skopeo', ['inspect', '--config', `docker-archive:${out}:other:latest`]));
      assert.deepEqual(config, image.config);
      run('skopeo', ['copy', `docker-archive:${out}:name:t`, `dir:${join(root, 'out-docker-dir')}`]);

      const [again] = await readAll(await openDockerArchive(out));
      assert.equal(again!.configDigest, image.configDigest);
      assert.deepEqual(again!.manifest.layers.map((layer) => layer.digest), diffIds);
    });

    it('write a docker archive from plain layers, byte for byte', async () => {
      const out = join(root, 'out-docker-plain.tar');
      await writeDockerArchive(out, [{ ref: 'plain:1', manifestDigest: dockerImage.manifestDigest }], store);
      const [again] = await readAll(await openDockerArchive(out));
      assert.deepEqual(again, { ...dockerImage, ref: 'plain:1' });
      assert.equal(JSON.parse(run('skopeo', ['inspect', `docker-archive:${out}`])).Digest.startsWith('sha256:'), true);
    });

    it('refuse a docker archive whose layers do not match the config', async () => {
      const config = { ...image.config, rootfs: { type: 'layers' as const, diff_ids: [...image.config.rootfs.diff_ids].reverse() } };
      const configBlob = await store.put(Buffer.from(JSON.stringify(config)));
      const manifest = { ...image.manifest, config: { ...image.manifest.config, ...configBlob } };
      const manifestBlob = await store.put(Buffer.from(JSON.stringify(manifest)));
      const out = join(root, 'never.tar');
      await assert.rejects(writeDockerArchive(out, [{ ref: 'bad:1', manifestDigest: manifestBlob.digest }], store), {
        code: 'ERR_DIGEST_MISMATCH',
      });
      assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('never.tar')), []);
    });
  });

  describe('TarIndex', () => {
    it('reads GNU and pax long names, ./ prefixes, hard links and symlinks', async () => {
      const src = join(root, 'tar-src');
      const long = `${'d'.repeat(90)}/${'f'.repeat(120)}`;
      mkdirSync(join(src, 'd'.repeat(90)), { recursive: true });
      writeFileSync(join(src, long), 'long');
      writeFileSync(join(src, 'plain'), 'plain');
      run('ln', [join(src, 'plain'), join(src, 'hard')]);
      symlinkSync('plain', join(src, 'soft'));
      symlinkSync('/../../etc/passwd', join(src, 'escape'));
      for (const format of ['gnu', 'pax']) {
        const archive = join(root, `names-${format}.tar`);
        run('tar', ['-cf', archive, `--format=${format}`, '-C', src, '.']);
        const index = await TarIndex.open(archive);
        try {
          assert.equal((await index.read(long)).toString(), 'long', format);
          assert.equal((await index.read('./plain')).toString(), 'plain');
          assert.equal((await index.read('hard')).toString(), 'plain');
          assert.equal((await index.read('/soft')).toString(), 'plain');
          assert.equal(index.has('escape'), false);
        } finally {
          await index.close();
        }
      }
      const truncated = join(root, 'truncated.tar');
      writeFileSync(truncated, readFileSync(join(root, 'names-gnu.tar')).subarray(0, 1500));
      await assert.rejects(TarIndex.open(truncated), { code: 'ERR_INVALID_ARCHIVE' });
    });
  });
});
