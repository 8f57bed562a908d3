/**
 * What a terminal and an init cost at start, and why the init costs what it does.
 *
 *   node --import tsx benchmarks/terminal.ts [--runs N]      (or: npm run bench:terminal)
 *
 * First, wall time of run() of /bin/true in a busybox root with pipes, with spec.tty, with
 * spec.init and with both, beside bubblewrap's own PID 1 reaper (`bwrap --unshare-pid`, which
 * forks the command from a PID 1 that stays, as spec.init does) against `bwrap --as-pid-1`, all in
 * the same interleaved rounds. Then where the init's time goes: each container's processes read
 * their own /proc/PID/schedstat (CPU time, time spent runnable but waiting for a CPU) just before
 * the command exits. Prints medians only; asserts nothing.
 */
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { makeBusyboxRoot, rmRoot } from '../test/helpers.ts';
import { installed, interleaved, median, runsArg, spawnQuiet, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'node --import tsx benchmarks/terminal.ts');
const runtime = new Runtime({ cgroupParent: false });
const root = makeBusyboxRoot();
const base: ContainerSpec = { command: ['/bin/true'], rootfs: root, rootfsWritable: 'direct' };

/** One way of starting a container, timed as a unit (ms). */
interface Variant {
  name: string;
  once: () => Promise<number>;
}

const corral = (name: string, extra: Partial<ContainerSpec>): Variant => ({ name, once: () => timedRun(runtime, { ...base, ...extra }, name) });
const bwrap = (name: string, extra: string[]): Variant => ({
  name,
  once: async () => {
    const t0 = performance.now();
    await spawnQuiet('bwrap', ['--unshare-pid', '--unshare-ipc', '--unshare-uts', ...extra, '--ro-bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true']);
    return performance.now() - t0;
  },
});

/** CPU time and run-queue wait (ms) and the times they were scheduled in, of a container's
 * processes: PID 1 and, with an init, the command it forked. */
async function schedstat(init: boolean): Promise<{ cpu: number; wait: number; slices: number }> {
  const script = 'read a b c </proc/1/schedstat; read d e f </proc/self/schedstat; echo $a $b $c $d $e $f';
  const r = await runtime.run({ ...base, command: ['/bin/sh', '-c', script], init }, { encoding: 'utf8' });
  if (r.exitCode !== 0) throw new Error(`schedstat probe exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim()}`);
  const [cpu1, wait1, slices1, cpuSelf, waitSelf, slicesSelf] = r.stdout.trim().split(' ').map(Number) as [number, number, number, number, number, number];
  // Without an init the shell is PID 1: both lines are the same process.
  if (!init) return { cpu: cpuSelf / 1e6, wait: waitSelf / 1e6, slices: slicesSelf };
  return { cpu: (cpu1 + cpuSelf) / 1e6, wait: (wait1 + waitSelf) / 1e6, slices: slices1 + slicesSelf };
}

try {
  const variants = [corral('pipes', {}), corral('tty', { tty: true }), corral('init', { init: true }), corral('tty + init', { tty: true, init: true })];
  const peers = installed('bwrap') ? [bwrap('bwrap --as-pid-1', ['--as-pid-1']), bwrap('bwrap (its PID 1 reaper)', [])] : [];
  if (!peers.length) console.log('skipped bwrap: not installed');
  const samples = await interleaved([...variants, ...peers], runs, 25, (v) => v.once());
  const m = (v: Variant): number => median(samples.get(v)!);
  const row = (v: Variant, ref: Variant): void => {
    const d = m(v) - m(ref);
    console.log(`${v.name.padEnd(26)} ${m(v).toFixed(3).padStart(7)} ms median (${d >= 0 ? '+' : ''}${d.toFixed(3)} ms, ${(m(v) / m(ref)).toFixed(2)}x of ${ref.name}), ${runs} runs`);
  };
  for (const v of variants) row(v, variants[0]!);
  if (peers.length) row(peers[1]!, peers[0]!);

  const probes = new Map([false, true].map((init) => [init, { cpu: [] as number[], wait: [] as number[], slices: [] as number[] }]));
  await interleaved([false, true], runs, 25, async (init) => {
    const s = await schedstat(init);
    const p = probes.get(init)!;
    p.cpu.push(s.cpu);
    p.wait.push(s.wait);
    p.slices.push(s.slices);
    return 0;
  });
  console.log('\nwhere the time goes (the container\'s processes, from /proc/PID/schedstat):');
  for (const [init, p] of probes) console.log(`${(init ? 'init' : 'pipes').padEnd(6)} CPU ${median(p.cpu).toFixed(3)} ms, runnable but waiting for a CPU ${median(p.wait).toFixed(3)} ms, scheduled in ${median(p.slices)} times`);
} finally {
  rmRoot(root);
}
