/**
 * Images, side by side in one run: importing and unpacking the same image with corral and with
 * `umoci unpack`, and starting a container from an unpacked image against one from a plain
 * directory.
 *
 *   node --import tsx benchmarks/image.ts [--runs N]      (or: npm run bench:image)
 *
 * The image: busybox plus a layer of 4,000 files of 4 KiB, built with umoci. Prints medians and
 * ratios; it asserts nothing, but every timed run must succeed (a container must exit 0).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { interleaved, median, runsArg, timedRun } from './common.ts';

/** Times fn once (it throws on failure: execFileSync on a non-zero exit, import on a bad image). */
async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** A layout 'L:bench': busybox, then 4,000 small files. */
function buildImage(work: string): string {
  const layout = join(work, 'L');
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:bench`]);
  execFileSync('umoci', ['unpack', '--image', `${layout}:bench`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(join(rootfs, 'bin'));
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  symlinkSync('busybox', join(rootfs, 'bin/true'));
  execFileSync('umoci', ['repack', '--image', `${layout}:bench`, bundle]);
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(rootfs, 'data', String(d)), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(rootfs, 'data', String(d), String(f)), Buffer.alloc(4096, f));
  }
  execFileSync('umoci', ['repack', '--image', `${layout}:bench`, bundle]);
  rmSync(bundle, { recursive: true, force: true });
  return layout;
}

const runs = runsArg(process.argv.slice(2), 'image.ts');
if (process.getuid!() !== 0) throw new Error('run as root (umoci unpack without --rootless)');

const work = mkdtempSync(join(tmpdir(), 'corral-bench-image-'));
try {
  const layout = buildImage(work);
  // Each call unpacks into a fresh directory (state-N, umoci-N), the two tools in a shuffled order.
  const next = { corral: 0, umoci: 0 };
  const unpackers = [
    () => time(() => new Runtime({ root: join(work, `state-${next.corral++}`), cgroupParent: false }).images.import(layout)),
    () => time(() => execFileSync('umoci', ['unpack', '--image', `${layout}:bench`, join(work, `umoci-${next.umoci++}`)])),
  ];
  const unpacks = await interleaved(unpackers, 5, 1, (unpack) => unpack());
  const imports = unpacks.get(unpackers[0]!)!;
  const umocis = unpacks.get(unpackers[1]!)!;
  const imp = median(imports);
  const umo = median(umocis);
  console.log('image benchmark: busybox + 4,000 files of 4 KiB (2 layers)');
  console.log(`import + unpack  corral ${imp.toFixed(1)} ms   umoci unpack ${umo.toFixed(1)} ms   corral/umoci ${(imp / umo).toFixed(2)}x (target <= 1.00x: ${imp <= umo ? 'met' : 'not met'})`);

  // Start-up: the image (overlay over its layers) against its unpacked tree as a plain directory.
  const rt = new Runtime({ root: join(work, 'state-0'), cgroupParent: false });
  const plain = join(work, 'umoci-0', 'rootfs');
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(plain, d), { recursive: true });
  const base: ContainerSpec = { command: ['/bin/true'], network: 'host', stdio: 'ignore' };
  const variants: [string, ContainerSpec][] = [
    ['plain directory (overlay)', { ...base, rootfs: plain }],
    ['plain directory (direct)', { ...base, rootfs: plain, rootfsWritable: 'direct' }],
    ['image', { ...base, image: 'bench:latest' }],
  ];
  const once = ([name, spec]: [string, ContainerSpec]) => timedRun(rt, spec, name);
  await interleaved(variants, 20, 20, once);
  const samples = await interleaved(variants, runs, 50, once);
  const times = new Map([...samples].map(([[name], ms]) => [name, ms]));
  const overlay = median(times.get('plain directory (overlay)')!);
  for (const [name] of variants) {
    const m = median(times.get(name)!);
    console.log(`start ${name.padEnd(26)} median ${m.toFixed(3)} ms   vs plain (overlay) ${(m - overlay >= 0 ? '+' : '')}${(m - overlay).toFixed(3)} ms`);
  }
  const image = median(times.get('image')!);
  console.log(`target: image within 0.3 ms of a plain directory: ${image - overlay <= 0.3 ? 'met' : 'not met'}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
