/** The 512-byte tar header block: ustar fields, GNU base-256 numbers and the checksum, both ways. */

/** The size of a tar block: headers are one block, data is padded to whole blocks. */
export const BLOCK = 512;

/** The zero block; two of them end an archive. */
export const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** The bytes of padding that follow `size` bytes of data, up to the next block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** How a codec reports a malformed archive: each caller names its own error (a layer, an archive). */
export type InvalidTar = (entry: string, problem: string) => Error;

/** The fields of a header block (as decoded, names as written: pax and GNU long names apply later). */
export interface HeaderFields {
  name: string;
  /** The typeflag character ('0', '5', 'x', …). */
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a header block; a bad checksum, a non-number or a name that is not UTF-8 is `invalid`. */
export function decodeHeader(block: Buffer, invalid: InvalidTar): HeaderFields {
  if (!checksumMatches(block)) throw invalid('', 'a header checksum does not match: this is not a tar, or it is corrupt');
  // POSIX ustar only: old GNU headers ('ustar  ') keep atime and ctime where ustar has its prefix.
  const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
  let name = decodeName(field(block, 0, 100), '', invalid);
  if (ustar && block[345] !== 0) name = `${decodeName(field(block, 345, 155), name, invalid)}/${name}`;
  const num = (offset: number, length: number, what: string): number => number(block, offset, length, what, name, invalid);
  return {
    name,
    flag: String.fromCharCode(block[156]!),
    mode: num(100, 8, 'mode') & 0o7777,
    uid: num(108, 8, 'uid'),
    gid: num(116, 8, 'gid'),
    size: num(124, 12, 'size'),
    mtime: num(136, 12, 'mtime'),
    linkname: decodeName(field(block, 157, 100), name, invalid),
    devmajor: num(329, 8, 'devmajor'),
    devminor: num(337, 8, 'devminor'),
  };
}

/** Decodes a name as UTF-8; anything else is `invalid` (layers carry UTF-8 names only). */
export function decodeName(bytes: Buffer, entry: string, invalid: InvalidTar): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalid(entry || bytes.toString('latin1'), 'a name is not valid UTF-8');
  }
}

/** Encodes a ustar header block and names the pax records it needs for what ustar cannot hold. */
export function encodeHeader(entry: HeaderFields): { block: Buffer; pax: Array<[string, Buffer]> } {
  const name = Buffer.from(entry.name);
  const linkname = Buffer.from(entry.linkname);
  const split = splitName(name);
  const pax: Array<[string, Buffer]> = [];
  if (split === null) pax.push(['path', name]);
  if (linkname.length > 100 || !isAscii(linkname)) pax.push(['linkpath', linkname]);
  if (entry.size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(entry.size))]);
  if (entry.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(entry.gid))]);
  if (entry.mtime < 0 || entry.mtime > MAX_OCTAL_11) pax.push(['mtime', Buffer.from(String(entry.mtime))]);

  const block = Buffer.alloc(BLOCK);
  const [prefix, base] = split ?? [Buffer.alloc(0), name.subarray(0, 100)];
  base.copy(block, 0);
  writeOctal(block, 100, 8, entry.mode);
  writeOctal(block, 108, 8, entry.uid > MAX_OCTAL_7 ? 0 : entry.uid);
  writeOctal(block, 116, 8, entry.gid > MAX_OCTAL_7 ? 0 : entry.gid);
  writeOctal(block, 124, 12, entry.size > MAX_OCTAL_11 ? 0 : entry.size);
  writeOctal(block, 136, 12, entry.mtime < 0 || entry.mtime > MAX_OCTAL_11 ? 0 : entry.mtime);
  block.write(entry.flag, 156, 'latin1');
  linkname.subarray(0, 100).copy(block, 157);
  block.write('ustar\x0000', 257, 'latin1');
  writeOctal(block, 329, 8, entry.devmajor);
  writeOctal(block, 337, 8, entry.devminor);
  prefix.copy(block, 345);
  writeChecksum(block);
  return { block, pax };
}

/** Whether the checksum field matches the block: the sum of its bytes with the field itself read
 * as spaces, unsigned as POSIX says or signed as some old tars computed it. */
function checksumMatches(block: Buffer): boolean {
  let stored = 0;
  for (let i = 148; i < 156; i++) {
    const byte = block[i]!;
    if (byte >= 0x30 && byte <= 0x37) stored = stored * 8 + byte - 0x30;
    else if (stored > 0 || (byte !== 0x20 && byte !== 0)) break;
  }
  let unsigned = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) unsigned += block[i]!;
  if (stored === unsigned) return true;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) signed += (block[i]! << 24) >> 24;
  return stored === signed;
}

/** A numeric header field: octal text, or GNU base-256 when the top bit of its first byte is set. */
function number(block: Buffer, offset: number, length: number, what: string, entry: string, invalid: InvalidTar): number {
  if (block[offset]! & 0x80) {
    let value = BigInt(block[offset]! & 0x7f);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(block[offset + i]!);
    if (block[offset] === 0xff) value -= 1n << BigInt(8 * length - 1);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw invalid(entry, `the ${what} field is out of range`);
    return Number(value);
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < end && block[i] !== 0x20 && block[i] !== 0; i++) {
    const digit = block[i]! - 0x30;
    if (digit < 0 || digit > 7) throw invalid(entry, `the ${what} field is not a number`);
    value = value * 8 + digit;
  }
  return value;
}

function field(block: Buffer, offset: number, length: number): Buffer {
  const bytes = block.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
}

/** Splits a name into ustar's prefix (155 bytes) and name (100 bytes) at a '/'; null when it does
 * not fit or is not ASCII (then pax carries it). */
function splitName(name: Buffer): [Buffer, Buffer] | null {
  if (!isAscii(name)) return null;
  if (name.length <= 100) return [Buffer.alloc(0), name];
  for (let at = name.indexOf(0x2f, Math.max(name.length - 101, 1)); at !== -1 && at <= 155; at = name.indexOf(0x2f, at + 1)) {
    if (at < name.length - 1) return [name.subarray(0, at), name.subarray(at + 1)];
  }
  return null;
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b < 0x80);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}
