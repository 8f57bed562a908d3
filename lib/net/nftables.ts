import { nftRun } from '../sys/libnftables.ts';
import { CorralError } from '../sys/errors.ts';

/** corral's one nftables table; no other table is ever touched. */
const TABLE = { family: 'ip', table: 'corral' } as const;

type Expr = Record<string, unknown>;

/** A rule to add to a chain of the corral table, tagged with a comment that says whose it is. */
export interface NftRule {
  chain: 'ports' | 'postrouting' | 'forward';
  expr: Expr[];
  comment: string;
}

/** A rule in the table: where it is, its handle and its comment. */
export interface NftRuleRef {
  chain: string;
  handle: number;
  comment: string;
}

function match(left: Expr, right: unknown, op = '=='): Expr {
  return { match: { op, left, right } };
}

/** Expressions of rules: the few matches and verdicts corral's rules are made of. */
export const nft = {
  saddr: (subnet: string, len: number, op = '=='): Expr => match({ payload: { protocol: 'ip', field: 'saddr' } }, { prefix: { addr: subnet, len } }, op),
  daddr: (address: string): Expr => match({ payload: { protocol: 'ip', field: 'daddr' } }, address),
  dport: (protocol: 'tcp' | 'udp', port: number): Expr => match({ payload: { protocol, field: 'dport' } }, port),
  oifname: (name: string, op = '=='): Expr => match({ meta: { key: 'oifname' } }, name, op),
  iifname: (name: string, op = '=='): Expr => match({ meta: { key: 'iifname' } }, name, op),
  ctDnat: (): Expr => match({ ct: { key: 'status' } }, 'dnat', 'in'),
  ctEstablished: (): Expr => match({ ct: { key: 'state' } }, ['established', 'related'], 'in'),
  dnat: (address: string, port: number): Expr => ({ dnat: { addr: address, port } }),
  masquerade: (): Expr => ({ masquerade: null }),
  accept: (): Expr => ({ accept: null }),
  drop: (): Expr => ({ drop: null }),
};

const jumpToPorts: Expr[] = [match({ fib: { result: 'type', flags: ['daddr'] } }, 'local'), { jump: { target: 'ports' } }];

/** Makes the table and its chains when it is missing: published ports are DNAT rules in 'ports',
 * reached from prerouting and output for local destinations; masquerading in postrouting; the
 * bridges' forwarding policy in forward. Callers hold the host-wide network lock. */
export function ensureTable(): void {
  try {
    nftRun({ nftables: [{ list: { table: { family: TABLE.family, name: TABLE.table } } }] }, 'look for the corral nftables table');
    return;
  } catch {
    // missing: made below
  }
  const chain = (name: string, hook?: { type: string; hook: string; prio: number }): Expr =>
    ({ add: { chain: { ...TABLE, name, ...(hook ? { ...hook, policy: 'accept' } : {}) } } });
  nftRun({ nftables: [
    { add: { table: { family: TABLE.family, name: TABLE.table } } },
    chain('ports'),
    chain('prerouting', { type: 'nat', hook: 'prerouting', prio: -100 }),
    chain('output', { type: 'nat', hook: 'output', prio: -100 }),
    chain('postrouting', { type: 'nat', hook: 'postrouting', prio: 100 }),
    chain('forward', { type: 'filter', hook: 'forward', prio: 0 }),
    { add: { rule: { ...TABLE, chain: 'prerouting', expr: jumpToPorts } } },
    { add: { rule: { ...TABLE, chain: 'output', expr: jumpToPorts } } },
    // Before any network's rules: replies, and connections to published ports, pass.
    { add: { rule: { ...TABLE, chain: 'forward', expr: [nft.ctEstablished(), nft.accept()] } } },
    { add: { rule: { ...TABLE, chain: 'forward', expr: [nft.ctDnat(), nft.accept()] } } },
  ] }, 'create the corral nftables table');
}

/** Adds rules in one atomic batch and returns them with their handles, in order. */
export function addRules(rules: readonly NftRule[], step: string): NftRuleRef[] {
  if (rules.length === 0) return [];
  const out = nftRun({ nftables: rules.map((r) => ({ add: { rule: { ...TABLE, chain: r.chain, expr: r.expr, comment: r.comment } } })) }, step);
  const added = (out?.nftables ?? []).flatMap((item) => {
    const rule = (item.add as { rule?: { chain: string; handle: number; comment?: string } } | undefined)?.rule;
    return rule ? [{ chain: rule.chain, handle: rule.handle, comment: rule.comment ?? '' }] : [];
  });
  if (added.length !== rules.length) throw new CorralError(`${step}: libnftables echoed ${added.length} handles for ${rules.length} rules`, { code: 'ERR_NETWORK_SETUP', step });
  return added;
}

/** Deletes rules by handle in one batch; rules already gone (or a handle now holding another
 * rule, its comment differs) are skipped. held: the caller added them and holds them still (a
 * container's own release), so they are deleted without listing the table first (~0.6 ms), and
 * checked against the listing only if that batch is refused (one was deleted by someone else). */
export function deleteRules(rules: readonly NftRuleRef[], held = false): void {
  if (rules.length === 0) return;
  const remove = (list: readonly NftRuleRef[]) => nftRun({ nftables: list.map((r) => ({ delete: { rule: { ...TABLE, chain: r.chain, handle: r.handle } } })) }, `delete ${list.length} nftables rules`);
  if (held) {
    try {
      remove(rules);
      return;
    } catch {
      // one of them is gone: the checked way below
    }
  }
  const key = (r: NftRuleRef): string => `${r.chain}/${r.handle}/${r.comment}`;
  const present = new Set(listRules().map(key));
  const gone = rules.filter((r) => present.has(key(r)));
  if (gone.length > 0) remove(gone);
}

/** Deletes the table when no rule of corral's is left in it (only the jumps to 'ports'). */
export function dropTableIfUnused(): void {
  const rules = listRules();
  if (rules.length === 0 || rules.some((r) => r.comment !== '')) return;
  nftRun({ nftables: [{ delete: { table: { family: TABLE.family, name: TABLE.table } } }] }, 'delete the corral nftables table');
}

/** Lists the rules of the corral table (empty when there is no table). */
export function listRules(): NftRuleRef[] {
  let out;
  try {
    out = nftRun({ nftables: [{ list: { table: { family: TABLE.family, name: TABLE.table } } }] }, 'list the corral nftables table');
  } catch {
    return [];
  }
  return (out?.nftables ?? []).flatMap((item) => {
    const rule = item.rule as { chain: string; handle: number; comment?: string } | undefined;
    return rule ? [{ chain: rule.chain, handle: rule.handle, comment: rule.comment ?? '' }] : [];
  });
}
