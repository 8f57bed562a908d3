/**
 * Images, side by side in one run: importing and unpacking the same image with corral and with
 * `umoci unpack`, and starting a container from an unpacked image against one from a plain
 * directory.
 *
 *   node --import tsx benchmarks/image.ts [--runs N]      (or: npm run bench:image)
 *
 * The image: busybox plus a layer of 4,000 files of 4 KiB, built with umoci. Prints medians and
 * ratios; it asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../lib/index.ts';

/** The median of a list of milliseconds. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Times fn once. */
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

const i = process.argv.indexOf('--runs');
const runs = i >= 0 ? Number(process.argv[i + 1]) : 300;
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs needs a positive integer, got '${process.argv[i + 1]}'`);
if (process.getuid!() !== 0) throw new Error('run as root (umoci unpack without --rootless)');

const work = mkdtempSync(join(tmpdir(), 'corral-bench-image-'));
try {
  const layout = buildImage(work);
  const imports: number[] = [];
  const umocis: number[] = [];
  for (let k = 0; k < 5; k++) {
    const root = join(work, `state-${k}`);
    imports.push(await time(() => new Runtime({ root, cgroupParent: false }).images.import(layout)));
    const bundle = join(work, `umoci-${k}`);
    umocis.push(await time(() => execFileSync('umoci', ['unpack', '--image', `${layout}:bench`, bundle])));
  }
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
  const times = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  for (const [, spec] of variants) for (let k = 0; k < 20; k++) await rt.run(spec);
  for (let done = 0; done < runs; done += 50) {
    for (const [name, spec] of variants) {
      for (let k = 0; k < Math.min(50, runs - done); k++) times.get(name)!.push(await time(() => rt.run(spec)));
    }
  }
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
