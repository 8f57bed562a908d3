/**
 * What a cgroup costs per container: create, enter (clone3 CLONE_INTO_CGROUP), remove.
 *
 *   node --import tsx benchmarks/cgroup.ts [--runs N]      (or: npm run bench:cgroup)
 *
 * Runs /bin/true in a busybox root, side by side in one run: without a cgroup, with a group and no
 * limits, and with a group under memory + pids limits. Limits need the memory and pids controllers;
 * on a host without them (hybrid cgroups) the script runs itself again inside the pure cgroup v2
 * VM of test/vm (TCG emulation: absolute times are slower there, compare the differences).
 * Prints medians and the cost added, then the CPU each variant costs per container (this process's
 * user and system time, where a group's mkdir, attach, OOM read and rmdir are charged); it asserts
 * nothing.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { availableControllers, findV2Mount } from '../lib/cgroup/hierarchy.ts';
import { cpuTimes, interleaved, median, rerunInVm, runsArg, timedRun } from './common.ts';

/** Times the variants in interleaved rounds of 50 (shuffled per round) and prints medians and the added cost. */
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
    const once = ([name, rt, spec]: [string, Runtime, ContainerSpec]) => timedRun(rt, spec, name);
    await interleaved(variants, 20, 20, once);
    const samples = await interleaved(variants, runs, 50, once);
    const times = new Map([...samples].map(([[name], ms]) => [name, ms]));
    console.log(`cgroup cost benchmark: kernel ${release()}, v2 at ${mount}, ${runs} runs per variant`);
    const none = median(times.get('no cgroup')!);
    for (const [name] of variants) {
      const m = median(times.get(name)!);
      console.log(`${name.padEnd(28)} median ${m.toFixed(3)} ms   added ${(m - none).toFixed(3)} ms`);
    }
    console.log(`CPU per container (${runs} sequential runs each)`);
    for (const variant of variants) {
      const before = cpuTimes();
      for (let i = 0; i < runs; i++) await once(variant);
      const after = cpuTimes();
      const per = (a: number, b: number): string => ((b - a) / runs).toFixed(3);
      console.log(`${variant[0].padEnd(28)} node user ${per(before.user, after.user)} ms, system ${per(before.system, after.system)} ms, reaped children ${per(before.children, after.children)} ms`);
    }
    if (!limitsPossible) console.log('(no memory/pids controllers here: the limits variant runs in the VM)');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const runs = runsArg(process.argv.slice(2), 'cgroup.ts');
await measure(runs);
const mount = findV2Mount();
if (process.env.CORRAL_IN_VM !== '1' && !(mount && availableControllers(mount).has('memory'))) {
  await rerunInVm(fileURLToPath(import.meta.url), runs, 'the limits variant');
}
