import { readFileSync } from 'node:fs';

const LOOPBACK_NAMESERVER = /^\s*nameserver\s+(127\.\d+\.\d+\.\d+|::1)\s*$/;

/** The host's /etc/resolv.conf for a container on a bridge network: nameservers on loopback (a
 * local stub such as systemd-resolved's, unreachable from the container's namespace) are dropped,
 * as Docker does; search, options and the other nameservers are kept. */
export function containerResolvConf(hostPath = '/etc/resolv.conf'): string {
  let text: string;
  try {
    text = readFileSync(hostPath, 'utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((line) => !LOOPBACK_NAMESERVER.test(line));
  return lines.join('\n');
}
