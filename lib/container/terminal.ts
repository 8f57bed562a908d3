import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { ReadStream, WriteStream } from 'node:tty';
import { CorralError } from '../sys/errors.ts';
import { close, dupCloexec } from '../sys/libc.ts';
import { consoleSocketPair, receiveTerminal, setWindowSize } from '../sys/pty.ts';

/** A terminal's size in character cells. */
export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Checks a terminal size (1-65535 each). */
export function checkTerminalSize(size: unknown, what: string): TerminalSize {
  const s = size as Partial<TerminalSize> | null;
  const ok = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 0xffff;
  if (typeof s !== 'object' || s === null || !ok(s.cols) || !ok(s.rows)) {
    throw new CorralError(`${what} must be { cols, rows } with whole numbers from 1 to 65535`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return { cols: s.cols!, rows: s.rows! };
}

const EIO = 'EIO';

/** A container process's terminal: the pty master as a duplex stream (what the process writes comes
 * out, what is written goes to its input, Ctrl-C included), plus resize. The stream ends once every
 * process holding the slave has closed it. */
export class Terminal extends Duplex {
  readonly #fd: number;
  readonly #in: ReadStream;
  readonly #out: WriteStream;

  /** @internal Made from a received pty master, which it owns from then on. */
  constructor(master: number) {
    super({ allowHalfOpen: false });
    this.#fd = master;
    this.#in = new ReadStream(master);
    this.#out = new WriteStream(dupCloexec(master));
    this.#in.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#in.pause();
    });
    this.#in.on('end', () => this.push(null));
    // The slave's last close reads as EIO on the master: that is the end of the output.
    this.#in.on('error', (e: NodeJS.ErrnoException) => (e.code === EIO ? this.push(null) : this.destroy(e)));
    this.#out.on('error', () => {});
    this.#in.pause();
  }

  /** Sets the window size; the terminal's foreground process group gets SIGWINCH. */
  resize(size: TerminalSize): void {
    const { cols, rows } = checkTerminalSize(size, 'resize');
    if (this.destroyed) throw new CorralError('the terminal is closed', { code: 'ERR_CONTAINER_STATE' });
    setWindowSize(this.#fd, rows, cols);
  }

  override _read(): void {
    this.#in.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A process that has gone does not read its input: that is not an error of the writer.
    this.#out.write(chunk, (e) => callback(e && (e as NodeJS.ErrnoException).code !== EIO ? e : null));
  }

  /** Destroys the stream; resolves once its fds are closed (a handle closes on a later turn). */
  async close(): Promise<void> {
    if (this.closed) return;
    const closed = once(this, 'close');
    this.destroy();
    await closed;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    let open = 2;
    const closed = (): void => {
      if (--open === 0) callback(error);
    };
    for (const side of [this.#in, this.#out]) {
      if (side.closed) closed();
      else side.once('close', closed).destroy();
    }
  }
}

/** The streams run() and exec() collect from a process on a terminal: its output is stdout (stderr
 * goes there too, as on any terminal); input is typed into it (the terminal is not ended: that
 * would mean nothing to the process, which reads EOF only from a ^D). */
export function terminalIo(terminal: Terminal, input: string | Buffer | undefined): { stdin: null; stdout: Terminal; stderr: null } {
  if (input !== undefined) terminal.write(input);
  return { stdin: null, stdout: terminal, stderr: null };
}

/** The console socket of a process that is to get a terminal: its end goes into the plan, the pty
 * master comes back on ours. */
export class ConsoleSocket {
  #ours: number;
  #theirs: number;

  constructor() {
    [this.#ours, this.#theirs] = consoleSocketPair();
  }

  /** The fd the child keeps until OP_CONSOLE (commandStartOps in setup.ts). */
  get childFd(): number {
    return this.#theirs;
  }

  /** Closes the child's end here once the child has it. */
  releaseChildEnd(): void {
    if (this.#theirs >= 0) close(this.#theirs);
    this.#theirs = -1;
  }

  /** The terminal the child sent (it has run OP_CONSOLE); closes the socket. */
  receive(): Terminal {
    try {
      return new Terminal(receiveTerminal(this.#ours));
    } finally {
      this.close();
    }
  }

  /** Closes both ends, for a launch that failed. */
  close(): void {
    this.releaseChildEnd();
    if (this.#ours >= 0) close(this.#ours);
    this.#ours = -1;
  }
}
