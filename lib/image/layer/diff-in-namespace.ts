import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CorralError } from '../../sys/errors.ts';
import { close, pipe } from '../../sys/libc.ts';
import type { IdMap } from '../../sys/id-map.ts';
import { runInUserNamespace } from '../../spawn/in-user-namespace.ts';
import type { LayerDigest } from './apply.ts';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const MAIN = fileURLToPath(new URL(`./diff-main${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url));
/** node's flags for diff-main: run from the TypeScript sources (the tests), the loader this process
 * has; from dist none (the host program's own flags, --inspect say, are not the helper's). */
const NODE_FLAGS = FROM_SOURCE ? process.execArgv : [];

/** diffLayer run by node as root of a user namespace with the container's map (diff-main): what
 * the container's other users own is readable there, and stat gives the owners inside. The tar
 * goes to out (not ended) and is digested here. */
export async function diffInNamespace(upper: string, out: Writable, map: IdMap, clampMtime?: number): Promise<LayerDigest> {
  const [outRead, outWrite] = pipe();
  const [errRead, errWrite] = pipe();
  const stdout = new Socket({ fd: outRead, readable: true, writable: false });
  const stderr = new Socket({ fd: errRead, readable: true, writable: false });
  const hash = createHash('sha256');
  let size = 0;
  const errors: Buffer[] = [];
  stderr.on('data', (c: Buffer) => errors.push(c));
  const copied = new Promise<void>((resolve, reject) => {
    stdout.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
      if (!out.write(c)) {
        stdout.pause();
        out.once('drain', () => stdout.resume());
      }
    });
    stdout.on('end', resolve);
    stdout.on('error', reject);
  });
  const stderrDone = new Promise<void>((resolve) => stderr.on('close', () => resolve()));
  let openEnds = true;
  const closeEnds = (): void => {
    if (!openEnds) return;
    openEnds = false;
    close(outWrite);
    close(errWrite);
  };
  try {
    await Promise.all([
      runInUserNamespace(map, {
        what: `diff ${upper}`, setup: [], command: [process.execPath, ...NODE_FLAGS, MAIN, upper, ...(clampMtime === undefined ? [] : [String(clampMtime)])],
        env: ['PATH=/usr/bin:/bin'], stdout: outWrite, stderr: errWrite, onStarted: closeEnds,
      }).finally(closeEnds),
      copied,
    ]);
  } catch (e) {
    stdout.destroy();
    await stderrDone;
    throw failure(Buffer.concat(errors).toString(), upper) ?? e;
  }
  await stderrDone;
  return { diffId: `sha256:${hash.digest('hex')}`, size };
}

/** The error diff-main reported, if it did. */
function failure(text: string, upper: string): CorralError | null {
  const line = text.trim().split('\n').at(-1);
  if (!line) return null;
  try {
    const { message, code, path } = JSON.parse(line) as { message: string; code?: string; path?: string };
    return new CorralError(message, { code: (code ?? 'ERR_SETUP_FAILED') as never, step: 'diff layer', path: path ?? upper });
  } catch {
    return new CorralError(`diff of ${upper} in the user namespace failed: ${line}`, { code: 'ERR_SETUP_FAILED', step: 'diff layer', path: upper });
  }
}
