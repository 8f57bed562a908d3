import { CorralError } from '../sys/errors.ts';

/** An IPv4 subnet: its network address as a number and its prefix length. */
export interface Subnet {
  base: number;
  prefix: number;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IPv4 address as a number; ERR_INVALID_ARG_VALUE when it is not one. */
export function parseAddress(text: string, what: string): number {
  const m = typeof text === 'string' ? DOTTED.exec(text) : null;
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new CorralError(`${what} '${String(text)}' is not an IPv4 address`, { code: 'ERR_INVALID_ARG_VALUE' });
  return m.slice(1).reduce((n, o) => n * 256 + Number(o), 0);
}

/** Dotted form of an IPv4 address number. */
export function formatAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** 'A.B.C.D/N' checked (host bits must be zero; /8 to /30). */
export function parseSubnet(text: string): Subnet {
  const [address, len, extra] = typeof text === 'string' ? text.split('/') : [];
  const prefix = Number(len);
  if (extra !== undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw new CorralError(`subnet '${String(text)}' must be A.B.C.D/N with N from 8 to 30`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const base = parseAddress(address!, 'subnet');
  if ((base & hostMask(prefix)) !== 0) throw new CorralError(`subnet '${text}' has host bits set`, { code: 'ERR_INVALID_ARG_VALUE' });
  return { base, prefix };
}

function hostMask(prefix: number): number {
  return prefix === 32 ? 0 : (2 ** (32 - prefix) - 1);
}

/** The subnet's text form. */
export function formatSubnet(s: Subnet): string {
  return `${formatAddress(s.base)}/${s.prefix}`;
}

/** True when the address is a usable host of the subnet (not the network or broadcast address). */
export function isHostOf(s: Subnet, address: number): boolean {
  const offset = address - s.base;
  return offset > 0 && offset < hostMask(s.prefix);
}

/** The usable host addresses of a subnet, first to last. */
export function hostRange(s: Subnet): { first: number; last: number } {
  return { first: s.base + 1, last: s.base + hostMask(s.prefix) - 1 };
}

/** True when two subnets share addresses. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  const aEnd = a.base + hostMask(a.prefix);
  const bEnd = b.base + hostMask(b.prefix);
  return a.base <= bEnd && b.base <= aEnd;
}
