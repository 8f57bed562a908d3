/**
 * What the container's overlay costs per start, mounted from fds (the new mount API: every layer a
 * detached clone, so mountinfo shows no host path) against mount(2) from paths (the fallback for
 * kernels that take no layers by fd) and against no overlay at all (rootfsWritable 'direct'), side
 * by side in one run, for a rootfs directory and for images of 1 and 40 layers; bwrap with the
 * same root bound read-only is the outside peer.
 *
 *   node --import tsx benchmarks/overlay.ts [--runs N]      (or: npm run bench:overlay)
 *
 * /bin/true, pid+mount+uts+ipc namespaces, network host, no cgroup (as benchmarks/hardening.ts);
 * the writable layer in memory, as run() has it. The fallback is forced the way the security
 * tests force it (liftedDefences.overlayFromPaths). Prints medians, low deciles and ratios;
 * asserts nothing, but every timed run must exit 0.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { liftedDefences } from '../lib/spawn/lifted-defences.ts';
import { overlayMount } from '../lib/fs/overlay-probe.ts';
import { layoutOf, tarOf } from '../test/image-fixtures.ts';
import { interleaved, quantile, runsArg, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'overlay.ts');
const work = mkdtempSync(join(tmpdir(), 'corral-bench-overlay-'));

interface Variant {
  name: string;
  run: () => Promise<number>;
}

try {
  const root = join(work, 'root');
  for (const dir of ['bin', 'proc', 'dev', 'tmp', 'sys']) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));

  const rt = new Runtime({ root: join(work, 'runtime'), cgroupParent: false });
  const base = execFileSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 64 << 20 });
  for (const count of [1, 40]) {
    const extra = await Promise.all(Array.from({ length: count - 1 }, (_, i) => tarOf([{ name: `layer${i}`, content: `${i}\n` }])));
    await rt.images.import(layoutOf(join(work, `layout-${count}`), `layers:${count}`, [base, ...extra.map((t) => Buffer.from(t))]), { format: 'oci-layout' });
  }

  const common: ContainerSpec = { command: ['/bin/true'], network: 'host', stdio: 'ignore' };
  const corral = (name: string, spec: ContainerSpec, fromPaths: boolean): Variant => ({
    name,
    run: async () => {
      liftedDefences.overlayFromPaths = fromPaths;
      try {
        return await timedRun(rt, { ...common, ...spec }, name);
      } finally {
        liftedDefences.overlayFromPaths = false;
      }
    },
  });
  const variants: Variant[] = [
    corral("rootfs, 'direct' (no overlay)", { rootfs: root, rootfsWritable: 'direct' }, false),
    corral('rootfs, overlay from paths', { rootfs: root }, true),
    corral('rootfs, overlay from fds', { rootfs: root }, false),
    corral('image of 1 layer, from paths', { image: 'layers:1' }, true),
    corral('image of 1 layer, from fds', { image: 'layers:1' }, false),
    corral('image of 40 layers, from paths', { image: 'layers:40' }, true),
    corral('image of 40 layers, from fds', { image: 'layers:40' }, false),
  ];
  const bwrapArgs = ['--unshare-all', '--share-net', '--ro-bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true'];
  if (spawnSync('bwrap', bwrapArgs).status === 0) {
    variants.push({
      name: 'bwrap --ro-bind (no overlay)',
      run: async () => {
        const t0 = performance.now();
        execFileSync('bwrap', bwrapArgs, { stdio: 'ignore' });
        return performance.now() - t0;
      },
    });
  }
  await interleaved(variants, 20, 20, (v) => v.run());
  const samples = await interleaved(variants, runs, 50, (v) => v.run());
  // The low decile as well: on a loaded machine it shows what a start costs better than the median.
  const at = (name: string, q: number): number => quantile(samples.get(variants.find((v) => v.name === name)!)!, q);
  console.log(`overlay benchmark, ${runs} runs per variant; this kernel mounts overlays from ${overlayMount()}`);
  const width = Math.max(...variants.map((v) => v.name.length)) + 2;
  const pairs: Record<string, string> = {
    'rootfs, overlay from fds': 'rootfs, overlay from paths',
    'image of 1 layer, from fds': 'image of 1 layer, from paths',
    'image of 40 layers, from fds': 'image of 40 layers, from paths',
  };
  console.log(`${'variant'.padEnd(width)}${'median'.padStart(8)}${'p10'.padStart(8)}   vs from paths (median, p10)`);
  for (const v of variants) {
    const peer = pairs[v.name];
    const ratio = peer ? `   ${(at(v.name, 0.5) / at(peer, 0.5)).toFixed(2)}x, ${(at(v.name, 0.1) / at(peer, 0.1)).toFixed(2)}x` : '';
    console.log(`${v.name.padEnd(width)}${at(v.name, 0.5).toFixed(3).padStart(8)}${at(v.name, 0.1).toFixed(3).padStart(8)}${ratio}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
