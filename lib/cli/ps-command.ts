import { parseArgs } from 'node:util';
import { listDetached } from '../container/detached-list.ts';
import type { ExitInfo } from '../container/run-result.ts';
import type { ContainerStatus } from '../container/status.ts';
import { chosenRoot } from '../fs/runtime-root.ts';
import { usageError } from './parse.ts';

const USAGE = `usage: corral ps [-a] [-q] [--format json] [--root DIR]

Lists the running containers of the root (-a: of every status), detached ones made by any process.
  -a, --all         every status (created, stopped too)
  -q, --quiet       ids only
      --format json one JSON object per line (docker ps --format json)`;

function statusText(status: ContainerStatus, exit: ExitInfo | null): string {
  if (status !== 'stopped' || !exit) return status;
  return `exited (${exit.exitCode ?? exit.signal})`;
}

/** `corral ps`: the containers of a root, as a table, ids or JSON lines. The table and the ids come
 * from the state files alone (listDetached: the library is not loaded); JSON lines are each
 * container's inspect(), from a Runtime's handles. */
export async function psCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' }, root: { type: 'string' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw usageError(`corral ps takes no arguments, got ${positionals.join(' ')} (see corral ps --help)`);
  if (values.format !== undefined && values.format !== 'json') throw usageError(`--format must be json, got '${values.format}' (see corral ps --help)`);
  const all = values.all ?? false;
  const onError = (e: Error): void => {
    process.stderr.write(`corral: ${e.message}\n`);
  };
  const out: string[] = [];
  if (values.format === 'json' && !values.quiet) {
    const { cliRuntime } = await import('./runtime-option.ts');
    out.push(...cliRuntime(values.root).list({ all, onError }).map((c) => JSON.stringify(c.inspect())));
  } else {
    const listed = listDetached(chosenRoot(values.root), all, onError);
    if (values.quiet) out.push(...listed.map((c) => c.id));
    else {
      out.push(['CONTAINER ID', 'NAME', 'STATUS', 'CREATED', 'COMMAND'].join('\t'));
      for (const c of listed) out.push([c.id, c.name ?? '-', statusText(c.status, c.exit), c.createdAt, c.command.join(' ')].join('\t'));
    }
  }
  if (out.length) console.log(out.join('\n'));
  return 0;
}
