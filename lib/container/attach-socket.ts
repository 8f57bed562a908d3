import { closeSync, constants, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { fromNodeError } from '../sys/errors.ts';
import { checkTerminalSize, type TerminalSize } from './terminal.ts';

// The frames of DIR/attach (bindings/supervisor.c): [type][length, 2 bytes big-endian][data].
const FRAME = { stdin: 0, resize: 1, stdout: 1, stderr: 2 } as const;
const FRAME_MAX = 4096;

function frame(type: number, data: Buffer): Buffer {
  const head = Buffer.from([type, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, data]);
}

/** A connection to a detached container's supervisor (its attach socket): the live output as
 * stdout and stderr (both end when the run's output ends), input and window sizes to it. */
export class AttachConnection {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Typed into the container's terminal or written to its stdin pipe (with interactive). */
  readonly stdin: Writable;
  readonly #socket: Socket;
  #pending = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        const frames: Buffer[] = [];
        for (let at = 0; at < chunk.length; at += FRAME_MAX) frames.push(frame(FRAME.stdin, chunk.subarray(at, at + FRAME_MAX)));
        // A supervisor that let us go takes no more input: that is not an error of the writer.
        if (socket.writable) socket.write(Buffer.concat(frames), () => callback());
        else callback();
      },
    });
    socket.on('data', (d: Buffer) => this.#receive(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.stdout.end();
      this.stderr.end();
    });
  }

  /** Connects to DIR/attach, through /proc/self/fd so a long DIR fits a socket address. */
  static async open(dir: string): Promise<AttachConnection> {
    const path = join(dir, 'attach');
    let fd: number;
    try {
      fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      throw fromNodeError(e, 'open the state directory to attach', dir);
    }
    try {
      const socket = connect({ path: `/proc/self/fd/${fd}/attach` });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      return new AttachConnection(socket);
    } catch (e) {
      throw fromNodeError(e, 'connect to the supervisor to attach', path);
    } finally {
      closeSync(fd);
    }
  }

  /** Sets the container terminal's window size (its foreground process group gets SIGWINCH). */
  resize(size: TerminalSize): void {
    const { cols, rows } = checkTerminalSize(size, 'resize');
    const data = Buffer.alloc(4);
    data.writeUInt16BE(rows, 0);
    data.writeUInt16BE(cols, 2);
    this.#socket.write(frame(FRAME.resize, data));
  }

  /** Lets go (the container goes on); resolves once what was sent is flushed and the socket closed. */
  async close(): Promise<void> {
    if (this.#socket.closed) return;
    const closed = new Promise((resolve) => this.#socket.once('close', resolve));
    this.#socket.end();
    await closed;
  }

  #receive(data: Buffer): void {
    let buf = this.#pending.length ? Buffer.concat([this.#pending, data]) : data;
    while (buf.length >= 3) {
      const len = buf.readUInt16BE(1);
      if (buf.length < 3 + len) break;
      (buf[0] === FRAME.stderr ? this.stderr : this.stdout).write(buf.subarray(3, 3 + len));
      buf = buf.subarray(3 + len);
    }
    this.#pending = Buffer.from(buf);
  }
}
