// Test images, made with the real tools (umoci, skopeo) or, for hostile and odd layouts, by hand.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { rootless } from './helpers.ts';

const umociFlags = rootless ? ['--rootless'] : [];

/** Runs umoci, rootless when the tests are. */
export function umoci(...args: string[]): string {
  const [sub, ...rest] = args;
  const flags = sub === 'unpack' ? umociFlags : [];
  return execFileSync('umoci', [sub!, ...flags, ...rest], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A layout with tag 'base': busybox in /bin, /etc/passwd with a user 'app' (1000), Cmd printing a greeting. */
export function busyboxLayout(work: string): string {
  const layout = join(work, 'layout');
  const bundle = join(work, 'bundle-base');
  umoci('init', '--layout', layout);
  umoci('new', '--image', `${layout}:base`);
  umoci('unpack', '--image', `${layout}:base`, bundle);
  const rootfs = join(bundle, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'dev', 'sys', 'home/app']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const a of ['sh', 'cat', 'ls', 'echo', 'true', 'rm', 'touch', 'id', 'mkdir', 'pwd', 'env', 'test', 'wc', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\n');
  writeFileSync(join(rootfs, 'etc/doomed'), 'delete me\n');
  umoci('repack', '--image', `${layout}:base`, bundle);
  umoci('config', '--image', `${layout}:base`, '--config.cmd', '/bin/sh', '--config.cmd', '-c', '--config.cmd', 'echo hi from image',
    '--config.env', 'FROM_IMAGE=yes', '--config.env', 'PATH=/bin');
  rmSync(bundle, { recursive: true, force: true });
  return layout;
}

/** Adds a tag 'to' = 'from' plus one layer with the given files (and deletions). */
export function deriveImage(work: string, layout: string, from: string, to: string, files: Record<string, string | Buffer>, deletes: string[] = []): void {
  const bundle = join(work, `bundle-${to}`);
  umoci('tag', '--image', `${layout}:${from}`, to);
  umoci('unpack', '--image', `${layout}:${to}`, bundle);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(bundle, 'rootfs', path, '..'), { recursive: true });
    writeFileSync(join(bundle, 'rootfs', path), content);
  }
  for (const path of deletes) unlinkSync(join(bundle, 'rootfs', path));
  umoci('repack', '--image', `${layout}:${to}`, bundle);
  rmSync(bundle, { recursive: true, force: true });
}

/** A tar made by hand: entries as tar-stream headers with optional content. */
export async function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; content?: string; linkname?: string; mode?: number }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), ...(e.linkname ? { linkname: e.linkname } : {}) };
    if (type === 'file') p.entry(header, e.content ?? '');
    else p.entry(header);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI layout written by hand from layer tars (gzipped), tagged ref; returns the layout path. */
export function layoutOf(dir: string, ref: string, layerTars: Buffer[], options: { corruptLayer?: number; gzipLevel?: number } = {}): string {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (data: Buffer): string => {
    const digest = sha(data);
    writeFileSync(join(dir, 'blobs/sha256', digest.slice(7)), data);
    return digest;
  };
  const layers = layerTars.map((tar, i) => {
    const gz = gzipSync(tar, options.gzipLevel === undefined ? {} : { level: options.gzipLevel });
    const digest = put(gz);
    if (options.corruptLayer === i) writeFileSync(join(dir, 'blobs/sha256', digest.slice(7)), Buffer.concat([gz.subarray(0, gz.length - 10), Buffer.alloc(10)]));
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: gz.length };
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layerTars.map(sha) } }));
  const configDigest = put(config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers }));
  const manifestDigest = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': ref } }] }));
  return dir;
}

/** A build context directory holding the given files (made, with their parents). */
export function contextOf(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}
