/**
 * Bridge-network benchmark: the cost of a container on a bridge network (and with a published
 * port) over network 'none', side by side with rootful podman (its default network; podman 4.3
 * from Debian uses CNI here: bridge, host-local, portmap through iptables-nft), attaching a
 * namespace in-process vs the `ip` CLI way, and TCP throughput through a published port (the same
 * payload sent from the host to `nc -l` in the container, corral vs podman). Both run /bin/true
 * (or nc) in the same busybox root (podman --rootfs).
 *
 *   node --import tsx benchmarks/network.ts [--runs N]   PAYLOAD_MB=N (default 256, 64 in the VM)
 *
 * Must run as root; it re-runs itself under `unshare --net` so the host's interfaces and nftables
 * are never touched. podman only runs where no cgroup v1 hierarchy is mounted (common.ts
 * podmanMissing); on a hybrid host the whole benchmark runs again in the pure cgroup v2 VM
 * (test/vm) for the comparison. Shuffled interleaved rounds, medians in ms. Prints numbers and
 * ratios, asserts nothing.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../lib/index.ts';
import { close } from '../lib/sys/libc.ts';
import { netnsSocket } from '../lib/sys/netns.ts';
import { RtNetlink } from '../lib/net/rtnetlink.ts';
import { makeBusyboxRoot, rmRoot } from '../test/helpers.ts';
import { interleaved, median, podmanMissing, rerunInVm, rootfulPodman, runsArg, timedRun } from './common.ts';

if (process.env.CORRAL_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['--net', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, CORRAL_BENCH_NETNS: '1' } });
  process.exit(r.status ?? 1);
}

const RUNS = runsArg(process.argv.slice(2), 'network.ts');
const PAYLOAD = Number(process.env.PAYLOAD_MB ?? (process.env.CORRAL_IN_VM ? 64 : 256)) << 20;
const root = mkdtempSync(join(tmpdir(), 'corral-bench-net-'));
const runtime = new Runtime({ root, cgroupParent: false });
const busybox = makeBusyboxRoot();
const noPodman = podmanMissing();
const podmanArgs = rootfulPodman(root);
const exec = promisify(execFile);
const podman = (...args: string[]): Promise<{ stdout: string }> => exec('podman', [...podmanArgs.global, ...args], { maxBuffer: 16 << 20 });
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
/** A free port of 127.0.0.1 (for podman, which needs one named). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  return port;
}

/** podman run --rm of the busybox root with these options, timed. */
const podmanRun = (options: string[]) => timed(async () => {
  await podman('run', '--rm', ...podmanArgs.run, ...options, '--rootfs', busybox, '/bin/true');
});

const variants: [string, () => Promise<number>][] = [
  ["corral run /bin/true, network 'none'", () => timedRun(runtime, { rootfs: busybox, command: ['/bin/true'], network: 'none' }, 'none')],
  ["corral run /bin/true, network 'bridge'", () => timedRun(runtime, { rootfs: busybox, command: ['/bin/true'], network: 'bridge' }, 'bridge')],
  ["corral run /bin/true, 'bridge' + 1 published port", () => timedRun(runtime, { rootfs: busybox, command: ['/bin/true'], ports: [{ container: 80 }] }, 'bridge + port')],
  ['attach in-process (netns+veth+addr+route)', timed(attachInProcess)],
  ['attach with the ip CLI (same steps)', timed(attachWithIpCli)],
];
const podmanVariants: [string, () => Promise<number>][] = noPodman ? [] : [
  ["podman run --rm /bin/true, --network none", podmanRun(['--network', 'none'])],
  ["podman run --rm /bin/true, default network + 1 port", async () => podmanRun(['-p', `127.0.0.1:${await freePort()}:80`])()],
];

/** Connects to a published port until the server in the container answers the handshake (DNAT
 * makes the connect succeed only once nc listens), then sends the payload and waits for the close;
 * returns MB/s. */
async function sendPayload(port: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 120);
  for (let attempt = 0; ; attempt++) {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    const ok = await new Promise<boolean>((r) => { socket.once('connect', () => r(true)); socket.once('error', () => r(false)); });
    if (!ok) {
      socket.destroy();
      if (attempt > 200) throw new Error(`nothing listens behind 127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const t0 = performance.now();
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.resume();
    let sent = 0;
    for (; sent < PAYLOAD && !socket.destroyed; sent += chunk.length) {
      if (!socket.write(chunk)) await new Promise((r) => { socket.once('drain', r); socket.once('close', r); });
    }
    if (socket.destroyed) throw new Error(`the connection to 127.0.0.1:${port} closed after ${sent >> 20} MB`);
    socket.end();
    await closed;
    return (PAYLOAD / (1 << 20)) / ((performance.now() - t0) / 1000);
  }
}

const sink = ['sh', '-c', 'nc -l -p 80 > /dev/null'];
async function corralThroughput(): Promise<number> {
  const c = await runtime.create({ rootfs: busybox, command: sink, ports: [{ container: 80 }] });
  try {
    await c.start();
    return await sendPayload(c.ports()[0]!.host);
  } finally {
    await c.remove({ force: true });
  }
}
async function podmanThroughput(): Promise<number> {
  const port = await freePort();
  const id = (await podman('run', '-d', ...podmanArgs.run, '-p', `127.0.0.1:${port}:80`, '--rootfs', busybox, ...sink)).stdout.trim();
  try {
    return await sendPayload(port);
  } finally {
    await podman('rm', '-f', '-t', '0', id);
  }
}

try {
  const all = [...variants, ...podmanVariants];
  for (const [, once] of all) for (let i = 0; i < 3; i++) await once();
  // podman is two orders slower: a tenth of the runs.
  const samples = await interleaved(variants, RUNS, 10, ([, once]) => once());
  const podmanSamples = noPodman ? new Map<unknown, number[]>() : await interleaved(podmanVariants, Math.max(10, Math.round(RUNS / 10)), 5, ([, once]) => once());
  console.log(`bridge networks, load ${loadavg()[0]!.toFixed(1)}, ${RUNS} runs each (podman ${Math.max(10, Math.round(RUNS / 10))}) in shuffled interleaved rounds, median ms`);
  for (const [[name], xs] of [...samples, ...podmanSamples] as [[string], number[]][]) console.log(`  ${name.padEnd(52)} ${median(xs).toFixed(2)}`);
  const m = (map: Map<unknown, number[]>, list: [string, unknown][], i: number): number => median(map.get(list[i])!);
  const corralExtra = m(samples, variants, 2) - m(samples, variants, 0);
  console.log(`  corral: bridge +${(m(samples, variants, 1) - m(samples, variants, 0)).toFixed(2)} ms, bridge + port +${corralExtra.toFixed(2)} ms over 'none'`);
  if (noPodman) {
    console.log(`podman: not run here (${noPodman})`);
  } else {
    const podmanExtra = m(podmanSamples, podmanVariants, 1) - m(podmanSamples, podmanVariants, 0);
    console.log(`  podman: default network + port +${podmanExtra.toFixed(2)} ms over none`);
    console.log(`  corral/podman: start with a port ${(m(samples, variants, 2) / m(podmanSamples, podmanVariants, 1)).toFixed(3)}x, extra cost of the network ${(corralExtra / podmanExtra).toFixed(3)}x`);
  }
  const rounds = 3;
  const tput = { corral: [] as number[], podman: [] as number[] };
  let podmanFailure = noPodman;
  for (let i = 0; i < rounds; i++) {
    tput.corral.push(await corralThroughput());
    if (!podmanFailure) tput.podman.push(await podmanThroughput().catch((e: Error) => { podmanFailure = `failed: ${e.message}`; return 0; }));
  }
  const mb = PAYLOAD >> 20;
  console.log(`TCP through a published port (127.0.0.1), ${mb} MB to nc -l, ${rounds} rounds alternated, median MB/s: corral ${median(tput.corral).toFixed(0)}${podmanFailure ? `; podman ${podmanFailure}` : `, podman ${median(tput.podman).toFixed(0)}, corral/podman ${(median(tput.corral) / median(tput.podman)).toFixed(2)}x`}`);
} finally {
  await runtime.networks.prune();
  if (!noPodman) await podman('rm', '-af', '-t', '0').catch(() => {});
  host.deleteLink('benchbr0');
  rmRoot(busybox);
  rmSync(root, { recursive: true, force: true });
}
if (noPodman && !process.env.CORRAL_IN_VM) await rerunInVm(fileURLToPath(import.meta.url), Math.max(20, Math.round(RUNS / 5)), 'the podman comparison', 1_800_000);
