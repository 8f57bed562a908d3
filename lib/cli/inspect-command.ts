import { parseArgs } from 'node:util';
import { usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';

const USAGE = `usage: corral inspect [--root DIR] CONTAINER...

Prints what each container is and how it stands, as a JSON array.`;

/** `corral inspect`. */
export async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' }, ...ROOT_OPTION } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw usageError('corral inspect needs a CONTAINER (see corral inspect --help)');
  const runtime = cliRuntime(values.root);
  console.log(JSON.stringify(positionals.map((id) => runtime.find(id).inspect()), null, 2));
  return 0;
}
