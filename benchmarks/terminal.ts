/**
 * What a terminal and an init cost at start: run() of /bin/true in a busybox root with pipes, with
 * spec.tty, with spec.init, and with both, in interleaved rounds. Prints medians only.
 *
 *   node --import tsx benchmarks/terminal.ts [--runs N]
 */
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { makeBusyboxRoot, rmRoot } from '../test/helpers.ts';
import { interleaved, median, runsArg, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'node --import tsx benchmarks/terminal.ts');
const runtime = new Runtime({ cgroupParent: false });
const root = makeBusyboxRoot();
const variants: [string, Partial<ContainerSpec>][] = [['pipes', {}], ['tty', { tty: true }], ['init', { init: true }], ['tty + init', { tty: true, init: true }]];
try {
  const samples = await interleaved(variants, runs, 25, ([name, extra]) => timedRun(runtime, { command: ['/bin/true'], rootfs: root, rootfsWritable: 'direct', ...extra }, name));
  const base = median(samples.get(variants[0]!)!);
  for (const v of variants) {
    const m = median(samples.get(v)!);
    console.log(`${v[0].padEnd(11)} ${m.toFixed(3)} ms median (${(m - base >= 0 ? '+' : '')}${(m - base).toFixed(3)} ms), ${runs} runs`);
  }
} finally {
  rmRoot(root);
}
