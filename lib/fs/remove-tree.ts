import { chmodSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** rm -rf that also gets through directories without permissions for their owner (overlayfs
 * leaves work/work as d---------, and a container or a layer may have 000 directories). */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    const open = (d: string): void => {
      chmodSync(d, 0o700);
      for (const entry of readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) open(join(d, entry.name));
    };
    open(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
