// A pseudo-terminal on the host for tests that need a program to run as a person runs it, at a
// terminal that is its controlling terminal (setsid --ctty): the CLI's -it, TIOCSTI attacks.
import { spawn, type ChildProcess } from 'node:child_process';
import koffi from 'koffi';
import { close, openRaw, OPEN_FLAGS } from '../lib/sys/libc.ts';
import { Terminal } from '../lib/container/terminal.ts';
import { TerminalSession } from './terminal-session.ts';

const libc = koffi.load('libc.so.6');
const c = {
  posixOpenpt: libc.func('int posix_openpt(int flags)'),
  grantpt: libc.func('int grantpt(int fd)'),
  unlockpt: libc.func('int unlockpt(int fd)'),
  ptsname: libc.func('const char *ptsname(int fd)'),
};
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;

/** A program running on a host pty: the terminal (type, resize), a session over it, its exit. */
export interface OnPty {
  terminal: Terminal;
  session: TerminalSession;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs argv with a new host pty as its stdio and controlling terminal. */
export function spawnOnPty(argv: string[], size = { cols: 200, rows: 50 }, env: NodeJS.ProcessEnv = process.env): OnPty {
  const master = c.posixOpenpt(OPEN_FLAGS.O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || c.grantpt(master) < 0 || c.unlockpt(master) < 0) throw new Error('no host pty');
  const slave = openRaw(c.ptsname(master) as string, OPEN_FLAGS.O_RDWR | O_NOCTTY);
  const terminal = new Terminal(master);
  terminal.resize(size);
  const session = new TerminalSession(terminal);
  const child = spawn('setsid', ['--ctty', '--wait', ...argv], { stdio: [slave, slave, slave], env });
  close(slave);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { terminal, session, child, exited };
}
