import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSeccomp, seccompProgramFor } from '../../lib/seccomp/compile.ts';
import type { SeccompProfile } from '../../lib/seccomp/profile.ts';

const EPERM = 1;
const ENOSYS = 38;

const allowGetpid = (names: string[]): SeccompProfile => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  syscalls: [{ names, action: 'SCMP_ACT_ALLOW' }],
});

/** Asserts that compiling `profile` fails with ERR_INVALID_SECCOMP and a message matching `where`. */
function assertInvalid(profile: unknown, where: RegExp): void {
  assert.throws(() => compileSeccomp(profile as SeccompProfile), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_INVALID_SECCOMP');
    assert.match(err.message, where);
    return true;
  });
}

describe('seccomp compiler', () => {
  it('compiles the default profile to whole sock_filter instructions', () => {
    const program = seccompProgramFor('default', new Set(['CHOWN', 'KILL']));
    assert.ok(program);
    assert.ok(program.length > 0);
    assert.equal(program.length % 8, 0);
  });

  it('compiles each distinct profile once', () => {
    const caps = new Set(['CHOWN']);
    assert.equal(seccompProgramFor('default', caps), seccompProgramFor('default', new Set(['CHOWN'])));
    assert.equal(compileSeccomp(allowGetpid(['getpid'])), compileSeccomp(allowGetpid(['getpid'])));
  });

  it('returns null for unconfined', () => {
    assert.equal(seccompProgramFor('unconfined', new Set()), null);
  });

  it('opens the capability-gated syscalls for SYS_ADMIN', () => {
    const plain = seccompProgramFor('default', new Set())!;
    const admin = seccompProgramFor('default', new Set(['SYS_ADMIN']))!;
    assert.ok(!plain.equals(admin));
    assert.equal(seccompProgramFor('default', new Set(['CAP_SYS_ADMIN'])), admin);
  });

  it('skips syscall names libseccomp does not know', () => {
    const known = compileSeccomp(allowGetpid(['getpid']));
    assert.ok(known.equals(compileSeccomp(allowGetpid(['getpid', 'no_such_syscall']))));
  });

  it('names the bad entry of an invalid profile', () => {
    const read = { names: ['read'], action: 'SCMP_ACT_ALLOW' };
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [read, { names: ['write'], action: 'SCMP_ACT_DENY' }] }, /syscalls\[1\] \(write\): unknown action "SCMP_ACT_DENY"/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ ...read, args: [{ index: 0, value: 1, op: 'SCMP_CMP_IS' }] }] }, /syscalls\[0\] \(read\) args\[0\]: unknown op "SCMP_CMP_IS"/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [read, { action: 'SCMP_ACT_ALLOW' }] }, /syscalls\[1\]: 'names' must be a non-empty array/);
    assertInvalid({ defaultAction: 'SCMP_ACT_NOPE' }, /defaultAction: unknown action/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ ...read, includes: { caps: ['CAP_SYS_ADMIN'] } }] }, /syscalls\[0\] \(read\): unsupported 'includes'/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ ...read, args: [{ index: 0, value: 1, op: 'SCMP_CMP_GT' }, { index: 0, value: 9, op: 'SCMP_CMP_LT' }] }] }, /args\[1\]: a second condition on argument 0/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ ...read, args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]: index 6 is not 0 to 5/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ ...read, args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\] value: -1 is not an unsigned 64-bit integer/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ ...read, errnoRet: 5 }] }, /syscalls\[0\] \(read\): an errno is only for/);
    assertInvalid({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_Z80'] }, /architectures\[0\]: unknown architecture/);
  });
});

// A probe that loads a compiled program the way the container's child will (no_new_privs, then
// seccomp(SECCOMP_SET_MODE_FILTER)), then makes syscalls and prints "name errno" (0: success).
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc) { printf("%s %d\n", name, rc < 0 ? errno : 0); }

static long reaped(long pid) {
  if (pid == 0) _exit(0);
  return pid < 0 ? pid : waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    static unsigned char buf[65536];
    int fd = open(argv[1], O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    struct sock_fprog prog = { .len = n / 8, .filter = (struct sock_filter *)buf };
    if (fd < 0 || n <= 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
      perror("loading the filter");
      return 2;
    }
  }
  char c = 'x';
  int avail;
  report("getpid", getpid());
  report("write", write(1, "", 0));
  report("ioctl_fionread", ioctl(0, FIONREAD, &avail));
  report("socket_unix", socket(AF_UNIX, SOCK_STREAM, 0));
  report("fork", reaped(fork()));
  report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1 /* thread keyring */, 0));
  report("ioctl_tiocsti", ioctl(0, TIOCSTI, &c));
  report("ioctl_tiocsti_high_bits", syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c));
  report("socket_vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
  report("ptrace", syscall(SYS_ptrace, PTRACE_PEEKUSER, 0, 0, 0));
  report("clone3", syscall(SYS_clone3, NULL, 0));
  report("clone_newuts", reaped(syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0)));
  report("unshare_newuts", unshare(CLONE_NEWUTS));
  return 0;
}
`;

describe('seccomp programs in the kernel', () => {
  let dir: string;
  let probe: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-seccomp-'));
    probe = join(dir, 'probe');
    writeFileSync(`${probe}.c`, PROBE_C);
    execFileSync('cc', ['-o', probe, `${probe}.c`]);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the probe under `program` (or none) and returns each syscall's errno by name. */
  function run(program: Buffer | null): Record<string, number> {
    const args: string[] = [];
    if (program) {
      const file = join(dir, `program-${program.length}.bpf`);
      writeFileSync(file, program);
      args.push(file);
    }
    const result = spawnSync(probe, args, { input: '', encoding: 'utf8' });
    assert.equal(result.status, 0, `probe failed: ${result.stderr}`);
    return Object.fromEntries(result.stdout.trim().split('\n').map((line) => {
      const [name, errno] = line.split(' ');
      return [name!, Number(errno)];
    }));
  }

  it('denies with EPERM what the default profile denies, and allows the rest', () => {
    const unfiltered = run(null);
    for (const name of ['keyctl', 'ioctl_tiocsti', 'ioctl_tiocsti_high_bits', 'socket_vsock', 'ptrace', 'clone3']) {
      assert.notEqual(unfiltered[name], EPERM, `${name} is EPERM even without a filter`);
    }
    const filtered = run(seccompProgramFor('default', new Set(['CHOWN', 'SETUID'])));
    assert.deepEqual(filtered, {
      getpid: 0, write: 0, ioctl_fionread: 0, socket_unix: 0, fork: 0,
      keyctl: EPERM, ioctl_tiocsti: EPERM, ioctl_tiocsti_high_bits: EPERM, socket_vsock: EPERM, ptrace: EPERM,
      clone3: ENOSYS, clone_newuts: EPERM, unshare_newuts: EPERM,
    });
  });

  it('lets SYS_ADMIN and SYS_PTRACE containers make the calls those capabilities gate', () => {
    const unfiltered = run(null);
    const filtered = run(seccompProgramFor('default', new Set(['SYS_ADMIN', 'SYS_PTRACE'])));
    for (const name of ['ptrace', 'clone3', 'clone_newuts', 'unshare_newuts', 'getpid', 'fork']) {
      assert.equal(filtered[name], unfiltered[name], name);
    }
    assert.equal(filtered.keyctl, EPERM);
    assert.equal(filtered.ioctl_tiocsti, EPERM);
  });
});
