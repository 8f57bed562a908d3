import { parseArgs } from 'node:util';
import { constants } from 'node:os';
import type { AttachOptions, Container } from '../index.ts';
import { usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';
import { hostTerminalSize, onProxiedSignals, rawInput } from './terminal.ts';

const USAGE = `usage: corral attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy true|false] [--root DIR] CONTAINER

Connects this terminal to a running container's output (a detached one's from now on) and its
input when it takes any (run -i), until it exits (then exits with its exit code) or the detach
keys are typed (default ctrl-p,ctrl-q; the container goes on). To a container's terminal (run -t)
our input goes in raw mode (Ctrl-C is a key for it) and its window size follows ours.

      --no-stdin          do not connect our input
      --detach-keys KEYS  the keys that detach: comma-separated characters or ctrl-X
      --sig-proxy BOOL    forward SIGINT, SIGTERM and SIGHUP to the container (default true);
                          false: they detach`;

/** `corral attach CONTAINER`, as docker attach. */
export async function attachCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'no-stdin': { type: 'boolean' },
      'detach-keys': { type: 'string' },
      'sig-proxy': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...ROOT_OPTION,
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw usageError('corral attach takes one CONTAINER (see corral attach --help)');
  const sigProxy = values['sig-proxy'] ?? 'true';
  if (sigProxy !== 'true' && sigProxy !== 'false') throw usageError(`--sig-proxy must be true or false, got '${sigProxy}'`);
  return attachHere(cliRuntime(values.root).find(positionals[0]!), { stdin: !values['no-stdin'], detachKeys: values['detach-keys'], sigProxy: sigProxy === 'true' });
}

/** Connects our terminal to the container until it exits (its exit code) or we detach (0); start,
 * when given, starts it once attached (corral start -a), or before when it has stopped (attach
 * needs it created or running). */
export async function attachHere(container: Container, flags: { stdin: boolean; detachKeys: string | undefined; sigProxy: boolean }, start?: () => Promise<void>): Promise<number> {
  if (start && container.status === 'stopped') {
    await start();
    start = undefined;
  }
  const letGo = new AbortController();
  const options: AttachOptions = { stdout: process.stdout, stderr: process.stderr, signal: letGo.signal };
  if (flags.stdin) options.stdin = process.stdin;
  if (flags.detachKeys !== undefined) options.detachKeys = flags.detachKeys;
  const stopProxy = onProxiedSignals((signal) => {
    if (!flags.sigProxy) letGo.abort();
    else if (container.status === 'running') container.kill(signal);
  });
  const undo = [stopProxy];
  const { tty, openStdin } = container.inspect();
  if (tty) {
    const resize = (): void => {
      const size = hostTerminalSize();
      if (size && container.status === 'running') void container.resize(size).catch(() => {});
    };
    resize();
    process.stdout.on('resize', resize);
    undo.push(() => process.stdout.off('resize', resize));
    // Raw only when our keys go to it: else Ctrl-C must stay ours (a signal to proxy).
    if (options.stdin && openStdin) undo.push(rawInput());
  }
  try {
    const attached = container.attach(options);
    try {
      await start?.();
    } catch (e) {
      letGo.abort();
      await attached.catch(() => {});
      throw e;
    }
    const result = await attached;
    if (result.detached) return 0;
    return result.exit.exitCode ?? 128 + (constants.signals[result.exit.signal!] ?? 0);
  } finally {
    undo.reverse().forEach((f) => f());
  }
}
