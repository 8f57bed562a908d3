/** A line of a hosts file: an address and its names. */
export interface HostEntry {
  ip: string;
  names: string[];
}

/** The address an extraHosts entry may name for the host as the container reaches it (Docker's
 * `--add-host NAME:host-gateway`): a network's gateway; on pasta the host's default gateway, which
 * pasta maps to the host. */
export const HOST_GATEWAY = 'host-gateway';

/** The lines every container's hosts file starts with (Docker's). */
const LOCAL_LINES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** The text of a hosts file: localhost (or `base`, another hosts file's text, such as the host's
 * for a container on the host's network), then every entry. */
export function renderHosts(entries: readonly HostEntry[], base: string | null = null): string {
  const lines = base === null ? [...LOCAL_LINES] : base.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1);
  for (const e of entries) lines.push(`${e.ip}\t${[...new Set(e.names)].join(' ')}`);
  return `${lines.join('\n')}\n`;
}
