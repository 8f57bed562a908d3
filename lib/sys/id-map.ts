import { accessSync, constants, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

/** One run of ids: inside .. inside+count-1 in the user namespace are outside .. on the host. */
export interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

/** A user namespace's uid and gid maps. */
export interface IdMap {
  uids: readonly IdRange[];
  gids: readonly IdRange[];
}

/** The single mapping: the caller is root inside and no other id exists. */
export function singleIdMap(uid = process.getuid!(), gid = process.getgid!()): IdMap {
  return { uids: [{ inside: 0, outside: uid, count: 1 }], gids: [{ inside: 0, outside: gid, count: 1 }] };
}

/** Whether a map is the single mapping (the executor writes it itself, no helper needed). */
export function isSingleIdMap(map: IdMap): boolean {
  return map.uids.length === 1 && map.uids[0]!.count === 1 && map.gids.length === 1 && map.gids[0]!.count === 1;
}

/** The host id of an id inside, or null when the ranges do not map it. */
export function toHost(ranges: readonly IdRange[], id: number): number | null {
  const r = ranges.find((x) => id >= x.inside && id < x.inside + x.count);
  return r ? r.outside + (id - r.inside) : null;
}

/** The id inside of a host id, or null when the ranges do not map it. */
export function toInside(ranges: readonly IdRange[], id: number): number | null {
  const r = ranges.find((x) => id >= x.outside && id < x.outside + x.count);
  return r ? r.inside + (id - r.outside) : null;
}

/** The arguments of newuidmap/newgidmap after the pid: "inside outside count" triples. */
export function helperArgs(ranges: readonly IdRange[]): string[] {
  return ranges.flatMap((r) => [String(r.inside), String(r.outside), String(r.count)]);
}

/** The subordinate ranges /etc/subuid-format text gives a user (by name or by number). */
export function parseSubordinate(text: string, name: string, id: number): { start: number; count: number }[] {
  const ranges: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who !== name && who !== String(id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0) ranges.push({ start: s, count: c });
  }
  return ranges;
}

/** Where newuidmap and newgidmap are (Debian's uidmap), or null when one is missing. */
export function idMapHelpers(): { newuidmap: string; newgidmap: string } | null {
  const find = (name: string): string | null => {
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin']) {
      try {
        accessSync(`${dir}/${name}`, constants.X_OK);
        return `${dir}/${name}`;
      } catch { /* not here */ }
    }
    return null;
  };
  const newuidmap = find('newuidmap');
  const newgidmap = find('newgidmap');
  return newuidmap && newgidmap ? { newuidmap, newgidmap } : null;
}

function readSubordinate(file: string, name: string, id: number): { start: number; count: number } | null {
  try {
    return parseSubordinate(readFileSync(file, 'utf8'), name, id)[0] ?? null;
  } catch {
    return null;
  }
}

/** The caller's default map, podman's layout: 0 → the caller, 1..N → its first subordinate range
 * in /etc/subuid and /etc/subgid when both exist and newuidmap/newgidmap are installed; else the
 * single mapping. */
export function callerIdMap(): IdMap {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const name = userInfo().username;
  const subuid = readSubordinate('/etc/subuid', name, uid);
  const subgid = readSubordinate('/etc/subgid', name, uid);
  if (!subuid || !subgid || !idMapHelpers()) return singleIdMap(uid, gid);
  return {
    uids: [{ inside: 0, outside: uid, count: 1 }, { inside: 1, outside: subuid.start, count: subuid.count }],
    gids: [{ inside: 0, outside: gid, count: 1 }, { inside: 1, outside: subgid.start, count: subgid.count }],
  };
}

/** Checks a caller-given map: ranges of non-negative integers, 0 inside mapped for uid and gid. */
export function checkIdMap(map: unknown): IdMap | null {
  const ranges = (v: unknown): v is IdRange[] => Array.isArray(v) && v.length > 0 && v.every((r) =>
    typeof r === 'object' && r !== null && [r.inside, r.outside, r.count].every((n) => Number.isSafeInteger(n) && n >= 0) && r.count > 0);
  if (typeof map !== 'object' || map === null) return null;
  const { uids, gids } = map as IdMap;
  if (!ranges(uids) || !ranges(gids) || toHost(uids, 0) === null || toHost(gids, 0) === null) return null;
  return { uids: uids.map((r) => ({ ...r })), gids: gids.map((r) => ({ ...r })) };
}
