/**
 * The diff of an upper directory run as root of the container's user namespace (rootless with a
 * subordinate range): there every file is readable and stat gives the owners inside. Writes the
 * layer tar to stdout; a failure is one JSON line on stderr ({ message, code, path }).
 *
 *   node diff-main.js UPPER [CLAMP_MTIME]
 */

import { diffLayer } from './diff.ts';

const upper = process.argv[2]!;
const clamp = process.argv[3];
try {
  await diffLayer(upper, process.stdout, { rootless: true, ...(clamp === undefined ? {} : { clampMtime: Number(clamp) }) });
  await new Promise<void>((resolve) => process.stdout.end(resolve));
} catch (e) {
  const { message, code, path } = e as { message: string; code?: string; path?: string };
  process.stderr.write(`${JSON.stringify({ message, code, path })}\n`);
  process.exitCode = 1;
}
