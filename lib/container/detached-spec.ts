import { CorralError } from '../sys/errors.ts';
import { parseBytes } from '../sys/units.ts';
import type { ContainerSpec } from './spec.ts';

/** The keys of a spec for a container that outlives the process that made it. */
export interface DetachedSpec {
  /** Run under a supervisor of its own (bindings/supervisor.c): the container survives this
   * process, any process of the same root can list it and take it over. */
  detached?: boolean;
  /** A name unique in the runtime root (detached containers only); get() resolves it. */
  name?: string;
  /** 'no' (default), 'on-failure[:N]', 'always', 'unless-stopped': applied by the supervisor. */
  restart?: string;
  /** Keeps the container's input open for attach() (docker run -di): its terminal's with tty, else
   * a stdin pipe its supervisor holds, never closed by a detach. */
  interactive?: boolean;
  /** Removed once it has ended for good, by its supervisor, whether or not a process watches. */
  autoRemove?: boolean;
  /** Size-based rotation of the json-file log: maxSize bytes or '10m' (default 10m; 0: no
   * rotation), at most maxFiles files (default 5). */
  logs?: { maxSize?: number | string; maxFiles?: number };
}

/** A create() spec: a container spec plus the detached keys. */
export type CreateSpec = ContainerSpec & DetachedSpec;

/** The detached keys resolved and checked. */
export interface DetachedOptions {
  name: string | null;
  autoRemove: boolean;
  interactive: boolean;
  restart: { policy: 'no' | 'on-failure' | 'always' | 'unless-stopped'; maxRetries: number };
  logs: { maxSize: number; maxFiles: number };
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const POLICY = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/;

function invalid(message: string): CorralError {
  return new CorralError(`invalid container spec: ${message}`, { code: 'ERR_INVALID_SPEC' });
}

/** Splits the detached keys off a create() spec: the container spec, and the options (null for an
 * attached container, which may not use them). */
export function splitDetached(spec: CreateSpec): [ContainerSpec, DetachedOptions | null] {
  if (typeof spec !== 'object' || spec === null) return [spec, null];
  const { detached, name, restart, logs, autoRemove, interactive, ...rest } = spec;
  if (detached !== undefined && typeof detached !== 'boolean') throw invalid('detached must be a boolean');
  if (!detached) {
    const used = Object.entries({ name, restart, logs, autoRemove, interactive }).find(([, v]) => v !== undefined);
    if (used) throw invalid(`${used[0]} needs detached: true`);
    return [rest, null];
  }
  if (name !== undefined && (typeof name !== 'string' || !NAME.test(name))) throw invalid(`name '${String(name)}' must match ${NAME}`);
  if (autoRemove !== undefined && typeof autoRemove !== 'boolean') throw invalid('autoRemove must be a boolean');
  if (interactive !== undefined && typeof interactive !== 'boolean') throw invalid('interactive must be a boolean');
  const policy = POLICY.exec(restart ?? 'no');
  if (!policy || (policy[2] !== undefined && policy[1] !== 'on-failure')) {
    throw invalid(`restart must be no, on-failure[:N], always or unless-stopped, got '${String(restart)}'`);
  }
  const maxSize = parseBytes(logs?.maxSize ?? '10m', 'logs.maxSize', invalid);
  const maxFiles = logs?.maxFiles ?? 5;
  if (!Number.isInteger(maxFiles) || maxFiles < 1 || maxFiles > 1000) throw invalid(`logs.maxFiles must be an integer from 1 to 1000, got ${String(maxFiles)}`);
  return [rest, {
    name: name ?? null,
    autoRemove: autoRemove ?? false,
    interactive: interactive ?? false,
    restart: { policy: policy[1] as DetachedOptions['restart']['policy'], maxRetries: Number(policy[2] ?? 0) },
    logs: { maxSize, maxFiles },
  }];
}
