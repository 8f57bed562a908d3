import { fstatSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CorralError } from '../../sys/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Where the flags end: at the first argument that is neither a flag nor a flag's value (runc's
 * flags come before the id; what follows it, exec's command line, is not parsed). */
function idIndex(args: string[], options: Options): number {
  const takesValue = (flag: string): boolean => {
    const long = flag.startsWith('--') ? flag.slice(2) : Object.keys(options).find((k) => options[k]!.short === flag.slice(1));
    return long !== undefined && options[long]?.type === 'string';
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return i + 1;
    if (!arg.startsWith('-') || arg === '-') return i;
    if (!arg.includes('=') && takesValue(arg)) i++;
  }
  return args.length;
}

/** A command's flags and its container id (the first positional), with runc's spellings. */
export function ociFlags(args: string[], options: Options): { values: Record<string, unknown>; id: string; rest: string[] } {
  const at = idIndex(args, options);
  const { values } = parseArgs({ args: args.slice(0, at).filter((a) => a !== '--'), options, allowPositionals: false, strict: true });
  const [id, ...rest] = args.slice(at);
  if (!id) throw new CorralError('a container id is required', { code: 'ERR_INVALID_ARG_VALUE' });
  return { values, id, rest };
}

/** The flags create and run share (runc's). */
export const createFlags: Options = {
  bundle: { type: 'string', short: 'b' }, 'pid-file': { type: 'string' }, 'console-socket': { type: 'string' },
  'no-pivot': { type: 'boolean' }, 'no-new-keyring': { type: 'boolean' }, 'preserve-fds': { type: 'string' },
  detach: { type: 'boolean', short: 'd' },
};

/** --preserve-fds N of create, run and exec: fds 3 to 3+N-1 of ours are passed to the process as
 * they are (podman's conmon and containerd pass sockets so); each must be open. */
export function preserveFds(values: Record<string, unknown>): { passFds?: number } {
  if (values['preserve-fds'] === undefined) return {};
  const text = String(values['preserve-fds']);
  if (!/^\d+$/.test(text)) throw new CorralError(`--preserve-fds must be a number of fds, got "${text}"`, { code: 'ERR_INVALID_ARG_VALUE', step: '--preserve-fds' });
  const count = Number(text);
  for (let fd = 3; fd < 3 + count; fd++) {
    try {
      fstatSync(fd);
    } catch (e) {
      throw new CorralError(`--preserve-fds ${count}: fd ${fd} is not open (${(e as NodeJS.ErrnoException).code})`, { code: 'ERR_INVALID_ARG_VALUE', step: '--preserve-fds', syscall: 'fstat', errno: Math.abs((e as NodeJS.ErrnoException).errno ?? 0) });
    }
  }
  return count === 0 ? {} : { passFds: count };
}

/** The --console-socket of create, run and exec as store options. */
export function consoleSocket(values: Record<string, unknown>): { consoleSocket?: string } {
  return values['console-socket'] === undefined ? {} : { consoleSocket: String(values['console-socket']) };
}
