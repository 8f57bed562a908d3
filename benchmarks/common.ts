// What the benchmarks share: the --runs option, medians, checked container runs, timing of
// variants in interleaved rounds whose order is shuffled every round, starting the peers, and the
// CPU time a run costs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerSpec, Runtime } from '../lib/index.ts';

/** --runs N or --runs=N (default 300), the only option a benchmark takes. */
export function runsArg(argv: string[], usage: string): number {
  let runs = 300;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = arg === '--runs' ? argv[++i] : arg.startsWith('--runs=') ? arg.slice(7) : undefined;
    if (value === undefined) throw new Error(`unknown argument '${arg}'; usage: ${usage} [--runs N]`);
    runs = Number(value);
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs needs a positive integer, got '${value}'`);
  }
  return runs;
}

/** The value at fraction q (0..1) of a sorted copy of a list of milliseconds (no interpolation). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

/** The median of a list of milliseconds. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** A small seeded PRNG (mulberry32), so the round orders are shuffled but the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Times every variant `total` times in rounds of `round` sequential calls of once(variant) (which
 * returns the milliseconds it measured) and returns each variant's samples. The order is shuffled
 * each round, not rotated: with a rotation each variant keeps the same predecessor, and the
 * background work a slow variant leaves behind (runc's cgroup and netns teardown, a layer being
 * deleted) would always land on the same neighbour. */
export async function interleaved<V>(variants: readonly V[], total: number, round: number, once: (v: V) => Promise<number>): Promise<Map<V, number[]>> {
  const samples = new Map(variants.map((v) => [v, [] as number[]]));
  const random = prng(0xc0ffee);
  for (let done = 0; done < total; done += round) {
    const order = [...variants];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const v of order) {
      for (let i = 0; i < Math.min(round, total - done); i++) samples.get(v)!.push(await once(v));
    }
  }
  return samples;
}

/** Runs spec and returns its wall time in ms; throws unless the container exited with 0, so a
 * broken variant cannot pass for a fast one. */
export async function timedRun(rt: Runtime, spec: ContainerSpec, name: string): Promise<number> {
  const t0 = performance.now();
  const r = await rt.run(spec);
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${name}: exited with ${r.exitCode ?? r.signal}: ${r.stderr.toString().trim()}`);
  return ms;
}

/** Spawns a program with fds 0-2 on /dev/null and resolves on exit 0 (rejects otherwise), the way a
 * Node caller would start bwrap or runc. */
export function spawnQuiet(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} exited with ${signal ?? code}`));
    });
  });
}

/** True when an executable of that name is on PATH. */
export function installed(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
}

/** Runs a benchmark script again inside the pure cgroup v2 VM of test/vm (CORRAL_IN_VM=1 there)
 * and prints its output, or why there is no VM; what: the part that needs the VM. */
export async function rerunInVm(script: string, runs: number, what: string, timeoutMs = 900_000): Promise<void> {
  const { runInVm, vmAvailable } = await import('../test/vm/vm.mjs');
  const vm = vmAvailable();
  if (!vm.ok) {
    console.log(`\nno VM for ${what}: ${vm.reason}`);
    return;
  }
  console.log('\nin the pure cgroup v2 VM (qemu TCG):');
  const { output } = await runInVm({ command: [process.execPath, '--import', 'tsx', script, '--runs', String(runs)], env: { CORRAL_IN_VM: '1' }, timeoutMs });
  console.log(output.trimEnd());
}

/** Why rootful podman is left out of a comparison here, or null: it must be root, installed, and on
 * a host without cgroup v1 hierarchies (on a hybrid host its cgroupfs manager makes its groups in
 * them, and they must not be touched; crun refuses hybrid cgroups). */
export function podmanMissing(): string | null {
  if (process.getuid!() !== 0) return 'not root';
  if (spawnSync('podman', ['--version']).status !== 0) return 'not installed';
  if (/^\S+ \S+ cgroup /m.test(readFileSync('/proc/self/mounts', 'utf8'))) return 'cgroup v1 hierarchies are mounted (hybrid host): podman would make its groups in them';
  return null;
}

/** podman's global options for a rootful comparison with its own scratch storage under dir (vfs,
 * runc, cgroupfs, no events), and the `run` options the comparisons share (podman's default
 * ulimits are refused here). */
export function rootfulPodman(dir: string): { global: string[]; run: string[] } {
  return {
    global: ['--root', join(dir, 'podman'), '--runroot', join(dir, 'podman-run'), '--tmpdir', join(dir, 'podman-tmp'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--runtime', 'runc'],
    run: ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'],
  };
}

/** CPU time of this process (user, system) and of its reaped children, in ms. */
export function cpuTimes(): { user: number; system: number; children: number } {
  const u = process.cpuUsage();
  const self = readFileSync('/proc/self/stat', 'utf8');
  const fields = self.slice(self.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // USER_HZ
  return { user: u.user / 1000, system: u.system / 1000, children: (Number(fields[13]) + Number(fields[14])) * tick };
}
