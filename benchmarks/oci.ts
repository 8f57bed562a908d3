/**
 * corral-oci against runc and crun: one create + start + delete --force cycle of /bin/true from
 * the same bundle (runc's spec, no terminal, a busybox root), as containerd's shim runs them, plus
 * corral-oci without its native front end (Node for every command, dist/cli/oci/main.js) and what
 * Node's own start-up costs (`node -e 0`), side by side in one run.
 *
 *   node --import tsx benchmarks/oci.ts [--runs N]      (or: npm run bench:oci)
 *
 * crun refuses hybrid cgroups: on such a host it is left out here and the script runs itself
 * again inside the pure cgroup v2 VM of test/vm (TCG emulation: compare the ratios there, not the
 * absolute times). corral-oci is bindings/build/corral-oci and dist/ (npm run build first). Prints medians and ratios; it
 * asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { interleaved, median, rerunInVm, runsArg } from './common.ts';

const front = fileURLToPath(new URL('../bindings/build/corral-oci', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli/oci/main.js', import.meta.url));

/** A runtime's command line: the binary and what comes before --root. */
type Runtime = { name: string; argv: string[] };

const errFile = join(tmpdir(), `corral-bench-oci-err-${process.pid}`);

/** Runs a command, throwing with its stderr unless it exits 0. Its stderr goes to a file: a created
 * init keeps the runtime's stdio open, so a pipe would not reach EOF until the container ends. */
function runOk(argv: string[], what: string): void {
  const fd = openSync(errFile, 'w');
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${what}: ${argv.join(' ')} exited with ${r.status}: ${readFileSync(errFile, 'utf8').trim()}`);
}

/** The bundle: `runc spec` with /bin/true, no terminal, the root read-only. */
function makeBundle(dir: string): string {
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  symlinkSync('busybox', join(rootfs, 'bin/true'));
  runOk(['runc', 'spec', '--bundle', bundle], 'runc spec');
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}

/** True when crun runs here (it refuses a v2 hierarchy with controllers beside v1 ones). */
function crunWorks(dir: string, bundle: string): boolean {
  const root = join(dir, 'crun-probe');
  const r = spawnSync('crun', ['--root', root, 'run', '--bundle', bundle, 'probe'], { stdio: 'ignore' });
  spawnSync('crun', ['--root', root, 'delete', '--force', 'probe'], { stdio: 'ignore' });
  return r.status === 0;
}

async function measure(runs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-bench-oci-'));
  try {
    const bundle = makeBundle(dir);
    const runtimes: Runtime[] = [
      { name: 'corral-oci', argv: [front] },
      { name: 'corral-oci (Node only)', argv: [process.execPath, cli] },
      { name: 'runc', argv: ['runc'] },
      ...(existsSync('/usr/bin/crun') && crunWorks(dir, bundle) ? [{ name: 'crun', argv: ['crun'] }] : []),
    ];
    let n = 0;
    const cycle = async (rt: Runtime): Promise<number> => {
      const id = `bench-${n++}`;
      const root = ['--root', join(dir, `root-${rt.name.replace(/\W+/g, '-')}`)];
      const t0 = performance.now();
      runOk([...rt.argv, ...root, 'create', '--bundle', bundle, id], `${rt.name} create`);
      runOk([...rt.argv, ...root, 'start', id], `${rt.name} start`);
      runOk([...rt.argv, ...root, 'delete', '--force', id], `${rt.name} delete`);
      return performance.now() - t0;
    };
    const nodeStart: Runtime = { name: 'node -e 0', argv: [process.execPath, '-e', '0'] };
    const once = async (rt: Runtime): Promise<number> => {
      if (rt !== nodeStart) return cycle(rt);
      const t0 = performance.now();
      runOk(rt.argv, rt.name);
      return performance.now() - t0;
    };
    const variants = [...runtimes, nodeStart];
    await interleaved(variants, 5, 5, once);
    const samples = await interleaved(variants, runs, 10, once);
    console.log(`corral-oci benchmark: Node ${process.version}, kernel ${release()}, load ${loadavg()[0]!.toFixed(1)}, ${runs} cycles each (create + start + delete --force of /bin/true)`);
    const ms = new Map([...samples].map(([rt, s]) => [rt.name, median(s)]));
    const ours = ms.get('corral-oci')!;
    for (const rt of variants) {
      const m = ms.get(rt.name)!;
      const ratio = rt === nodeStart ? '(Node start-up, paid once per cycle: create)' : rt.name === 'corral-oci' ? '' : `corral-oci / ${rt.name} = ${(ours / m).toFixed(2)}x`;
      console.log(`  ${rt.name.padEnd(24)} median ${m.toFixed(1).padStart(7)} ms   ${ratio}`.trimEnd());
    }
    if (!runtimes.some((rt) => rt.name === 'crun')) console.log('  (crun refuses this host\'s cgroups: it is compared in the VM)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(errFile, { force: true });
  }
}

const runs = runsArg(process.argv.slice(2), 'oci.ts');
await measure(runs);
if (process.env.CORRAL_IN_VM !== '1' && spawnSync('crun', ['--version'], { stdio: 'ignore' }).status === 0) {
  const probeDir = mkdtempSync(join(tmpdir(), 'corral-bench-oci-probe-'));
  const crunHere = crunWorks(probeDir, makeBundle(probeDir));
  rmSync(probeDir, { recursive: true, force: true });
  rmSync(errFile, { force: true });
  if (!crunHere) {
    await rerunInVm(fileURLToPath(import.meta.url), runs, 'the crun comparison', 1_800_000);
  }
}
