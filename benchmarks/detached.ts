/**
 * Detached containers: start-to-running latency (create + start under a supervisor, against an
 * attached create + start in the same run), `list({ all })` with 200 detached containers, and the
 * memory each supervisor costs on the host (RSS and PSS).
 *
 *   node --import tsx benchmarks/detached.ts [--runs N]
 *
 * Prints numbers only: it asserts nothing about them. (podman is not part of it yet.)
 */
import { mkdirSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { Runtime, type Container } from '../lib/index.ts';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 30;
const FLEET = 200;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function statusKb(pid: number, field: string, file = 'status'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))![1]);
}

const scratch = mkdtempSync(join(tmpdir(), 'corral-bench-detached-'));
const rootfs = join(scratch, 'rootfs');
for (const dir of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(rootfs, dir), { recursive: true });
copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
for (const tool of ['sh', 'sleep', 'true']) copyFileSync('/bin/busybox', join(rootfs, 'bin', tool));
const runtime = new Runtime({ root: join(scratch, 'root') });
try {
  const detached: number[] = [];
  const attached: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    const d = await runtime.run({ detached: true, command: ['sleep', '1000'], rootfs });
    detached.push(performance.now() - t);
    t = performance.now();
    const a = await runtime.create({ command: ['sleep', '1000'], rootfs, stdio: 'ignore' });
    await a.start();
    attached.push(performance.now() - t);
    await d.remove({ force: true });
    await a.remove({ force: true });
  }
  console.log(`load ${loadavg()[0]!.toFixed(1)}; ${runs} runs, median ms start-to-running:`);
  console.log(`  detached (supervisor)  ${median(detached).toFixed(2)}`);
  console.log(`  attached               ${median(attached).toFixed(2)}   ratio ${(median(detached) / median(attached)).toFixed(2)}x`);

  const fleet: Container[] = [];
  for (let i = 0; i < FLEET; i++) fleet.push(await runtime.run({ detached: true, command: ['sleep', '1000'], rootfs }));
  const fresh = new Runtime({ root: join(scratch, 'root') });
  const listMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    fresh.list({ all: true });
    listMs.push(performance.now() - t);
  }
  const sups = fleet.map((c) => c.inspect().supervision!.supervisorPid);
  const rss = sups.map((p) => statusKb(p, 'VmRSS'));
  const pss = sups.map((p) => statusKb(p, 'Pss', 'smaps_rollup'));
  console.log(`${FLEET} detached containers: list({ all }) median ${median(listMs).toFixed(1)} ms`);
  console.log(`  supervisor RSS median ${median(rss)} kB (max ${Math.max(...rss)}), PSS median ${median(pss)} kB`);
  for (const c of fleet) await c.remove({ force: true });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
