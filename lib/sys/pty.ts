import koffi from 'koffi';
import { nativeLibrary } from './native.ts';
import { syscallError } from './errors.ts';
import { libc } from './libc.ts';

const c = {
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long request, const uint8_t *arg)'),
  tcgetattr: libc.func('int tcgetattr(int fd, _Out_ uint8_t *termios)'),
  tcsetattr: libc.func('int tcsetattr(int fd, int when, const uint8_t *termios)'),
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

/** Turns off output processing on a terminal (OPOST: no \n to \r\n), what cfmakeraw does and libuv's
 * raw mode does not; a terminal that relays another's output must pass it as it is. */
export function rawOutput(fd: number): void {
  const termios = Buffer.alloc(60);
  if (c.tcgetattr(fd, termios) < 0) throw syscallError('tcgetattr', koffi.errno(), { step: 'read the terminal mode' });
  termios.writeUInt32LE(termios.readUInt32LE(4) & ~1 /* OPOST */, 4);
  if (c.tcsetattr(fd, 0 /* TCSANOW */, termios) < 0) throw syscallError('tcsetattr', koffi.errno(), { step: 'set the terminal mode' });
}
