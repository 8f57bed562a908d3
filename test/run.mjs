// Runs the whole suite and prints the closing line "N passed, N failed" (", N skipped" may follow)
// that CI reads. The passes:
//   1. the type check of test/ and benchmarks/;
//   2. unit, integration and security tests as the current user (root in CI);
//   3. as root, rootless with a subordinate range: the integration and security tests again as uid
//      65534 with a range granted in /etc/subuid and /etc/subgid for the pass (the user namespace
//      maps 0 to 65534 and 1..65536 to the range through newuidmap, as for users with uidmap);
//   4. as root, rootless with one id: a representative set (SINGLE_ID_SPECS) as uid 65534 with no
//      range (the executor writes its own one-line maps, no newuidmap), as for users without one;
//   5. the cgroup v2 limit tests (test/vm-suite) on a host with the controllers, else inside a
//      pure cgroup v2 kernel under qemu (test/vm).
// Passes 3 and 4 run in a cgroup delegated to uid 65534. A run that exits non-zero is a failure
// whatever it reported; under CI=true a skipped or pending test is one too.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableControllers, findV2Mount } from '../dist/cgroup/hierarchy.js';
import { callerIdMap, isSingleIdMap } from '../dist/sys/id-map.js';
import { runInVm, vmAvailable } from './vm/vm.mjs';
import { missingPrerequisites } from './prerequisites.mjs';
import { grantSubordinateIds, withoutSubordinateIds } from './subordinate-ids.mjs';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const NOBODY = 65534;
const CI = process.env.CI === 'true';
const totals = { passes: 0, failures: 0, pending: 0 };
const scratch = mkdtempSync(join(tmpdir(), 'corral-test-run-'));
chmodSync(scratch, 0o755);
let runs = 0;

/** What must hold without a subordinate range, run once more with one id mapped: the fallback of
 * idMap 'auto' and ERR_ROOTLESS_IDS (rootless-ids), the executor's own maps on the vfork path
 * (isolation, lifecycle), layers and volumes owned by the caller alone (filesystem, images, build),
 * and the attacks that touch the user namespace or the store (security). A few seconds each; the
 * rest of the suite behaves the same with one id as with a range. */
const SINGLE_ID_SPECS = [
  'test/integration/rootless-ids.test.ts',
  'test/integration/isolation.test.ts',
  'test/integration/lifecycle.test.ts',
  'test/integration/filesystem.test.ts',
  'test/integration/images.test.ts',
  'test/integration/build.test.ts',
  'test/security/cve-2019-5736-proc-self-exe.test.ts',
  'test/security/userns-unshare-remount.test.ts',
  'test/security/inherited-fds.test.ts',
  'test/security/host-user-reaches-store.test.ts',
];

/** mocha's own flags: no .only ever, and under CI no pending test either. */
const MOCHA_FLAGS = ['--forbid-only', ...(CI ? ['--forbid-pending'] : [])];

/** Adds up one run's counts: a non-zero exit without a reported failure counts as one failure,
 * and under CI a skipped test is a failure. */
function count(label, counts, exit) {
  for (const k of Object.keys(totals)) totals[k] += counts[k];
  if (exit !== 0 && counts.failures === 0) {
    console.log(`${label}: exited with ${exit} although it reported no failure; counted as one failure`);
    totals.failures += 1;
  }
  if (CI && counts.pending > 0) {
    console.log(`${label}: ${counts.pending} skipped or pending under CI=true; counted as one failure (CI never skips)`);
    totals.failures += 1;
  }
}

/** Runs mocha on the given spec globs in dir, as uid (or the current user), and adds up its counts.
 * Each pass gets a home and temp directory of its own, so leftovers are its own to find (and a
 * store the range pass shifted into the range is not the single-id pass's), as uid a runtime
 * directory as a login session has (XDG_RUNTIME_DIR: without it skopeo reads /run/containers/UID,
 * which a root podman leaves unreadable), and a summary file of its own, so a crash cannot re-read another
 * run's counts. With a cgroup (delegated to uid), mocha starts in it. */
function mocha(label, dir, specs, uid, cgroup) {
  const home = join(scratch, `pass-${++runs}-${uid ?? 'self'}`);
  mkdirSync(join(home, 'tmp'), { recursive: true });
  if (uid !== undefined) {
    mkdirSync(join(home, 'run'), { mode: 0o700 });
    for (const path of [home, join(home, 'tmp'), join(home, 'run')]) chownSync(path, uid, uid);
  }
  const summary = join(home, 'summary.json');
  console.log(`\n=== ${label} ===`);
  const argv = [process.execPath, join(dir, 'node_modules/mocha/bin/mocha.js'), ...MOCHA_FLAGS, ...specs];
  // Into the cgroup as root, then setpriv (util-linux) drops to uid for mocha.
  const [command, args, ids] = cgroup
    ? ['/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, SETPRIV, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...argv], {}]
    : [argv[0], argv.slice(1), uid === undefined ? {} : { uid, gid: uid }];
  const result = spawnSync(command, args, {
    cwd: dir,
    stdio: 'inherit',
    env: { ...process.env, CORRAL_TEST_SUMMARY: summary, TMPDIR: join(home, 'tmp'), ...(uid === undefined ? {} : { HOME: home, XDG_RUNTIME_DIR: join(home, 'run') }) },
    ...ids,
  });
  const exit = result.status ?? result.signal;
  let counts;
  try {
    counts = JSON.parse(readFileSync(summary, 'utf8'));
  } catch {
    console.log(`${label}: mocha exited with ${exit} before reporting; counted as one failure`);
    counts = { passes: 0, failures: 1, pending: 0 };
  }
  count(label, counts, exit);
}

const SETPRIV = '/usr/bin/setpriv';

/** A cgroup v2 group delegated to uid (the directory and its cgroup.procs, cgroup.threads and
 * cgroup.subtree_control are the uid's, as systemd delegates), so the rootless pass runs the cgroup
 * tests; null, with the reason printed, where there is none to make. */
function delegatedCgroup(uid) {
  const mount = findV2Mount();
  if (!mount || !existsSync(SETPRIV)) {
    console.log(`(no cgroup delegated to uid ${uid}: ${mount ? `${SETPRIV} is missing` : 'no cgroup v2 hierarchy'})`);
    return null;
  }
  const dir = join(mount, `corral-test-rootless-${process.pid}`);
  mkdirSync(dir);
  for (const entry of ['', 'cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control']) chownSync(join(dir, entry), uid, uid);
  return dir;
}

/** Kills what is left in a test cgroup and removes it with its subgroups; returns the leftover
 * groups below the runtimes' parents (a leak, counted as one failure; the parent 'corral' stays by
 * design). */
function removeCgroup(dir) {
  const left = [];
  const remove = (d, depth) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (depth >= 1) left.push(join(d, e.name));
      remove(join(d, e.name), depth + 1);
    }
    rmdirSync(d);
  };
  writeFileSync(join(dir, 'cgroup.kill'), '1');
  for (let i = 0; i < 50 && readFileSync(join(dir, 'cgroup.events'), 'utf8').includes('populated 1'); i++) spawnSync('sleep', ['0.1']);
  remove(dir, 0);
  return left;
}

/** The type check of test/ and benchmarks/ (tsconfig.test.json): one failure when it finds errors. */
function typeCheck() {
  console.log('\n=== type check of test/ and benchmarks/ ===');
  const result = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.test.json'], { cwd: repo, stdio: 'inherit' });
  if (result.status === 0) console.log('no type errors');
  else {
    console.log(`tsc exited with ${result.status ?? result.signal}; counted as one failure`);
    totals.failures += 1;
  }
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
    if (CI) {
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
    command: [process.execPath, join(repo, 'node_modules/mocha/bin/mocha.js'), ...MOCHA_FLAGS, 'test/vm-suite/**/*.test.ts'],
    cwd: repo,
    env: { CORRAL_TEST_SUMMARY: 'stdout' },
    // node_modules may be a link into /tmp (a shared install), which the guest would not see
    tmpPaths: [join(repo, 'node_modules')],
    timeoutMs: 900_000,
  });
  const summary = /^CORRAL_TEST_SUMMARY (.*)$/m.exec(output);
  console.log(output.replace(/^CORRAL_TEST_SUMMARY .*\n?/m, ''));
  if (!summary) {
    console.log(`${label}: the VM run ended (exit ${exitCode}) before reporting; counted as one failure`);
    totals.failures += 1;
    return;
  }
  count(label, JSON.parse(summary[1]), exitCode);
}

console.log(`Node ${process.version} (${process.execPath})`);
const missing = missingPrerequisites();
if (missing.length > 0) {
  console.log(`\nThe test suite needs what this machine lacks:\n${missing.map((m) => `  ${m.what}: apt-get install ${m.pkg}`).join('\n')}`);
  console.log(`Install them all with: sudo npm run setup   (apt-get install ${[...new Set(missing.map((m) => m.pkg))].join(' ')})`);
  console.log('\n0 passed, 1 failed');
  rmSync(scratch, { recursive: true, force: true });
  process.exit(1);
}
try {
  typeCheck();
  mocha('unit, integration and security tests', repo, ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/security/**/*.test.ts']);
  if (process.getuid() === 0) {
    const cgroup = delegatedCgroup(NOBODY);
    const tree = treeReadableBy(NOBODY);
    const inCgroup = cgroup ? `, in the delegated cgroup ${cgroup}` : '';
    try {
      const revokeIds = grantSubordinateIds(NOBODY);
      try {
        mocha(`integration and security tests as uid ${NOBODY} (rootless with a subordinate range, as with uidmap${inCgroup})`, tree,
          ['test/integration/**/*.test.ts', 'test/security/**/*.test.ts'], NOBODY, cgroup);
      } finally {
        revokeIds();
      }
      const restoreIds = withoutSubordinateIds(NOBODY);
      try {
        mocha(`single-id tests as uid ${NOBODY} (rootless with one id mapped, as without uidmap or a range${inCgroup})`, tree, SINGLE_ID_SPECS, NOBODY, cgroup);
      } finally {
        restoreIds();
      }
    } finally {
      const left = cgroup ? removeCgroup(cgroup) : [];
      if (left.length) {
        console.log(`the rootless pass left cgroups behind: ${left.join(' ')}; counted as one failure`);
        totals.failures += 1;
      }
    }
  } else {
    const ids = isSingleIdMap(callerIdMap()) ? 'one id mapped' : 'its subordinate range';
    console.log(`\nnot root: no rootless passes as uid ${NOBODY} (they need root); the tests above ran rootless as uid ${process.getuid()} with ${ids}`);
  }
  await limitSuite();
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

console.log(`\n${totals.passes} passed, ${totals.failures} failed${totals.pending ? `, ${totals.pending} skipped` : ''}`);
process.exitCode = totals.failures > 0 ? 1 : 0;
