/** The container defaults an image config gives (command, environment, working directory, user),
 * the user resolved through the image's own /etc/passwd and /etc/group. */

import { CorralError } from '../sys/errors.ts';
import type { ImageDefaults } from '../container/image-provider.ts';
import { envRecord } from '../container/env-record.ts';
import { OverlayView } from './layer/overlay-view.ts';
import type { ImageConfig } from './oci.ts';

/** The most of /etc/passwd or /etc/group that resolution reads: a bigger one is refused. */
const MAX_ACCOUNT_FILE_BYTES = 4 * 1024 * 1024;

function lookup(file: string | null, name: string, field: number): number | undefined {
  for (const line of (file ?? '').split('\n')) {
    const parts = line.split(':');
    if (parts[0] === name && parts[field] !== undefined && /^\d+$/.test(parts[field]!)) return Number(parts[field]);
  }
  return undefined;
}

/** A file of the image as the container will see it: through the one overlay view, so a whiteout
 * or an opaque directory above hides it and no symlink leads out of the image (issue 10 item 4). */
async function readInImage(view: OverlayView, path: string): Promise<string | null> {
  return (await view.readFile(path, MAX_ACCOUNT_FILE_BYTES))?.toString('utf8') ?? null;
}

/** Resolves a user ('uid', 'uid:gid', 'name', 'name:group') through the /etc/passwd and /etc/group
 * of a root seen through the overlay view (an image's layers, or one plain directory), as docker
 * does: a name that is not there is an error. */
export async function resolveUser(user: string, view: OverlayView): Promise<NonNullable<ImageDefaults['user']>> {
  const [u, g] = user.split(':') as [string, string | undefined];
  const passwd = await readInImage(view, '/etc/passwd');
  const uid = /^\d+$/.test(u) ? Number(u) : lookup(passwd, u, 2);
  if (uid === undefined) throw new CorralError(`user '${u}' is not in the container's /etc/passwd`, { code: 'ERR_INVALID_SPEC', path: '/etc/passwd' });
  let gid: number | undefined;
  if (g === undefined) gid = /^\d+$/.test(u) ? (lookup(passwd, passwdName(passwd, uid), 3) ?? 0) : lookup(passwd, u, 3);
  else gid = /^\d+$/.test(g) ? Number(g) : lookup(await readInImage(view, '/etc/group'), g, 2);
  if (gid === undefined) throw new CorralError(`group '${g ?? u}' is not in the container's /etc/group`, { code: 'ERR_INVALID_SPEC', path: '/etc/group' });
  return { uid, gid, groups: [] };
}

function passwdName(passwd: string | null, uid: number): string {
  return (passwd ?? '').split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0] ?? '';
}

/** The home directory of uid in the /etc/passwd that a stack of layers (or one root directory)
 * shows, read through the overlay view (bounded, following no link out of it); null when it has
 * no usable entry or no readable regular /etc/passwd. */
export async function passwdHome(lowerDirs: string[], uid: number): Promise<string | null> {
  let passwd: string | null;
  try {
    passwd = await readInImage(new OverlayView(lowerDirs), '/etc/passwd');
  } catch {
    return null; // refused (a fifo, a link out, too big): the default home
  }
  const home = (passwd ?? '').split('\n').map((l) => l.split(':')).find((f) => f[2] === String(uid))?.[5];
  return home?.startsWith('/') ? home : null;
}

/** The container defaults an image config gives; lowerDirs are its layer directories, top first. */
export async function imageDefaults(config: ImageConfig, lowerDirs: string[]): Promise<ImageDefaults> {
  const c = config.config ?? {};
  const env = envRecord(c.Env ?? []);
  return {
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env,
    cwd: c.WorkingDir || undefined,
    user: c.User ? await resolveUser(c.User, new OverlayView(lowerDirs)) : undefined,
  };
}
