/** A line of a hosts file: an address and its names. */
export interface HostEntry {
  ip: string;
  names: string[];
}

/** The text of a network's hosts file: localhost, then every endpoint. */
export function renderHosts(entries: readonly HostEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const e of entries) lines.push(`${e.ip}\t${[...new Set(e.names)].join(' ')}`);
  return `${lines.join('\n')}\n`;
}
