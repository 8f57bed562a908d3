/**
 * Detached containers side by side with podman in one run: start-to-running (corral's supervisor
 * in-process with run({ detached: true }) and from the command line with `corral run -d` (node's
 * start-up included) against `podman run -d` under conmon, and an attached corral create + start
 * for reference), stop
 * with no grace period, `ps -a` of a fleet of detached containers (corral's CLI and list({ all })
 * in-process against `podman ps -a`), and the memory each supervisor (conmon) costs on the host.
 * podman runs rootful with its own scratch storage (`--root`/`--runroot`/`--tmpdir`, vfs), runc
 * and cgroupfs, `--net none` and limited ulimits (crun and podman's default ulimits are refused
 * here), and only where no cgroup v1 hierarchy is mounted: on a hybrid host podman's cgroupfs
 * manager makes its groups in the v1 hierarchies, which must not be touched. Without podman the
 * corral side is printed alone, with the reason.
 *
 *   npm run build && node --import tsx benchmarks/detached.ts [--runs N]   (starts per side, default 300)
 *   FLEET=N: the size of the fleet ps lists (default 200)
 *
 * Prints numbers and ratios only: it asserts nothing about them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Runtime, type Container } from '../lib/index.ts';
import { interleaved, median, podmanMissing, rootfulPodman, runsArg } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'node --import tsx benchmarks/detached.ts');
const FLEET = Number(process.env.FLEET ?? 200);
const run = promisify(execFile);
// The command as installed (package.json's bin): the bundle of bindings/bundle.mjs.
const cli = fileURLToPath(new URL('../dist/corral/main.js', import.meta.url));

function statusKb(pid: number, field: string, file = 'status'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))![1]);
}

/** Wall milliseconds of fn. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const fmt = (ms: number): string => ms.toFixed(2).padStart(8);
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;

const scratch = mkdtempSync(join(tmpdir(), 'corral-bench-detached-'));
const rootfs = join(scratch, 'rootfs');
for (const dir of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(rootfs, dir), { recursive: true });
copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
for (const tool of ['sh', 'sleep', 'true']) symlinkSync('busybox', join(rootfs, 'bin', tool));
const root = join(scratch, 'root');
const runtime = new Runtime({ root });

const noPodman = podmanMissing();
const hasPodman = noPodman === null;
const { global: podmanGlobal, run: podmanOptions } = rootfulPodman(scratch);
const podman = (...args: string[]): Promise<{ stdout: string }> => run('podman', [...podmanGlobal, ...args], { maxBuffer: 64 << 20 });
const podmanRun = ['run', '-d', '--net', 'none', ...podmanOptions, 'localhost/bench-busybox', 'sleep', '1000'];

try {
  if (hasPodman) {
    execFileSync('tar', ['-C', rootfs, '-cf', join(scratch, 'rootfs.tar'), '.']);
    await podman('import', join(scratch, 'rootfs.tar'), 'localhost/bench-busybox');
  }
  console.log(`load ${loadavg()[0]!.toFixed(1)}; ${runs} starts per side, median ms${hasPodman ? '' : ` (corral alone; podman left out: ${noPodman})`}`);

  const withCli = existsSync(cli);
  type Side = 'corral' | 'attached' | 'cli' | 'podman';
  const sides: Side[] = ['corral', 'attached', ...(withCli ? ['cli' as const] : []), ...(hasPodman ? ['podman' as const] : [])];
  const stop = new Map<Side, number[]>(sides.map((s) => [s, []]));
  // Each sample is a start; the stop of the same container is recorded beside it.
  const start = await interleaved(sides, runs, 5, async (side) => {
    if (side === 'podman') {
      let id = '';
      const ms = await timed(async () => {
        id = (await podman(...podmanRun)).stdout.trim();
      });
      stop.get(side)!.push(await timed(() => podman('stop', '-t', '0', id)));
      await podman('rm', id);
      return ms;
    }
    let c: Container | undefined;
    const ms = await timed(async () => {
      if (side === 'cli') c = runtime.find((await run(process.execPath, [cli, 'run', '-d', '--root', root, '--rootfs', rootfs, '--', 'sleep', '1000'])).stdout.trim());
      else if (side === 'corral') c = await runtime.run({ detached: true, command: ['sleep', '1000'], rootfs });
      else {
        c = await runtime.create({ command: ['sleep', '1000'], rootfs, stdio: 'ignore' });
        await c.start();
      }
    });
    stop.get(side)!.push(await timed(() => c!.stop({ timeout: 0 })));
    await c!.remove();
    return ms;
  });
  const row = (what: string, samples: Map<Side, number[]>): void => {
    const m = (s: Side): number => median(samples.get(s)!);
    const vsPodman = (s: Side): string => (hasPodman ? ` (${ratio(m(s), m('podman'))} podman)` : '');
    console.log(`  ${what.padEnd(26)} in-process ${fmt(m('corral'))}${vsPodman('corral')}${withCli ? `   corral CLI ${fmt(m('cli'))}${vsPodman('cli')}` : ''}   attached ${fmt(m('attached'))}${hasPodman ? `   podman ${fmt(m('podman'))}` : ''}`);
  };
  row('detached start-to-running', start);
  row('stop, no grace period', stop);

  const fleet: Container[] = [];
  for (let i = 0; i < FLEET; i++) fleet.push(await runtime.run({ detached: true, command: ['sleep', '1000'], rootfs }));
  const podmanFleet: string[] = [];
  if (hasPodman) for (let i = 0; i < FLEET; i++) podmanFleet.push((await podman(...podmanRun)).stdout.trim());
  const listMs: number[] = [];
  const psMs: number[] = [];
  const podmanPsMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    listMs.push(await timed(async () => new Runtime({ root }).list({ all: true })));
    if (withCli) psMs.push(await timed(() => run(process.execPath, [cli, 'ps', '-a', '--root', root], { maxBuffer: 64 << 20 })));
    if (hasPodman) podmanPsMs.push(await timed(() => podman('ps', '-a')));
  }
  console.log(`${FLEET} detached containers, median ms of 5:`);
  console.log(`  list({ all }) in-process      ${fmt(median(listMs))}`);
  if (withCli) console.log(`  corral ps -a (node + CLI)     ${fmt(median(psMs))}${hasPodman ? `   podman ps -a ${fmt(median(podmanPsMs))}   corral/podman ${ratio(median(psMs), median(podmanPsMs))}` : ''}`);
  else console.log('  corral ps -a: dist/ is not built (npm run build)');
  const sups = fleet.map((c) => c.inspect().supervision!.supervisorPid);
  const rss = sups.map((p) => statusKb(p, 'VmRSS'));
  const pss = sups.map((p) => statusKb(p, 'Pss', 'smaps_rollup'));
  console.log(`  supervisor RSS median ${median(rss)} kB (max ${Math.max(...rss)}), PSS median ${median(pss)} kB`);
  // The same with one attacher each on its attach socket (live output, input).
  const attachers = fleet.map((c) => {
    const detach = new AbortController();
    return { detach, done: c.attach({ stdout: new PassThrough().resume(), signal: detach.signal }) };
  });
  await new Promise((r) => setTimeout(r, 500));
  const attachedRss = sups.map((p) => statusKb(p, 'VmRSS'));
  console.log(`  supervisor RSS with an attacher each median ${median(attachedRss)} kB (max ${Math.max(...attachedRss)})`);
  for (const a of attachers) a.detach.abort();
  await Promise.all(attachers.map((a) => a.done));
  if (hasPodman) {
    // Ours: their command lines name our scratch storage.
    const conmons = execFileSync('pgrep', ['-x', 'conmon'], { encoding: 'utf8' }).trim().split('\n').map(Number)
      .filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(scratch));
    const crss = conmons.map((p) => statusKb(p, 'VmRSS'));
    const cpss = conmons.map((p) => statusKb(p, 'Pss', 'smaps_rollup'));
    console.log(`  conmon RSS median ${median(crss)} kB, PSS median ${median(cpss)} kB   corral/podman RSS ${ratio(median(rss), median(crss))}`);
  }
  for (const c of fleet) await c.remove({ force: true });
  if (hasPodman) await podman('rm', '-f', '-t', '0', ...podmanFleet);
} finally {
  if (hasPodman) await podman('rm', '-af', '-t', '0').catch(() => {});
  if (hasPodman) await podman('rmi', '-af').catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
}
