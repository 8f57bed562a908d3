import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';

/** Where a runtime keeps volumes and container layers when its config names no root:
 * /var/lib/corral as root, $XDG_DATA_HOME/corral (~/.local/share/corral) otherwise. */
export function defaultRoot(): string {
  if (process.getuid!() === 0) return '/var/lib/corral';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'corral');
}

/** The root a Runtime (or `corral ps`, which lists without one) works on: the given one, which must
 * be an absolute path (ERR_INVALID_ARG_VALUE), or the default. */
export function chosenRoot(root: unknown): string {
  if (root === undefined) return defaultRoot();
  if (typeof root !== 'string' || !isAbsolute(root)) throw new CorralError(`root must be an absolute path, got ${String(root)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  return root;
}

/** The mode of the runtime root and of each store directory in it: nobody but its owner may even
 * look in, since layers and volumes hold setuid files and device nodes (issue 10 item 2:
 * test/security/host-user-reaches-store.test.ts). */
const PRIVATE_MODE = 0o700;

/** Opens a runtime root for use, the one place that decides its mode: made 0700 when missing (with
 * any missing parents), tightened to 0700 when it is wider, refused (ERR_UNSAFE_RUNTIME_ROOT) when
 * another user owns it. Every store reaches its directory through runtimeDir, which calls this. */
function openRuntimeRoot(root: string): void {
  privateDir(root, 'runtime root');
}

/** A store's directory in the runtime root ('volumes', 'containers', 'images'), after the root
 * is opened: made, tightened or refused the same way as the root. */
export function runtimeDir(root: string, name: string): string {
  openRuntimeRoot(root);
  const dir = join(root, name);
  privateDir(dir, `runtime ${name} directory`);
  return dir;
}

/** Makes dir 0700, or checks an existing one is ours and makes it 0700. */
function privateDir(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_MODE });
    const st = statSync(dir);
    if (!st.isDirectory()) throw new CorralError(`the ${what} ${dir} is not a directory`, { code: 'ENOTDIR', path: dir });
    const uid = process.geteuid!();
    if (st.uid !== uid) {
      throw new CorralError(`the ${what} ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}): refusing to use it`, { code: 'ERR_UNSAFE_RUNTIME_ROOT', path: dir });
    }
    if ((st.mode & 0o7777) !== PRIVATE_MODE) chmodSync(dir, PRIVATE_MODE);
  } catch (e) {
    throw fromNodeError(e, `open the ${what}`, dir);
  }
}
