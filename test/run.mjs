// Runs the whole suite: unit and integration tests as the current user (root in CI), the
// integration tests again as uid 65534 (rootless, through a user namespace), the cgroup v2 limit
// tests (test/vm-suite) on a host with the controllers or else inside a pure cgroup v2 kernel under
// qemu (test/vm), and prints the closing line "N passed, N failed" that CI reads.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableControllers, findV2Mount } from '../dist/cgroup/hierarchy.js';
import { runInVm, vmAvailable } from './vm/vm.mjs';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const NOBODY = 65534;
const totals = { passes: 0, failures: 0, pending: 0 };
const scratch = mkdtempSync(join(tmpdir(), 'corral-test-run-'));
chmodSync(scratch, 0o755);

/** Runs mocha on the given spec globs in dir, as uid (or the current user), and adds up its counts.
 * Each pass gets a home and temp directory of its own, so leftovers are its own to find. */
function mocha(label, dir, specs, uid) {
  const home = join(scratch, `pass-${uid ?? 'self'}`);
  mkdirSync(join(home, 'tmp'), { recursive: true });
  if (uid !== undefined) {
    chownSync(home, uid, uid);
    chownSync(join(home, 'tmp'), uid, uid);
  }
  const summary = join(home, 'summary.json');
  console.log(`\n=== ${label} ===`);
  const result = spawnSync(process.execPath, [join(dir, 'node_modules/mocha/bin/mocha.js'), ...specs], {
    cwd: dir,
    stdio: 'inherit',
    env: { ...process.env, CORRAL_TEST_SUMMARY: summary, TMPDIR: join(home, 'tmp'), ...(uid === undefined ? {} : { HOME: home }) },
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  let counts;
  try {
    counts = JSON.parse(readFileSync(summary, 'utf8'));
  } catch {
    console.log(`${label}: mocha exited with ${result.status ?? result.signal} before reporting; counted as one failure`);
    counts = { passes: 0, failures: 1, pending: 0 };
  }
  for (const k of Object.keys(totals)) totals[k] += counts[k];
}

/** The integration tests run as uid 65534 from a tree that user can read: the repo itself when it
 * can, else a copy. */
function treeReadableBy(uid) {
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(join(repo, 'dist/index.js'))})`], { uid, gid: uid });
  if (probe.status === 0) return repo;
  const copy = join(scratch, 'repo');
  cpSync(repo, copy, { recursive: true, filter: (src) => !src.endsWith('/.git') });
  spawnSync('chmod', ['-R', 'a+rX', scratch]);
  console.log(`(the repo is not readable by uid ${uid}; running its tests from a copy in ${copy})`);
  return copy;
}

/** The cgroup v2 limit suite: here when this kernel has the controllers, else in the VM. */
async function limitSuite() {
  const label = 'cgroup v2 limit tests';
  const mount = findV2Mount();
  const needed = ['memory', 'cpu', 'pids', 'io'];
  if (process.getuid() === 0 && mount && needed.every((c) => availableControllers(mount).has(c))) {
    mocha(`${label} (on this host)`, repo, ['test/vm-suite/**/*.test.ts']);
    return;
  }
  const vm = vmAvailable();
  if (!vm.ok) {
    const why = `this host has no cgroup v2 ${needed.join('/')} controllers and the VM cannot run: ${vm.reason}`;
    if (process.env.CI === 'true') {
      console.log(`\n=== ${label} ===\nFAILED: ${why} (CI never skips)`);
      totals.failures += 1;
    } else {
      console.log(`\n=== ${label} ===\nSKIPPED: ${why}`);
      totals.pending += 1;
    }
    return;
  }
  console.log(`\n=== ${label} (in a pure cgroup v2 kernel under qemu: the host cgroups are hybrid) ===`);
  const { exitCode, output } = await runInVm({
    command: [process.execPath, join(repo, 'node_modules/mocha/bin/mocha.js'), 'test/vm-suite/**/*.test.ts'],
    cwd: repo,
    env: { CORRAL_TEST_SUMMARY: 'stdout' },
    timeoutMs: 900_000,
  });
  const summary = /^CORRAL_TEST_SUMMARY (.*)$/m.exec(output);
  console.log(output.replace(/^CORRAL_TEST_SUMMARY .*\n?/m, ''));
  if (!summary) {
    console.log(`${label}: the VM run ended (exit ${exitCode}) before reporting; counted as one failure`);
    totals.failures += 1;
    return;
  }
  const counts = JSON.parse(summary[1]);
  for (const k of Object.keys(totals)) totals[k] += counts[k];
}

try {
  mocha('unit and integration tests', repo, ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/security/**/*.test.ts']);
  if (process.getuid() === 0) {
    mocha(`integration tests as uid ${NOBODY} (rootless)`, treeReadableBy(NOBODY), ['test/integration/**/*.test.ts', 'test/security/**/*.test.ts'], NOBODY);
  } else {
    console.log(`\nnot root: the rootless pass runs the same tests as this user (uid ${process.getuid()}) above`);
  }
  await limitSuite();
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

console.log(`\n${totals.passes} passed, ${totals.failures} failed${totals.pending ? `, ${totals.pending} skipped` : ''}`);
process.exitCode = totals.failures > 0 ? 1 : 0;
