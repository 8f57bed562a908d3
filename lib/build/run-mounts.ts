/** RUN --mount values (`type=cache,target=/root/.cache,id=x`, BuildKit's CSV syntax) as typed
 * mounts with BuildKit's defaults; what they become for a step lives in lib/build/mount-sources.ts. */

import { posix } from 'node:path';

/** One RUN --mount. A relative target is relative to the WORKDIR (see atWorkdir). */
export type RunMount =
  | { type: 'bind'; target: string; from: string | null; source: string; readonly: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; readonly: boolean; mode: number; uid: number; gid: number }
  | { type: 'tmpfs'; target: string; size: number | null }
  | { type: 'secret'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

/** A --mount value that cannot be used: the caller names the file, line and instruction. */
export class MountFlagError extends Error {}

const KEYS: Record<RunMount['type'], string[]> = {
  bind: ['target', 'from', 'source', 'readonly', 'rw'],
  cache: ['target', 'id', 'sharing', 'readonly', 'rw', 'mode', 'uid', 'gid'],
  tmpfs: ['target', 'size'],
  secret: ['target', 'id', 'required', 'mode', 'uid', 'gid'],
};
const ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly', 'tmpfs-size': 'size' };

/** Parses one --mount value. */
export function parseRunMount(value: string): RunMount {
  const fields = new Map<string, string>();
  for (const field of splitCsv(value)) {
    const at = field.indexOf('=');
    const key = (at < 0 ? field : field.slice(0, at)).toLowerCase();
    fields.set(ALIASES[key] ?? key, at < 0 ? 'true' : field.slice(at + 1));
  }
  const type = fields.get('type') ?? 'bind';
  fields.delete('type');
  if (type === 'ssh') throw new MountFlagError('--mount=type=ssh is not supported (corral has no SSH agent forwarding)');
  if (!(type in KEYS)) throw new MountFlagError(`unsupported mount type '${type}' (bind, cache, tmpfs or secret)`);
  const t = type as RunMount['type'];
  for (const key of fields.keys()) if (!KEYS[t].includes(key)) throw new MountFlagError(`unexpected key '${key}' in '${value}' for a ${t} mount`);
  const flag = (key: string, fallback: boolean): boolean => {
    const v = fields.get(key);
    if (v === undefined) return fallback;
    if (v !== 'true' && v !== 'false') throw new MountFlagError(`invalid value '${v}' for ${key} (true or false)`);
    return v === 'true';
  };
  const number = (key: string, fallback: number, radix = 10): number => {
    const v = fields.get(key);
    if (v === undefined) return fallback;
    if (!(radix === 8 ? /^[0-7]{1,4}$/ : /^\d+$/).test(v)) throw new MountFlagError(`invalid ${key} '${v}'`);
    return parseInt(v, radix);
  };
  const readonly = fields.has('rw') ? !flag('rw', false) : undefined;
  const explicit = fields.get('target');
  const target = (fallback?: string): string => {
    const given = explicit ?? fallback;
    if (given === undefined || given === '') throw new MountFlagError(`a ${t} mount needs a target`);
    if (posix.resolve('/', given) === '/') throw new MountFlagError('a mount target cannot be /');
    return given;
  };
  switch (t) {
    case 'bind':
      return { type: t, target: target(), from: fields.get('from') ?? null, source: fields.get('source') ?? '/', readonly: readonly ?? flag('readonly', true) };
    case 'cache': {
      const sharing = fields.get('sharing') ?? 'shared';
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw new MountFlagError(`invalid sharing '${sharing}' (shared, private or locked)`);
      const given = target();
      return { type: t, target: given, id: fields.get('id') || given, sharing, readonly: readonly ?? flag('readonly', false), mode: number('mode', 0o755, 8), uid: number('uid', 0), gid: number('gid', 0) };
    }
    case 'tmpfs': {
      const size = fields.get('size');
      if (size !== undefined && !/^\d+[kmg]?$/i.test(size)) throw new MountFlagError(`invalid size '${size}'`);
      return { type: t, target: target(), size: size === undefined ? null : parseSize(size) };
    }
    case 'secret': {
      const id = fields.get('id') || (explicit === undefined ? '' : posix.basename(explicit));
      if (id === '') throw new MountFlagError('a secret mount needs an id or a target');
      return { type: t, target: target(`/run/secrets/${id}`), id, required: flag('required', false), mode: number('mode', 0o400, 8), uid: number('uid', 0), gid: number('gid', 0) };
    }
  }
}

/** The mount with its target made absolute against the step's working directory. */
export function atWorkdir(mount: RunMount, workdir: string): RunMount {
  const target = posix.resolve(workdir, mount.target);
  if (target === '/') throw new MountFlagError(`the mount target ${mount.target} is / from the working directory ${workdir}`);
  return { ...mount, target };
}

function parseSize(text: string): number {
  const unit = text.slice(-1).toLowerCase();
  const scale = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit];
  return scale === undefined ? Number(text) : Number(text.slice(0, -1)) * scale;
}

/** Go's encoding/csv on one line: fields split at commas, a field in double quotes may hold
 * commas and "" for a quote. */
function splitCsv(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) throw new MountFlagError(`unterminated quote in '${line}'`);
  fields.push(field);
  return fields.filter((f) => f !== '');
}
