// Fixtures shared by the tests: a busybox-static root filesystem and snapshots of what a process holds.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTreeMapped } from '../lib/fs/remove-mapped.ts';
import { callerIdMap, isSingleIdMap } from '../lib/sys/id-map.ts';

/** busybox-static, installed by .ci/run (Debian's busybox-static). */
export const BUSYBOX = '/bin/busybox';

/** Makes a tiny root: busybox and its applets in /bin, empty /proc, /dev, /tmp; remove it with rmRoot. */
export function makeBusyboxRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'corral-test-root-'));
  chmodSync(root, 0o755);
  for (const dir of ['bin', 'proc', 'dev', 'tmp', 'etc', 'root', 'sys']) mkdirSync(join(root, dir), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/marker'), 'busybox-root\n');
  return root;
}

/** Removes a directory tree made by a test. */
export function rmRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/** True when the tests run without root (the rootless passes). */
export const rootless = process.getuid!() !== 0;

/** True when the tests run rootless with only the caller's own id mapped (no subordinate range in
 * /etc/subuid and /etc/subgid, or no newuidmap/newgidmap): images cannot use another id. */
export const singleIdRootless = rootless && isSingleIdMap(callerIdMap());

/** The fds this process has open, by number. */
export function openFds(): string[] {
  // A runtime keeps a few fresh network namespaces ready (lib/net/netns-pool.ts, at most 4 in a process):
  // those fds are its own by design, not a leak.
  return readdirSync('/proc/self/fd').filter((fd) => !isNetnsFd(fd)).sort();
}

/** How many network namespace fds this process holds (the pools' and any leaked ones). */
export function netnsFds(): number {
  return readdirSync('/proc/self/fd').filter(isNetnsFd).length;
}

function isNetnsFd(fd: string): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('net:[');
  } catch {
    return false;
  }
}

/** This process's children, by pid, with the state letter of /proc/PID/stat ('Z': a zombie). */
function children(): { pid: number; state: string }[] {
  const found: { pid: number; state: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid) found.push({ pid: Number(entry), state: fields[0]! });
    } catch {
      // the process went away while we looked
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** This process's children that are zombies (exited, not reaped). */
export function zombieChildren(): number[] {
  return children().filter((c) => c.state === 'Z').map((c) => c.pid);
}

/** This process's live children, by pid. */
export function liveChildren(): number[] {
  return children().filter((c) => c.state !== 'Z').map((c) => c.pid);
}

/** The host's mount table as this process sees it. */
export function mountTable(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Entries of the temp directory, to spot leftovers. */
export function tmpEntries(): string[] {
  return readdirSync(tmpdir()).sort();
}

/** Processes in the same PID namespace as pid (including pid), by host pid. */
export function pidsInNamespaceOf(pid: number): number[] {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === ns) found.push(Number(entry));
    } catch {
      // gone, or not ours to look at
    }
  }
  return found;
}

/** True while a process exists (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until check() is true or the time is up; returns the last result. */
export async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/** This process's fds once they equal expected (or after 2 s): a runtime's pool of prepared
 * network namespaces holds a netlink socket for a moment while it refills in the background. */
export async function settledFds(expected: string[]): Promise<string[]> {
  await eventually(() => JSON.stringify(openFds()) === JSON.stringify(expected), 2000);
  return openFds();
}

/** What each of this process's fds is (readlink of /proc/self/fd/N), by number. */
export function fdTargets(): Map<string, string> {
  const what = (fd: string): string => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '?';
    }
  };
  return new Map(openFds().map((fd) => [fd, what(fd)]));
}

/** What differs between the fds of `before` (fdTargets) and those open now, for a message. */
export function fdDiff(before: Map<string, string>): string {
  const now = fdTargets();
  const list = (from: Map<string, string>, other: Map<string, string>): string => [...from].filter(([fd]) => !other.has(fd)).map(([fd, t]) => `${fd} ${t}`).join(', ') || 'none';
  return `opened: ${list(now, before)}; closed: ${list(before, now)}`;
}

/** This process's fds once they stay the same for 100 ms (or after 2 s): a baseline taken while
 * a pool refills would count its passing netlink socket. */
export async function quietFds(): Promise<string[]> {
  const end = Date.now() + 2000;
  let last = openFds();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const now = openFds();
    if (JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
  }
  return last;
}

/** Skips the calling test or hook, printing why, when missing names a missing prerequisite; under
 * CI=true (where .ci/run installs everything) it fails instead: CI never skips. */
export function requirePrerequisite(ctx: Mocha.Context, missing: string | null): void {
  if (missing === null) return;
  if (process.env.CI === 'true') throw new Error(`${missing} (under CI=true nothing is skipped)`);
  console.log(`    skipped: ${missing}`);
  ctx.skip();
}

/** Every path under dir, relative and sorted (a directory tree's shape, to spot leftovers). */
export function treeEntries(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Removes a test's work directory, including what a rootless runtime shifted into the caller's
 * subordinate range (removed through a user namespace with the caller's map). */
export async function removeWork(dir: string): Promise<void> {
  await removeTreeMapped(dir, rootless ? callerIdMap() : null);
}

/** Runs a mocha spec file of test/netns/ in a network namespace of its own (unshare --net): the
 * bridges, veth pairs, nftables rules and sysctls it makes never touch the host's, and nothing of
 * them can outlive it. Fails with its output. */
export function mochaInOwnNetns(spec: string): void {
  const repo = join(import.meta.dirname, '..');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CORRAL_TEST_SUMMARY;
  const r = spawnSync('unshare', ['--net', process.execPath, join(repo, 'node_modules/mocha/bin/mocha.js'), '--reporter', 'dot', spec], { cwd: repo, env, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
}

/** One TCP exchange (connect, read to the end) with host:port, retried while the server starts
 * (up to 5 s); '' when it never answered. */
export async function tcpAnswer(host: string, port: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const answer = await tcpOnce(host, port).catch(() => '');
    if (answer) return answer;
    await new Promise((r) => setTimeout(r, 50));
  }
  return '';
}

function tcpOnce(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.end());
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(3000, () => s.destroy(new Error(`timeout on ${host}:${port}`)));
  });
}
