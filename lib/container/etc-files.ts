import { existsSync, readFileSync } from 'node:fs';
import type { OwnFile, PlannedMount } from '../fs/rootfs.ts';
import { HOST_GATEWAY, renderHosts } from '../net/hosts-file.ts';
import { pastaHostGateway } from '../net/pasta.ts';
import { containerResolvConf, setsDns } from '../net/resolv-conf.ts';
import type { ResolvedSpec } from './spec.ts';

/** The files every container gets its own of, bound over the root's (as Docker's). */
export const ETC_FILE_PATHS = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'] as const;

/** The address a container's own host name resolves to when it has no other (Debian's convention). */
const SELF_ADDRESS = '127.0.1.1';

/** Whether a mount covers a path (is on it or on a directory above it). */
function covered(path: string, mounts: readonly PlannedMount[]): boolean {
  return mounts.some((m) => path === m.target || path.startsWith(`${m.target}/`));
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Where the host's own files are read from (tests point them at fixtures). */
export interface HostEtc {
  hosts: string;
  resolvConf: string;
}

const HOST_ETC: HostEtc = { hosts: '/etc/hosts', resolvConf: '/etc/resolv.conf' };

/** Where 'host-gateway' (spec.extraHosts) points for a container whose hosts file is its own: the
 * host itself on its network, pasta's mapped gateway; a bridge network binds its own hosts file,
 * where lib/net/endpoints.ts puts the network's gateway. */
function hostGateway(network: ResolvedSpec['network']): string {
  if (network === 'host') return '127.0.0.1';
  if (network === 'pasta') return pastaHostGateway();
  return HOST_GATEWAY;
}

/** The container's own /etc/hostname, /etc/hosts and /etc/resolv.conf, as Docker gives every
 * container: the host name; localhost, the host name and spec.extraHosts (on the host's network
 * the host's hosts file first); resolv.conf from the host's (loopback nameservers dropped in a
 * network namespace of its own) with spec.dns*, when the container has a network or the spec sets
 * DNS. A file a mount covers is left to the mount (a bridge network binds its shared hosts file and
 * resolv.conf); on the host root a file the host lacks is left out (that root is read-only). */
export function etcFiles(spec: ResolvedSpec, mounts: readonly PlannedMount[], onHostRoot: boolean, host: HostEtc = HOST_ETC): OwnFile[] {
  if (!spec.namespaces.mount) return [];
  const files: OwnFile[] = [];
  if (spec.namespaces.uts) files.push({ target: ETC_FILE_PATHS[0], text: `${spec.hostname}\n` });
  const hostNetwork = spec.network === 'host';
  const self = spec.namespaces.uts ? [{ ip: SELF_ADDRESS, names: [spec.hostname] }] : [];
  const extra = spec.extraHosts.map((h) => (h.ip === HOST_GATEWAY ? { ...h, ip: hostGateway(spec.network) } : h));
  files.push({ target: ETC_FILE_PATHS[1], text: renderHosts([...self, ...extra], hostNetwork ? readText(host.hosts) : null) });
  if (spec.network !== 'none' || setsDns(spec.dns)) {
    files.push({ target: ETC_FILE_PATHS[2], text: containerResolvConf(host.resolvConf, spec.dns, hostNetwork) });
  }
  return files.filter((f) => !covered(f.target, mounts) && (!onHostRoot || existsSync(f.target)));
}
