import koffi from 'koffi';
import { syscallError } from './errors.ts';

const libc = koffi.load('libc.so.6');
const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  send: libc.func('long send(int fd, const uint8_t *buf, unsigned long len, int flags)'),
  recv: libc.func('long recv(int fd, _Out_ uint8_t *buf, unsigned long len, int flags)'),
  flock: libc.func('int flock(int fd, int op)'),
};

const SOCK_CLOEXEC = 0o2000000;

/** A raw close-on-exec socket in this process's network namespace. */
export function socket(domain: number, type: number, protocol: number): number {
  const fd = c.socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw syscallError('socket', koffi.errno());
  return fd;
}

/** Sends one datagram on a raw socket. */
export function send(fd: number, data: Buffer): void {
  if (Number(c.send(fd, data, data.length, 0)) < 0) throw syscallError('send', koffi.errno());
}

/** Receives one datagram (blocking) into a buffer of size bytes. */
export function recv(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  for (;;) {
    const n = Number(c.recv(fd, buf, size, 0));
    if (n >= 0) return buf.subarray(0, n);
    const errno = koffi.errno();
    if (errno !== 4) throw syscallError('recv', errno);
  }
}

/** flock(2) operations. */
export const LOCK = { EX: 2, UN: 8 } as const;

/** flock(2) on an fd (blocking); path names it in errors. */
export function flock(fd: number, op: number, path: string): void {
  for (;;) {
    if (c.flock(fd, op) === 0) return;
    const errno = koffi.errno();
    if (errno !== 4) throw syscallError('flock', errno, { path });
  }
}
