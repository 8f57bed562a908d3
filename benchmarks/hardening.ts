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
import { interleaved, median, runsArg, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'hardening.ts');

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
  const once = ([name, spec]: [string, ContainerSpec]) => timedRun(rt, spec, name);
  await interleaved(variants, 20, 20, once);
  const samples = await interleaved(variants, runs, 50, once);
  const times = new Map([...samples].map(([[name], ms]) => [name, ms]));
  const off = median(times.get('hardening off')!);
  const on = median(times.get('default hardening')!);
  console.log(`hardening benchmark, ${runs} runs per variant`);
  console.log(`hardening off        median ${off.toFixed(3)} ms`);
  console.log(`default hardening    median ${on.toFixed(3)} ms   ratio ${(on / off).toFixed(3)}x (target <= 1.10x: ${on / off <= 1.1 ? 'met' : 'not met'})`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
