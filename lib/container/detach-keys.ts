import { Transform, type TransformCallback } from 'node:stream';
import { CorralError } from '../sys/errors.ts';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL_SYMBOLS: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };

/** The bytes of a detach sequence in Docker's notation: keys separated by commas, each one
 * character or `ctrl-X` (X a letter or one of @ [ \ ] ^ _); '' is no sequence. */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0);
  return Buffer.from(spec.split(',').map((key) => {
    if (key.length === 1) return key.charCodeAt(0);
    const m = /^ctrl-([a-z@[\\\]^_])$/i.exec(key);
    if (!m) throw new CorralError(`detach keys: '${key}' is neither one character nor ctrl-X (X a letter or one of @[\\]^_), in '${spec}'`, { code: 'ERR_INVALID_ARG_VALUE' });
    const c = m[1]!.toLowerCase();
    return CTRL_SYMBOLS[c] ?? c.charCodeAt(0) - 0x60;
  }));
}

/** Passes typed input through and watches it for the detach sequence: the bytes of a partial
 * match are held back until the next byte shows whether it is the sequence (then 'detach' is
 * emitted and nothing more passes) or not (then they pass). */
export class DetachKeyFilter extends Transform {
  readonly #keys: Buffer;
  #matched = 0;
  #detached = false;

  constructor(keys: Buffer) {
    super();
    this.#keys = keys;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#detached) return callback();
    if (this.#keys.length === 0) return callback(null, chunk);
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.#keys[this.#matched]) {
        if (++this.#matched < this.#keys.length) continue;
        this.#detached = true;
        if (out.length) this.push(Buffer.from(out));
        this.emit('detach');
        return callback();
      }
      out.push(...this.#keys.subarray(0, this.#matched));
      this.#matched = byte === this.#keys[0] ? 1 : 0;
      if (this.#matched === 0) out.push(byte);
    }
    callback(null, Buffer.from(out));
  }
}
