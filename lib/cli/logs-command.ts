import { parseArgs } from 'node:util';
import { usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';

const USAGE = `usage: corral logs [-f] [--tail N] [--since T] [--until T] [-t] [--root DIR] CONTAINER

Prints a detached container's output as its supervisor logged it (stdout to stdout, stderr to stderr).
  -f, --follow      keep printing until the container exits
      --tail N      only the last N lines
      --since T     only lines from T on (RFC 3339 or Unix seconds); --until T before T
  -t, --timestamps  prefix each line with its time`;

function instant(value: string | undefined): string | number | undefined {
  if (value === undefined) return undefined;
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

/** `corral logs`. */
export async function logsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      timestamps: { type: 'boolean', short: 't' },
      help: { type: 'boolean', short: 'h' },
      ...ROOT_OPTION,
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw usageError('corral logs takes one CONTAINER (see corral logs --help)');
  const tail = values.tail === undefined || values.tail === 'all' ? undefined : Number(values.tail);
  if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw usageError(`--tail must be a number of lines, got '${values.tail}'`);
  const since = instant(values.since);
  const until = instant(values.until);
  const container = cliRuntime(values.root).find(positionals[0]!);
  for await (const entry of container.logs({
    follow: values.follow ?? false,
    timestamps: values.timestamps ?? false,
    ...(tail === undefined ? {} : { tail }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
  })) {
    (entry.stream === 'stdout' ? process.stdout : process.stderr).write(entry.log);
  }
  return 0;
}
