import koffi from 'koffi';
import { syscallError } from './errors.ts';

/** The one handle on the C library that every lib/sys module declares its functions on. */
export const libc = koffi.load('libc.so.6');

/** siginfo_t as waitid fills it; only the fields corral reads are named. */
koffi.struct('corral_siginfo', {
  si_signo: 'int',
  si_errno: 'int',
  si_code: 'int',
  _pad: 'int',
  si_pid: 'int',
  si_uid: 'uint',
  si_status: 'int',
  _rest: koffi.array('uint8', 100),
});

/** struct pollfd. */
koffi.struct('corral_pollfd', { fd: 'int', events: 'short', revents: 'short' });

const c = {
  poll: libc.func('int poll(_Inout_ corral_pollfd *fds, unsigned long nfds, int timeout)'),
  pipe2: libc.func('int pipe2(_Out_ int *fds, int flags)'),
  close: libc.func('int close(int fd)'),
  read: libc.func('long read(int fd, _Out_ uint8_t *buf, unsigned long count)'),
  open: libc.func('int open(const char *path, int flags, uint mode)'),
  waitid: libc.func('int waitid(int idtype, uint id, _Out_ corral_siginfo *info, int options)'),
  pidfdOpen: libc.func('int pidfd_open(int pid, uint flags)'),
  pidfdSendSignal: libc.func('int pidfd_send_signal(int pidfd, int sig, void *info, uint flags)'),
  flock: libc.func('int flock(int fd, int operation)'),
  mkfifo: libc.func('int mkfifo(const char *path, uint mode)'),
  memfdCreate: libc.func('int memfd_create(const char *name, uint flags)'),
  write: libc.func('long write(int fd, const uint8_t *buf, unsigned long count)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, int arg)'),
};

const O_CLOEXEC = 0o2000000;
const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
const CLD_EXITED = 1;

function check(result: number, syscall: string, path?: string): number {
  if (result < 0) throw syscallError(syscall, koffi.errno(), path === undefined ? {} : { path });
  return result;
}

/** A pipe whose both ends are close-on-exec: [read, write]. */
export function pipe(): [number, number] {
  const fds = [0, 0];
  check(c.pipe2(fds, O_CLOEXEC), 'pipe2');
  return [fds[0]!, fds[1]!];
}

/** A close-on-exec duplicate of fd. */
export function dupCloexec(fd: number): number {
  return check(c.fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, 3), 'fcntl');
}

/** Closes a raw fd; errors are ignored, since every caller owns its fd outright. */
export function close(fd: number): void {
  c.close(fd);
}

/** Reads what is there without blocking; null when the read would block. */
export function readNow(fd: number, size: number): Buffer | null {
  const buf = Buffer.alloc(size);
  const n = Number(c.read(fd, buf, size));
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === 11) return null;
    throw syscallError('read', errno);
  }
  return buf.subarray(0, n);
}

const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const MFD_EXEC = 0x10;
const EINVAL = 22;
const F_ADD_SEALS = 1033;
/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_EXEC (the last one ignored before Linux 6.3). */
const ALL_SEALS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20;

/** A close-on-exec memfd holding content, sealed so that nobody can change it any more (not even
 * through /proc/PID/exe): an executable image no container can overwrite. */
export function sealedMemfd(name: string, content: Buffer): number {
  let fd = c.memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && koffi.errno() === EINVAL) fd = c.memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); // before Linux 6.3
  check(fd, 'memfd_create', name);
  try {
    for (let done = 0; done < content.length;) done += check(Number(c.write(fd, content.subarray(done), content.length - done)), 'write', name);
    if (c.fcntl(fd, F_ADD_SEALS, ALL_SEALS) < 0 && koffi.errno() === EINVAL) check(c.fcntl(fd, F_ADD_SEALS, ALL_SEALS & ~0x20), 'fcntl', name);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

/** Opens a file as a raw close-on-exec fd (for /dev/null as a child's stdio). */
export function openRaw(path: string, flags: number): number {
  return check(c.open(path, flags | O_CLOEXEC, 0), 'open', path);
}

/** Flags for openRaw. */
export const OPEN_FLAGS = { O_RDWR: 2 } as const;

/** How a reaped process ended, as child_process reports it. */
export interface ExitStatus {
  exitCode: number | null;
  signal: number | null;
}

/** Reaps the process behind a pidfd if it has exited; null while it runs. Reaps nothing else. */
export function reapPidfd(pidfd: number): ExitStatus | null {
  const info: Record<string, number> = {};
  check(c.waitid(P_PIDFD, pidfd, info, WEXITED | WNOHANG), 'waitid');
  if (!info.si_pid) return null;
  return info.si_code === CLD_EXITED
    ? { exitCode: info.si_status!, signal: null }
    : { exitCode: null, signal: info.si_status! };
}

/** A pidfd for a pid that is our own unreaped child (so the pid cannot be reused meanwhile). */
export function pidfdOpen(pid: number): number {
  return check(c.pidfdOpen(pid, 0), 'pidfd_open');
}

/** Sends a signal through a pidfd; false when the process is already gone (ESRCH). */
export function pidfdSendSignal(pidfd: number, signal: number): boolean {
  if (c.pidfdSendSignal(pidfd, signal, null, 0) === 0) return true;
  const errno = koffi.errno();
  if (errno === 3) return false;
  throw syscallError('pidfd_send_signal', errno);
}

const POLLIN = 1;

/** True once the process behind pidfd has exited, reaped or not (its pidfd polls readable): a
 * process that is not our child may stay a zombie as long as its reaper takes. */
export function pidfdExited(pidfd: number): boolean {
  const entry = { fd: pidfd, events: POLLIN, revents: 0 };
  return check(c.poll(entry, 1, 0), 'poll') > 0;
}

const LOCK_EX = 2;

/** Blocks until this process holds an exclusive flock on fd (released when fd is closed, or by the
 * kernel when the process dies, so a killed holder never leaves a lock behind). */
export function lockExclusive(fd: number, path: string): void {
  for (;;) {
    if (c.flock(fd, LOCK_EX) === 0) return;
    const errno = koffi.errno();
    if (errno !== 4) throw syscallError('flock', errno, { path, step: 'lock' });
  }
}

/** Makes a FIFO (a detached container's control channel to its supervisor). */
export function mkfifo(path: string, mode: number): void {
  check(c.mkfifo(path, mode), 'mkfifo', path);
}
