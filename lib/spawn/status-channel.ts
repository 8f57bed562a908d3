import { Socket } from 'node:net';

/** What the child reports on the status pipe (bindings/plan.h struct status_record). */
export interface StatusRecord {
  kind: 'ready' | 'error' | 'pid';
  step: number;
  errno: number;
  value: number;
}

const RECORD_SIZE = 16;
const KINDS = { 1: 'ready', 2: 'error', 3: 'pid' } as const;

/** Parses the 16-byte records of a status pipe. */
export function parseRecords(data: Buffer): StatusRecord[] {
  const records: StatusRecord[] = [];
  for (let at = 0; at + RECORD_SIZE <= data.length; at += RECORD_SIZE) {
    const kind = KINDS[data.readInt32LE(at) as 1 | 2 | 3];
    records.push({ kind, step: data.readInt32LE(at + 4), errno: data.readInt32LE(at + 8), value: data.readInt32LE(at + 12) });
  }
  return records;
}

/** Reads status records from the read end of a status pipe on the event loop; null means EOF
 * (every writer is gone: the child exec'd or exited). */
export class StatusChannel {
  readonly #socket: Socket;
  readonly #queue: (StatusRecord | null)[] = [];
  readonly #waiters: ((r: StatusRecord | null) => void)[] = [];
  #pending = Buffer.alloc(0);
  #ended = false;

  constructor(fd: number) {
    this.#socket = new Socket({ fd, readable: true, writable: false });
    this.#socket.on('data', (chunk: Buffer) => {
      const data = Buffer.concat([this.#pending, chunk]);
      const whole = data.length - (data.length % RECORD_SIZE);
      this.#pending = data.subarray(whole);
      for (const r of parseRecords(data.subarray(0, whole))) this.#push(r);
    });
    this.#socket.on('end', () => this.#push(null));
    this.#socket.on('error', () => this.#push(null));
  }

  /** The next record, or null at EOF. */
  next(): Promise<StatusRecord | null> {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift()!);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#socket.destroy();
  }

  #push(record: StatusRecord | null): void {
    if (this.#ended) return;
    if (record === null) this.#ended = true;
    const waiter = this.#waiters.shift();
    if (waiter) waiter(record);
    else this.#queue.push(record);
    if (record === null) this.#socket.destroy();
  }
}
