/**
 * What a cgroup costs per container: create, enter (clone3 CLONE_INTO_CGROUP), remove.
 *
 *   node --import tsx benchmarks/cgroup.ts [--runs N]      (or: npm run bench:cgroup)
 *
 * Runs /bin/true in a busybox root, side by side in one run: without a cgroup, with a group and no
 * limits, and with a group under memory + pids limits. Limits need the memory and pids controllers;
 * on a host without them (hybrid cgroups) the script runs itself again inside the pure cgroup v2
 * VM of test/vm (TCG emulation: absolute times are slower there, compare the differences).
 * Prints medians and the cost added; it asserts nothing.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { availableControllers, findV2Mount } from '../lib/cgroup/hierarchy.ts';

/** --runs N, default 300. */
function runsArg(argv: string[]): number {
  const i = argv.indexOf('--runs');
  const runs = i >= 0 ? Number(argv[i + 1]) : 300;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs needs a positive integer, got '${argv[i + 1]}'`);
  return runs;
}

/** The median of a list of milliseconds. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Times the variants in interleaved rounds of 50 and prints medians and the added cost. */
async function measure(runs: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'corral-bench-cgroup-'));
  try {
    for (const dir of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(root, dir));
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    symlinkSync('busybox', join(root, 'bin/true'));
    const mount = findV2Mount();
    const limitsPossible = mount !== null && ['memory', 'pids'].every((c) => availableControllers(mount).has(c));
    const base: ContainerSpec = { command: ['/bin/true'], rootfs: root, rootfsWritable: 'direct', network: 'host', stdio: 'ignore' };
    const variants: [string, Runtime, ContainerSpec][] = [
      ['no cgroup', new Runtime({ cgroupParent: false }), base],
      ['cgroup, no limits', new Runtime(), base],
      ...(limitsPossible ? [['cgroup, memory+pids limits', new Runtime(), { ...base, limits: { memory: '64m', pids: 64 } }] as [string, Runtime, ContainerSpec]] : []),
    ];
    const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    for (const [, rt, spec] of variants) for (let i = 0; i < 20; i++) await rt.run(spec);
    for (let done = 0; done < runs; done += 50) {
      for (const [name, rt, spec] of variants) {
        for (let i = 0; i < Math.min(50, runs - done); i++) {
          const t0 = performance.now();
          const r = await rt.run(spec);
          times.get(name)!.push(performance.now() - t0);
          if (r.exitCode !== 0) throw new Error(`${name}: exit ${r.exitCode ?? r.signal}`);
        }
      }
    }
    console.log(`cgroup cost benchmark: kernel ${release()}, v2 at ${mount}, ${runs} runs per variant`);
    const none = median(times.get('no cgroup')!);
    for (const [name] of variants) {
      const m = median(times.get(name)!);
      console.log(`${name.padEnd(28)} median ${m.toFixed(3)} ms   added ${(m - none).toFixed(3)} ms`);
    }
    if (!limitsPossible) console.log('(no memory/pids controllers here: the limits variant runs in the VM)');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const runs = runsArg(process.argv.slice(2));
await measure(runs);
const mount = findV2Mount();
if (process.env.CORRAL_IN_VM !== '1' && !(mount && availableControllers(mount).has('memory'))) {
  const { runInVm, vmAvailable } = await import('../test/vm/vm.mjs');
  const vm = vmAvailable();
  if (!vm.ok) {
    console.log(`\nno VM for the limits variant: ${vm.reason}`);
  } else {
    console.log('\nin the pure cgroup v2 VM (qemu TCG):');
    const self = fileURLToPath(import.meta.url);
    const { output } = await runInVm({ command: [process.execPath, '--import', 'tsx', self, '--runs', String(runs)], env: { CORRAL_IN_VM: '1' }, timeoutMs: 900_000 });
    console.log(output.trimEnd());
  }
}
