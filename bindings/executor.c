/* The child side of a spawn: runs a setup plan (checked by plan-check.c) op by op with raw system
 * calls, then execs.
 * It runs between clone and exec, possibly sharing the parent's memory (CLONE_VM|CLONE_VFORK):
 * no malloc, no libc state, no errno. On failure it writes (step, errno) to the status pipe and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <net/if.h>
#include <stddef.h>
#include <linux/openat2.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif

#include "executor.h"
#include "plan.h"
#include "rawsys.h"

#define PATH_BUF 4096
#define EXIT_SETUP_FAILED 127

struct exec_state {
	const uint8_t *plan;
	int status_fd;
	int slots[SLOT_COUNT];
	char resolved[PATH_BUF];
};

static const char *str(const struct exec_state *st, uint32_t off)
{
	return off ? (const char *)(st->plan + off) : 0;
}

/* A "dir" field: slot + 1, or 0 for AT_FDCWD. */
static int dirfd_of(const struct exec_state *st, int64_t dir)
{
	return dir > 0 && dir <= SLOT_COUNT ? st->slots[dir - 1] : AT_FDCWD;
}

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void put_record(int fd, int32_t kind, int32_t step, int32_t err, int32_t value)
{
	struct status_record rec = { kind, step, err, value };
	raw3(SYS_write, fd, &rec, sizeof rec);
}

static long write_file(const char *path, const char *text)
{
	long fd = raw4(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	long r = raw3(SYS_write, fd, text, slen(text));
	raw1(SYS_close, fd);
	return r < 0 ? r : 0;
}

/* Turns a plan list into a NULL-terminated pointer array in the scratch space TypeScript reserved. */
static char **list(const struct exec_state *st, uint32_t off, int64_t scratch)
{
	const uint32_t *l = (const uint32_t *)(st->plan + off);
	char **out = (char **)(st->plan + scratch);
	for (uint32_t i = 0; i < l[0]; i++)
		out[i] = (char *)(st->plan + l[1 + i]);
	out[l[0]] = 0;
	return out;
}

static long close_fds_except(const uint32_t *keep)
{
	unsigned int next = 0;
	for (uint32_t i = 0; i < keep[0]; i++) {
		unsigned int fd = keep[1 + i];
		if (fd > next) {
			long r = raw3(SYS_close_range, next, fd - 1, 0);
			if (r < 0)
				return r;
		}
		next = fd + 1;
	}
	return raw3(SYS_close_range, next, ~0u, 0);
}

static long loopback_up(void)
{
	long sock = raw3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return sock;
	struct ifreq ifr = { 0 };
	ifr.ifr_name[0] = 'l';
	ifr.ifr_name[1] = 'o';
	long r = raw3(SYS_ioctl, sock, SIOCGIFFLAGS, &ifr);
	if (r >= 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		r = raw3(SYS_ioctl, sock, SIOCSIFFLAGS, &ifr);
	}
	raw1(SYS_close, sock);
	return r;
}

static long pivot_into(const char *newroot)
{
	long r = raw1(SYS_chdir, newroot);
	if (r < 0)
		return r;
	r = raw2(SYS_pivot_root, ".", ".");
	if (r < 0)
		return r;
	r = raw2(SYS_umount2, ".", MNT_DETACH);
	if (r < 0)
		return r;
	return raw1(SYS_chdir, "/");
}

/* Finds name in PATH the way execvp does; the result is kept for OP_EXEC. */
static long resolve_command(struct exec_state *st, const char *name, const char *path)
{
	size_t nlen = slen(name);
	int saw_eacces = 0;
	for (const char *p = name; *p; p++) {
		if (*p == '/') {
			if (nlen >= PATH_BUF)
				return -ENAMETOOLONG;
			for (size_t i = 0; i <= nlen; i++)
				st->resolved[i] = name[i];
			path = 0;
			break;
		}
	}
	const char *dir = path;
	for (;;) {
		if (dir) {
			const char *end = dir;
			while (*end && *end != ':')
				end++;
			size_t dlen = (size_t)(end - dir);
			if (dlen + 1 + nlen >= PATH_BUF)
				return -ENAMETOOLONG;
			size_t k = 0;
			if (dlen == 0)
				st->resolved[k++] = '.';
			for (size_t i = 0; i < dlen; i++)
				st->resolved[k++] = dir[i];
			st->resolved[k++] = '/';
			for (size_t i = 0; i <= nlen; i++)
				st->resolved[k++] = name[i];
		}
		struct stat sb;
		long r = raw4(SYS_newfstatat, AT_FDCWD, st->resolved, &sb, 0);
		if (r == 0) {
			if (!S_ISREG(sb.st_mode))
				r = -EACCES;
			else
				r = raw4(SYS_faccessat, AT_FDCWD, st->resolved, X_OK, 0);
			if (r == 0)
				return 0;
		}
		if (r == -EACCES)
			saw_eacces = 1;
		else if (r != -ENOENT && r != -ENOTDIR)
			return r;
		if (!dir)
			break;
		while (*dir && *dir != ':')
			dir++;
		if (!*dir)
			break;
		dir++;
	}
	return saw_eacces ? -EACCES : -ENOENT;
}

static long limit_bounding_set(uint64_t keep, int64_t last_cap)
{
	for (int64_t cap = 0; cap <= last_cap; cap++) {
		if (keep & (1ull << cap))
			continue;
		long r = raw2(SYS_prctl, PR_CAPBSET_DROP, cap);
		if (r < 0 && r != -EINVAL)
			return r;
	}
	return 0;
}

/* Keeps the masked capabilities among those still permitted (a switch to another uid may have
 * cleared them all); inheritable and ambient end up empty. */
static long set_capabilities(uint64_t keep)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
	struct { uint32_t effective, permitted, inheritable; } data[2];
	long r = raw2(SYS_capget, &hdr, data);
	if (r < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		data[i].permitted &= k;
		data[i].effective = data[i].permitted;
		data[i].inheritable = 0;
	}
	r = raw2(SYS_capset, &hdr, data);
	if (r < 0)
		return r;
	r = raw5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return r == -EINVAL ? 0 : r;
}

static long open_beneath(int root, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	if (root == AT_FDCWD)
		return raw4(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC, 0);
	return raw4(SYS_openat2, root, path, &how, sizeof how);
}

/* Copies a path into a PATH_BUF buffer; its length, or -ENAMETOOLONG. */
static long copy_path(char *buf, const char *path)
{
	size_t len = slen(path);
	if (len >= PATH_BUF)
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= len; i++)
		buf[i] = path[i];
	return (long)len;
}

/* Opens path inside root (symlinks resolved as if root were "/", so nothing leads out of it),
 * creating what is missing when asked: every component a directory, or the last one a file. */
static long open_in_root(int root, const char *path, int create)
{
	long fd = open_beneath(root, path);
	if (fd != -ENOENT || !create)
		return fd;
	while (*path == '/')
		path++;
	char buf[PATH_BUF];
	long copied = copy_path(buf, path);
	if (copied < 0)
		return copied;
	size_t len = (size_t)copied;
	size_t start = 0;
	for (size_t end = start; end <= len; end++) {
		if (end < len && buf[end] != '/')
			continue;
		if (end == start) {
			start++;
			continue;
		}
		char saved = buf[end];
		buf[end] = 0;
		long probe = open_beneath(root, buf);
		if (probe == -ENOENT) {
			/* Make the component in its parent, opened inside root as well. */
			char *name = buf + start;
			long parent;
			if (start == 0) {
				parent = open_beneath(root, ".");
			} else {
				buf[start - 1] = 0;
				parent = open_beneath(root, buf);
				buf[start - 1] = '/';
			}
			if (parent < 0)
				return parent;
			long r;
			if (end == len && create == 2) {
				r = raw4(SYS_openat, parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (r >= 0)
					raw1(SYS_close, r);
			} else {
				r = raw3(SYS_mkdirat, parent, name, 0755);
			}
			raw1(SYS_close, parent);
			if (r < 0 && r != -EEXIST)
				return r;
			probe = open_beneath(root, buf);
		}
		if (probe < 0)
			return probe;
		raw1(SYS_close, probe);
		buf[end] = saved;
		start = end + 1;
	}
	return open_beneath(root, path);
}

/* Opens the file a bind goes over: path inside root (root AT_FDCWD: a host path), followed through
 * symlinks inside the root; a missing file is made with its directories, and a dangling symlink
 * leads on to its target, taken inside the root too (an image's /etc/resolv.conf may link to a
 * file under an empty /run). */
static long open_bind_target(int root, const char *path)
{
	char buf[PATH_BUF];
	long copied = copy_path(buf, path);
	if (copied < 0)
		return copied;
	for (int hops = 0; hops < 8; hops++) {
		long fd = open_beneath(root, buf);
		if (fd != -ENOENT)
			return fd;
		size_t len = slen(buf);
		size_t cut = len;
		while (cut > 0 && buf[cut - 1] != '/')
			cut--;
		if (cut == len)
			return -EISDIR;
		char name[256];
		if (len - cut >= sizeof name)
			return -ENAMETOOLONG;
		for (size_t i = cut; i <= len; i++)
			name[i - cut] = buf[i];
		buf[cut] = 0;
		long parent = open_in_root(root, cut ? buf : ".", 1);
		if (parent < 0)
			return parent;
		long r = raw4(SYS_openat, parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (r >= 0) {
			raw1(SYS_close, r);
			fd = raw4(SYS_openat, parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
			raw1(SYS_close, parent);
			return fd;
		}
		if (r != -ELOOP) {
			raw1(SYS_close, parent);
			return r;
		}
		/* A dangling symlink: go on with its target, next to it unless absolute. */
		char link[PATH_BUF];
		long n = raw4(SYS_readlinkat, parent, name, link, sizeof link - 1);
		raw1(SYS_close, parent);
		if (n < 0)
			return n;
		link[n] = 0;
		size_t at = link[0] == '/' ? 0 : cut;
		if (at + (size_t)n >= PATH_BUF)
			return -ENAMETOOLONG;
		for (long i = 0; i <= n; i++)
			buf[at + (size_t)i] = link[i];
	}
	return -ELOOP;
}

/* Writes text to a new file name in dir (a tmpfs of the container's own) and binds that file over
 * path inside root: the container's own /etc/hosts and the like, never written into its root. */
static long bind_own_file(int root, int dir, const char *path, const char *text, const char *name)
{
	long fd = raw4(SYS_openat, dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return fd;
	long r = 0;
	for (size_t done = 0, len = slen(text); r >= 0 && done < len; done += (size_t)r)
		r = raw3(SYS_write, fd, text + done, len - done);
	raw1(SYS_close, fd);
	if (r < 0)
		return r;
	long tree = raw3(SYS_open_tree, dir, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return tree;
	long target = open_bind_target(root, path);
	r = target;
	/* A root whose /etc the container may not write (a rootless container over another user's
	 * rootfs) keeps its own file, or none, as on the read-only host root. */
	if (target == -EACCES || target == -EPERM || target == -EROFS)
		r = 0;
	if (target >= 0) {
		r = raw5(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		raw1(SYS_close, target);
	}
	raw1(SYS_close, tree);
	return r;
}

/* Writes n as decimal digits into buf (room for 21 bytes). */
static char *decimal(char *buf, uint64_t n)
{
	char digits[21];
	int k = 0;
	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	char *p = buf;
	while (k > 0)
		*p++ = digits[--k];
	*p = 0;
	return buf;
}

/* The magic-link path of a slot, for mount(2), which takes a path: "/proc/self/fd/N". */
static const char *fd_path(char *buf, int fd)
{
	const char *prefix = "/proc/self/fd/";
	size_t k = 0;
	while (prefix[k]) {
		buf[k] = prefix[k];
		k++;
	}
	decimal(buf + k, (uint64_t)fd);
	return buf;
}

/* Blocks until the parent writes a byte to fd, then closes it; EOF (the parent went away, gave up
 * on this container or could not write its id maps) ends the process. */
static long await_parent(int fd)
{
	char go;
	long r;
	do
		r = raw3(SYS_read, fd, &go, 1);
	while (r == -EINTR);
	if (r != 1)
		raw1(SYS_exit_group, EXIT_SETUP_FAILED);
	return raw1(SYS_close, fd);
}

/* Gives the file at path inside root (no symlink followed, the last one changed itself) an owner
 * and, when mode_plus_one is not 0, its mode again. */
static long chown_in_root(int root, const char *path, long uid, long gid, long mode_plus_one)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = raw4(SYS_openat2, root, path, &how, sizeof how);
	if (fd < 0)
		return fd;
	long r = raw5(SYS_fchownat, fd, "", uid, gid, AT_EMPTY_PATH);
	if (r == 0 && mode_plus_one != 0) {
		char self[32];
		r = raw3(SYS_fchmodat, AT_FDCWD, fd_path(self, (int)fd), mode_plus_one - 1);
	}
	raw1(SYS_close, fd);
	return r;
}

static long mask_path(int root, const char *path)
{
	long fd = open_beneath(root, path);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	struct stat sb;
	long r = raw4(SYS_newfstatat, fd, "", &sb, AT_EMPTY_PATH);
	char target[32];
	if (r == 0) {
		if (S_ISDIR(sb.st_mode))
			r = raw5(SYS_mount, "tmpfs", fd_path(target, (int)fd), "tmpfs",
				 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
		else
			r = raw5(SYS_mount, "/dev/null", fd_path(target, (int)fd), 0, MS_BIND, 0);
	}
	raw1(SYS_close, fd);
	return r;
}

static long readonly_path(int root, const char *path)
{
	long fd = open_beneath(root, path);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	long tree = raw3(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	long r = tree;
	if (tree >= 0) {
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
		r = raw5(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
		if (r == 0)
			r = raw5(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		raw1(SYS_close, tree);
	}
	raw1(SYS_close, fd);
	return r;
}

/* The working directory, opened inside the process root with no magic link followed (a cwd that is
 * a link to /proc/self/fd/N must not reach an fd's directory: CVE-2024-21626), then entered. */
static long chdir_in_root(const char *path)
{
	long root = raw4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	if (root < 0)
		return root;
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	long fd = raw4(SYS_openat2, root, path, &how, sizeof how);
	raw1(SYS_close, root);
	if (fd < 0)
		return fd;
	long r = raw1(SYS_fchdir, fd);
	raw1(SYS_close, fd);
	return r;
}

/* Writes text to an existing file inside root, resolved as if root were "/" and no magic link
 * followed: a /proc symlink in the image cannot send a sysctl's write to a host path. */
static long write_in_root(int root, const char *path, const char *text)
{
	struct open_how how = { .flags = O_WRONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	long fd = raw4(SYS_openat2, root, path, &how, sizeof how);
	if (fd < 0)
		return fd;
	long r = raw3(SYS_write, fd, text, slen(text));
	raw1(SYS_close, fd);
	return r < 0 ? r : 0;
}

/* getcwd(2) names a directory outside the process root "(unreachable)/...": that is an escape. */
static long check_cwd(void)
{
	char buf[PATH_BUF];
	long r = raw2(SYS_getcwd, buf, sizeof buf);
	if (r < 0)
		return r;
	return buf[0] == '/' ? 0 : -ENOENT;
}

/* Puts fd in a slot, closing the fd the slot held (a slot is reused for op after op). */
static void put_slot(struct exec_state *st, int64_t i, int fd)
{
	if (st->slots[i] >= 0)
		raw1(SYS_close, st->slots[i]);
	st->slots[i] = fd;
}

static void close_slots(struct exec_state *st)
{
	for (int i = 0; i < SLOT_COUNT; i++) {
		if (st->slots[i] >= 0)
			raw1(SYS_close, st->slots[i]);
		st->slots[i] = -1;
	}
}

/* Execs the sealed executor image (fd exe) to run the rest of the plan, so that no process of the
 * container is a copy of the host's node binary (/proc/self/exe: CVE-2019-5736,
 * test/security/cve-2019-5736-proc-self-exe.test.ts). The plan goes along in a memfd; the fds the
 * plan still uses (keep) lose close-on-exec until OP_CLOEXEC_FROM sets it again. */
static long reexec(struct exec_state *st, int step, int64_t exe, const uint32_t *keep)
{
	const struct plan_header *h = (const struct plan_header *)st->plan;
	long fd = raw2(SYS_memfd_create, "corral-plan", 0);
	if (fd < 0)
		return fd;
	for (uint32_t done = 0; done < h->size;) {
		long w = raw3(SYS_write, fd, st->plan + done, h->size - done);
		if (w < 0) {
			raw1(SYS_close, fd);
			return w;
		}
		done += (uint32_t)w;
	}
	for (uint32_t i = 0; i < keep[0]; i++) {
		long r = raw3(SYS_fcntl, keep[1 + i], F_SETFD, 0);
		if (r < 0 && r != -EBADF)
			return r;
	}
	char plan_fd[24], resume_at[24];
	char *argv[] = { "corral-executor", decimal(plan_fd, (uint64_t)fd), decimal(resume_at, (uint64_t)step + 1), 0 };
	char *envp[] = { 0 };
	long r = raw5(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
	raw1(SYS_close, fd);
	return r;
}

/* An overlay's lower layers, by fd: each directory cloned as a detached mount, so the kernel names
 * it by its path inside that clone ("/") in the overlay's options, which the container reads in
 * /proc/self/mountinfo, and not by its host path (test/security/mountinfo-host-paths.test.ts).
 * A clone is dissolved when its last fd closes, so all stay open until the superblock exists; then
 * each is attached on park (under the root to be) instead: the last close of a detached mount
 * waits for an RCU grace period (0.05-0.3 ms each here), while parked ones go in the one unmount
 * of the old root after pivot_root. */
static long overlay_lowers(int context, int dir, char **names, int park)
{
	int clones[OVERLAY_MAX_LOWERS];
	int count = 0;
	long r = 0;
	for (int i = 0; names[i]; i++) {
		if (i == OVERLAY_MAX_LOWERS) {
			r = -E2BIG;
			break;
		}
		long fd = raw3(SYS_open_tree, dir, names[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (fd < 0) {
			r = fd;
			break;
		}
		clones[count++] = (int)fd;
		r = raw5(SYS_fsconfig, context, FSCONFIG_SET_FD, "lowerdir+", 0, fd);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = raw5(SYS_fsconfig, context, FSCONFIG_CMD_CREATE, 0, 0, 0);
	for (int i = 0; i < count; i++) {
		if (r == 0)
			r = raw5(SYS_move_mount, clones[i], "", park, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		raw1(SYS_close, clones[i]);
	}
	return r;
}

static int fork_into_parent(struct exec_state *st, int step, int64_t cgroup_fd, int64_t share_memory);

static long run_op(struct exec_state *st, const struct plan_op *op, int step)
{
	const int64_t *n = op->n;
	const uint32_t *s = op->s;
	switch (op->code) {
	case OP_USERNS_MAPS: {
		long r = write_file("/proc/self/setgroups", "deny");
		if (r < 0 && r != -ENOENT)
			return r;
		r = write_file("/proc/self/uid_map", str(st, s[0]));
		return r < 0 ? r : write_file("/proc/self/gid_map", str(st, s[1]));
	}
	case OP_PRCTL:
		return raw5(SYS_prctl, n[0], n[1], 0, 0, 0);
	case OP_SETSID:
		return raw0(SYS_setsid);
	case OP_MOUNT:
		return raw5(SYS_mount, str(st, s[0]), str(st, s[1]), str(st, s[2]), n[0], str(st, s[3]));
	case OP_OPEN_TREE: {
		long fd = raw3(SYS_open_tree, AT_FDCWD, str(st, s[0]), n[0]);
		if (fd >= 0)
			put_slot(st, n[1], (int)fd);
		return fd;
	}
	case OP_MOUNT_SETATTR: {
		struct mount_attr attr = { .attr_set = (uint64_t)n[1], .attr_clr = (uint64_t)n[2],
					   .propagation = (uint64_t)n[3] };
		return raw5(SYS_mount_setattr, st->slots[n[0]], "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
			    sizeof attr);
	}
	case OP_MOVE_MOUNT:
		return raw5(SYS_move_mount, st->slots[n[0]], "", AT_FDCWD, str(st, s[0]),
			    MOVE_MOUNT_F_EMPTY_PATH);
	case OP_MKDIR: {
		long r = raw3(SYS_mkdirat, dirfd_of(st, n[3]), str(st, s[0]), n[0]);
		return r == -EEXIST ? 0 : r;
	}
	case OP_MKNOD:
		return raw4(SYS_mknodat, dirfd_of(st, n[3]), str(st, s[0]), n[0], n[1]);
	case OP_CREATE_FILE: {
		long fd = raw4(SYS_openat, dirfd_of(st, n[3]), str(st, s[0]), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, n[0]);
		return fd < 0 ? fd : raw1(SYS_close, fd);
	}
	case OP_SYMLINK:
		return raw3(SYS_symlinkat, str(st, s[0]), dirfd_of(st, n[3]), str(st, s[1]));
	case OP_OPEN_IN_ROOT: {
		long fd = open_in_root(dirfd_of(st, n[0]), str(st, s[0]), (int)n[2]);
		if (fd >= 0)
			put_slot(st, n[1], (int)fd);
		return fd;
	}
	case OP_MOUNT_AT: {
		char target[32];
		return raw5(SYS_mount, str(st, s[0]), fd_path(target, st->slots[n[1]]), str(st, s[2]), n[0], str(st, s[3]));
	}
	case OP_MOVE_MOUNT_AT:
		return raw5(SYS_move_mount, st->slots[n[0]], "", st->slots[n[1]], "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	case OP_SETATTR_ONE: {
		struct mount_attr attr = { .attr_set = (uint64_t)n[1] };
		return raw5(SYS_mount_setattr, st->slots[n[0]], "", AT_EMPTY_PATH, &attr, sizeof attr);
	}
	case OP_PIVOT_ROOT:
		return pivot_into(str(st, s[0]));
	case OP_SETHOSTNAME: {
		const char *name = str(st, s[0]);
		return raw2(SYS_sethostname, name, slen(name));
	}
	case OP_LOOPBACK_UP:
		return loopback_up();
	case OP_CHDIR:
		return raw1(SYS_chdir, str(st, s[0]));
	case OP_SETGROUPS: {
		const uint32_t *l = (const uint32_t *)(st->plan + s[0]);
		return raw2(SYS_setgroups, l[0], l + 1);
	}
	case OP_SETRESGID:
		return raw3(SYS_setresgid, n[0], n[0], n[0]);
	case OP_SETRESUID:
		return raw3(SYS_setresuid, n[0], n[0], n[0]);
	case OP_DUP2: /* onto itself: keep the fd across exec */
		return n[0] == n[1] ? raw3(SYS_fcntl, n[0], F_SETFD, 0) : raw3(SYS_dup3, n[0], n[1], 0);
	case OP_CLOSE_FDS:
		return close_fds_except((const uint32_t *)(st->plan + s[0]));
	case OP_RESOLVE_COMMAND:
		return resolve_command(st, str(st, s[0]), str(st, s[1]));
	case OP_WAIT_START:
		put_record(st->status_fd, STATUS_READY, step, 0, 0);
		return await_parent(n[0]);
	case OP_AWAIT_MAPS:
		return await_parent(n[0]);
	case OP_CHOWN_IN_ROOT:
		return chown_in_root(dirfd_of(st, n[3]), str(st, s[0]), n[1], n[2], n[0]);
	case OP_BIND_OWN_FILE:
		return bind_own_file(dirfd_of(st, n[0]), dirfd_of(st, n[1]), str(st, s[0]), str(st, s[1]), str(st, s[2]));
	case OP_SETNS:
		return raw2(SYS_setns, n[0], n[1]);
	case OP_FORK_INTO_PARENT:
		return fork_into_parent(st, step, n[0], n[1]);
	case OP_EXEC:
		return raw3(SYS_execve, st->resolved, list(st, s[0], n[0]), list(st, s[1], n[1]));
	case OP_UMASK:
		raw1(SYS_umask, n[0]);
		return 0;
	case OP_CAPBSET_LIMIT:
		return limit_bounding_set((uint64_t)n[0], n[1]);
	case OP_UNSHARE:
		return raw1(SYS_unshare, n[0]);
	case OP_CAPSET:
		return set_capabilities((uint64_t)n[0]);
	case OP_SECCOMP: {
		struct sock_fprog prog = { .len = (unsigned short)(n[0] / sizeof(struct sock_filter)),
					   .filter = (struct sock_filter *)(st->plan + s[0]) };
		return raw3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
	}
	case OP_SETRLIMIT: {
		struct { uint64_t cur, max; } lim = { (uint64_t)n[1], (uint64_t)n[2] };
		return raw4(SYS_prlimit64, 0, n[0], &lim, 0);
	}
	case OP_WRITE_FILE:
		return write_file(str(st, s[0]), str(st, s[1]));
	case OP_WRITE_IN_ROOT:
		return write_in_root(dirfd_of(st, n[0]), str(st, s[0]), str(st, s[1]));
	case OP_MASK_PATH:
		return mask_path(dirfd_of(st, n[0]), str(st, s[0]));
	case OP_READONLY_PATH:
		return readonly_path(dirfd_of(st, n[0]), str(st, s[0]));
	case OP_CLOEXEC_FROM:
		return raw3(SYS_close_range, n[0], ~0u, CLOSE_RANGE_CLOEXEC);
	case OP_CHDIR_IN_ROOT:
		return chdir_in_root(str(st, s[0]));
	case OP_CHECK_CWD:
		return check_cwd();
	case OP_CLOSE_SLOTS:
		close_slots(st);
		return 0;
	case OP_REEXEC:
		return reexec(st, step, n[0], (const uint32_t *)(st->plan + s[0]));
	case OP_CONSOLE:
		return console_setup(n[0], n[1], n[2]);
	case OP_INIT:
		return init_fork();
	case OP_FSOPEN: {
		long fd = raw2(SYS_fsopen, str(st, s[0]), FSOPEN_CLOEXEC);
		if (fd >= 0)
			put_slot(st, n[0], (int)fd);
		return fd;
	}
	case OP_FSCONFIG:
		return raw5(SYS_fsconfig, st->slots[n[0]], n[1], str(st, s[0]), str(st, s[1]),
			    n[1] == FSCONFIG_SET_FD ? st->slots[n[2]] : 0);
	case OP_OVERLAY_LOWERS:
		return overlay_lowers(st->slots[n[0]], dirfd_of(st, n[3]), list(st, s[1], n[1]), st->slots[n[2]]);
	case OP_FSMOUNT: {
		long fd = raw3(SYS_fsmount, st->slots[n[0]], FSMOUNT_CLOEXEC, n[1]);
		if (fd >= 0)
			put_slot(st, n[2], (int)fd);
		return fd;
	}
	case OP_EXIT:
		put_record(st->status_fd, STATUS_READY, step, 0, 0);
		raw1(SYS_exit_group, n[0]);
		return 0;
	}
	return -EINVAL;
}

static int run_from(struct exec_state *st, uint32_t first);

/* Where a process forked with shared memory goes on: the plan after the fork, with the state of
 * the process that forked it (which waits, suspended, until this one execs or exits). */
struct forked_resume {
	struct exec_state *st;
	uint32_t first;
};

static int resume_forked(void *arg)
{
	struct forked_resume *r = arg;
	return run_from(r->st, r->first);
}

/* Stack of a process forked with shared memory: it only runs to the next exec (OP_REEXEC). */
#define FORK_STACK_SIZE (64 * 1024)

/* Forks a process that is a child of our parent (so the parent can wait for it), reports its pid,
 * and exits: the new process goes on with the plan inside the namespaces joined so far. With
 * share_memory it shares our memory (CLONE_VM|CLONE_VFORK, on a stack in this frame) and we wait
 * until it execs: before OP_REEXEC, so that of the two only the new one execs the executor image. */
static int fork_into_parent(struct exec_state *st, int step, int64_t cgroup_fd, int64_t share_memory)
{
	struct clone_args args = { .flags = CLONE_PARENT, .exit_signal = 0 };
	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	long pid;
	if (share_memory) {
		char stack[FORK_STACK_SIZE] __attribute__((aligned(16)));
		struct forked_resume resume = { st, (uint32_t)step + 1 };
		args.flags |= CLONE_VM | CLONE_VFORK;
		args.stack = (uint64_t)(uintptr_t)stack;
		args.stack_size = sizeof stack;
		pid = raw_clone3(&args, sizeof args, resume_forked, &resume);
	} else {
		pid = raw6(SYS_clone3, (long)&args, sizeof args, 0, 0, 0, 0);
		if (pid == 0)
			return 0;
	}
	if (pid < 0)
		return (int)pid;
	put_record(st->status_fd, STATUS_PID, step, 0, (int32_t)pid);
	raw1(SYS_exit_group, 0);
	return 0;
}

static void reset_signals(void)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} dfl = { 0 };
	for (int sig = 1; sig <= 64; sig++)
		raw4(SYS_rt_sigaction, sig, &dfl, 0, 8);
	unsigned long none = 0;
	raw4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, &none, 0, 8);
}

/* Runs the ops of st's plan from first on; returns only on failure (the exit status). */
static int run_from(struct exec_state *st, uint32_t first)
{
	const struct plan_header *h = (const struct plan_header *)st->plan;
	const struct plan_op *ops = (const struct plan_op *)(st->plan + sizeof *h);
	for (uint32_t i = first; i < h->op_count; i++) {
		long r = run_op(st, &ops[i], (int)i);
		if (r < 0) {
			put_record(st->status_fd, STATUS_ERROR, (int32_t)i, (int32_t)-r, 0);
			return EXIT_SETUP_FAILED;
		}
	}
	/* A plan always ends in OP_EXEC; reaching here means it did not. */
	put_record(st->status_fd, STATUS_ERROR, (int32_t)h->op_count, EINVAL, 0);
	return EXIT_SETUP_FAILED;
}

/* Runs the plan from op first on; returns only on failure (the exit status). */
static int execute_from(void *arg, uint32_t first)
{
	struct exec_state st;
	st.plan = arg;
	const struct plan_header *h = arg;
	st.status_fd = h->status_fd;
	for (int i = 0; i < SLOT_COUNT; i++)
		st.slots[i] = -1;
	st.resolved[0] = 0;

	if (first == 0)
		reset_signals();
	return run_from(&st, first);
}

int corral_execute(void *arg)
{
	return execute_from(arg, 0);
}

int corral_resume(void *plan, uint32_t first)
{
	return execute_from(plan, first);
}
