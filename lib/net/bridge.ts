import { writeFileSync } from 'node:fs';
import { fromNodeError } from '../sys/errors.ts';
import { addRules, deleteRules, dropTableIfUnused, ensureTable, listRules, nft, type NftRule } from './nftables.ts';
import { withLock } from './lock.ts';
import type { RtNetlink } from './rtnetlink.ts';

/** What the host needs to know to set up a network's bridge. */
export interface BridgeConfig {
  bridge: string;
  subnet: string;
  prefix: number;
  gateway: string;
  /** No traffic in or out of the subnet besides published ports from the host. */
  internal: boolean;
}

/** Every corral bridge's name starts so (lib/net/network-store.ts names them). */
export const BRIDGE_PREFIX = 'cr';

/** The lock of the host's corral table, shared by every runtime root on the host. */
const HOST_LOCK = '/run/lock/corral-network.lock';

function sysctl(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    throw fromNodeError(e, 'set a network sysctl', path);
  }
}

/** The comment that marks the rules of one bridge. */
function bridgeComment(bridge: string): string {
  return `corral-net:${bridge}`;
}

/** The network-wide rules: localhost publishing (route_localnet) and hairpin connections to a
 * published port from a container of the same network are masqueraded as the gateway; outbound
 * traffic is masqueraded and forwarded unless the network is internal; traffic to another corral
 * network is dropped (published ports and replies pass by the table's first forward rules). */
function bridgeRules(c: BridgeConfig): NftRule[] {
  const comment = bridgeComment(c.bridge);
  const rules: NftRule[] = [
    { chain: 'postrouting', comment, expr: [nft.saddr('127.0.0.0', 8), nft.oifname(c.bridge), nft.masquerade()] },
    { chain: 'postrouting', comment, expr: [nft.oifname(c.bridge), nft.ctDnat(), nft.saddr(c.subnet, c.prefix), nft.masquerade()] },
  ];
  if (c.internal) {
    rules.push(
      { chain: 'forward', comment, expr: [nft.iifname(c.bridge), nft.oifname(c.bridge, '!='), nft.drop()] },
      { chain: 'forward', comment, expr: [nft.oifname(c.bridge), nft.iifname(c.bridge, '!='), nft.drop()] },
    );
  } else {
    rules.push(
      { chain: 'postrouting', comment, expr: [nft.saddr(c.subnet, c.prefix), nft.oifname(c.bridge, '!='), nft.masquerade()] },
      { chain: 'forward', comment, expr: [nft.iifname(c.bridge), nft.oifname(`${BRIDGE_PREFIX}*`), nft.oifname(c.bridge, '!='), nft.drop()] },
      { chain: 'forward', comment, expr: [nft.iifname(c.bridge), nft.accept()] },
    );
  }
  return rules;
}

/** Makes the bridge when it is missing and returns its index: rules first, then the bridge with
 * the gateway address and route_localnet, so a bridge that exists has its rules (a half-made one
 * from a crash is redone). Callers hold the network lock; the table is changed under the host lock. */
export function ensureBridge(host: RtNetlink, c: BridgeConfig): number {
  const existing = host.linkIndex(c.bridge);
  if (existing !== null) return existing;
  return withLock(HOST_LOCK, () => makeBridge(host, c));
}

function makeBridge(host: RtNetlink, c: BridgeConfig): number {
  ensureTable();
  removeBridgeRules(c.bridge);
  const rules = addRules(bridgeRules(c), `add the nftables rules of bridge ${c.bridge}`);
  try {
    host.addBridge(c.bridge);
    const index = host.linkIndex(c.bridge)!;
    host.addAddress(index, c.bridge, c.gateway, c.prefix, true);
    sysctl(`/proc/sys/net/ipv4/conf/${c.bridge}/route_localnet`, '1');
    if (!c.internal) sysctl('/proc/sys/net/ipv4/ip_forward', '1');
    host.setUp(index, c.bridge);
    return index;
  } catch (e) {
    host.deleteLink(c.bridge);
    deleteRules(rules);
    throw e;
  }
}

/** Deletes a bridge and its rules (what is already gone is fine), and the table with the last. */
export function removeBridge(host: RtNetlink, bridge: string): void {
  withLock(HOST_LOCK, () => {
    host.deleteLink(bridge);
    removeBridgeRules(bridge);
    dropTableIfUnused();
  });
}

function removeBridgeRules(bridge: string): void {
  const comment = bridgeComment(bridge);
  deleteRules(listRules().filter((r) => r.comment === comment));
}
