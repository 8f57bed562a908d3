// Runs the whole suite: unit and integration tests as the current user (root in CI), the
// integration tests again as uid 65534 (rootless, through a user namespace), and prints the
// closing line "N passed, N failed" that CI reads.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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

try {
  mocha('unit and integration tests', repo, ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts']);
  if (process.getuid() === 0) {
    mocha(`integration tests as uid ${NOBODY} (rootless)`, treeReadableBy(NOBODY), ['test/integration/**/*.test.ts'], NOBODY);
  } else {
    console.log(`\nnot root: the rootless pass runs the same tests as this user (uid ${process.getuid()}) above`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

console.log(`\n${totals.passes} passed, ${totals.failures} failed${totals.pending ? `, ${totals.pending} skipped` : ''}`);
process.exitCode = totals.failures > 0 ? 1 : 0;
