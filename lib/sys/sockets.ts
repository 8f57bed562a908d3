import koffi from 'koffi';
import { syscallError } from './errors.ts';
import { close, libc } from './libc.ts';

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  send: libc.func('long send(int fd, const uint8_t *buf, unsigned long len, int flags)'),
  recv: libc.func('long recv(int fd, _Out_ uint8_t *buf, unsigned long len, int flags)'),
  connect: libc.func('int connect(int fd, const uint8_t *addr, uint32_t len)'),
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

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SUN_PATH_MAX = 108;

/** A close-on-exec stream socket connected to a unix socket path (an OCI runtime's
 * --console-socket, where the caller waits for the pty master). */
export function connectUnix(path: string): number {
  const name = Buffer.from(path);
  if (name.length >= SUN_PATH_MAX) throw syscallError('connect', 36 /* ENAMETOOLONG */, { path });
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  const fd = socket(AF_UNIX, SOCK_STREAM, 0);
  for (;;) {
    if (c.connect(fd, addr, addr.length) === 0) return fd;
    const errno = koffi.errno();
    if (errno === 4) continue;
    close(fd);
    throw syscallError('connect', errno, { path });
  }
}

