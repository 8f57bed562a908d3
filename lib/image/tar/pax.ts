/** pax extended headers: records "<length> <key>=<value>\n", values kept as bytes (xattrs are binary). */

import { decodeName, encodeHeader, padding, type InvalidTar } from './header.ts';

/** The prefix of the pax keys that carry extended attributes (star's and GNU tar's convention). */
export const XATTR_PREFIX = 'SCHILY.xattr.';

/** Adds the records of a pax header's data to `into`; a malformed record is `invalid`. */
export function decodePax(data: Buffer, into: Map<string, Buffer>, entry: string, invalid: InvalidTar): void {
  for (let at = 0; at < data.length;) {
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString('latin1', at, space));
    const end = at + length;
    if (!Number.isInteger(length) || space === at || end > data.length || end <= space + 2 || data[end - 1] !== 0x0a) {
      throw invalid(entry, 'a malformed pax header');
    }
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw invalid(entry, 'a malformed pax header');
    into.set(decodeName(record.subarray(0, eq), entry, invalid), record.subarray(eq + 1));
    at = end;
  }
}

/** The blocks of a pax extended header ('x') holding `records`, named after the entry it describes. */
export function encodePax(records: Array<[string, Buffer]>, entryName: string, mtime: number): Buffer[] {
  const data = Buffer.concat(records.map(([key, value]) => record(key, value)));
  const base = entryName.replace(/\/$/, '').split('/').pop()!;
  const { block } = encodeHeader({
    name: `PaxHeaders/${base}`.slice(0, 100), flag: 'x', mode: 0o644, uid: 0, gid: 0, size: data.length,
    mtime: Math.max(mtime, 0), linkname: '', devmajor: 0, devminor: 0,
  });
  return [block, data, Buffer.alloc(padding(data.length))];
}

/** "<length> <key>=<value>\n", where length counts its own digits too. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + String(body.length).length;
  if (String(length).length !== String(body.length).length) length = body.length + String(length).length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

