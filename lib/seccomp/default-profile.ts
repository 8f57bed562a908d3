// corral's default seccomp profile: the intent of Docker's default (moby profiles/seccomp/default.json),
// an allow-list with everything else EPERM, and the kernel-wide or namespace-escaping calls let
// through only when the container holds the capability that makes them meaningful.
import type { SeccompProfile, SeccompRule } from './profile.ts';

// Syscalls every container may make. Never listed, so EPERM: kernel modules, keyrings (add_key,
// request_key, keyctl), kexec_load/kexec_file_load, userfaultfd, io_uring (its CVE history; newer
// Docker and containerd block it too), swapon/swapoff, and the obsolete (uselib, ustat, sysfs, _sysctl).
const ALLOWED = {
  files: [
    'access', 'chdir', 'chmod', 'chown', 'chown32', 'close', 'close_range', 'copy_file_range', 'creat',
    'dup', 'dup2', 'dup3', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fchdir',
    'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'flock',
    'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64',
    'futimesat', 'getcwd', 'getdents', 'getdents64', 'lchown', 'lchown32', 'link', 'linkat', '_llseek',
    'lseek', 'lstat', 'lstat64', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'newfstatat', 'open', 'openat',
    'openat2', 'pread64', 'preadv', 'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead',
    'readlink', 'readlinkat', 'readv', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile',
    'sendfile64', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat',
    'sync', 'sync_file_range', 'syncfs', 'tee', 'truncate', 'truncate64', 'umask', 'unlink', 'unlinkat',
    'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vmsplice', 'write', 'writev',
  ],
  xattrs: [
    'fgetxattr', 'flistxattr', 'fremovexattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'listxattr',
    'llistxattr', 'lremovexattr', 'lsetxattr', 'removexattr', 'setxattr',
  ],
  events: [
    'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2',
    'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'fanotify_mark', 'inotify_add_watch',
    'inotify_init', 'inotify_init1', 'inotify_rm_watch', '_newselect', 'pipe', 'pipe2', 'poll', 'ppoll',
    'ppoll_time64', 'pselect6', 'pselect6_time64', 'select', 'signalfd', 'signalfd4', 'timerfd_create',
    'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64',
  ],
  asyncIo: [
    'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup',
    'io_submit', 'ioprio_get', 'ioprio_set',
  ],
  memory: [
    'brk', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mlock', 'mlock2',
    'mlockall', 'mmap', 'mmap2', 'mprotect', 'mremap', 'msync', 'munlock', 'munlockall', 'munmap',
    'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages',
  ],
  processes: [
    'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'futex',
    'futex_time64', 'futex_waitv', 'get_robust_list', 'get_thread_area', 'getcpu', 'getpgid', 'getpgrp',
    'getpid', 'getppid', 'getpriority', 'getrandom', 'getrlimit', 'getrusage', 'getsid', 'gettid',
    'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'modify_ldt',
    'pidfd_open', 'pidfd_send_signal', 'prctl', 'prlimit64', 'process_mrelease', 'restart_syscall',
    'rseq', 'seccomp', 'set_robust_list', 'set_thread_area', 'set_tid_address', 'setpgid',
    'setpriority', 'setrlimit', 'setsid', 'sysinfo', 'times', 'ugetrlimit', 'uname', 'vfork', 'wait4',
    'waitid', 'waitpid',
  ],
  scheduling: [
    'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity', 'sched_getattr',
    'sched_getparam', 'sched_getscheduler', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
    'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield',
  ],
  credentials: [
    'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32',
    'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getuid', 'getuid32', 'setfsgid',
    'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32',
    'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid',
    'setreuid32', 'setuid', 'setuid32',
  ],
  signals: [
    'alarm', 'kill', 'pause', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
    'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo',
    'sigaltstack', 'sigprocmask', 'sigreturn', 'tgkill', 'tkill',
  ],
  time: [
    'adjtimex', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
    'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'getitimer',
    'gettimeofday', 'nanosleep', 'setitimer', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun',
    'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  ],
  ipc: [
    'ipc', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64',
    'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'msgctl', 'msgget', 'msgrcv', 'msgsnd',
    'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'shmat', 'shmctl', 'shmdt', 'shmget',
  ],
  network: [
    'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen',
    'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'send', 'sendmmsg', 'sendmsg',
    'sendto', 'setsockopt', 'shutdown', 'socketcall', 'socketpair',
  ],
};

const ALLOWED_ALWAYS = Object.values(ALLOWED).flat();

// Syscalls allowed only with a capability (Docker's `includes.caps`); without it they stay EPERM.
const BY_CAPABILITY: ReadonlyArray<[capability: string, names: string[]]> = [
  ['SYS_ADMIN', [
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie',
    'mount', 'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open', 'pivot_root', 'quotactl',
    'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'syslog', 'umount', 'umount2', 'unshare',
  ]],
  ['DAC_READ_SEARCH', ['name_to_handle_at', 'open_by_handle_at']],
  ['SYS_BOOT', ['reboot']],
  ['SYS_CHROOT', ['chroot']],
  ['SYS_MODULE', ['delete_module', 'finit_module', 'init_module']],
  ['SYS_PACCT', ['acct']],
  ['SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace']],
  ['SYS_RAWIO', ['ioperm', 'iopl']],
  ['SYS_TIME', ['clock_settime', 'clock_settime64', 'settimeofday', 'stime']],
  ['SYS_TTY_CONFIG', ['vhangup']],
  ['SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
  ['SYSLOG', ['syslog']],
  ['BPF', ['bpf']],
  ['PERFMON', ['perf_event_open']],
];

const CLONE_NAMESPACES = 0x7e02_0000; // CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
const TIOCSTI = 0x5412;
const AF_VSOCK = 40;
const ENOSYS = 38;

// Allows `name` unless the low 32 bits of argument `index` equal `value` (the kernel reads these
// arguments as 32-bit ints, so comparing all 64 bits would let value + 2^32 through). libseccomp has
// no masked not-equal, refuses a rule that repeats the default action and lets an unconditional allow
// swallow conditional denials; so: allow when any one of the 32 bits differs, a masked rule per bit.
function allowUnlessLow32(name: string, index: number, value: number): SeccompRule[] {
  return Array.from({ length: 32 }, (_, bit) => {
    const mask = 2 ** bit;
    const valueBit = Math.floor(value / mask) % 2;
    return { names: [name], action: 'SCMP_ACT_ALLOW', args: [{ index, value: mask, valueTwo: valueBit === 1 ? 0 : mask, op: 'SCMP_CMP_MASKED_EQ' }] };
  });
}

function allowWhenEqual(name: string, index: number, values: number[]): SeccompRule[] {
  return values.map((value) => ({ names: [name], action: 'SCMP_ACT_ALLOW', args: [{ index, value, op: 'SCMP_CMP_EQ' }] }));
}

/** The default profile for a container with these capabilities ('SYS_ADMIN' or 'CAP_SYS_ADMIN'): cap-gated syscalls open up as Docker's do. */
export function defaultProfile(capabilities: ReadonlySet<string>): SeccompProfile {
  const caps = new Set([...capabilities].map((c) => c.toUpperCase().replace(/^CAP_/, '')));
  const syscalls: SeccompRule[] = [
    { names: [...ALLOWED_ALWAYS], action: 'SCMP_ACT_ALLOW' },
    // TIOCSTI pushes input into a terminal: from a container, into the host's shell.
    ...allowUnlessLow32('ioctl', 1, TIOCSTI),
    ...allowUnlessLow32('socket', 0, AF_VSOCK),
    // PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and 0xffffffff (query).
    ...allowWhenEqual('personality', 0, [0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff]),
  ];
  for (const [capability, names] of BY_CAPABILITY) {
    if (caps.has(capability)) syscalls.push({ names, action: 'SCMP_ACT_ALLOW' });
  }
  if (!caps.has('SYS_ADMIN')) {
    syscalls.push(
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACES, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      // clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes glibc fall back to clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    );
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    // Native system calls only: the x86 and x32 ABIs would triple the program, and the kernel's
    // BPF JIT cost of loading it (~1 ms for all three, ~0.6 ms for one, measured here) is paid
    // by every container. A 32-bit syscall is killed (libseccomp's bad-architecture action).
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls,
  };
}
