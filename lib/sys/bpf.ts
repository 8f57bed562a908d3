/** The bpf(2) system call, for the cgroup device programs: load a program, attach it to a cgroup. */

import koffi from 'koffi';
import { CorralError, errnoName, syscallError } from './errors.ts';
import { libc } from './libc.ts';

const syscall = libc.func('long syscall(long number, ...)');

/** x86_64 system call number of bpf(2). */
const SYS_BPF = 321;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;

// The leading fields of union bpf_attr each command reads; the kernel zero-fills the rest.
koffi.struct('corral_bpf_prog_load', {
  prog_type: 'uint32',
  insn_cnt: 'uint32',
  insns: 'const uint8_t *',
  license: 'const char *',
  log_level: 'uint32',
  log_size: 'uint32',
  log_buf: 'uint8_t *',
});
koffi.struct('corral_bpf_prog_attach', {
  target_fd: 'uint32',
  attach_bpf_fd: 'uint32',
  attach_type: 'uint32',
  attach_flags: 'uint32',
});

/** Program types, attach types and attach flags of the kernel's uapi linux/bpf.h. */
export const BPF = {
  PROG_TYPE_CGROUP_DEVICE: 15,
  CGROUP_DEVICE: 6,
  F_ALLOW_MULTI: 2,
} as const;

/** Size of one struct bpf_insn. */
export const BPF_INSN_SIZE = 8;
const LOG_SIZE = 64 * 1024;
const EAGAIN = 11;
const MAX_EAGAIN_RETRIES = 5;

function load(type: number, insns: Buffer, log: Buffer | null): number {
  const attr = {
    prog_type: type, insn_cnt: insns.length / BPF_INSN_SIZE, insns, license: 'GPL',
    log_level: log ? 1 : 0, log_size: log ? log.length : 0, log_buf: log,
  };
  return Number(syscall(SYS_BPF, 'int', BPF_PROG_LOAD, 'corral_bpf_prog_load *', attr, 'uint', koffi.sizeof('corral_bpf_prog_load')));
}

/** Loads a program (instructions as struct bpf_insn) and returns its fd (close-on-exec). When the
 * verifier refuses it, the error carries the verifier's log. */
export function bpfProgLoad(type: number, insns: Buffer, step: string): number {
  let fd = load(type, insns, null);
  // The verifier gives up with EAGAIN when a signal arrives meanwhile (a profiler's SIGPROF, a
  // SIGCHLD): retry, as libbpf does.
  for (let attempt = 0; fd < 0 && koffi.errno() === EAGAIN && attempt < MAX_EAGAIN_RETRIES; attempt++) fd = load(type, insns, null);
  if (fd >= 0) return fd;
  const errno = koffi.errno();
  if (errno !== 22 && errno !== 13) throw syscallError('bpf', errno, { step });
  // EINVAL or EACCES: the verifier said no; load again for its reasons.
  const log = Buffer.alloc(LOG_SIZE);
  const again = load(type, insns, log);
  if (again >= 0) return again;
  const reason = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim();
  throw new CorralError(`${step}: ${errnoName(errno)} (errno ${errno}): the verifier refused the program: ${reason}`, { code: errnoName(errno), errno, syscall: 'bpf', step });
}

/** Attaches a loaded program to a target (a cgroup directory fd); path names the target in errors. */
export function bpfProgAttach(targetFd: number, progFd: number, attachType: number, flags: number, path: string, step: string): void {
  const attr = { target_fd: targetFd, attach_bpf_fd: progFd, attach_type: attachType, attach_flags: flags };
  if (Number(syscall(SYS_BPF, 'int', BPF_PROG_ATTACH, 'corral_bpf_prog_attach *', attr, 'uint', koffi.sizeof('corral_bpf_prog_attach'))) < 0) {
    throw syscallError('bpf', koffi.errno(), { path, step });
  }
}
