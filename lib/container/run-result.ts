import type { Readable, Writable } from 'node:stream';
import { constants } from 'node:os';
import type { PullPolicy } from './pull-policy.ts';
import { CorralError } from '../sys/errors.ts';
import type { ExitStatus } from '../sys/libc.ts';

/** How a process ended, as child_process reports it. */
export interface ExitInfo {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** The outcome of run() and exec(); stdout and stderr are strings when an encoding was asked for. */
export interface RunResult<Output extends Buffer | string = Buffer> extends ExitInfo {
  stdout: Output;
  stderr: Output;
  /** True when the timeout killed the process. */
  timedOut: boolean;
  /** True when stdout or stderr passed maxBuffer, so the process was killed and the output cut there. */
  maxBufferExceeded: boolean;
  /** True when the kernel's OOM killer killed in the container's cgroup (memory limit reached). */
  oomKilled: boolean;
  durationMs: number;
}

/** Options of run() and exec(). */
export interface RunOptions {
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Milliseconds until the process is killed and timedOut is reported. */
  timeout?: number;
  /** Aborting kills the process and rejects with an AbortError. */
  signal?: AbortSignal;
  /** Signal used by timeout, abort and maxBuffer; default SIGKILL (a PID 1 ignores signals it has no handler for). */
  killSignal?: NodeJS.Signals;
  /** Bytes of stdout or of stderr kept at most; past it the process is killed and
   * maxBufferExceeded reported (default 100 MB, as execa; Infinity for no bound). */
  maxBuffer?: number;
  /** 'buffer' (default) gives Buffers; an encoding such as 'utf8' gives strings. */
  encoding?: BufferEncoding | 'buffer';
  /** When the spec's image is pulled (over the spec's own `pull`). */
  pull?: PullPolicy;
}

/** Run options that ask for string output. */
export type EncodedRunOptions = RunOptions & { encoding: BufferEncoding };

/** Default maxBuffer: execa's, so a chatty container cannot make the caller hold gigabytes. */
const DEFAULT_MAX_BUFFER = 100_000_000;

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** Turns a reaped status into names, as child_process does. */
export function exitInfo(status: ExitStatus): ExitInfo {
  return {
    exitCode: status.exitCode,
    signal: status.signal === null ? null : (signalNames.get(status.signal) ?? (`SIG${status.signal}` as NodeJS.Signals)),
  };
}

/** The number of a signal name, or a clear error. */
export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal > 0 && signal < 65) return signal;
  } else {
    const n = constants.signals[signal];
    if (n !== undefined) return n;
  }
  throw new CorralError(`unknown signal ${String(signal)}`, { code: 'ERR_UNKNOWN_SIGNAL' });
}

/** The rejection of an aborted run or exec, shaped like Node's own AbortError. */
export function abortError(signal: AbortSignal): CorralError {
  const err = new CorralError('The operation was aborted', { code: 'ABORT_ERR', cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** Checks run options before anything is created. */
export function checkRunOptions(options: RunOptions, hasStdin: boolean): void {
  if (options.timeout !== undefined && (!Number.isFinite(options.timeout) || options.timeout < 0)) {
    throw new CorralError(`timeout must be a non-negative number of ms, got ${options.timeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (options.input !== undefined && !hasStdin) {
    throw new CorralError("input needs stdio 'pipe'", { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (options.killSignal !== undefined) signalNumber(options.killSignal);
  if (options.maxBuffer !== undefined && !(options.maxBuffer >= 0)) {
    throw new CorralError(`maxBuffer must be a non-negative number of bytes, got ${options.maxBuffer}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (options.encoding !== undefined && options.encoding !== 'buffer' && !Buffer.isEncoding(options.encoding)) {
    throw new CorralError(`encoding '${String(options.encoding)}' is not one Buffer knows`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
}

/** Gathers a stream's bytes up to limit; past it, keeps the first limit bytes, drops the rest and
 * calls onOverflow once. */
function collect(stream: Readable | null, limit: number, onOverflow: () => void, onData: () => void): Promise<Buffer> {
  if (!stream) return Promise.resolve(Buffer.alloc(0));
  const chunks: Buffer[] = [];
  let size = 0;
  let overflowed = false;
  stream.on('data', (c: Buffer) => {
    onData();
    if (overflowed) return;
    if (size + c.length > limit) {
      chunks.push(c.subarray(0, limit - size));
      size = limit;
      overflowed = true;
      onOverflow();
      return;
    }
    chunks.push(c);
    size += c.length;
  });
  return new Promise((resolve) => stream.once('close', () => resolve(Buffer.concat(chunks))));
}

/** How long output may stay open after a killed process exited (a descendant that escaped the
 * kill may hold it) before it is cut off, so timeout and abort always settle. */
const KILLED_OUTPUT_GRACE_MS = 200;

/** How long output may stay quiet after the exit of a process whose every writer ended with it
 * (a container's init in its own pid namespace) before it is cut off: what still holds it open is
 * outside the container (a leaked fd), and the container's exit must end run(). */
const OUTPUT_AFTER_EXIT_IDLE_MS = 200;

/** Calls then() once onData has not been called for idleMs (counted from its last call) and one more turn of the event loop
 * has passed (setImmediate runs after the poll phase, so data already readable is read first),
 * unless done() is true by then. */
function quiet(idleMs: number): { onData: () => void; after: (done: () => boolean, then: () => void) => Promise<void> } {
  let last = performance.now();
  return {
    onData: () => { last = performance.now(); },
    after: async (done, then) => {
      while (!done()) {
        const left = last + idleMs - performance.now();
        if (left > 0) await new Promise((r) => setTimeout(r, Math.min(left, 20)));
        else {
          const seen = last;
          await new Promise((r) => setImmediate(r));
          if (last === seen && !done()) return then();
        }
      }
    },
  };
}

/** What collectRun needs of a started process. */
export interface RunningProcess {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  wait(): Promise<ExitInfo>;
  kill(signal: NodeJS.Signals): void;
  /** Asked once the process has exited. */
  oomKilled(): boolean;
  /** True when no process can write the output once this one has exited (the init of a container
   * with its own pid namespace): output still open then is cut off once quiet. */
  outputEndsWithExit?: boolean;
}

/** Feeds input, gathers output, and applies timeout and abort until the process has exited and its
 * output is closed. */
export async function collectRun(proc: RunningProcess, options: RunOptions, startedAt: number): Promise<RunResult<Buffer | string>> {
  const killSignal = options.killSignal ?? 'SIGKILL';
  let timedOut = false;
  let aborted = false;
  let maxBufferExceeded = false;
  const overflow = (): void => {
    if (maxBufferExceeded) return;
    maxBufferExceeded = true;
    proc.kill(killSignal);
  };
  const limit = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const idle = quiet(OUTPUT_AFTER_EXIT_IDLE_MS);
  const stdout = collect(proc.stdout, limit, overflow, idle.onData);
  const stderr = collect(proc.stderr, limit, overflow, idle.onData);
  if (proc.stdin) {
    if (options.input !== undefined) proc.stdin.end(options.input);
    else proc.stdin.end();
  }
  const timer = options.timeout === undefined ? null : setTimeout(() => {
    timedOut = true;
    proc.kill(killSignal);
  }, options.timeout);
  const onAbort = (): void => {
    aborted = true;
    proc.kill(killSignal);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    const exit = await proc.wait();
    const cutOff = (): void => {
      proc.stdout?.destroy();
      proc.stderr?.destroy();
    };
    let grace: NodeJS.Timeout | undefined;
    let closed = false;
    if (timedOut || aborted || maxBufferExceeded) {
      // test/security/exec-timeout-escape.test.ts: a killed process's output is not waited for forever.
      grace = setTimeout(cutOff, KILLED_OUTPUT_GRACE_MS);
    } else if (proc.outputEndsWithExit) {
      // test/integration/run-output-holder.test.ts: a container's exit ends run() even when a process
      // outside it holds its stdout or stderr open.
      idle.onData();
      void idle.after(() => closed, cutOff);
    }
    const [out, err] = await Promise.all([stdout, stderr]);
    closed = true;
    clearTimeout(grace);
    if (aborted) throw abortError(options.signal!);
    const encoding = options.encoding === 'buffer' ? undefined : options.encoding;
    return {
      ...exit,
      stdout: encoding ? out.toString(encoding) : out,
      stderr: encoding ? err.toString(encoding) : err,
      timedOut,
      maxBufferExceeded,
      oomKilled: proc.oomKilled(),
      durationMs: performance.now() - startedAt,
    };
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
