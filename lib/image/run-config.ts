import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import type { ImageConfig } from './oci.ts';
import type { ImageDefaults } from '../container/image-provider.ts';


/** The first regular file at path in the layers, top layer first (a whiteout is a char device,
 * which hides the file below). */
function readInLayers(lowerDirs: string[], path: string): string | null {
  for (const dir of lowerDirs) {
    try {
      return readFileSync(join(dir, path), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      return null;
    }
  }
  return null;
}

function lookup(file: string | null, name: string, field: number): number | undefined {
  for (const line of (file ?? '').split('\n')) {
    const parts = line.split(':');
    if (parts[0] === name && parts[field] !== undefined && /^\d+$/.test(parts[field]!)) return Number(parts[field]);
  }
  return undefined;
}

/** Resolves an image's User ('uid', 'uid:gid', 'name', 'name:group') through its /etc/passwd and
 * /etc/group, as docker does: a name that is not there is an error. */
function resolveUser(user: string, lowerDirs: string[]): ImageDefaults['user'] {
  if (!user) return undefined;
  const [u, g] = user.split(':') as [string, string | undefined];
  const passwd = readInLayers(lowerDirs, 'etc/passwd');
  const uid = /^\d+$/.test(u) ? Number(u) : lookup(passwd, u, 2);
  if (uid === undefined) throw new CorralError(`the image's user '${u}' is not in its /etc/passwd`, { code: 'ERR_INVALID_SPEC', path: '/etc/passwd' });
  let gid: number | undefined;
  if (g === undefined) gid = /^\d+$/.test(u) ? (lookup(passwd, passwdName(passwd, uid), 3) ?? 0) : lookup(passwd, u, 3);
  else gid = /^\d+$/.test(g) ? Number(g) : lookup(readInLayers(lowerDirs, 'etc/group'), g, 2);
  if (gid === undefined) throw new CorralError(`the image's group '${g ?? u}' is not in its /etc/group`, { code: 'ERR_INVALID_SPEC', path: '/etc/group' });
  return { uid, gid, groups: [] };
}

function passwdName(passwd: string | null, uid: number): string {
  return (passwd ?? '').split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0] ?? '';
}

/** The container defaults an image config gives: command, environment, working directory, user. */
export function imageDefaults(config: ImageConfig, lowerDirs: string[]): ImageDefaults {
  const c = config.config ?? {};
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const at = kv.indexOf('=');
    if (at > 0) env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return {
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env,
    cwd: c.WorkingDir || undefined,
    user: resolveUser(c.User ?? '', lowerDirs),
  };
}
