// Bindings to the system's libseccomp.so.2, loaded on first use so that corral imports without it.
import koffi from 'koffi';
import { closeSync, fstatSync, readSync } from 'node:fs';
import { CorralError, syscallError } from '../sys/errors.ts';

/** libseccomp's action values (seccomp.h); ERRNO and TRACE carry 16 bits of data in the low bits. */
export const ACTION = {
  KILL_PROCESS: 0x8000_0000,
  KILL_THREAD: 0x0000_0000,
  TRAP: 0x0003_0000,
  ERRNO: 0x0005_0000,
  TRACE: 0x7ff0_0000,
  LOG: 0x7ffc_0000,
  ALLOW: 0x7fff_0000,
} as const;

/** libseccomp's argument comparison operators (enum scmp_compare). */
export const COMPARE = { NE: 1, LT: 2, LE: 3, EQ: 4, GE: 5, GT: 6, MASKED_EQ: 7 } as const;

/** libseccomp's tokens for the architectures a filter can cover besides the native one (AUDIT_ARCH_*). */
export const ARCH = { X86: 0x4000_0003, X32: 0x4000_003e } as const;

/** One argument comparison of a rule (struct scmp_arg_cmp): for MASKED_EQ, a is the mask and b the value. */
export interface ArgComparison {
  arg: number;
  op: number;
  a: bigint;
  b: bigint;
}

const SCMP_FLTATR_CTL_NNP = 3;
const SCMP_FLTATR_CTL_TSYNC = 4;
/** The filter layout: 2 is a binary tree over syscall numbers (libseccomp 2.5+). */
const SCMP_FLTATR_CTL_OPTIMIZE = 8;
const NR_SCMP_ERROR = -1;
const MFD_CLOEXEC = 1;
const ENOMEM = 12;

type Bindings = ReturnType<typeof bind>;
let bindings: Bindings | undefined;

function bind() {
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libseccomp.so.2');
  } catch (cause) {
    throw new CorralError(
      'seccomp needs libseccomp.so.2, which is not installed (on Debian or Ubuntu: apt-get install libseccomp2)',
      { code: 'ERR_SECCOMP_UNAVAILABLE', cause },
    );
  }
  const ctx = koffi.pointer('scmp_filter_ctx', koffi.opaque());
  koffi.struct('scmp_arg_cmp', { arg: 'uint', op: 'int', datum_a: 'uint64_t', datum_b: 'uint64_t' });
  return {
    init: lib.func('seccomp_init', ctx, ['uint32_t']),
    release: lib.func('seccomp_release', 'void', [ctx]),
    attrSet: lib.func('seccomp_attr_set', 'int', [ctx, 'int', 'uint32_t']),
    archAdd: lib.func('seccomp_arch_add', 'int', [ctx, 'uint32_t']),
    resolveName: lib.func('int seccomp_syscall_resolve_name(const char *name)'),
    ruleAddArray: lib.func('seccomp_rule_add_array', 'int', [ctx, 'uint32_t', 'int', 'uint', 'const scmp_arg_cmp *']),
    exportBpf: lib.func('seccomp_export_bpf', 'int', [ctx, 'int']),
    memfdCreate: koffi.load('libc.so.6').func('int memfd_create(const char *name, uint flags)'),
  };
}

function api(): Bindings {
  bindings ??= bind();
  return bindings;
}

/** The native syscall number libseccomp knows by this name (negative for another arch's), or null. */
export function resolveSyscall(name: string): number | null {
  const nr: number = api().resolveName(name);
  return nr === NR_SCMP_ERROR ? null : nr;
}

/** A libseccomp filter under construction for the native architecture; release() it when done. */
export class SeccompFilter {
  readonly #ctx: unknown;

  /** A filter whose unmatched syscalls get defaultAction; no_new_privs and TSYNC are left to corral. */
  constructor(defaultAction: number) {
    const { init, attrSet } = api();
    const ctx: unknown = init(defaultAction);
    // NULL means an invalid action (callers pass valid ones) or no memory.
    if (ctx === null) throw syscallError('seccomp_init', ENOMEM);
    this.#ctx = ctx;
    this.#check(attrSet(ctx, SCMP_FLTATR_CTL_NNP, 0), 'seccomp_attr_set');
    this.#check(attrSet(ctx, SCMP_FLTATR_CTL_TSYNC, 0), 'seccomp_attr_set');
    // A binary tree instead of a linear chain: the kernel runs the filter (and emulates it for its
    // per-syscall cache when it is loaded) in log(n) steps rather than n.
    this.#check(attrSet(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), 'seccomp_attr_set');
  }

  /** Also filters syscalls made through another ABI of this machine (x86 or x32 on x86_64). */
  addArch(token: number): void {
    this.#check(api().archAdd(this.#ctx, token), 'seccomp_arch_add');
  }

  /** Adds one rule; returns 0 or libseccomp's negative errno, for the caller to judge. */
  addRule(action: number, syscall: number, comparisons: readonly ArgComparison[]): number {
    const args = comparisons.map((c) => ({ arg: c.arg, op: c.op, datum_a: c.a, datum_b: c.b }));
    return api().ruleAddArray(this.#ctx, action, syscall, args.length, args.length === 0 ? null : args);
  }

  /** The finished classic-BPF program: struct sock_filter[], 8 bytes an instruction. */
  exportBpf(): Buffer {
    const { memfdCreate, exportBpf } = api();
    const fd: number = memfdCreate('corral-seccomp', MFD_CLOEXEC);
    if (fd < 0) throw syscallError('memfd_create', koffi.errno(), { step: 'seccomp export' });
    try {
      this.#check(exportBpf(this.#ctx, fd), 'seccomp_export_bpf');
      const program = Buffer.alloc(fstatSync(fd).size);
      return program.subarray(0, readSync(fd, program, 0, program.length, 0));
    } finally {
      closeSync(fd);
    }
  }

  /** Frees libseccomp's context. */
  release(): void {
    api().release(this.#ctx);
  }

  #check(rc: number, fn: string): void {
    if (rc < 0) throw syscallError(fn, -rc);
  }
}
