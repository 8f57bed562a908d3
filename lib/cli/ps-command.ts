import { parseArgs } from 'node:util';
import type { Container } from '../index.ts';
import { usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';

const USAGE = `usage: corral ps [-a] [-q] [--format json] [--root DIR]

Lists the running containers of the root (-a: of every status), detached ones made by any process.
  -a, --all         every status (created, stopped too)
  -q, --quiet       ids only
      --format json one JSON object per line (docker ps --format json)`;

function statusText(c: Container): string {
  const exit = c.exitInfo;
  if (c.status !== 'stopped' || !exit) return c.status;
  return `exited (${exit.exitCode ?? exit.signal})`;
}

/** `corral ps`: the containers of a root, as a table, ids or JSON lines. */
export async function psCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...ROOT_OPTION },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw usageError(`corral ps takes no arguments, got ${positionals.join(' ')} (see corral ps --help)`);
  if (values.format !== undefined && values.format !== 'json') throw usageError(`--format must be json, got '${values.format}' (see corral ps --help)`);
  const listed = cliRuntime(values.root).list({ all: values.all ?? false, onError: (e) => process.stderr.write(`corral: ${e.message}\n`) });
  const out: string[] = [];
  if (values.quiet) out.push(...listed.map((c) => c.id));
  else if (values.format === 'json') out.push(...listed.map((c) => JSON.stringify(c.inspect())));
  else {
    out.push(['CONTAINER ID', 'NAME', 'STATUS', 'CREATED', 'COMMAND'].join('\t'));
    for (const c of listed) {
      const info = c.inspect();
      out.push([c.id, c.name ?? '-', statusText(c), info.createdAt, info.command.join(' ')].join('\t'));
    }
  }
  if (out.length) console.log(out.join('\n'));
  return 0;
}
