/**
 * Registries, side by side in one run against a local docker-registry (distribution 2.8): a cold
 * pull (including unpack for corral), a warm pull (every layer present), and pushes, with corral
 * and with skopeo (to an OCI layout, and to containers-storage with the vfs driver where it runs:
 * that one unpacks too). The pull image has 5 layers, 210 MB (base64 of random bytes: gzip gets it
 * to about 3/4); pushes go up with it and with a 2-layer image whose layers (about 63 MB each) are
 * larger than corral's chunk size, so they go up in PATCH chunks.
 *
 *   node --import tsx benchmarks/registry.ts [--runs N]      (or: npm run bench:registry; default 3)
 *
 * Each push goes to a fresh registry (skopeo's blob info cache would otherwise mount what it saw),
 * corral and skopeo in turn first. Prints medians and ratios of the wall time and of the CPU time
 * each costs (the tool plus the registry: steadier than wall time on a busy host); it asserts
 * nothing, but every timed run must succeed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
const FILE_BYTES = 2 << 20;

/** CPU ms from /proc/PID/stat: the process's own (utime + stime) or its waited-for children's
 * (cutime + cstime), at 100 ticks a second. */
function cpuMs(pid: number | 'self', children = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const [user, system] = children ? [fields[13], fields[14]] : [fields[11], fields[12]];
  return (Number(user) + Number(system)) * 10;
}

/** This process's CPU ms (for corral), precise to the microsecond. */
function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** An OCI layout of `layers` layers of `files` files of 2 MiB each, its image tagged `tag`. */
async function benchLayout(tag: string, layers: number, files: number): Promise<string> {
  const tars = await Promise.all(Array.from({ length: layers }, (_, l) => tarOf(Array.from({ length: files }, (_, f) => ({ name: `data${l}/f${f}`, content: randomBytes((FILE_BYTES / 4) * 3).toString('base64') })))));
  return layoutOf(join(work, tag), tag, tars.map((t) => Buffer.from(t)), { gzipLevel: 1 });
}

const skopeo = (...args: string[]): Promise<unknown> => run('skopeo', args, { maxBuffer: 64 << 20 });

try {
  const images = await Promise.all([
    { name: '5 layers', tag: 'five', layers: 5, files: 20 },
    { name: '2 large layers', tag: 'large', layers: 2, files: 40 },
  ].map(async (image) => ({ ...image, layout: await benchLayout(image.tag, image.layers, image.files) })));
  const registry = await startRegistry(join(work, 'registry'));
  const source = `${registry.host}/bench/app:1`;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${images[0]!.layout}:five`, `docker://${source}`);
  const times: Record<string, number[]> = {};
  const add = (name: string, ms: number): void => void (times[name] ??= []).push(ms);
  let storageWorks = process.getuid!() === 0;
  let targets = 0;
  /** Times fn once: its wall time, and the CPU of the tool (`cpu`) plus the registry's (`registryPid`). */
  const timed = async (name: string, cpu: () => number, registryPid: number, fn: () => Promise<unknown>): Promise<void> => {
    const [wall0, cpu0, registry0] = [performance.now(), cpu(), cpuMs(registryPid)];
    await fn();
    add(name, performance.now() - wall0);
    add(`${name} (cpu)`, cpu() - cpu0 + cpuMs(registryPid) - registry0);
  };
  const skopeoCpu = (): number => cpuMs('self', true);
  /** Times one push to a fresh registry. */
  const timedPush = async (name: string, cpu: () => number, push: (dest: string) => Promise<unknown>): Promise<void> => {
    const target = await startRegistry(join(work, `target-${targets++}`));
    await timed(name, cpu, target.pid, () => push(`${target.host}/bench/pushed:1`));
    await target.stop();
    rmSync(target.dir, { recursive: true, force: true });
  };
  for (let i = 0; i < runs; i++) {
    const rt = new Runtime({ root: join(work, `corral-${i}`), cgroupParent: false });
    await timed('pull cold: corral (with unpack)', ownCpuMs, registry.pid, () => rt.images.pull(source));
    await timed('pull warm: corral', ownCpuMs, registry.pid, () => rt.images.pull(source));
    await timed('push within the registry: corral (mounts)', ownCpuMs, registry.pid, () => rt.images.push(source, `${registry.host}/bench/mounted-${i}:1`));
    const oci = join(work, `oci-${i}`);
    await timed('pull cold: skopeo to oci', skopeoCpu, registry.pid, () => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, `oci:${oci}:x`));
    await timed('pull warm: skopeo to oci', skopeoCpu, registry.pid, () => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, `oci:${oci}:x`));
    for (const { name, tag, layout } of images) {
      // Named off the registry, so nothing can be mounted: every blob goes up, as with skopeo.
      await rt.images.import(layout, { tag: `bench-${tag}:${i}` });
      const pushes = [
        () => timedPush(`push ${name}: corral`, ownCpuMs, (dest) => rt.images.push(`bench-${tag}:${i}`, dest)),
        () => timedPush(`push ${name}: skopeo from oci`, skopeoCpu, (dest) => skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${dest}`)),
      ];
      for (const push of i % 2 ? pushes.reverse() : pushes) await push();
    }
    if (storageWorks) {
      const store = `containers-storage:[vfs@${join(work, `cs-${i}`)}+${join(work, `cs-run-${i}`)}]bench:1`;
      try {
        await timed('pull cold: skopeo to containers-storage (vfs, unpacks)', skopeoCpu, registry.pid, () => skopeo('copy', '--src-tls-verify=false', `docker://${source}`, store));
      } catch (error) {
        console.log(`containers-storage does not run here: ${(error as Error).message.split('\n')[0]}`);
        storageWorks = false;
      }
    }
  }
  await registry.stop();
  const m = (name: string): number => median(times[name] ?? [NaN]);
  const ratio = (label: string, a: string, b: string): void => console.log(`  ${`ratio ${label}:`.padEnd(62)} ${(m(a) / m(b)).toFixed(2)}x`);
  console.log(`registry: pulls of 5 layers, ${(5 * 20 * FILE_BYTES) / 1e6} MB; pushes of that and of 2 layers, ${(2 * 40 * FILE_BYTES) / 1e6} MB; ${runs} runs, medians`);
  for (const name of Object.keys(times)) console.log(`  ${name.padEnd(62)} ${m(name).toFixed(0).padStart(7)} ms`);
  ratio('cold pull corral (with unpack) / skopeo to oci', 'pull cold: corral (with unpack)', 'pull cold: skopeo to oci');
  if (times['pull cold: skopeo to containers-storage (vfs, unpacks)']) {
    ratio('cold pull corral / skopeo to containers-storage', 'pull cold: corral (with unpack)', 'pull cold: skopeo to containers-storage (vfs, unpacks)');
    ratio('cold pull corral / skopeo to containers-storage, cpu', 'pull cold: corral (with unpack) (cpu)', 'pull cold: skopeo to containers-storage (vfs, unpacks) (cpu)');
  }
  ratio('warm pull corral / skopeo', 'pull warm: corral', 'pull warm: skopeo to oci');
  for (const { name: image } of images) {
    ratio(`push ${image} corral / skopeo`, `push ${image}: corral`, `push ${image}: skopeo from oci`);
    ratio(`push ${image} corral / skopeo, cpu with the registry's`, `push ${image}: corral (cpu)`, `push ${image}: skopeo from oci (cpu)`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
