import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where a runtime keeps volumes and container layers when its config names no root:
 * /var/lib/corral as root, $XDG_DATA_HOME/corral (~/.local/share/corral) otherwise. */
export function defaultRoot(): string {
  if (process.getuid!() === 0) return '/var/lib/corral';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'corral');
}
