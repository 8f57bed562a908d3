/**
 * Dockerfile builds, corral against buildah (Debian's, `--storage-driver vfs --isolation chroot`),
 * side by side in one run: each Dockerfile of a small corpus built cold (no cache) and warm (all
 * cached) by both from the same busybox base, then both results exported to OCI layouts, unpacked
 * with umoci and compared: the file trees (path, type, mode, owner, size, content, link target) and
 * the config fields. Prints times, ratios and every difference. Must run as root.
 *
 *   node --import tsx benchmarks/build.ts [--runs N]      (N: rounds per measurement, default 1: about 35 s)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../lib/index.ts';
import { busyboxLayout, contextOf } from '../test/image-fixtures.ts';
import { median } from './common.ts';

const CORPUS: Record<string, Record<string, string>> = {
  'run-copy-env': {
    Dockerfile: 'FROM base\nARG NAME=world\nENV GREETING="hello $NAME" PATH=/bin\nWORKDIR /app\nCOPY src/ ./src/\nCOPY --chmod=0755 run.sh /usr/local/bin/run.sh\nRUN echo "$GREETING" > greeting && mkdir -p /var/data && touch /var/data/x\nRUN rm /etc/doomed\nUSER 1000:1000\nEXPOSE 8080\nLABEL app=demo\nCMD ["/usr/local/bin/run.sh"]\n',
    'src/a.txt': 'a\n', 'src/sub/b.txt': 'b\n', 'run.sh': '#!/bin/sh\necho run\n',
  },
  'multi-stage': {
    Dockerfile: 'FROM base AS build\nRUN mkdir /out && for i in 1 2 3 4 5; do echo file $i > /out/f$i; done\nFROM base\nCOPY --from=build /out /opt/out\nRUN ls /opt/out > /opt/list\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["cat /opt/list"]\n',
  },
  'add-and-mounts': {
    Dockerfile: 'FROM base\nADD app.tgz /opt/app/\nRUN --mount=type=cache,target=/cache touch /cache/x && test -e /cache/x && echo ok > /opt/cache-ok\nRUN --mount=type=bind,source=pkg,target=/src cp /src/bin/tool /opt/tool\nRUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && cat /scratch/t > /opt/t\n',
    'pkg/bin/tool': '#!/bin/sh\necho tool\n', 'pkg/share/doc/README': 'readme\n', 'pkg/share/doc/NEWS': 'news\n',
  },
  // two independent stages that wait (a download, a compiler): corral builds them at once
  'parallel-stages': {
    Dockerfile: 'FROM base AS one\nRUN sleep 1 && echo one > /one\nFROM base AS two\nRUN sleep 1 && echo two > /two\nFROM base\nCOPY --from=one /one /\nCOPY --from=two /two /\n',
  },
  'many-files': {
    Dockerfile: 'FROM base\nCOPY tree/ /tree/\nRUN find /tree -type f | wc -l > /count\nVOLUME /data\nSTOPSIGNAL SIGINT\n',
    ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`tree/d${i % 10}/f${i}.txt`, `content ${i}\n`.repeat(20)])),
  },
};

/** Files a context needs that are made, not written: ADD's archive (gzip tar) of pkg/. */
const PREPARE: Record<string, (ctx: string) => void> = {
  'add-and-mounts': (ctx) => execFileSync('tar', ['-czf', join(ctx, 'app.tgz'), '--owner=0', '--group=0', '-C', join(ctx, 'pkg'), '.']),
};

const rounds = Number(/--runs[= ](\d+)/.exec(process.argv.slice(2).join(' '))?.[1] ?? 1);
// lower case: buildah names an image pulled from a layout after the layout's path
const work = join(tmpdir(), `corral-bench-build-${process.pid}`);
mkdirSync(work);
const store = ['--storage-driver', 'vfs', '--root', join(work, 'buildah'), '--runroot', join(work, 'buildah-run')];
const buildah = (...args: string[]): string => execFileSync('buildah', [...store, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** path → 'type mode uid:gid size sha|target' for every entry of an unpacked rootfs. */
function tree(root: string, dir = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = `${dir}/${name}`;
    const path = join(root, rel);
    const st = lstatSync(path);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
    const what = type === 'file' ? createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12) : type === 'link' ? readlinkSync(path) : '';
    out.set(rel, `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${type === 'file' ? st.size : ''} ${what}`);
    if (type === 'dir') for (const [k, v] of tree(root, rel)) out.set(k, v);
  }
  return out;
}

function unpack(layout: string, tag: string, into: string): { rootfs: Map<string, string>; config: Record<string, unknown> } {
  execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, into], { stdio: 'ignore' });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string): { config?: { digest: string }; config_?: unknown } => JSON.parse(readFileSync(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const manifest = blob(index.manifests[0]!.digest) as { config: { digest: string } };
  const config = (blob(manifest.config.digest) as { config?: Record<string, unknown> }).config ?? {};
  return { rootfs: tree(join(into, 'rootfs')), config };
}

/** What buildah leaves that BuildKit and corral do not: its RUN mount points (empty files) and its
 * version label. Counted apart, not as differences. */
const BUILDAH_ARTIFACTS = new Set(['/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/run']);

const FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Labels', 'Volumes', 'StopSignal'];

function withoutVersion(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  const { 'io.buildah.version': _, ...rest } = labels ?? {};
  return Object.keys(rest).length === 0 ? undefined : rest;
}

async function main(): Promise<void> {
  if (process.getuid!() !== 0) throw new Error('benchmarks/build.ts runs as root (buildah vfs)');
  const layout = busyboxLayout(work);
  const rt = new Runtime({ root: join(work, 'corral'), cgroupParent: false });
  await rt.images.import(layout);
  buildah('pull', '-q', `oci:${layout}:base`);
  buildah('tag', buildah('images', '-q').trim().split('\n')[0]!, 'docker.io/library/base:latest');
  console.log(`build benchmark: median of ${rounds} rounds; cold = no cache, warm = every step cached\n`);
  console.log('dockerfile      corral cold  buildah cold  ratio | corral warm  buildah warm  ratio');
  let differences = 0;
  for (const [name, files] of Object.entries(CORPUS)) {
    const ctx = contextOf(join(work, `ctx-${name}`), files);
    PREPARE[name]?.(ctx);
    const tag = `bench-${name}:1`;
    const t = { cc: [] as number[], bc: [] as number[], cw: [] as number[], bw: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      t.cc.push(await time(() => rt.images.build({ context: ctx, tag, noCache: true })));
      t.bc.push(await time(() => buildah('bud', '--isolation', 'chroot', '--layers', '--no-cache', '-q', '-t', tag, ctx)));
      t.cw.push(await time(() => rt.images.build({ context: ctx, tag })));
      t.bw.push(await time(() => buildah('bud', '--isolation', 'chroot', '--layers', '-q', '-t', tag, ctx)));
    }
    const [cc, bc, cw, bw] = [median(t.cc), median(t.bc), median(t.cw), median(t.bw)];
    console.log(`${name.padEnd(15)} ${cc.toFixed(0).padStart(8)} ms ${bc.toFixed(0).padStart(10)} ms  ${(cc / bc).toFixed(2)}x | ${cw.toFixed(0).padStart(8)} ms ${bw.toFixed(0).padStart(10)} ms  ${(cw / bw).toFixed(2)}x`);
    await rt.images.export(tag, join(work, `oci-corral-${name}`), { format: 'oci-layout' });
    buildah('push', '-q', tag, `oci:${join(work, `oci-buildah-${name}`)}:x`);
    const ours = unpack(join(work, `oci-corral-${name}`), tag.replace(/^/, ''), join(work, `u-corral-${name}`));
    const theirs = unpack(join(work, `oci-buildah-${name}`), 'x', join(work, `u-buildah-${name}`));
    for (const path of new Set([...ours.rootfs.keys(), ...theirs.rootfs.keys()])) {
      const [a, b] = [ours.rootfs.get(path), theirs.rootfs.get(path)];
      // mtimes differ by nature (not compared); directories made by a step carry no content
      if (a === undefined && BUILDAH_ARTIFACTS.has(path)) continue;
      if (a !== b) {
        differences++;
        console.log(`  tree ${path}: corral ${a ?? '(absent)'} | buildah ${b ?? '(absent)'}`);
      }
    }
    for (const field of FIELDS) {
      const theirValue = field === 'Labels' ? withoutVersion(theirs.config.Labels as Record<string, string> | undefined) : theirs.config[field];
      const [a, b] = [JSON.stringify(ours.config[field] ?? null), JSON.stringify(theirValue ?? null)];
      if (a !== b) {
        differences++;
        console.log(`  config ${field}: corral ${a} | buildah ${b}`);
      }
    }
  }
  console.log(`\n${differences} difference(s) between the corral and buildah results (buildah's own ${[...BUILDAH_ARTIFACTS].join(', ')} and io.buildah.version label left out)`);
}

main().finally(() => rmSync(work, { recursive: true, force: true }));
