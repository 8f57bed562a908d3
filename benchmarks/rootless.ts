/**
 * Rootless start benchmark, side by side in one run: a container with the caller's subordinate
 * range in the process's shared user namespace (joined with setns, no handshake) and in a fresh one
 * of its own (userNamespace 'per-container': the newuidmap/newgidmap handshake, a fork-like clone)
 * against the single mapping (the child writes its own one-line maps on the CLONE_VM|CLONE_VFORK
 * path), the shared one with the range from an image, and `podman run --rm` rootless on that very image (vfs
 * storage, runc: crun refuses hybrid cgroups), with ratios.
 *
 *   setpriv --reuid=65534 --regid=65534 --clear-groups node --import tsx benchmarks/rootless.ts [--runs N]
 *
 * Must run as a user with a range in /etc/subuid and /etc/subgid and uidmap installed. Every
 * corral variant runs /bin/true in a busybox root (no cgroup, rootfsWritable 'direct' for the
 * rootfs ones, no network); podman gets a tenth of the runs (it is two orders slower), spread over
 * the same ten slices of the run. This prints numbers only: it asserts nothing about them.
 */
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { callerIdMap, isSingleIdMap } from '../lib/sys/id-map.ts';
import { removeTreeMapped } from '../lib/fs/remove-mapped.ts';
import { busyboxLayout } from '../test/image-fixtures.ts';
import { interleaved, median, runsArg, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'benchmarks/rootless.ts');
if (process.getuid!() === 0) throw new Error('run this as an unprivileged user with a subordinate range (setpriv --reuid=...)');
if (isSingleIdMap(callerIdMap())) throw new Error(`uid ${process.getuid!()} has no subordinate range in /etc/subuid and /etc/subgid, or uidmap is missing`);

interface Variant {
  name: string;
  once: () => Promise<number>;
}

/** CPU ms this process and its reaped children (containers, helpers) used so far: under a load
 * that stretches wall times, what a start costs the machine (clock ticks of 10 ms, so only the sum
 * over many runs means anything). */
function cpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) * 10;
}

/** The variant with its CPU ms added up in cpu (by name). */
function withCpu(v: Variant, cpu: Map<string, number>): Variant {
  return { name: v.name, once: async () => {
    const c0 = cpuMs();
    const ms = await v.once();
    cpu.set(v.name, (cpu.get(v.name) ?? 0) + cpuMs() - c0);
    return ms;
  } };
}

/** podman rootless on the image at layout:base, its storage in work (a short path: podman refuses
 * a runroot over 50 characters), or why it cannot run here. */
async function podmanVariant(work: string, layout: string): Promise<Variant | string> {
  for (const tool of ['podman', 'runc']) if (spawnSync(tool, ['--version']).status !== 0) return `${tool} is not installed`;
  const podman = ['--root', join(work, 'root'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const env = { ...process.env, XDG_RUNTIME_DIR: join(work, 'xdg') };
  mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  // As an OCI archive: podman pull oci:DIR names the image after DIR, which may not be a valid name.
  const archive = join(work, 'image.tar');
  spawnSync('tar', ['-C', layout, '-cf', archive, '.']);
  const loaded = spawnSync('podman', [...podman, 'load', '-q', '-i', archive], { env, encoding: 'utf8' });
  if (loaded.status !== 0) return `podman load failed: ${loaded.stderr.trim()}`;
  const image = spawnSync('podman', [...podman, 'images', '-q'], { env, encoding: 'utf8' }).stdout.trim().split('\n')[0]!;
  const run = promisify(execFile);
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    await run('podman', [...podman, 'run', '--rm', '--network', 'none', image, '/bin/true'], { env });
    return performance.now() - t0;
  };
  try {
    await once();
  } catch (e) {
    return `podman run failed: ${(e as { stderr?: string }).stderr?.trim() ?? String(e)}`;
  }
  return { name: 'podman run --rm (rootless, same image, runc)', once };
}

const work = mkdtempSync(join(tmpdir(), 'corral-bench-rootless-'));
const podmanWork = mkdtempSync('/tmp/corral-bench-podman-');
try {
  const root = join(work, 'root');
  for (const dir of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));
  const spec: ContainerSpec = { rootfs: root, command: ['/bin/true'], rootfsWritable: 'direct', network: 'none' };
  const single = new Runtime({ root: join(work, 'single'), cgroupParent: false, idMap: 'single' });
  const range = new Runtime({ root: join(work, 'range'), cgroupParent: false, idMap: 'auto' });
  const perContainer = new Runtime({ root: join(work, 'per-container'), cgroupParent: false, idMap: 'auto', userNamespace: 'per-container' });
  const layout = busyboxLayout(mkdtempSync(join(work, 'image-')));
  await range.images.import(layout);
  const imageSpec: ContainerSpec = { image: 'base:latest', command: ['/bin/true'], network: 'none' };
  const cpu = new Map<string, number>();
  const variants: Variant[] = ([
    { name: 'single mapping, rootfs (vfork, child writes its maps)', once: () => timedRun(single, spec, 'single') },
    { name: 'subordinate range, rootfs (shared user namespace)', once: () => timedRun(range, spec, 'range') },
    { name: 'subordinate range, image (shared, overlay in memory)', once: () => timedRun(range, imageSpec, 'range image') },
    { name: 'subordinate range, rootfs (per-container, newuidmap)', once: () => timedRun(perContainer, spec, 'per-container') },
  ] as Variant[]).map((v) => withCpu(v, cpu));
  for (const v of variants) for (let i = 0; i < 20; i++) await v.once();
  cpu.clear();
  const podman = await podmanVariant(podmanWork, layout);
  // Ten slices, each the corral variants interleaved and then podman's share.
  const samples = new Map(variants.map((v) => [v, [] as number[]]));
  const podmanSamples: number[] = [];
  const slices = 10;
  for (let slice = 0; slice < slices; slice++) {
    for (const [v, xs] of await interleaved(variants, Math.ceil(runs / slices), 25, (x) => x.once())) samples.get(v)!.push(...xs);
    if (typeof podman !== 'string') for (let i = 0; i < Math.max(1, Math.round(runs / 10 / slices)); i++) podmanSamples.push(await podman.once());
  }
  const medians = variants.map((v) => median(samples.get(v)!));
  for (const [i, v] of variants.entries()) console.log(`${v.name.padEnd(58)} median ${medians[i]!.toFixed(2)} ms, CPU ${(cpu.get(v.name)! / samples.get(v)!.length).toFixed(2)} ms (${samples.get(v)!.length} runs)`);
  console.log(`the range costs ${(medians[1]! - medians[0]!).toFixed(2)} ms per container start in the shared user namespace (${(medians[1]! / medians[0]!).toFixed(2)}x the single mapping; target +0.5 ms), ${(medians[3]! - medians[0]!).toFixed(2)} ms in one of its own (${(medians[3]! / medians[0]!).toFixed(2)}x)`);
  if (typeof podman === 'string') console.log(`podman: not run (${podman})`);
  else {
    const p = median(podmanSamples);
    console.log(`${podman.name.padEnd(58)} median ${p.toFixed(2)} ms (${podmanSamples.length} runs)`);
    console.log(`corral with the range vs podman on the same image: ${(medians[2]! / p).toFixed(3)}x (target 0.05x)`);
  }
} finally {
  // podman keeps a pause process (its long-lived user namespace) per XDG_RUNTIME_DIR: ours goes.
  try {
    process.kill(Number(readFileSync(join(podmanWork, 'xdg/libpod/tmp/pause.pid'), 'utf8')), 'SIGKILL');
  } catch { /* podman did not run, or left none */ }
  // podman's user namespace has the same map as corral's: what either shifted goes through it.
  for (const dir of [work, podmanWork]) await removeTreeMapped(dir, callerIdMap());
}
