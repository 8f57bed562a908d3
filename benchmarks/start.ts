/**
 * Container start benchmark: corral against bubblewrap (and runc/crun when they work on this host),
 * side by side in one run.
 *
 *   node --import tsx benchmarks/start.ts [--runs N]      (or: npm run bench)
 *
 * Every variant runs /bin/true in the same throwaway busybox root with pid, mount, uts, ipc and
 * cgroup namespaces, once without and once with a network namespace. Latency is measured from the
 * start call to the awaited exit, in interleaved rounds so machine noise hits every variant alike.
 * Must run as root. This prints numbers only: it asserts nothing about them.
 */
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, release, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../lib/index.ts';
import { cpuTimes, installed, interleaved, runsArg, spawnQuiet } from './common.ts';

// The comparison rows: bwrap makes no cgroup and binds the root as it is, so corral runs without a
// cgroup and with rootfsWritable 'direct' there. The default-spec rows (printed first) use a
// runtime with cgroups, as a user's `run({ rootfs, command })` gets.
const runtime = new Runtime({ cgroupParent: false });

const WARMUP = 20;
const ROUND = 50;
const THROUGHPUT_MS = 2000;
const TARGET = 0.30;

/** One way of starting a container, timed as a unit. */
interface Variant {
  name: string;
  /** Starts one container and resolves once it has exited with status 0. */
  start: () => Promise<void>;
}

/** Builds the smallest root the variants share: static busybox as /bin/true and /bin/sh, and the
 * empty mount points corral, bwrap and runc mount over. */
function buildRoot(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const dir of ['proc', 'dev', 'tmp']) mkdirSync(join(root, dir));
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  symlinkSync('busybox', join(root, 'bin', 'true'));
  symlinkSync('busybox', join(root, 'bin', 'sh'));
}

/** Writes a minimal OCI bundle (config.json only; root.path points at the shared root). */
function writeBundle(dir: string, root: string, netns: boolean): void {
  mkdirSync(dir);
  const namespaces = ['pid', 'mount', 'uts', 'ipc', 'cgroup', ...(netns ? ['network'] : [])].map((type) => ({ type }));
  const config = {
    ociVersion: '1.0.2',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/' },
    root: { path: root, readonly: false },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
    ],
    linux: { namespaces },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
}

/** Removes the temp dir, first detaching anything still mounted below it so rm cannot walk into a
 * leaked mount. */
function cleanup(dir: string): void {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
      .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(dir + '/')))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) {
      console.error(`warning: ${m} was still mounted; detaching it`);
      execFileSync('umount', ['-l', m]);
    }
  } catch (e) {
    console.error(`warning: could not check mounts under ${dir}: ${(e as Error).message}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Runs a command once with stderr captured, to decide whether a tool works here and say why not. */
function probe(cmd: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.once('error', (e) => resolve(e.message));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(null);
      else resolve(stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? `exited with ${signal ?? code}, no stderr`);
    });
  });
}

/** First line of `cmd --version`, for the header. */
function version(cmd: string): string | null {
  try {
    return execFileSync(cmd, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return null;
  }
}

/** cgroup v2, v1 or hybrid: runc and crun behave differently on each. */
function cgroupMode(): string {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'v2';
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) return 'hybrid';
  return 'v1';
}

/** CPU ticks of the whole machine and of this process with its reaped children (bwrap, runc and the
 * containers themselves), to tell afterwards how much of the machine something else was using. */
function cpuSnapshot(): { total: number; busy: number; ours: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = cpu[3]! + cpu[4]!;
  const total = cpu.reduce((a, b) => a + b, 0);
  // /proc/self/stat: fields after the ")" of comm; utime, stime, cutime, cstime are fields 14-17.
  const self = readFileSync('/proc/self/stat', 'utf8');
  const fields = self.slice(self.lastIndexOf(')') + 2).split(' ');
  const ours = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return { total, busy: total - idle, ours };
}

/** CPU ticks of each kernel thread (children of kthreadd), to single out the work the kernel does
 * asynchronously for us: network namespaces and cgroups are torn down by kworkers after exit. */
function kernelThreadTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[1] === '2') ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // The thread exited while we looked.
    }
  }
  return ticks;
}

/** The value at fraction p of sorted samples, linearly interpolated. */
function percentile(sorted: number[], p: number): number {
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Median, p90 and mean of a variant's latencies in ms. */
function stats(samples: number[]): { median: number; p90: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
  };
}

/** Runs every variant `total` times in interleaved rounds of ROUND sequential starts (shuffled
 * per round, see interleaved) and returns each variant's per-container latencies (ms). */
function measureInterleaved(variants: Variant[], total: number): Promise<Map<Variant, number[]>> {
  return interleaved(variants, total, ROUND, async (v) => {
    const t0 = performance.now();
    await v.start();
    return performance.now() - t0;
  });
}

/** Keeps `inFlight` containers running until THROUGHPUT_MS have passed or `max` have been started,
 * and returns completed containers per second over the whole span. */
async function throughput(v: Variant, inFlight: number, max: number): Promise<{ perSec: number; count: number; seconds: number }> {
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (started < max && performance.now() - t0 < THROUGHPUT_MS) {
      started++;
      await v.start();
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { perSec: done / seconds, count: done, seconds };
}

/** Label of the isolation a variant has, as used in the output. */
function isolation(netns: boolean): string {
  return netns ? 'netns' : 'no netns';
}

/** The default spec first, then one default removed at a time (the issue's breakdown), against
 * `bwrap --unshare-all --ro-bind ROOT / --proc /proc --dev /dev`; then the CPU each costs per
 * container: Node's user and system time and the reaped children's; then the default's throughput
 * with 8 in flight beside bwrap's. */
async function defaultSpecBreakdown(root: string, dir: string, runs: number): Promise<void> {
  const withCgroups = new Runtime({ root: join(dir, 'state') });
  type Spec = Parameters<Runtime['run']>[0];
  const steps: [string, Spec][] = [
    ['default run({ rootfs, command })', {}],
    ['  network host', { network: 'host' }],
    ["  + rootfsWritable 'direct'", { network: 'host', rootfsWritable: 'direct' }],
    ["  + seccomp 'unconfined'", { network: 'host', rootfsWritable: 'direct', seccomp: 'unconfined' }],
  ];
  const variants: Variant[] = steps.map(([name, extra]) => ({
    name,
    start: async () => {
      const r = await withCgroups.run({ command: ['/bin/true'], rootfs: root, stdio: 'ignore', ...extra });
      if (r.exitCode !== 0) throw new Error(`${name}: /bin/true exited with ${r.signal ?? r.exitCode}`);
    },
  }));
  variants.push({
    name: '  + no cgroup',
    start: async () => {
      const r = await runtime.run({ command: ['/bin/true'], rootfs: root, stdio: 'ignore', network: 'host', rootfsWritable: 'direct', seccomp: 'unconfined' });
      if (r.exitCode !== 0) throw new Error(`no cgroup: /bin/true exited with ${r.signal ?? r.exitCode}`);
    },
  });
  const bwrapAll = ['--unshare-all', '--ro-bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true'];
  const bwrapWhy = installed('bwrap') ? await probe('bwrap', bwrapAll) : 'bwrap is not installed';
  if (bwrapWhy === null) variants.push({ name: 'bwrap --unshare-all', start: () => spawnQuiet('bwrap', bwrapAll) });
  else console.log(`skipped bwrap --unshare-all: ${bwrapWhy}`);

  await measureInterleaved(variants, WARMUP);
  const samples = await measureInterleaved(variants, runs);
  const bwrap = variants.length > steps.length + 1 ? stats(samples.get(variants.at(-1)!)!).median : null;
  const width = Math.max(...variants.map((v) => v.name.length)) + 2;
  console.log(`the default spec and one default removed at a time, ms per container`);
  console.log(`${'variant'.padEnd(width)}${'median'.padStart(8)}${'p90'.padStart(8)}${'vs bwrap'.padStart(10)}`);
  for (const v of variants) {
    const st = stats(samples.get(v)!);
    const ratio = bwrap === null || v.name.startsWith('bwrap') ? '' : `${(st.median / bwrap).toFixed(2)}x`;
    console.log(`${v.name.padEnd(width)}${st.median.toFixed(2).padStart(8)}${st.p90.toFixed(2).padStart(8)}${ratio.padStart(10)}`);
  }
  console.log(`target: the default at most ${TARGET.toFixed(2)}x bwrap --unshare-all`);

  // Every step, not only the two ends: what each default costs shows as the change from the row
  // above (the cgroup was once blamed for the network namespace's system time).
  console.log(`\nCPU per container (${runs} sequential runs each; each row removes one more default)`);
  for (const v of variants.slice(0, steps.length + 1)) {
    const before = cpuTimes();
    for (let i = 0; i < runs; i++) await v.start();
    const after = cpuTimes();
    const per = (a: number, b: number): string => ((b - a) / runs).toFixed(2);
    console.log(`${v.name.padEnd(width)} node user ${per(before.user, after.user)} ms, system ${per(before.system, after.system)} ms, reaped children ${per(before.children, after.children)} ms`);
  }

  console.log(`\nthroughput of the default spec, 8 in flight (${THROUGHPUT_MS / 1000} s or ${runs} containers, whichever comes first)`);
  for (const v of [variants[0]!, ...(bwrap === null ? [] : [variants.at(-1)!])]) {
    const t = await throughput(v, 8, runs);
    console.log(`${v.name.trim().padEnd(width)}${t.perSec.toFixed(0).padStart(6)}/s  (${t.count} in ${t.seconds.toFixed(2)} s; target for the default: 1,000/s)`);
  }
  console.log('');
}

/** Builds the variants, runs the latency and throughput passes and prints the report. */
async function main(runs: number, dir: string): Promise<void> {
  const t0 = performance.now();
  const cpuStart = cpuSnapshot();
  const kthreadsStart = kernelThreadTicks();
  const load0 = loadavg()[0]!.toFixed(2);
  const root = join(dir, 'root');
  buildRoot(root);

  const bwrapArgs = (netns: boolean): string[] => [
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', ...(netns ? ['--unshare-net'] : []),
    '--bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true',
  ];
  let seq = 0;
  const ociArgs = (globalArgs: string[], netns: boolean): string[] =>
    [...globalArgs, 'run', '--bundle', join(dir, netns ? 'bundle-netns' : 'bundle-host'), `corral-bench-${process.pid}-${seq++}`];
  writeBundle(join(dir, 'bundle-host'), root, false);
  writeBundle(join(dir, 'bundle-netns'), root, true);
  mkdirSync(join(dir, 'runc-root'));

  const corral = (netns: boolean): Variant => ({
    name: `corral (${isolation(netns)})`,
    start: async () => {
      const r = await runtime.run({ command: ['/bin/true'], rootfs: root, rootfsWritable: 'direct', network: netns ? 'none' : 'host', stdio: 'ignore' });
      if (r.exitCode !== 0) throw new Error(`corral: /bin/true exited with ${r.signal ?? r.exitCode}`);
    },
  });
  const external = (name: string, cmd: string, args: () => string[], netns: boolean): Variant => ({
    name: `${name} (${isolation(netns)})`,
    start: () => spawnQuiet(cmd, args()),
  });

  const header = [
    `corral start benchmark`,
    `kernel ${release()}, node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), cgroups ${cgroupMode()}`,
    ['bwrap', 'runc', 'crun'].map((c) => `${c}: ${installed(c) ? (version(c) ?? 'installed') : 'not installed'}`).join('; '),
    `${runs} runs per variant after ${WARMUP} warm-up, interleaved in rounds of ${ROUND} (order shuffled per round); /bin/true in a busybox root;`,
    `namespaces pid+mount+uts+ipc+cgroup, plus net for the netns variants`,
  ];
  console.log(header.join('\n') + '\n');

  await defaultSpecBreakdown(root, dir, runs);

  // Candidates, in table order; each is probed once and dropped with a reason if it fails here.
  const candidates: { variant: Variant; probe: () => Promise<string | null>; label: string }[] = [];
  for (const netns of [false, true]) {
    candidates.push({ variant: corral(netns), label: `corral (${isolation(netns)})`, probe: async () => {
      try { await corral(netns).start(); return null; } catch (e) { return (e as Error).message.split('\n')[0]!; }
    } });
  }
  for (const netns of [false, true]) {
    candidates.push({
      variant: external('bwrap', 'bwrap', () => bwrapArgs(netns), netns), label: `bwrap (${isolation(netns)})`,
      probe: () => installed('bwrap') ? probe('bwrap', bwrapArgs(netns)) : Promise.resolve('bwrap is not installed'),
    });
  }
  const oci: [string, string, string[]][] = [
    ['crun', 'crun', []],
    ['runc', 'runc', []],
    ['runc --root tmp', 'runc', ['--root', join(dir, 'runc-root')]],
  ];
  for (const [name, cmd, globalArgs] of oci) {
    for (const netns of [false, true]) {
      candidates.push({
        variant: external(name, cmd, () => ociArgs(globalArgs, netns), netns), label: `${name} (${isolation(netns)})`,
        probe: () => installed(cmd) ? probe(cmd, ociArgs(globalArgs, netns)) : Promise.resolve(`${cmd} is not installed`),
      });
    }
  }
  const variants: Variant[] = [];
  for (const c of candidates) {
    const why = await c.probe();
    if (why === null) variants.push(c.variant);
    else console.log(`skipped ${c.label}: ${why}`);
  }
  const byName = new Map(variants.map((v) => [v.name, v]));
  for (const netns of [false, true]) {
    if (!byName.has(`corral (${isolation(netns)})`)) throw new Error(`corral (${isolation(netns)}) does not work here; nothing to compare`);
  }

  // Latency.
  await measureInterleaved(variants, WARMUP);
  const samples = await measureInterleaved(variants, runs);
  const results = new Map(variants.map((v) => [v.name, stats(samples.get(v)!)]));
  const width = Math.max(...variants.map((v) => v.name.length)) + 2;
  console.log(`\nlatency, ms per container (start to exit awaited)`);
  console.log(`${'variant'.padEnd(width)}${'median'.padStart(8)}${'p90'.padStart(8)}${'mean'.padStart(8)}`);
  for (const v of variants) {
    const s = results.get(v.name)!;
    console.log(`${v.name.padEnd(width)}${s.median.toFixed(2).padStart(8)}${s.p90.toFixed(2).padStart(8)}${s.mean.toFixed(2).padStart(8)}`);
  }
  console.log('');
  const verdicts: string[] = [];
  for (const netns of [false, true]) {
    const c = results.get(`corral (${isolation(netns)})`);
    const b = results.get(`bwrap (${isolation(netns)})`);
    if (!c || !b) {
      console.log(`corral/bwrap (${isolation(netns)}): n/a (bwrap skipped)`);
      verdicts.push('n/a');
      continue;
    }
    const ratio = c.median / b.median;
    console.log(`corral/bwrap (${isolation(netns)}): ${ratio.toFixed(2)}x`);
    verdicts.push(ratio <= TARGET ? 'met' : 'not met');
  }
  const overall = verdicts.every((v) => v === 'met') ? 'met' : 'not met';
  console.log(`target <= ${TARGET.toFixed(2)}x: ${overall} (no netns: ${verdicts[0]}, netns: ${verdicts[1]})`);

  // Throughput.
  console.log(`\nthroughput, containers/s (${THROUGHPUT_MS / 1000} s or ${runs} containers, whichever comes first)`);
  const plan: [string, number][] = [
    ['corral (no netns)', 1], ['corral (no netns)', 8], ['corral (netns)', 1], ['corral (netns)', 8],
    ['bwrap (no netns)', 8], ['bwrap (netns)', 8],
  ];
  for (const [name, inFlight] of plan) {
    const v = byName.get(name);
    if (!v) continue;
    const t = await throughput(v, inFlight, runs);
    console.log(`${`${name}, ${inFlight} in flight`.padEnd(width + 14)}${t.perSec.toFixed(0).padStart(6)}/s  (${t.count} in ${t.seconds.toFixed(2)} s)`);
  }
  const cpuEnd = cpuSnapshot();
  let kthreads = 0;
  for (const [pid, ticks] of kernelThreadTicks()) kthreads += ticks - (kthreadsStart.get(pid) ?? 0);
  const share = (ticks: number): string => `${((100 * ticks) / (cpuEnd.total - cpuStart.total)).toFixed(0)}%`;
  const ours = cpuEnd.ours - cpuStart.ours;
  const foreign = cpuEnd.busy - cpuStart.busy - ours - kthreads;
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${load0} at start, ${loadavg()[0]!.toFixed(2)} at end`);
  console.log(`CPU (share of all ${cpus().length} CPUs' time): this benchmark and its children ${share(ours)}, ` +
    `kernel threads ${share(kthreads)} (namespace and cgroup teardown, softirqs), other processes ${share(foreign)}, idle ${share(cpuEnd.total - cpuStart.total - (cpuEnd.busy - cpuStart.busy))}`);
  if (foreign / (cpuEnd.total - cpuStart.total) > 0.15) {
    console.log('note: other processes used much of the CPU during the run; absolute numbers are inflated and ratios noisy');
  }
}

let runs: number;
try {
  runs = runsArg(process.argv.slice(2), 'start.ts');
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
if (process.getuid!() !== 0) {
  console.error('start.ts must run as root (bwrap and runc are compared as root)');
  process.exit(1);
}
const workDir = mkdtempSync(join(tmpdir(), 'corral-bench-'));
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanup(workDir);
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}
try {
  await main(runs, workDir);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  cleanup(workDir);
}
