import { spawnSync } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { envRecord } from './env-record.ts';

/** One hook of config.json: the program, its argv (args[0] included) and environment, and how long
 * it may run, in seconds. */
export interface OciHook {
  path: string;
  args: string[];
  env: string[];
  timeout: number | null;
}

/** The hook points of the OCI runtime spec, in the order of a container's life. */
export const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;

/** A hook point. */
export type HookKind = (typeof HOOK_KINDS)[number];

/** A config's hooks by point (a point without hooks has an empty list). */
export type OciHooks = Record<HookKind, OciHook[]>;

/** What a hook reads on its stdin: the OCI state of the container at that point. */
export interface HookState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'stopped';
  bundle: string;
  annotations?: Record<string, string>;
}

function invalid(field: string, why: string): CorralError {
  return new CorralError(`config.json: ${field} ${why}`, { code: 'ERR_INVALID_SPEC', step: field });
}

const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((s) => typeof s === 'string');

/** config.hooks checked (a point or a hook field the spec does not have is refused, as is a
 * relative path: the spec wants it absolute in the runtime's namespace). */
export function ociHooks(value: unknown): OciHooks {
  const hooks = Object.fromEntries(HOOK_KINDS.map((k) => [k, [] as OciHook[]])) as OciHooks;
  if (value === undefined) return hooks;
  if (typeof value !== 'object' || value === null) throw invalid('hooks', 'must be an object');
  for (const [kind, list] of Object.entries(value)) {
    if (!(HOOK_KINDS as readonly string[]).includes(kind)) throw invalid(`hooks.${kind}`, 'is not a hook point of the OCI runtime spec');
    if (!Array.isArray(list)) throw invalid(`hooks.${kind}`, 'must be an array');
    hooks[kind as HookKind] = list.map((h: Record<string, unknown>, i) => {
      const at = `hooks.${kind}[${i}]`;
      for (const key of Object.keys(h ?? {})) if (!['path', 'args', 'env', 'timeout'].includes(key)) throw invalid(`${at}.${key}`, 'is not a field of a hook');
      if (typeof h.path !== 'string' || !isAbsolute(h.path)) throw invalid(`${at}.path`, 'must be an absolute path');
      if (h.args !== undefined && !strings(h.args)) throw invalid(`${at}.args`, 'must be an array of strings');
      if (h.env !== undefined && !strings(h.env)) throw invalid(`${at}.env`, 'must be an array of strings');
      if (h.timeout !== undefined && (!Number.isInteger(h.timeout) || (h.timeout as number) <= 0)) throw invalid(`${at}.timeout`, 'must be a positive number of seconds');
      const args = (h.args as string[] | undefined) ?? [];
      return { path: h.path, args: args.length > 0 ? args : [h.path], env: (h.env as string[] | undefined) ?? [], timeout: (h.timeout as number | undefined) ?? null };
    });
  }
  return hooks;
}

/** What became of a hook that ran: its exit (code or signal), whether its timeout ended it, and
 * what it wrote. */
export interface HookOutcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  output: string;
}

/** The error of a hook that failed (exited non-zero, was killed, ran past its timeout), naming
 * the point, the hook and what it wrote, as runc reports it. */
export function hookError(kind: HookKind, index: number, hook: OciHook, outcome: HookOutcome): CorralError | null {
  if (!outcome.timedOut && outcome.exitCode === 0) return null;
  const how = outcome.timedOut ? `ran past its timeout of ${hook.timeout}s` : outcome.signal ? `was killed by ${outcome.signal}` : `exited with status ${outcome.exitCode}`;
  const output = outcome.output.trim();
  return new CorralError(`${kind} hook ${index} (${hook.path}) ${how}${output ? `: ${output}` : ''}`, { code: 'ERR_HOOK_FAILED', step: `hooks.${kind}[${index}]`, path: hook.path });
}

/** Runs one hook in the runtime's namespaces (prestart, createRuntime, poststart, poststop) as the
 * caller: its path, argv and environment exactly as the config gives them (a path inside the
 * bundle is the caller's choice, as with runc), the state on stdin, SIGKILL at its timeout
 * (test/integration/oci-features.test.ts); throws if it fails. */
export function runRuntimeHook(kind: HookKind, index: number, hook: OciHook, state: HookState): void {
  const r = spawnSync(hook.path, hook.args.slice(1), {
    argv0: hook.args[0]!, env: envRecord(hook.env), input: JSON.stringify(state),
    ...(hook.timeout === null ? {} : { timeout: hook.timeout * 1000 }), killSignal: 'SIGKILL', maxBuffer: 1 << 20,
  });
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  const timedOut = code === 'ETIMEDOUT';
  // A hook that exits without reading its stdin is not a failure (Go's os/exec, runc's, ignores EPIPE).
  if (r.error && !timedOut && code !== 'EPIPE') {
    throw new CorralError(`${kind} hook ${index} (${hook.path}) could not run: ${r.error.message}`, { code: 'ERR_HOOK_FAILED', step: `hooks.${kind}[${index}]`, path: hook.path, syscall: 'spawn' });
  }
  const failed = hookError(kind, index, hook, { exitCode: r.status, signal: r.signal, timedOut, output: `${r.stdout ?? ''}${r.stderr ?? ''}` });
  if (failed) throw failed;
}

/** Runs a point's hooks one after another (runRuntimeHook); the first failure is thrown and the
 * rest do not run. */
export function runRuntimeHooks(kind: HookKind, hooks: readonly OciHook[], state: HookState): void {
  hooks.forEach((hook, i) => runRuntimeHook(kind, i, hook, state));
}
