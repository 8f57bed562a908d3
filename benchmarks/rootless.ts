/**
 * Rootless start benchmark: a container in a user namespace with the caller's subordinate range
 * (the newuidmap/newgidmap handshake, a fork-like clone) against the single mapping (the child
 * writes its own one-line maps on the CLONE_VM|CLONE_VFORK path), in interleaved rounds; and the
 * handshake alone (newuidmap + newgidmap for a waiting child).
 *
 *   setpriv --reuid=65534 --regid=65534 --clear-groups node --import tsx benchmarks/rootless.ts [--runs N]
 *
 * Must run as a user with a range in /etc/subuid and /etc/subgid and uidmap installed. Every
 * variant runs /bin/true in the same busybox root (no cgroup, rootfsWritable 'direct', no
 * network). This prints numbers only: it asserts nothing about them.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../lib/index.ts';
import { callerIdMap, isSingleIdMap } from '../lib/sys/id-map.ts';
import { interleaved, median, runsArg, timedRun } from './common.ts';

const runs = runsArg(process.argv.slice(2), 'benchmarks/rootless.ts');
if (process.getuid!() === 0) throw new Error('run this as an unprivileged user with a subordinate range (setpriv --reuid=...)');
if (isSingleIdMap(callerIdMap())) throw new Error(`uid ${process.getuid!()} has no subordinate range in /etc/subuid and /etc/subgid, or uidmap is missing`);

const work = mkdtempSync(join(tmpdir(), 'corral-bench-rootless-'));
try {
  const root = join(work, 'root');
  for (const dir of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));
  const spec: ContainerSpec = { rootfs: root, command: ['/bin/true'], rootfsWritable: 'direct', network: 'none' };
  const variants = [
    { name: 'single mapping (vfork, child writes its maps)', rt: new Runtime({ root: join(work, 'single'), cgroupParent: false, idMap: 'single' }) },
    { name: 'subordinate range (newuidmap handshake)', rt: new Runtime({ root: join(work, 'range'), cgroupParent: false, idMap: 'auto' }) },
  ];
  for (const v of variants) for (let i = 0; i < 20; i++) await timedRun(v.rt, spec, v.name);
  const samples = await interleaved(variants, runs, 25, (v) => timedRun(v.rt, spec, v.name));
  const [single, range] = variants.map((v) => median(samples.get(v)!));
  for (const v of variants) console.log(`${v.name.padEnd(50)} median ${median(samples.get(v)!).toFixed(2)} ms (${runs} runs)`);
  console.log(`the range costs ${(range! - single!).toFixed(2)} ms per container start`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
