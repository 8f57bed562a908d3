import koffi from 'koffi';
import { nativeLibrary } from './native.ts';
import { syscallError } from './errors.ts';

const libc = koffi.load('libc.so.6');
const c = {
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long request, const uint8_t *arg)'),
};
const receiveFn = nativeLibrary.func('int32_t corral_receive_terminal(int32_t sock)');

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const TIOCSWINSZ = 0x5414;

/** A close-on-exec unix socket pair: [ours, the child's] (the console socket of OP_CONSOLE). */
export function consoleSocketPair(): [number, number] {
  const fds = [-1, -1];
  if (c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) throw syscallError('socketpair', koffi.errno(), { step: 'make the console socket' });
  return [fds[0]!, fds[1]!];
}

/** The pty master a container process sent on the console socket, checked to be one. */
export function receiveTerminal(sock: number): number {
  const fd = receiveFn(sock);
  if (fd < 0) throw syscallError('recvmsg', -fd, { step: 'receive the container terminal' });
  return fd;
}

/** Sets a terminal's window size (TIOCSWINSZ): its foreground process group gets SIGWINCH. */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  if (c.ioctl(fd, TIOCSWINSZ, ws) < 0) throw syscallError('ioctl', koffi.errno(), { step: 'resize the container terminal' });
}
