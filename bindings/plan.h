/* The setup plan: the binary format TypeScript (lib/spawn/plan.ts) writes and executor.c runs.
 * Keep the op codes and their fields in step with lib/spawn/ops.ts; plan-check.c knows the
 * shape of every op and refuses a plan that does not fit it. */
#ifndef CORRAL_PLAN_H
#define CORRAL_PLAN_H
#include <stdint.h>

#define PLAN_MAGIC 0x314c5243u /* "CRL1" */

struct plan_header {
	uint32_t magic;
	uint32_t op_count;
	int32_t status_fd; /* write end of the status pipe (close-on-exec) */
	uint32_t size;     /* bytes in the whole plan: every offset points below it */
};

/* One operation. Strings are offsets into the plan (0 = none); lists are offsets to
 * { u32 count; u32 offsets[count]; } with room for count+1 pointers at n[i].
 * "dir" fields hold a slot number + 1 (0: the path is taken as it is, from the current directory);
 * "slot" fields a slot number below SLOT_COUNT. */
#define SLOT_COUNT 64
/* overlayfs stacks at most this many lower layers (OVL_MAX_STACK). */
#define OVERLAY_MAX_LOWERS 500
struct plan_op {
	uint32_t code;
	uint32_t reserved;
	int64_t n[4];
	uint32_t s[4];
};

/* Records the child writes to the status pipe. EOF without an error record means exec succeeded. */
struct status_record {
	int32_t kind; /* STATUS_READY, STATUS_ERROR, STATUS_PID */
	int32_t step; /* index of the op */
	int32_t err;  /* positive errno */
	int32_t value;
};

enum { STATUS_READY = 1, STATUS_ERROR = 2, STATUS_PID = 3 };

enum op_code {
	OP_USERNS_MAPS = 1,     /* s0 uid_map text, s1 gid_map text */
	OP_PRCTL = 2,           /* n0 option, n1 arg */
	OP_SETSID = 3,
	OP_MOUNT = 4,           /* s0 source, s1 target, s2 fstype, s3 data, n0 flags */
	OP_OPEN_TREE = 5,       /* s0 path, n0 flags, n1 slot */
	OP_MOUNT_SETATTR = 6,   /* n0 slot, n1 attr_set, n2 attr_clr, n3 propagation */
	OP_MOVE_MOUNT = 7,      /* n0 slot, s0 target */
	OP_MKDIR = 8,           /* s0 path, n0 mode, n3 dir; EEXIST is fine */
	OP_MKNOD = 9,           /* s0 path, n0 mode, n1 dev, n3 dir */
	OP_CREATE_FILE = 10,    /* s0 path, n0 mode, n3 dir */
	OP_SYMLINK = 11,        /* s0 target, s1 link path, n3 dir */
	OP_PIVOT_ROOT = 12,     /* s0 new root */
	OP_SETHOSTNAME = 13,    /* s0 name */
	OP_LOOPBACK_UP = 14,
	OP_CHDIR = 15,          /* s0 path (a host path, before the root is entered) */
	OP_SETGROUPS = 16,      /* s0 u32 list of gids */
	OP_SETRESGID = 17,      /* n0 gid */
	OP_SETRESUID = 18,      /* n0 uid */
	OP_DUP2 = 19,           /* n0 from, n1 to (from == to clears close-on-exec) */
	OP_CLOSE_FDS = 20,      /* s0 u32 list of fds to keep (sorted); every other fd is closed */
	OP_RESOLVE_COMMAND = 21,/* s0 name, s1 PATH */
	OP_WAIT_START = 22,     /* n0 read end of the start pipe */
	OP_SETNS = 23,          /* n0 fd, n1 nstype */
	OP_FORK_INTO_PARENT = 24, /* n0 cgroup fd to be born in, or -1; n1 1: share our memory until
	                         * the new process execs (CLONE_VM|CLONE_VFORK, before OP_REEXEC) */
	OP_EXEC = 25,           /* s0 argv list, s1 envp list */
	OP_UMASK = 26,          /* n0 mask */
	OP_CLOEXEC_FROM = 27,   /* n0 first fd */
	OP_CAPBSET_LIMIT = 28,  /* n0 mask of capabilities to keep in the bounding set, n1 last cap */
	OP_CAPSET = 29,         /* n0 mask of capabilities to keep effective and permitted; none inheritable or ambient */
	OP_UNSHARE = 30,        /* n0 flags */
	OP_OPEN_IN_ROOT = 31,   /* n0 root dir, s0 path, n1 slot, n2 create: 0 no, 1 directories, 2 a file
	                         * (and its parent directories); resolved with RESOLVE_IN_ROOT */
	OP_MOUNT_AT = 32,       /* s0 source, n1 target slot, s2 fstype, s3 data, n0 flags */
	OP_MOVE_MOUNT_AT = 33,  /* n0 source slot, n1 target slot */
	OP_SETATTR_ONE = 34,    /* n0 slot, n1 attr_set: one mount, not its submounts */
	OP_SECCOMP = 35,        /* s0 the BPF program (struct sock_filter[]), n0 its length in bytes */
	OP_SETRLIMIT = 36,      /* n0 resource, n1 soft, n2 hard (-1: unlimited) */
	OP_WRITE_FILE = 37,     /* s0 path, s1 text */
	OP_MASK_PATH = 38,      /* n0 root dir, s0 path: /dev/null over a file, an empty read-only tmpfs
	                         * over a directory; a missing path is fine */
	OP_READONLY_PATH = 39,  /* n0 root dir, s0 path: a read-only bind of the path onto itself */
	OP_CHDIR_IN_ROOT = 40,  /* s0 path, opened inside the process root (RESOLVE_IN_ROOT, no magic
	                         * links), entered with fchdir */
	OP_CHECK_CWD = 41,      /* fails (ENOENT) unless getcwd finds the cwd under the process root */
	OP_CLOSE_SLOTS = 42,    /* closes every fd the slots hold */
	OP_REEXEC = 43,         /* n0 fd of the sealed executor image, s0 u32 list of fds the rest of
	                         * the plan uses: execs the image, which goes on with the next op */
	OP_CONSOLE = 44,        /* n0 socket fd, n1 rows, n2 cols (0: left as is): a pty from /dev/pts/ptmx
	                         * of the process root, its master sent over the socket (SCM_RIGHTS),
	                         * its slave the controlling terminal and fds 0-2 (console.c) */
	OP_INIT = 45,           /* forks: the parent stays as an init that forwards signals to the child
	                         * and reaps zombies until the child exits (init.c); the child, in a
	                         * session of its own, goes on with the plan */
	OP_AWAIT_MAPS = 46,     /* n0 read end of the maps pipe: blocks until the parent wrote the user
	                         * namespace's maps (newuidmap, newgidmap) and a byte, then closes it */
	OP_CHOWN_IN_ROOT = 47,  /* n3 root dir, s0 path (inside it, no symlink followed), n1 uid, n2 gid,
	                         * n0 mode + 1 to set again afterwards (chown clears set-id bits), or 0 */
	OP_BIND_OWN_FILE = 48,  /* n0 root dir, n1 dir of the container's own files (a tmpfs), s0 path
	                         * inside the root, s1 text, s2 name in n1: writes the text to a new file
	                         * there and binds it over the path, resolved inside the root (a symlink,
	                         * dangling too, leads to a path inside it; what is missing is made) */
	OP_FSOPEN = 49,         /* s0 filesystem type, n0 slot: a filesystem context (fsopen) */
	OP_FSCONFIG = 50,       /* n0 context slot, n1 FSCONFIG_* command, s0 key, s1 string value,
	                         * n2 slot of the fd (FSCONFIG_SET_FD) */
	OP_OVERLAY_LOWERS = 51, /* n0 context slot, n3 dir, s1 layer names (n1 their pointer scratch), top
	                         * first: each cloned (open_tree OPEN_TREE_CLONE) and given as lowerdir+
	                         * by fd, then the superblock created (FSCONFIG_CMD_CREATE) while the
	                         * clones are still open, then each clone attached on the directory of
	                         * slot n2; at most OVERLAY_MAX_LOWERS */
	OP_FSMOUNT = 52,        /* n0 context slot, n1 MOUNT_ATTR_* flags, n2 slot: a detached mount */
	OP_EXIT = 53,           /* n0 status: reports ready and ends the process (a probe's plan,
	                         * which has no command) */
	/* 54-69 and 76- are kept for other work; 70-75 are corral-oci's. */
	OP_WRITE_IN_ROOT = 70,  /* n0 root dir, s0 path inside it (RESOLVE_IN_ROOT, no magic links),
	                         * s1 text: written to the existing file (a sysctl under /proc/sys) */
	OP_COUNT
};

/* Index of the first op of the plan (size bytes) that does not fit its shape, -1 if every op does,
 * PLAN_BAD_HEADER when the header does not fit (magic, size, op count). */
#define PLAN_BAD_HEADER (-2)
long plan_check(const void *plan, uint64_t size);

#endif
