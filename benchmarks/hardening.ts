/**
 * What the default hardening costs per container: Docker's capability set, no_new_privs, the
 * default seccomp filter, masked and read-only /proc paths, against the same container with all
 * of it off, side by side in one run.
 *
 *   node --import tsx benchmarks/hardening.ts [--runs N]      (or: npm run bench:hardening)
 *
 * /bin/true in a busybox root, pid+mount+uts+ipc namespaces, no network namespace and no cgroup
 * (as in benchmarks/start.ts). Prints medians and the ratio; it asserts nothing.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../lib/index.ts';

/** The median of a list of milliseconds. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const i = process.argv.indexOf('--runs');
const runs = i >= 0 ? Number(process.argv[i + 1]) : 300;
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs needs a positive integer, got '${process.argv[i + 1]}'`);

const root = mkdtempSync(join(tmpdir(), 'corral-bench-hardening-'));
try {
  for (const dir of ['bin', 'proc', 'dev', 'tmp', 'sys']) mkdirSync(join(root, dir));
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));
  const rt = new Runtime({ cgroupParent: false });
  const base: ContainerSpec = { command: ['/bin/true'], rootfs: root, rootfsWritable: 'direct', network: 'host', stdio: 'ignore' };
  const variants: [string, ContainerSpec][] = [
    ['hardening off', { ...base, capabilities: 'all', noNewPrivileges: false, seccomp: 'unconfined', maskedPaths: [], readonlyPaths: [] }],
    ['default hardening', base],
  ];
  const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (const [, spec] of variants) for (let k = 0; k < 20; k++) await rt.run(spec);
  for (let done = 0; done < runs; done += 50) {
    for (const [name, spec] of variants) {
      for (let k = 0; k < Math.min(50, runs - done); k++) {
        const t0 = performance.now();
        const r = await rt.run(spec);
        times.get(name)!.push(performance.now() - t0);
        if (r.exitCode !== 0) throw new Error(`${name}: exit ${r.exitCode ?? r.signal}`);
      }
    }
  }
  const off = median(times.get('hardening off')!);
  const on = median(times.get('default hardening')!);
  console.log(`hardening benchmark, ${runs} runs per variant`);
  console.log(`hardening off        median ${off.toFixed(3)} ms`);
  console.log(`default hardening    median ${on.toFixed(3)} ms   ratio ${(on / off).toFixed(3)}x (target <= 1.10x: ${on / off <= 1.1 ? 'met' : 'not met'})`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
