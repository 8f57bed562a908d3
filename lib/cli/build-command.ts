import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Runtime } from '../runtime.ts';
import type { BuildProgress, BuildSecret } from '../build/builder.ts';
import { pairs, usageError } from './parse.ts';

/** Help for `corral build`. */
export const BUILD_USAGE = `usage: corral build [-t TAG] [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache]
       [--secret id=ID[,src=FILE|,env=VAR]]... [--root DIR] CONTEXT

Builds an image from a Dockerfile (default CONTEXT/Dockerfile), each RUN step in a corral container;
prints the image's manifest digest. A failed build leaves the image store as it was. A secret is
mounted at /run/secrets/ID by RUN --mount=type=secret,id=ID (without src or env it is the
environment variable named ID), and never stored in the image. SOURCE_DATE_EPOCH in the environment
(or as a --build-arg) dates the images and clamps file times, so a rebuild gives the same digests.`;

/** One plain line per step on stderr, and the RUN output as it comes. */
function printProgress(event: BuildProgress): void {
  const where = `#${event.step}/${event.total}`;
  if (event.status === 'output') process.stderr.write(event.output!);
  else if (event.status === 'cached') process.stderr.write(`${where} CACHED ${event.instruction}\n`);
  else if (event.status === 'running') process.stderr.write(`${where} ${event.instruction}\n`);
  else if (event.elapsedMs! >= 100) process.stderr.write(`${where} DONE ${(event.elapsedMs! / 1000).toFixed(1)}s\n`);
}

/** --secret id=ID[,src|source=FILE][,env=VAR][,type=file|env], as docker buildx takes it. */
function parseSecretFlag(value: string): [string, BuildSecret] {
  const fields = new Map<string, string>();
  for (const field of value.split(',')) {
    const at = field.indexOf('=');
    if (at <= 0) throw usageError(`--secret ${value}: '${field}' is not KEY=VALUE`);
    const key = field.slice(0, at);
    fields.set(key === 'source' ? 'src' : key, field.slice(at + 1));
  }
  for (const key of fields.keys()) if (!['id', 'src', 'env', 'type'].includes(key)) throw usageError(`--secret ${value}: unknown key '${key}' (id, src, env, type)`);
  const id = fields.get('id');
  if (!id) throw usageError(`--secret ${value}: it needs an id`);
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') throw usageError(`--secret ${value}: type must be file or env`);
  const src = fields.get('src');
  const env = fields.get('env') ?? (type === 'env' ? src ?? id : undefined);
  if (env !== undefined) return [id, { env }];
  return [id, src === undefined ? { env: id } : { src: resolve(src) }];
}

/** `corral build`. */
export async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tag: { type: 'string', short: 't' },
      file: { type: 'string', short: 'f' },
      'build-arg': { type: 'string', multiple: true },
      target: { type: 'string' },
      'no-cache': { type: 'boolean' },
      secret: { type: 'string', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
      root: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(BUILD_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw usageError('corral build needs exactly one CONTEXT directory (try corral build --help)');
  const runtime = new Runtime(values.root === undefined ? {} : { root: values.root });
  const buildArgs = pairs(values['build-arg'], '--build-arg');
  // As docker buildx: the environment's SOURCE_DATE_EPOCH is the build arg unless one is given.
  if (process.env.SOURCE_DATE_EPOCH && buildArgs.SOURCE_DATE_EPOCH === undefined) buildArgs.SOURCE_DATE_EPOCH = process.env.SOURCE_DATE_EPOCH;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const { manifestDigest } = await runtime.images.build({
      context: positionals[0]!,
      // -f is relative to the current directory, as in docker.
      ...(values.file === undefined ? {} : { dockerfile: resolve(values.file) }),
      ...(values.tag === undefined ? {} : { tag: values.tag }),
      args: buildArgs,
      ...(values.target === undefined ? {} : { target: values.target }),
      noCache: values['no-cache'] ?? false,
      secrets: Object.fromEntries((values.secret ?? []).map(parseSecretFlag)),
      ...(values.quiet ? {} : { onProgress: printProgress }),
      signal: abort.signal,
    });
    console.log(manifestDigest);
    return 0;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
