// Compiles seccomp profiles to the classic-BPF program a container's child loads last before exec.
import { CorralError, errnoName } from '../sys/errors.ts';
import { defaultProfile } from './default-profile.ts';
import { ACTION, ARCH, COMPARE, SeccompFilter, resolveSyscall, type ArgComparison } from './libseccomp.ts';
import { validateProfile, type SeccompAction, type SeccompArg, type SeccompProfile } from './profile.ts';

const EPERM = 1;
const cache = new Map<string, Buffer>();

function actionValue(action: SeccompAction, errnoRet = EPERM): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return ACTION.ALLOW;
    case 'SCMP_ACT_ERRNO': return ACTION.ERRNO | errnoRet;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return ACTION.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return ACTION.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return ACTION.TRAP;
    case 'SCMP_ACT_TRACE': return ACTION.TRACE | errnoRet;
    case 'SCMP_ACT_LOG': return ACTION.LOG;
  }
}

function comparison(arg: SeccompArg): ArgComparison {
  const op = COMPARE[arg.op.slice('SCMP_CMP_'.length) as keyof typeof COMPARE];
  return { arg: arg.index, op, a: BigInt(arg.value), b: BigInt(arg.valueTwo ?? 0) };
}

// The extra ABIs a profile may list that this machine can run: x86 and x32 binaries on x86_64.
function extraArches(profile: SeccompProfile): number[] {
  if (process.arch !== 'x64') return [];
  const tokens: Record<string, number> = { SCMP_ARCH_X86: ARCH.X86, SCMP_ARCH_X32: ARCH.X32 };
  return (profile.architectures ?? []).flatMap((name) => (name in tokens ? [tokens[name]!] : []));
}

function build(profile: SeccompProfile): Buffer {
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const filter = new SeccompFilter(defaultAction);
  try {
    for (const token of extraArches(profile)) filter.addArch(token);
    (profile.syscalls ?? []).forEach((rule, i) => {
      const action = actionValue(rule.action, rule.errnoRet);
      // libseccomp refuses a rule that repeats the default action (EACCES); like runc, skip it.
      if (action === defaultAction) return;
      const comparisons = (rule.args ?? []).map(comparison);
      for (const name of rule.names) {
        const nr = resolveSyscall(name);
        if (nr === null) continue; // unknown to libseccomp: skipped, as Docker does
        const rc = filter.addRule(action, nr, comparisons);
        if (rc < 0) {
          throw new CorralError(`invalid seccomp profile: syscalls[${i}] (${name}): libseccomp refused the rule: ${errnoName(-rc)}`, { code: 'ERR_INVALID_SECCOMP', errno: -rc });
        }
      }
    });
    return filter.exportBpf();
  } finally {
    filter.release();
  }
}

/** The BPF program (struct sock_filter[] bytes) for a profile; compiled once per distinct profile, so callers must not modify it. */
export function compileSeccomp(profile: SeccompProfile): Buffer {
  const key = JSON.stringify(validateProfile(profile), (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  let program = cache.get(key);
  if (program === undefined) {
    program = build(profile);
    cache.set(key, program);
  }
  return program;
}

/** The program a container's seccomp setting asks for: Docker's default (capability-aware), a custom profile, or null when unconfined. */
export function seccompProgramFor(spec: 'default' | 'unconfined' | SeccompProfile, capabilities: ReadonlySet<string>): Buffer | null {
  if (spec === 'unconfined') return null;
  return compileSeccomp(spec === 'default' ? defaultProfile(capabilities) : spec);
}
