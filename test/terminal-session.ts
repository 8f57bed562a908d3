// Drives a terminal (a container's, or one this test made) as a person at it would: type, wait for
// output, read what came.
import type { Duplex } from 'node:stream';

/** A terminal's output so far, with waits for what is to come. */
export class TerminalSession {
  #output = '';
  readonly #stream: Duplex;

  constructor(stream: Duplex) {
    this.#stream = stream;
    stream.on('data', (d: Buffer) => {
      this.#output += d.toString('latin1');
    });
  }

  /** Everything the terminal printed. */
  get output(): string {
    return this.#output;
  }

  /** Types text (\x03 is Ctrl-C). */
  type(text: string): void {
    this.#stream.write(text);
  }

  /** Resolves with the match once the output after from (an offset) matches pattern. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#output.slice(from).match(pattern);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`terminal never printed ${pattern}; it printed ${JSON.stringify(this.#output)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Types a line and resolves with what it printed: the output between the last echo of the line
   * (a terminal echoes typed input once more when the shell is not yet reading) and the marker it
   * makes the shell print. */
  async command(line: string): Promise<string> {
    const [a, b] = [`m${Math.random().toString(36).slice(2, 6)}`, Math.random().toString(36).slice(2, 6)];
    const from = this.#output.length;
    // The marker is built from two halves so the echoed command line itself does not match it.
    const echoed = `${a}""${b}-$?\r\n`;
    this.type(`${line}; echo ${a}""${b}-$?\n`);
    const done = await this.waitFor(new RegExp(`${a}${b}-\\d+`), from);
    const upTo = from + done.index!;
    const start = this.#output.lastIndexOf(echoed, upTo);
    return this.#output.slice(start + echoed.length, upTo);
  }

  /** Runs `sleep 100` in the shell at the terminal, types Ctrl-C, and resolves with the status the
   * shell then reports for it (130 when SIGINT reached it: the shell's foreground job). */
  async interruptSleep(): Promise<string> {
    this.type('sleep 100\r');
    await new Promise((r) => setTimeout(r, 300));
    this.type('\x03');
    return this.command('echo status-$?');
  }
}
