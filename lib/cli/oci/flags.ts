import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CorralError } from '../../sys/errors.ts';

/** A command's flags and its container id (the first positional), with runc's spellings. */
export function ociFlags(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, unknown>; id: string; rest: string[] } {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  const [id, ...rest] = positionals;
  if (!id) throw new CorralError('a container id is required', { code: 'ERR_INVALID_ARG_VALUE' });
  return { values, id, rest };
}
