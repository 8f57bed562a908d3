import { randomBytes } from 'node:crypto';
import { close } from '../sys/libc.ts';
import { netnsSocket } from '../sys/netns.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { ensureBridge } from './bridge.ts';
import { rmSync } from 'node:fs';
import { HOST_GATEWAY, renderHosts, type HostEntry } from './hosts-file.ts';
import { rewriteInPlace } from './in-place-file.ts';
import { containerResolvConf } from './resolv-conf.ts';
import { Ipam, type Endpoint } from './ipam.ts';
import { formatAddress, parseSubnet } from './ipv4.ts';
import { withLock } from './lock.ts';
import { addRules, deleteRules, nft, type NftRule, type NftRuleRef } from './nftables.ts';
import type { HeldPort, PublishedPort } from './ports.ts';
import type { NetnsPool } from './netns-pool.ts';
import { RtNetlink } from './rtnetlink.ts';
import type { NetworkPaths, StoredNetwork } from './network-store.ts';

/** A network with where its state lives: what attaching works on. */
export interface NetworkHandle {
  config: StoredNetwork;
  paths: NetworkPaths;
}

/** What a container asks of a network. */
export interface AttachRequest {
  container: string;
  /** Names other containers of the network resolve it by. */
  names: string[];
  /** A fixed address, or null for the next free one. */
  ip: string | null;
  /** Lines for its hosts file alone (spec.extraHosts): it then gets a hosts file of its own. */
  extraHosts: HostEntry[];
  /** Host ports already held for it (lib/net/ports.ts). */
  ports: readonly HeldPort[];
  /** The process tag that owns the endpoint (a detached container's supervisor's); default ours. */
  owner?: string;
}

/** A container's attachment: its network namespace (the container joins it), address, hosts
 * file and published ports; release() undoes it all. */
export interface Attachment {
  /** fd of the prepared network namespace (ours until release). */
  nsfd: number;
  ip: string;
  /** The network's hosts file, or the endpoint's own when it has extra lines. */
  hostsFile: string;
  /** The host's resolv.conf without loopback nameservers, for /etc/resolv.conf. */
  resolvConf: string;
  ports: PublishedPort[];
  /** This process lets go of the namespace (idempotent; release() then undoes the rest): a
   * detached container's supervisor holds its own fd, and the namespace goes with the last. */
  handOver(): void;
  release(): void;
}

let hostNetlink: RtNetlink | undefined;

/** The rtnetlink socket of this process's own network namespace, opened on first use. */
function host(): RtNetlink {
  hostNetlink ??= new RtNetlink();
  return hostNetlink;
}

function ipamOf(net: NetworkHandle): Ipam {
  const c = net.config;
  return new Ipam(net.paths.endpoints, parseSubnet(c.subnet), [c.gateway]);
}

function portRules(container: string, owner: string, ip: string, ports: readonly HeldPort[]): NftRule[] {
  const comment = `corral:${owner}:${container}`;
  return ports.map((p) => ({
    chain: 'ports' as const,
    comment,
    expr: [...(p.hostIp === '0.0.0.0' ? [] : [nft.daddr(p.hostIp)]), nft.dport(p.protocol, p.host), nft.dnat(ip, p.container)],
  }));
}

/** The hosts file of an endpoint with extra lines (spec.extraHosts), beside the network's. */
function ownHostsFile(net: NetworkHandle, ip: string): string {
  return `${net.paths.hosts}-${ip}`;
}

/** Rewrites the network's hosts file, and the own hosts file of every endpoint with extra lines
 * (the network's entries, then its own). */
function rewriteHosts(net: NetworkHandle, ipam: Ipam): void {
  writeHosts(net, ipam.endpoints().filter((e) => !isStaleTag(e.owner)));
}

/** rewriteHosts from the live endpoints already read. */
function writeHosts(net: NetworkHandle, endpoints: readonly Endpoint[]): void {
  const live = [...endpoints].sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  rewriteInPlace(net.paths.hosts, renderHosts(live), 'the network hosts file');
  for (const e of live) {
    if (e.extraHosts?.length) rewriteInPlace(ownHostsFile(net, e.ip), renderHosts([...live, ...e.extraHosts]), `the hosts file of container ${e.container}`);
  }
}

/** Undoes what an endpoint holds on the host: its rules, its veth (gone already when its
 * namespace went away), its own hosts file and its address. */
function undoEndpoint(net: NetworkHandle, ipam: Ipam, e: Endpoint): void {
  deleteRules(e.rules);
  host().deleteLink(e.veth);
  rmSync(ownHostsFile(net, e.ip), { force: true });
  ipam.release(e.ip);
}

/** Frees what endpoints of dead processes left (a SIGKILL leaves no time to clean up) and returns
 * the endpoints of live processes; callers hold the network lock (net.paths.lock). */
export function sweepEndpoints(net: NetworkHandle, ipam = ipamOf(net)): Endpoint[] {
  const all = ipam.endpoints();
  const stale = all.filter((e) => isStaleTag(e.owner));
  for (const e of stale) undoEndpoint(net, ipam, e);
  const live = all.filter((e) => !stale.includes(e));
  if (stale.length > 0) writeHosts(net, live);
  return live;
}

/** The endpoints of live processes on a network, after sweeping those of dead ones. */
export function liveEndpoints(net: NetworkHandle): Endpoint[] {
  return withLock(net.paths.lock, () => sweepEndpoints(net));
}

/** Attaches a network namespace to the network (root): a never-used one with lo up from the pool
 * (none ready, or no pool: one made here), the bridge made when missing, a veth pair
 * with its peer as eth0 straight inside the namespace, eth0 up with its address and default route
 * in one round trip, hosts entry, DNAT rules for the held ports (no nftables call without any). The
 * endpoint's record is its address file, made before anything it owns on the host. On a failure
 * nothing is left behind. */
export function attach(net: NetworkHandle, request: AttachRequest, pool: NetnsPool | null = null): Attachment {
  const c = net.config;
  const subnet = parseSubnet(c.subnet);
  const prefix = subnet.prefix;
  const ipam = ipamOf(net);
  const owner = request.owner ?? processTag();
  const prepared = pool?.take() ?? null;
  let nsfd: number;
  let sock: number;
  try {
    ({ nsfd, sock } = netnsSocket(prepared, RtNetlink.SOCKET.family, RtNetlink.SOCKET.type, RtNetlink.SOCKET.protocol));
  } catch (e) {
    if (prepared !== null) close(prepared);
    throw e;
  }
  const inner = new RtNetlink(sock);
  let endpoint: Endpoint | undefined;
  let rules: NftRuleRef[] = [];
  try {
    if (prepared === null) inner.setUp(1, 'lo');
    endpoint = withLock(net.paths.lock, () => {
      const live = sweepEndpoints(net, ipam);
      const bridge = ensureBridge(host(), { bridge: c.bridge, subnet: formatAddress(subnet.base), prefix, gateway: c.gateway, internal: c.internal });
      const veth = `vc${randomBytes(6).toString('hex')}`;
      const extraHosts = request.extraHosts.map((h) => (h.ip === HOST_GATEWAY ? { ...h, ip: c.gateway } : h));
      const extra = extraHosts.length ? { extraHosts } : {};
      const e = ipam.allocate({ container: request.container, owner, veth, names: request.names, ...extra, rules: [] }, request.ip);
      try {
        host().addVeth(veth, bridge, 'eth0', nsfd);
        inner.configureLink(inner.linkIndex('eth0')!, 'eth0', e.ip, prefix, c.gateway);
        rules = addRules(portRules(request.container, owner, e.ip, request.ports), `publish the ports of container ${request.container}`);
        e.rules = rules;
        if (rules.length > 0) ipam.update(e);
        writeHosts(net, [...live, e]);
        rewriteInPlace(net.paths.resolvConf, containerResolvConf(), 'the network resolv.conf');
      } catch (err) {
        undoEndpoint(net, ipam, e);
        throw err;
      }
      return e;
    });
  } catch (e) {
    inner.close();
    close(nsfd);
    throw e;
  }
  inner.close();
  const done = endpoint;
  let released = false;
  let nsOpen = true;
  const handOver = (): void => {
    if (nsOpen) close(nsfd);
    nsOpen = false;
  };
  return {
    nsfd,
    ip: done.ip,
    hostsFile: done.extraHosts ? ownHostsFile(net, done.ip) : net.paths.hosts,
    resolvConf: net.paths.resolvConf,
    ports: request.ports.map(({ hostIp, host: hostPort, container, protocol }) => ({ hostIp, host: hostPort, container, protocol })),
    handOver,
    release() {
      if (released) return;
      released = true;
      try {
        withLock(net.paths.lock, () => {
          deleteRules(done.rules, true);
          rmSync(ownHostsFile(net, done.ip), { force: true });
          ipam.release(done.ip);
          rewriteHosts(net, ipam);
        });
      } finally {
        // The last reference to the namespace: the kernel tears it down with the veth pair
        // (asynchronously; deleting the veth here would cost ~25 ms of RCU waits).
        handOver();
      }
    },
  };
}

/** Undoes the endpoint a container of another process holds (a detached one's, from its saved
 * address and owner), once its namespace is gone; nothing when it is no longer that container's
 * (a sweeper freed it after its owner died, and the address may be another's now). */
export function detach(net: NetworkHandle, endpoint: { container: string; ip: string; owner: string }): void {
  withLock(net.paths.lock, () => {
    const ipam = ipamOf(net);
    const e = ipam.endpoints().find((x) => x.ip === endpoint.ip && x.container === endpoint.container && x.owner === endpoint.owner);
    if (!e) return;
    undoEndpoint(net, ipam, e);
    rewriteHosts(net, ipam);
  });
}
