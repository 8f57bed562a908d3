/** The executor as its own program (bindings/build/corral-executor), held in one sealed memfd per
 * host process: container processes exec into it (OP_REEXEC) early in their setup, so that none of
 * them is a copy of the host's node binary that /proc/self/exe would hand out (CVE-2019-5736). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sealedMemfd } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';

// lib/spawn (or dist/spawn) → bindings/build/corral-executor
const imagePath = fileURLToPath(new URL('../../bindings/build/corral-executor', import.meta.url));

let fd: number | undefined;

/** The fd of the sealed executor image (close-on-exec, kept for the life of the process). */
export function executorImageFd(): number {
  if (fd === undefined) {
    let image: Buffer;
    try {
      image = readFileSync(imagePath);
    } catch (cause) {
      throw new CorralError(`cannot read corral's executor ${imagePath}: run "npm run build:native"`, { code: 'ERR_NATIVE_MISSING', path: imagePath, cause });
    }
    fd = sealedMemfd('corral-executor', image);
  }
  return fd;
}
