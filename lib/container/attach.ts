import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { ExitInfo } from './run-result.ts';
import type { Terminal } from './terminal.ts';
import { DEFAULT_DETACH_KEYS, DetachKeyFilter, parseDetachKeys } from './detach-keys.ts';

/** Options of attach(): the streams to connect to the container and how to let go of it. */
export interface AttachOptions {
  /** Typed into the container's terminal or written to its stdin (which is not ended when this
   * ends); unused for a container that takes no input (a detached one made without interactive). */
  stdin?: Readable;
  /** Where its output goes: all of a terminal's, or its stdout (a detached one's from now on). */
  stdout?: Writable;
  /** Where its stderr goes (default stdout); a terminal has none. */
  stderr?: Writable;
  /** The keys on stdin that detach, in Docker's notation (default 'ctrl-p,ctrl-q'; '' for none). */
  detachKeys?: string;
  /** Aborting detaches. */
  signal?: AbortSignal;
}

/** How an attach ended: detached (the keys, or an abort) while the container goes on, or with the
 * container's exit. */
export type AttachResult = { detached: true; exit: null } | { detached: false; exit: ExitInfo };

/** What attach connects to: a container's terminal, its pipes, or its supervisor's attach socket
 * (a detached one: lib/container/attach-socket.ts). */
export interface AttachSource {
  terminal: Terminal | null;
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  wait(): Promise<ExitInfo>;
}

/** How long output may go on after the container exited (a process it left holds it) before an
 * attach that ended by the exit stops waiting for it. */
const OUTPUT_GRACE_MS = 1000;

/** Resolves once stream has ended (or was destroyed), or after graceMs. */
export async function ended(stream: Readable | null, graceMs = OUTPUT_GRACE_MS): Promise<void> {
  if (!stream || stream.readableEnded || stream.destroyed) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([once(stream, 'end').catch(() => {}), once(stream, 'close'), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
  clearTimeout(timer);
}

/** Connects the given streams to a container until it exits or they detach (test/integration/attach.test.ts). */
export async function attachTo(source: AttachSource, options: AttachOptions): Promise<AttachResult> {
  const keys = parseDetachKeys(options.detachKeys ?? DEFAULT_DETACH_KEYS);
  const undo: (() => void)[] = [];
  let detach!: () => void;
  const detached = new Promise<void>((resolve) => { detach = resolve; });
  const input = source.terminal ?? source.stdin;
  if (options.stdin && input) {
    const filter = new DetachKeyFilter(keys);
    filter.once('detach', detach);
    options.stdin.pipe(filter).pipe(input, { end: false });
    undo.push(() => {
      options.stdin!.unpipe(filter);
      filter.unpipe(input);
      filter.destroy();
    });
  }
  const out = options.stdout ?? null;
  const err = options.stderr ?? out;
  const outputs: [Readable | null, Writable | null][] = source.terminal ? [[source.terminal, out]] : [[source.stdout, out], [source.stderr, err]];
  for (const [from, to] of outputs) {
    if (!from || !to) continue;
    from.pipe(to, { end: false });
    undo.push(() => from.unpipe(to));
  }
  const onAbort = (): void => detach();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) detach();
  try {
    const outcome = await Promise.race([detached.then(() => null), source.wait()]);
    if (outcome === null) return { detached: true, exit: null };
    await Promise.all(outputs.map(([from]) => ended(from)));
    return { detached: false, exit: outcome };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    undo.reverse().forEach((f) => f());
  }
}
