import { parseArgs } from 'node:util';
import { constants } from 'node:os';
import type { Container } from '../index.ts';
import { usageError } from './parse.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';

/** One lifecycle command over a list of containers. */
interface Lifecycle {
  usage: string;
  options?: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  /** Acts on one container; prints what docker prints (the argument, or an exit code). */
  act(container: Container, values: Record<string, string | boolean | undefined>, name: string): Promise<string>;
}

function seconds(value: string | boolean | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n >= 0)) throw usageError(`${what} must be seconds, got '${String(value)}'`);
  return n * 1000;
}

/** -t SECONDS of stop and restart. */
const TIME_OPTION = { time: { type: 'string', short: 't' } } as const;

function stopOptions(values: Record<string, string | boolean | undefined>): { timeout?: number } {
  const timeout = seconds(values.time, '--time');
  return timeout === undefined ? {} : { timeout };
}

const COMMANDS: Record<string, Lifecycle> = {
  start: {
    usage: 'corral start [-a [-i]] CONTAINER...   starts created or stopped detached containers (-a: one, attached to its output, -i: and its input, until it exits or the detach keys)',
    options: { attach: { type: 'boolean', short: 'a' }, interactive: { type: 'boolean', short: 'i' } },
    act: async (c, _v, name) => (await c.start(), name),
  },
  stop: {
    usage: 'corral stop [-t SECONDS] CONTAINER...   SIGTERM, then SIGKILL after the timeout (default 10)',
    options: TIME_OPTION,
    act: async (c, v, name) => (await c.stop(stopOptions(v)), name),
  },
  restart: {
    usage: 'corral restart [-t SECONDS] CONTAINER...   stops detached containers (as stop) and starts them again',
    options: TIME_OPTION,
    act: async (c, v, name) => (await c.restart(stopOptions(v)), name),
  },
  kill: {
    usage: 'corral kill [-s SIGNAL] CONTAINER...   sends a signal (default SIGKILL)',
    options: { signal: { type: 'string', short: 's' } },
    act: async (c, v, name) => {
      const raw = String(v.signal ?? 'KILL');
      const signal = /^\d+$/.test(raw) ? Number(raw) : (raw.startsWith('SIG') ? raw : `SIG${raw}`) as NodeJS.Signals;
      c.kill(signal);
      return name;
    },
  },
  rm: {
    usage: 'corral rm [-f] CONTAINER...   removes stopped containers (-f: running ones too, killed first)',
    options: { force: { type: 'boolean', short: 'f' } },
    act: async (c, v, name) => (await c.remove({ force: v.force === true }), name),
  },
  wait: {
    usage: 'corral wait CONTAINER...   waits for each to exit and prints its exit code',
    act: async (c) => {
      const exit = await c.wait();
      return String(exit.exitCode ?? 128 + (constants.signals[exit.signal!] ?? 0));
    },
  },
  pause: { usage: 'corral pause CONTAINER...   freezes every process', act: async (c, _v, name) => (await c.pause(), name) },
  unpause: { usage: 'corral unpause CONTAINER...   thaws a paused container', act: async (c, _v, name) => (await c.resume(), name) },
};

/** The names of the lifecycle commands. */
export const LIFECYCLE_COMMANDS = new Set([...Object.keys(COMMANDS), 'rename']);

/** `corral start|stop|restart|kill|rm|wait|pause|unpause CONTAINER...` and `corral rename CONTAINER NAME`. */
export async function lifecycleCommand(command: string, args: string[]): Promise<number> {
  const spec = COMMANDS[command];
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...spec?.options, help: { type: 'boolean', short: 'h' }, ...ROOT_OPTION } });
  const usage = spec ? `usage: ${spec.usage} [--root DIR]` : 'usage: corral rename [--root DIR] CONTAINER NEW_NAME';
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const runtime = cliRuntime(values.root as string | undefined);
  if (!spec) {
    if (positionals.length !== 2) throw usageError(`corral rename takes CONTAINER and NEW_NAME (see corral rename --help)`);
    runtime.rename(positionals[0]!, positionals[1]!);
    return 0;
  }
  if (positionals.length === 0) throw usageError(`corral ${command} needs a CONTAINER (see corral ${command} --help)`);
  const start = values as { attach?: boolean; interactive?: boolean };
  if (command === 'start' && start.attach) {
    if (positionals.length !== 1) throw usageError('corral start -a takes one CONTAINER (see corral start --help)');
    const container = runtime.find(positionals[0]!);
    return (await import('./attach-command.ts')).attachHere(container, { stdin: start.interactive === true, detachKeys: undefined, sigProxy: true }, () => container.start());
  }
  if (command === 'start' && start.interactive) throw usageError('corral start -i needs -a (see corral start --help)');
  let failed = false;
  for (const name of positionals) {
    try {
      console.log(await spec.act(runtime.find(name), values, name));
    } catch (e) {
      // As docker: report each one that failed, go on with the rest, exit 1 at the end.
      process.stderr.write(`corral: ${(e as Error).message}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}
