// Seccomp profiles in Docker's / the OCI runtime spec's JSON format, and their validation.
import { CorralError } from '../sys/errors.ts';

/** What a rule (or the profile's default) does to a syscall. */
export type SeccompAction =
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_LOG';

/** How an argument is compared: for MASKED_EQ, `(arg & value) == valueTwo`; the others compare `arg` with `value`. */
export type SeccompOp =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** One condition on a syscall argument; a rule matches when all of its conditions hold. */
export interface SeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOp;
}

/** A rule: these syscalls (when their arguments match) get this action. */
export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  /** The errno for SCMP_ACT_ERRNO, the message for SCMP_ACT_TRACE; EPERM when absent. */
  errnoRet?: number;
  args?: SeccompArg[];
  comment?: string;
}

/** A whole profile, as `docker run --security-opt seccomp=FILE` takes it (resolved: no includes/excludes). */
export interface SeccompProfile {
  defaultAction: SeccompAction;
  /** The errno of an SCMP_ACT_ERRNO default action; EPERM when absent. */
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names; corral filters the native ABI and, on x86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32 when listed. */
  architectures?: string[];
  syscalls?: SeccompRule[];
}

const ACTIONS: ReadonlySet<string> = new Set<SeccompAction>([
  'SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG',
]);
const OPS: ReadonlySet<string> = new Set<SeccompOp>([
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
]);
const ARCHITECTURES: ReadonlySet<string> = new Set([
  'X86', 'X86_64', 'X32', 'ARM', 'AARCH64', 'MIPS', 'MIPS64', 'MIPS64N32', 'MIPSEL', 'MIPSEL64', 'MIPSEL64N32',
  'PPC', 'PPC64', 'PPC64LE', 'S390', 'S390X', 'PARISC', 'PARISC64', 'RISCV64',
].map((a) => `SCMP_ARCH_${a}`));
const PROFILE_KEYS: ReadonlySet<string> = new Set(['defaultAction', 'defaultErrnoRet', 'architectures', 'syscalls']);
const RULE_KEYS: ReadonlySet<string> = new Set(['names', 'action', 'errnoRet', 'args', 'comment']);
const ARG_KEYS: ReadonlySet<string> = new Set(['index', 'value', 'valueTwo', 'op']);
const MAX_DATUM = 2n ** 64n - 1n;

function invalid(where: string, problem: string): CorralError {
  return new CorralError(`invalid seccomp profile: ${where}: ${problem}`, { code: 'ERR_INVALID_SECCOMP' });
}

function show(value: unknown): string {
  return typeof value === 'bigint' ? `${value}n` : JSON.stringify(value) ?? String(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Unknown keys are errors rather than ignored: a typo, or Docker's includes/excludes (which would
// otherwise silently allow capability-gated syscalls), must not pass unnoticed.
function checkKeys(where: string, value: Record<string, unknown>, known: ReadonlySet<string>, hint = ''): void {
  const extra = Object.keys(value).filter((k) => !known.has(k));
  if (extra.length > 0) throw invalid(where, `unsupported ${extra.map((k) => `'${k}'`).join(', ')}${hint}`);
}

function checkAction(where: string, action: unknown): void {
  if (typeof action !== 'string' || !ACTIONS.has(action)) {
    throw invalid(where, `unknown action ${show(action)} (expected one of ${[...ACTIONS].join(', ')})`);
  }
}

function checkErrno(where: string, errno: unknown, action: unknown): void {
  if (errno === undefined) return;
  if (action !== 'SCMP_ACT_ERRNO' && action !== 'SCMP_ACT_TRACE') throw invalid(where, `an errno is only for SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${String(action)}`);
  if (!Number.isInteger(errno) || (errno as number) < 0 || (errno as number) > 0xffff) throw invalid(where, `errno ${show(errno)} is not an integer from 0 to 65535`);
}

function checkDatum(where: string, datum: unknown): void {
  const ok = typeof datum === 'bigint' ? datum >= 0n && datum <= MAX_DATUM : Number.isSafeInteger(datum) && (datum as number) >= 0;
  if (!ok) throw invalid(where, `${show(datum)} is not an unsigned 64-bit integer (numbers above 2^53 must be bigints)`);
}

function checkArgs(where: string, args: unknown): void {
  if (args === undefined) return;
  if (!Array.isArray(args)) throw invalid(where, "'args' must be an array");
  const seen = new Set<unknown>();
  args.forEach((arg: unknown, i) => {
    const at = `${where} args[${i}]`;
    if (!isRecord(arg)) throw invalid(at, 'must be an object { index, value, valueTwo?, op }');
    checkKeys(at, arg, ARG_KEYS);
    if (!Number.isInteger(arg.index) || (arg.index as number) < 0 || (arg.index as number) > 5) throw invalid(at, `index ${show(arg.index)} is not 0 to 5`);
    if (seen.has(arg.index)) throw invalid(at, `a second condition on argument ${String(arg.index)} (libseccomp takes one per argument and rule; write another rule)`);
    seen.add(arg.index);
    if (typeof arg.op !== 'string' || !OPS.has(arg.op)) throw invalid(at, `unknown op ${show(arg.op)} (expected one of ${[...OPS].join(', ')})`);
    checkDatum(`${at} value`, arg.value);
    if (arg.valueTwo !== undefined) checkDatum(`${at} valueTwo`, arg.valueTwo);
  });
}

function checkRule(rule: unknown, i: number): void {
  const names = isRecord(rule) && Array.isArray(rule.names) ? rule.names.filter((n) => typeof n === 'string') : [];
  const where = `syscalls[${i}]${names.length > 0 ? ` (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})` : ''}`;
  if (!isRecord(rule)) throw invalid(where, 'must be an object { names, action, errnoRet?, args? }');
  checkKeys(where, rule, RULE_KEYS, " (a resolved profile has no 'includes' or 'excludes'; use 'default' for Docker's capability-aware rules)");
  if (!Array.isArray(rule.names) || rule.names.length === 0) throw invalid(where, "'names' must be a non-empty array of syscall names");
  if (names.length !== rule.names.length || names.some((n) => n === '')) throw invalid(where, "'names' must hold non-empty strings");
  checkAction(where, rule.action);
  checkErrno(where, rule.errnoRet, rule.action);
  checkArgs(where, rule.args);
  if (rule.comment !== undefined && typeof rule.comment !== 'string') throw invalid(where, "'comment' must be a string");
}

/** Checks a profile that came from a user (JSON or code) and returns it typed; throws ERR_INVALID_SECCOMP naming the bad entry. */
export function validateProfile(profile: unknown): SeccompProfile {
  if (!isRecord(profile)) throw invalid('profile', 'must be an object { defaultAction, syscalls, … }');
  checkKeys('profile', profile, PROFILE_KEYS);
  checkAction('defaultAction', profile.defaultAction);
  checkErrno('defaultErrnoRet', profile.defaultErrnoRet, profile.defaultAction);
  const { architectures, syscalls } = profile;
  if (architectures !== undefined) {
    if (!Array.isArray(architectures)) throw invalid('architectures', 'must be an array of SCMP_ARCH_* names');
    architectures.forEach((arch: unknown, i) => {
      if (typeof arch !== 'string' || !ARCHITECTURES.has(arch)) throw invalid(`architectures[${i}]`, `unknown architecture ${show(arch)}`);
    });
  }
  if (syscalls !== undefined) {
    if (!Array.isArray(syscalls)) throw invalid('syscalls', 'must be an array of rules');
    syscalls.forEach(checkRule);
  }
  return profile as unknown as SeccompProfile;
}
