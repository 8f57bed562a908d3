// How `corral run` and `corral commit` read their arguments as docker run does: options, then
// IMAGE (and for commit NEWREF), then the command with its own options; and the options that map
// onto the spec (environment, entrypoint, limits, user).
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ContainerSpec } from '../index.ts';
import { fromNodeError } from '../sys/errors.ts';
import { usageError } from './parse.ts';

/** The options of parseArgs, as run declares them. */
type Options = NonNullable<ParseArgsConfig['options']>;

/** The arguments of run split: the options' values, IMAGE (and NEWREF), the command. */
export interface RunArgs<V> {
  values: V;
  positionals: string[];
  command: string[];
}

/** Whether args[i] is an option that takes the next argument as its value. */
function takesValue(arg: string, options: Options): boolean {
  if (arg.startsWith('--')) return !arg.includes('=') && options[arg.slice(2)]?.type === 'string';
  // -e VALUE, but -eVALUE and -de VALUE (a cluster ending in one that takes a value) as parseArgs
  const last = arg.at(-1);
  const short = Object.values(options).filter((o) => o.short !== undefined);
  const byShort = (c: string | undefined) => short.find((o) => o.short === c);
  return arg.length >= 2 && [...arg.slice(1, -1)].every((c) => byShort(c)?.type === 'boolean') && byShort(last)?.type === 'string';
}

/** Splits run's arguments: options up to the first argument that is no option (IMAGE; with
 * --rootfs, or after '--', there is none), `slots` positionals (IMAGE, NEWREF), then the command,
 * whose own options stay its own; a '--' right after the positionals is skipped. Unknown options
 * and missing values are usage errors. */
export function parseRunArgs<O extends Options>(args: string[], options: O, slots: number, what: string): RunArgs<ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>['values']> {
  let i = 0;
  let wanted = slots;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    if (a === '--rootfs' || a.startsWith('--rootfs=')) wanted = 0;
    if (takesValue(a, options)) i++;
  }
  const optionArgs = args.slice(0, Math.min(i, args.length));
  let rest = args.slice(i);
  let positionals: string[] = [];
  if (rest[0] === '--') rest = rest.slice(1);
  else {
    positionals = rest.slice(0, wanted);
    rest = rest.slice(wanted);
    if (rest[0] === '--') rest = rest.slice(1);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: optionArgs, options, allowPositionals: false, strict: true });
  } catch (e) {
    // parseArgs explains at length; the first sentence is the reason.
    throw usageError(`${(e as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '')} (see corral ${what} --help)`);
  }
  return { values: parsed.values as never, positionals, command: rest };
}

/** The environment of -e and --env-file, as docker builds it: KEY=VALUE sets, a bare KEY passes
 * the variable through from `environ` (left out when it is not set there); files first, then -e. */
export function runEnvironment(flags: string[] | undefined, files: string[] | undefined, environ: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  const add = (item: string, where: string): void => {
    const at = item.indexOf('=');
    const key = at < 0 ? item : item.slice(0, at);
    if (key === '' || /\s/.test(key)) throw usageError(`${where} must be KEY=VALUE or KEY, got '${item}'`);
    if (at >= 0) env[key] = item.slice(at + 1);
    else if (environ[key] !== undefined) env[key] = environ[key]!;
  };
  for (const file of files ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw fromNodeError(e, 'read the --env-file', file);
    }
    text.split('\n').forEach((line, n) => {
      const item = line.replace(/\r$/, '').replace(/^\s+/, '');
      if (item !== '' && !item.startsWith('#')) add(item, `--env-file ${file} line ${n + 1}`);
    });
  }
  for (const item of flags ?? []) add(item, '--env');
  return env;
}

function positiveNumber(value: string, what: string, integer: boolean): number {
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw usageError(`${what} must be a positive ${integer ? 'integer' : 'number'}, got '${value}' (see corral run --help)`);
  return n;
}

/** --memory SIZE (bytes, or with k/m/g), --cpus N and --pids-limit N as the spec's limits. */
export function runLimits(values: { memory?: string; cpus?: string; 'pids-limit'?: string }): ContainerSpec['limits'] {
  const limits: NonNullable<ContainerSpec['limits']> = {};
  if (values.memory !== undefined) {
    const m = /^(\d+)([bkmg])?$/i.exec(values.memory);
    if (!m) throw usageError(`--memory must be a size like 512m or 1g, got '${values.memory}' (see corral run --help)`);
    limits.memory = Number(m[1]) * 1024 ** 'bkmg'.indexOf((m[2] ?? 'b').toLowerCase());
  }
  if (values.cpus !== undefined) limits.cpus = positiveNumber(values.cpus, '--cpus', false);
  if (values['pids-limit'] !== undefined) limits.pids = positiveNumber(values['pids-limit'], '--pids-limit', true);
  return Object.keys(limits).length ? limits : undefined;
}

/** -u UID[:GID] as ids; NAME[:GROUP] (or a mix) as given, resolved in the container's root. */
export function runUser(value: string): NonNullable<ContainerSpec['user']> {
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (m) return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  if (!/^[^:\s]+(:[^:\s]+)?$/.test(value)) throw usageError(`--user must be UID[:GID] or NAME[:GROUP], got '${value}' (see corral run --help)`);
  return value;
}

/** --add-host NAME:IP (or NAME=IP; an IPv6 address may come in brackets) as spec.extraHosts; the
 * spec checks the name and the address. */
export function runExtraHosts(flags: string[]): Record<string, string> {
  const hosts: Record<string, string> = {};
  for (const flag of flags) {
    const at = flag.search(/[:=]/);
    if (at <= 0 || at === flag.length - 1) throw usageError(`--add-host must be NAME:IP, got '${flag}' (see corral run --help)`);
    hosts[flag.slice(0, at)] = flag.slice(at + 1).replace(/^\[(.*)\]$/, '$1');
  }
  return hosts;
}
