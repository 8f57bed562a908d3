import { readFileSync } from 'node:fs';

const NAMESERVER = /^\s*nameserver\s/;
const LOOPBACK_NAMESERVER = /^\s*nameserver\s+(127\.\d+\.\d+\.\d+|::1)\s*$/;
const SEARCH = /^\s*(search|domain)\s/;
const OPTIONS = /^\s*options\s/;

/** Docker's nameservers for a container whose host has none it can reach (only loopback ones). */
const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

/** What a spec sets in a container's resolv.conf (docker run --dns, --dns-search, --dns-option);
 * each null keeps the host's. */
export interface DnsSettings {
  servers: string[] | null;
  search: string[] | null;
  options: string[] | null;
}

/** Whether a spec sets anything of its resolv.conf (then the container gets its own). */
export function setsDns(dns: DnsSettings): boolean {
  return dns.servers !== null || dns.search !== null || dns.options !== null;
}

/** No settings: the host's resolv.conf as it is (after the loopback filter). */
export const HOST_DNS: DnsSettings = { servers: null, search: null, options: null };

/** A container's /etc/resolv.conf from the host's, as Docker makes it: the spec's servers, search
 * domains and options replace the host's; without servers, nameservers on loopback (a local stub
 * such as systemd-resolved's, unreachable from a network namespace of its own) are dropped unless
 * the container shares the host's network (loopbackReachable), and when none is left Docker's
 * fallback (8.8.8.8, 8.8.4.4) is named. Comments and other lines come first, then search,
 * nameserver and options lines. */
export function containerResolvConf(hostPath = '/etc/resolv.conf', dns: DnsSettings = HOST_DNS, loopbackReachable = false): string {
  let text: string;
  try {
    text = readFileSync(hostPath, 'utf8');
  } catch {
    text = '';
  }
  const lines = text.split('\n').filter((line) => line !== '' && (loopbackReachable || !LOOPBACK_NAMESERVER.test(line)));
  const of = (kind: RegExp): string[] => lines.filter((l) => kind.test(l));
  const hostServers = of(NAMESERVER);
  const servers = dns.servers?.map((s) => `nameserver ${s}`) ?? (hostServers.length || loopbackReachable ? hostServers : FALLBACK_NAMESERVERS.map((s) => `nameserver ${s}`));
  const search = dns.search ? (dns.search.length ? [`search ${dns.search.join(' ')}`] : []) : of(SEARCH);
  const options = dns.options ? (dns.options.length ? [`options ${dns.options.join(' ')}`] : []) : of(OPTIONS);
  const other = lines.filter((l) => ![NAMESERVER, SEARCH, OPTIONS].some((kind) => kind.test(l)));
  const out = [...other, ...search, ...servers, ...options];
  return out.length ? `${out.join('\n')}\n` : '';
}
