import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CorralError, errorCode, fromNodeError } from '../sys/errors.ts';
import { abortError } from './run-result.ts';

/** One line of a detached container's output, as the supervisor logged it (Docker's json-file). */
export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** When the supervisor read it, RFC 3339 with nanoseconds. */
  time: string;
  /** The text, with its newline (a line longer than 16 KiB comes in parts). */
  log: string;
}

/** Options of logs(). */
export interface LogOptions {
  /** Keep reading as the container writes, until it has exited. */
  follow?: boolean;
  /** Only entries at or after / before this time (a Date, an RFC 3339 string or Unix seconds). */
  since?: Date | string | number;
  until?: Date | string | number;
  /** Only the last tail entries (of those that pass the other filters). */
  tail?: number;
  /** Prefix each line's text with its time (as docker logs -t); the entry's time is always there. */
  timestamps?: boolean;
  /** Which streams (default both). */
  stdout?: boolean;
  stderr?: boolean;
  /** Aborting ends a follow: the iteration rejects with an AbortError. */
  signal?: AbortSignal;
}

const FOLLOW_MS = 100;

function instant(value: Date | string | number, what: string): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) throw new CorralError(`logs ${what} must be a Date, an RFC 3339 time or Unix seconds, got ${String(value)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  return ms;
}

/** The log files of dir, oldest first: container.log.N … container.log.1, container.log. */
function logFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw fromNodeError(e, 'read the container logs', dir);
  }
  const rotated = names.flatMap((n) => {
    const m = /^container\.log\.(\d+)$/.exec(n);
    return m ? [{ n, i: Number(m[1]) }] : [];
  });
  return [...rotated.sort((a, b) => b.i - a.i).map((r) => r.n), 'container.log'].map((n) => join(dir, n));
}

/** Reads a file from offset to its end as whole lines; returns them and the offset after the last. */
function readLines(fd: number, offset: number): { lines: string[]; offset: number } {
  const size = fstatSync(fd).size;
  if (size <= offset) return { lines: [], offset };
  const buf = Buffer.alloc(size - offset);
  const n = readSync(fd, buf, 0, buf.length, offset);
  const text = buf.subarray(0, n).toString('utf8');
  const end = text.lastIndexOf('\n') + 1;
  return { lines: text.slice(0, end).split('\n').filter(Boolean), offset: offset + Buffer.byteLength(text.slice(0, end)) };
}

/** The entries of a detached container's log directory; with follow it ends once ended() is true
 * and everything written has been read. Rotation while following is handled: the file being read
 * stays open and is read to its end before the new one. */
export async function* readLogs(dir: string, options: LogOptions, ended: () => boolean): AsyncGenerator<LogEntry> {
  const since = options.since === undefined ? -Infinity : instant(options.since, 'since');
  const until = options.until === undefined ? Infinity : instant(options.until, 'until');
  if (options.tail !== undefined && (!Number.isInteger(options.tail) || options.tail < 0)) {
    throw new CorralError(`logs tail must be a non-negative integer, got ${String(options.tail)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const streams = new Set([options.stdout !== false && 'stdout', options.stderr !== false && 'stderr']);
  const pass = (line: string): LogEntry | null => {
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      return null;
    }
    const at = Date.parse(entry.time);
    if (!streams.has(entry.stream) || at < since || at > until) return null;
    return options.timestamps ? { ...entry, log: `${entry.time} ${entry.log}` } : entry;
  };
  const files = logFiles(dir);
  const current = files.pop()!;
  const earlier: LogEntry[] = [];
  for (const file of files) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      continue; // rotated away meanwhile
    }
    try {
      for (const line of readLines(fd, 0).lines) {
        const entry = pass(line);
        if (entry) earlier.push(entry);
      }
    } finally {
      closeSync(fd);
    }
  }
  let fd = openSync(current, 'r');
  try {
    let { lines, offset } = readLines(fd, 0);
    const first = [...earlier, ...lines.map(pass).filter((e): e is LogEntry => e !== null)];
    yield* options.tail === undefined ? first : first.slice(Math.max(0, first.length - options.tail));
    while (options.follow) {
      const done = ended();
      ({ lines, offset } = readLines(fd, offset));
      for (const line of lines) {
        const entry = pass(line);
        if (entry) yield entry;
      }
      let replaced = false;
      try {
        replaced = statSync(current).ino !== fstatSync(fd).ino;
      } catch (e) {
        if (errorCode(e) !== 'ENOENT') throw fromNodeError(e, 'follow the container log', current);
      }
      if (replaced) {
        // What was written to the old file after the last read and before the rotation.
        ({ lines } = readLines(fd, offset));
        for (const line of lines) {
          const entry = pass(line);
          if (entry) yield entry;
        }
        closeSync(fd);
        fd = openSync(current, 'r');
        offset = 0;
        continue;
      }
      if (done) return;
      try {
        await sleep(FOLLOW_MS, undefined, options.signal ? { signal: options.signal } : {});
      } catch (e) {
        throw options.signal?.aborted ? abortError(options.signal) : e;
      }
    }
  } finally {
    closeSync(fd);
  }
}
