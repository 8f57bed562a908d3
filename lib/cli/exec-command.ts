import { parseArgs } from 'node:util';
import { constants } from 'node:os';
import type { SpawnOptions } from '../index.ts';
import { pairs, usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';
import { connectTerminal, hostTerminalSize, onProxiedSignals } from './terminal.ts';
import { ended } from '../container/attach.ts';

const USAGE = `usage: corral exec [-i] [-t] [-e KEY=VALUE] [-w DIR] [-u UID[:GID]] [--root DIR] CONTAINER COMMAND [ARG...]

Runs COMMAND in a running container with this terminal's stdio; exits with its exit code.

  -t, --tty           a terminal for the command (from the container's /dev/pts), sized like ours
  -i, --interactive   with -t: our terminal in raw mode, typed keys (Ctrl-C too) go in
  -e, --env KEY=VALUE, -w, --cwd DIR, -u, --user UID[:GID]
SIGINT, SIGTERM and SIGHUP sent to corral are forwarded to the command.`;

const WITH_VALUE = new Set(['-e', '--env', '-w', '--cwd', '-u', '--user', '--root']);

/** Where the options end: at the first argument that is neither an option nor an option's value
 * (CONTAINER), so the command's own options (ls -la) stay the command's. */
function optionsEnd(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return i;
    if (WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-')) return i;
  }
  return args.length;
}

/** `corral exec`: the options come before CONTAINER; everything after it is the command. */
export async function execCommand(args: string[]): Promise<number> {
  const end = optionsEnd(args);
  const { values } = parseArgs({
    args: args.slice(0, end),
    options: {
      env: { type: 'string', short: 'e', multiple: true },
      cwd: { type: 'string', short: 'w' },
      user: { type: 'string', short: 'u' },
      interactive: { type: 'boolean', short: 'i' },
      tty: { type: 'boolean', short: 't' },
      help: { type: 'boolean', short: 'h' },
      ...ROOT_OPTION,
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [id, ...command] = args.slice(args[end] === '--' ? end + 1 : end);
  if (!id || command.length === 0) throw usageError('corral exec needs CONTAINER and COMMAND (see corral exec --help)');
  const size = hostTerminalSize();
  const options: SpawnOptions = values.tty ? { tty: true, ...(size ? { consoleSize: size } : {}) } : { stdio: 'inherit' };
  if (values.cwd !== undefined) options.cwd = values.cwd;
  if (values.user !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(values.user);
    if (!m) throw usageError(`--user must be UID[:GID], got '${values.user}'`);
    options.user = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  }
  const container = cliRuntime(values.root).find(id);
  if (values.env) options.env = { ...container.inspect().env, ...pairs(values.env, '--env') };
  const proc = await container.spawn(command, options);
  const undo = [onProxiedSignals((signal) => proc.kill(signal))];
  if (proc.terminal) undo.push(connectTerminal(proc.terminal, values.interactive ?? false));
  let exit;
  try {
    exit = await proc.wait();
    await ended(proc.terminal);
  } finally {
    undo.reverse().forEach((f) => f());
    proc.terminal?.destroy();
  }
  return exit.exitCode ?? 128 + (constants.signals[exit.signal!] ?? 0);
}
