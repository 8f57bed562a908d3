import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes of a file or of everything under a directory (as du -b counts them, without following links). */
export async function treeSize(path: string): Promise<number> {
  const st = await lstat(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await treeSize(join(path, entry));
  return total;
}
