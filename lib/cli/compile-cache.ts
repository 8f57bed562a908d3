import { mkdirSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where the corral command keeps V8's compiled code of its modules: $XDG_CACHE_HOME/corral/compile
 * when set, else /var/cache/corral/compile as root and ~/.cache/corral/compile otherwise. */
function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || (process.getuid!() === 0 ? '/var/cache' : join(homedir(), '.cache'));
  return join(base, 'corral', 'compile');
}

/** Makes dir and its missing parents one by one: Node's own recursive making (mkdirSync's and
 * enableCompileCache's) spins forever under /proc, where mkdir fails with ENOENT. */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw e;
    makeDir(dirname(dir));
    mkdirSync(dir, { mode: 0o700 });
  }
}

/** Turns on Node's module compile cache (Node 22.1 and later; Node 20 has none) so each command
 * after the first skips compiling the modules it imports. Never fails the command: an unwritable
 * directory only leaves the cache off (NODE_DISABLE_COMPILE_CACHE=1 turns it off too). */
export function useCompileCache(): void {
  const enable = (module as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  if (typeof enable !== 'function') return;
  try {
    const dir = cacheDir();
    makeDir(dir);
    enable(dir);
  } catch {
    // no cache: the command runs as without one
  }
}
