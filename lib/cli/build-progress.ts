/** How `corral build` shows its steps, as docker build's --progress: 'plain' lines (the default when
 * stderr is no terminal), 'tty' a view redrawn in place with each running step's elapsed time and
 * the last lines of its output (the default on a terminal), or 'quiet' (nothing). */

import type { Writable } from 'node:stream';
import type { BuildProgress } from '../build/builder.ts';
import { usageError } from './parse.ts';

/** A --progress value. */
export type ProgressMode = 'auto' | 'plain' | 'tty' | 'quiet';

/** The printer of a build's progress: its onProgress, and end() once the build is over. */
export interface ProgressPrinter {
  onProgress?: (event: BuildProgress) => void;
  end(): void;
}

/** Output lines shown under a running step in the tty view. */
const TAIL_LINES = 4;
const REDRAW_MS = 100;

/** The printer for `mode` (auto: tty when `out` is a terminal, else plain). */
export function progressPrinter(mode: string, out: Writable & { isTTY?: boolean; columns?: number } = process.stderr): ProgressPrinter {
  if (!['auto', 'plain', 'tty', 'quiet'].includes(mode)) throw usageError(`--progress must be auto, plain, tty or quiet, got '${mode}'`);
  if (mode === 'quiet') return { end: () => {} };
  if (mode === 'plain' || (mode === 'auto' && !out.isTTY)) return { onProgress: (e) => printPlain(e, out), end: () => {} };
  return new TtyView(out);
}

/** One plain line per step, and the RUN output as it comes. */
function printPlain(event: BuildProgress, out: Writable): void {
  const where = `#${event.step}/${event.total}`;
  if (event.status === 'output') out.write(event.output!);
  else if (event.status === 'cached') out.write(`${where} CACHED ${event.instruction}\n`);
  else if (event.status === 'running') out.write(`${where} ${event.instruction}\n`);
  else if (event.elapsedMs! >= 100) out.write(`${where} DONE ${(event.elapsedMs! / 1000).toFixed(1)}s\n`);
}

interface StepView {
  total: number;
  instruction: string;
  status: 'cached' | 'running' | 'done';
  startedAt: number;
  elapsedMs: number;
  tail: string[];
  partial: string;
}

/** The tty view: every step seen so far, redrawn in place (cursor up over the last frame, clear
 * below), every REDRAW_MS while a step runs so its time moves. */
class TtyView implements ProgressPrinter {
  readonly #out: Writable & { columns?: number };
  readonly #steps = new Map<number, StepView>();
  #lines = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(out: Writable & { columns?: number }) {
    this.#out = out;
  }

  onProgress = (event: BuildProgress): void => {
    const step = this.#steps.get(event.step) ?? { total: event.total, instruction: event.instruction, status: 'running', startedAt: performance.now(), elapsedMs: 0, tail: [], partial: '' };
    this.#steps.set(event.step, step);
    if (event.status === 'output') {
      const lines = (step.partial + event.output!.toString()).split('\n');
      step.partial = lines.pop()!;
      step.tail = [...step.tail, ...lines].slice(-TAIL_LINES);
    } else {
      step.status = event.status;
      if (event.status === 'done') step.elapsedMs = event.elapsedMs ?? performance.now() - step.startedAt;
    }
    this.#render();
    const running = [...this.#steps.values()].some((s) => s.status === 'running');
    if (running && this.#timer === null) this.#timer = setInterval(() => this.#render(), REDRAW_MS).unref();
    if (!running && this.#timer !== null) this.end();
  };

  end(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#render();
  }

  #render(): void {
    const width = Math.max(20, (this.#out.columns ?? 80) - 1);
    const fit = (line: string): string => (line.length > width ? `${line.slice(0, width - 1)}…` : line);
    const frame: string[] = [];
    for (const [n, s] of [...this.#steps.entries()].sort(([a], [b]) => a - b)) {
      const ms = s.status === 'running' ? performance.now() - s.startedAt : s.elapsedMs;
      const label = s.status === 'cached' ? 'CACHED' : s.status === 'done' ? 'DONE' : 'RUNNING';
      frame.push(fit(`#${n}/${s.total} ${label.padEnd(7)} ${s.instruction}${s.status === 'cached' ? '' : ` ${(ms / 1000).toFixed(1)}s`}`));
      if (s.status === 'running') for (const line of [...s.tail, ...(s.partial ? [s.partial] : [])].slice(-TAIL_LINES)) frame.push(fit(`      ${line}`));
    }
    // Up to the first line of the last frame, clear from there down, draw the new one.
    this.#out.write(`${this.#lines > 0 ? `\x1b[${this.#lines}F` : ''}\x1b[J${frame.map((l) => `${l}\n`).join('')}`);
    this.#lines = frame.length;
  }
}
