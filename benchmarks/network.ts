/**
 * Bridge-network benchmark: the cost of a container on a bridge network (and with a published
 * port) over network 'none', and attaching a namespace in-process vs the `ip` CLI way.
 *
 *   node --import tsx benchmarks/network.ts [--runs N]
 *
 * Must run as root; it re-runs itself under `unshare --net` so the host's interfaces and nftables
 * are never touched. Shuffled interleaved rounds, medians in ms. Prints numbers, asserts nothing.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../lib/index.ts';
import { close } from '../lib/sys/libc.ts';
import { netnsSocket } from '../lib/sys/netns.ts';
import { RtNetlink } from '../lib/net/rtnetlink.ts';
import { interleaved, median, runsArg, timedRun } from './common.ts';

if (process.env.CORRAL_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['--net', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, CORRAL_BENCH_NETNS: '1' } });
  process.exit(r.status ?? 1);
}

const RUNS = runsArg(process.argv.slice(2), 'network.ts');
const root = mkdtempSync(join(tmpdir(), 'corral-bench-net-'));
const runtime = new Runtime({ root, cgroupParent: false });
execFileSync('ip', ['link', 'set', 'lo', 'up']);

const host = new RtNetlink();
host.addBridge('benchbr0');
const bridge = host.linkIndex('benchbr0')!;
host.addAddress(bridge, 'benchbr0', '10.77.0.1', 16);
host.setUp(bridge, 'benchbr0');
let n = 0;

/** netns + lo + veth (peer straight in the namespace, host end created up) + master + eth0 up, address and route
 * in one round trip, in-process (lib/net/endpoints.ts without the pool, IPAM and hosts file). */
function attachInProcess(): void {
  const i = n++;
  const { nsfd, sock } = netnsSocket(null, RtNetlink.SOCKET.family, RtNetlink.SOCKET.type, RtNetlink.SOCKET.protocol);
  const inner = new RtNetlink(sock);
  inner.setUp(1, 'lo');
  host.addVeth(`bi${i}`, bridge, 'eth0', nsfd);
  inner.configureLink(inner.linkIndex('eth0')!, 'eth0', `10.77.${(i >> 8) & 255}.${(i & 255) + 2}`, 16, '10.77.0.1');
  inner.close();
  close(nsfd);
}

/** The same with the ip CLI: a holder process in a new namespace, then one `ip` per step. */
async function attachWithIpCli(): Promise<void> {
  const i = n++;
  const holder = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 0));
  // unshare execs sleep in the new namespace: wait until its namespace differs from ours.
  const ours = execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' });
  while (spawnSync('readlink', [`/proc/${holder.pid}/ns/net`], { encoding: 'utf8' }).stdout === ours);
  const inNs = (args: string[]): void => void execFileSync('nsenter', [`--net=/proc/${holder.pid}/ns/net`, 'ip', ...args]);
  inNs(['link', 'set', 'lo', 'up']);
  execFileSync('ip', ['link', 'add', `bc${i}`, 'master', 'benchbr0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(holder.pid)]);
  execFileSync('ip', ['link', 'set', `bc${i}`, 'up']);
  inNs(['addr', 'add', `10.77.${128 + ((i >> 8) & 127)}.${(i & 255) + 2}/16`, 'dev', 'eth0']);
  inNs(['link', 'set', 'eth0', 'up']);
  inNs(['route', 'add', 'default', 'via', '10.77.0.1']);
  holder.kill('SIGKILL');
}

const timed = (fn: () => Promise<void> | void) => async (): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const variants: [string, () => Promise<number>][] = [
  ["run /bin/true, network 'none'", () => timedRun(runtime, { command: ['/bin/true'], network: 'none' }, 'none')],
  ["run /bin/true, network 'bridge'", () => timedRun(runtime, { command: ['/bin/true'], network: 'bridge' }, 'bridge')],
  ["run /bin/true, 'bridge' + 1 published port", () => timedRun(runtime, { command: ['/bin/true'], ports: [{ container: 80 }] }, 'bridge + port')],
  ['attach in-process (netns+veth+addr+route)', timed(attachInProcess)],
  ['attach with the ip CLI (same steps)', timed(attachWithIpCli)],
];

for (const [, once] of variants) for (let i = 0; i < 5; i++) await once();
const samples = await interleaved(variants, RUNS, 10, ([, once]) => once());
console.log(`bridge networks, ${RUNS} runs each in shuffled interleaved rounds of 10, median ms`);
for (const [[name], xs] of samples) console.log(`  ${name.padEnd(46)} ${median(xs).toFixed(2)}`);
await runtime.networks.prune();
host.deleteLink('benchbr0');
rmSync(root, { recursive: true, force: true });
