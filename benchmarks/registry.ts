/**
 * Registries, side by side in one run against a local docker-registry (distribution 2.8): a cold
 * pull (including unpack for corral), a warm pull (every layer present), and a push of the same
 * 5-layer, 210 MB image (base64 of random bytes: gzip gets it to about 3/4), with corral and with skopeo (to an OCI layout, and to containers-storage
 * with the vfs driver where it runs: that one unpacks too).
 *
 *   node --import tsx benchmarks/registry.ts [--runs N]      (or: npm run bench:registry; default 3)
 *
 * Prints medians and ratios; it asserts nothing, but every timed run must succeed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Runtime } from '../lib/index.ts';
import { layoutOf, tarOf } from '../test/image-fixtures.ts';
import { startRegistry } from '../test/registry-fixtures.ts';
import { median, runsArg } from './common.ts';

const run = promisify(execFile);
const runs = process.argv.includes('--runs') || process.argv.some((a) => a.startsWith('--runs=')) ? runsArg(process.argv.slice(2), 'benchmarks/registry.ts') : 3;
const work = mkdtempSync(join(tmpdir(), 'corral-bench-registry-'));
const LAYERS = 5;
const FILES = 20;
const FILE_BYTES = 2 << 20;

/** Times fn once. */
async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const skopeo = (...args: string[]): Promise<unknown> => run('skopeo', args, { maxBuffer: 64 << 20 });

try {
  const layers = await Promise.all(Array.from({ length: LAYERS }, (_, l) => tarOf(Array.from({ length: FILES }, (_, f) => ({ name: `data${l}/f${f}`, content: randomBytes((FILE_BYTES / 4) * 3).toString('base64') })))));
  const layout = layoutOf(join(work, 'layout'), 'bench', layers.map((t) => Buffer.from(t)), { gzipLevel: 1 });
  const registry = await startRegistry(join(work, 'registry'));
  const source = `${registry.host}/bench/app:1`;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${source}`);
  const times: Record<string, number[]> = {};
  const add = (name: string, ms: number): void => void (times[name] ??= []).push(ms);
  let storageWorks = process.getuid!() === 0;
  for (let i = 0; i < runs; i++) {
    // Pushes go to a new registry each run: skopeo's blob info cache would otherwise know where the
    // blobs are and mount them instead of uploading.
    const target = await startRegistry(join(work, `target-${i}`));
    const rt = new Runtime({ root: join(work, `corral-${i}`), cgroupParent: false });
    add('pull cold: corral (with unpack)', await time(() => rt.images.pull(source)));
    add('pull warm: corral', await time(() => rt.images.pull(source)));
    // Named off the registry, so nothing can be mounted: every blob goes up, as with skopeo.
    await rt.images.tag(source, `bench-local:${i}`);
    add('push: corral', await time(() => rt.images.push(`bench-local:${i}`, `${target.host}/bench/corral:1`)));
    add('push within the registry: corral (mounts)', await time(() => rt.images.push(source, `${registry.host}/bench/mounted-${i}:1`)));
    const oci = join(work, `oci-${i}`);
    add('pull cold: skopeo to oci', await time(() => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, `oci:${oci}:x`)));
    add('pull warm: skopeo to oci', await time(() => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, `oci:${oci}:x`)));
    add('push: skopeo from oci', await time(() => skopeo('copy', '--dest-tls-verify=false', `oci:${oci}:x`, `docker://${target.host}/bench/skopeo:1`)));
    await target.stop();
    if (storageWorks) {
      const store = `containers-storage:[vfs@${join(work, `cs-${i}`)}+${join(work, `cs-run-${i}`)}]bench:1`;
      try {
        add('pull cold: skopeo to containers-storage (vfs, unpacks)', await time(() => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, store)));
      } catch (error) {
        console.log(`containers-storage does not run here: ${(error as Error).message.split('\n')[0]}`);
        storageWorks = false;
      }
    }
  }
  await registry.stop();
  const m = (name: string): number => median(times[name] ?? [NaN]);
  console.log(`registry: ${LAYERS} layers, ${(LAYERS * FILES * FILE_BYTES) / 1e6} MB, ${runs} runs, medians`);
  for (const name of Object.keys(times)) console.log(`  ${name.padEnd(58)} ${m(name).toFixed(0).padStart(7)} ms`);
  console.log(`  ratio cold pull corral (with unpack) / skopeo to oci:         ${(m('pull cold: corral (with unpack)') / m('pull cold: skopeo to oci')).toFixed(2)}x`);
  if (times['pull cold: skopeo to containers-storage (vfs, unpacks)']) {
    console.log(`  ratio cold pull corral / skopeo to containers-storage:        ${(m('pull cold: corral (with unpack)') / m('pull cold: skopeo to containers-storage (vfs, unpacks)')).toFixed(2)}x`);
  }
  console.log(`  ratio warm pull corral / skopeo:                              ${(m('pull warm: corral') / m('pull warm: skopeo to oci')).toFixed(2)}x`);
  console.log(`  ratio push corral / skopeo:                                   ${(m('push: corral') / m('push: skopeo from oci')).toFixed(2)}x`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
