/* corral-supervisor: the parent of one detached container (conmon's job), no Node in it.
 * Started by lib/spawn/supervised-launch.ts; keep the fd numbers and the protocol in step with it.
 *
 *   corral-supervisor DIR LOG_MAX_BYTES LOG_MAX_FILES RESTART MAX_RETRIES [-t] [-i]
 *                     [-n NETWORK_HELPER...] [-- EXIT_COMMAND...]
 *
 * -t: the container gets a terminal (OP_CONSOLE on fd 11), whose master the supervisor holds for
 * good, reading it while nobody is attached and logging it as stdout (Docker does). -i: attachers'
 * input goes in: to the terminal, or without -t to a pipe kept as the container's stdin (never
 * closed by a detach: Docker without --stdin-once).
 *
 * EXIT_COMMAND (autoRemove) replaces the supervisor once the container has ended for good (podman's
 * conmon --exit-command): same pid and start time, so what it owns stays its own until removed.
 * NETWORK_HELPER (pasta) runs at each launch once the init is set up, the init's pid appended; it
 * must write its pid to DIR/network.pid and stay (its output goes to DIR/network.log); it is
 * killed when that run of the container ends.
 *
 * stdin: six lines, the clone flags, the cgroup directory, the overlay work directory, a network
 *        namespace to hold as fd 3 for the plan to join, and the newuidmap and newgidmap commands
 *        with their "inside outside count" triples (each "-" for none), then the encoded plan
 *        until EOF. With the maps commands each launch runs them for the new init (the pid goes
 *        after the helper's path) while it waits on fd 10 (OP_AWAIT_MAPS), then lets it go on: a
 *        restart maps its ids again without Node.
 * fd 1: reports to the creator, status records (plan.h): PID, then READY (set up, waiting for
 *       start), then READY again once exec'd, or ERROR (step, errno). Closed after that.
 * DIR/control: a FIFO of one-byte commands: 's' start (or start again once exited), 'x' the
 *       user stopped it (no restart), 'q' kill the container if it lives, then exit.
 * DIR/process.json: what the supervisor knows of the current process, rewritten atomically.
 * DIR/container.log (+ .1 … rotated): stdout and stderr as Docker json-file lines.
 * DIR/attach: a unix stream socket (mode 0600 in the 0700 state dir: the owner only; conmon's
 *       attach socket). Frames both ways are [type][length, 2 bytes big-endian][data]: to an
 *       attacher the live output (type 1 stdout, 2 stderr), from it input (0) and a window size
 *       (1: rows, cols, 2 bytes big-endian each). An attacher that falls 256 KB behind is let go;
 *       all are once the output of a run has ended (test/integration/detached-terminal.test.ts).
 *
 * It is a subreaper, holds the container's stdio, records each exit, applies the restart policy
 * (no, on-failure, always, unless-stopped) with a doubling backoff, and stays until 'q' so what the
 * container holds on the host (owned by this process's tag) is not swept. The container's init has
 * PR_SET_PDEATHSIG: if the supervisor is killed, the container dies with it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plan.h"

int64_t corral_spawn(void *plan, uint64_t size, uint64_t flags, int32_t cgroup_fd, int32_t *pidfd, int32_t *bad_op);
int32_t corral_receive_terminal(int32_t sock);

/* Where the plan expects its fds (lib/spawn/supervised-launch.ts SUPERVISOR_FDS). */
enum { REPORT_FD = 1, NETNS_FD = 3, EXE_FD = 4, STATUS_FD = 5, START_FD = 6, CHILD_STDIN = 7, CHILD_STDOUT = 8, CHILD_STDERR = 9, MAPS_FD = 10,
       CONSOLE_FD = 11 };

/* The step an ERROR report names when the network helper failed (its exit status as errno). */
#define HELPER_STEP (-2)

enum policy { POLICY_NO, POLICY_ON_FAILURE, POLICY_ALWAYS, POLICY_UNLESS_STOPPED };

#define LINE_MAX_BYTES 16384

struct stream {
	int fd;
	const char *name;
	size_t len;
	char buf[LINE_MAX_BYTES];
};

static struct {
	int dir;
	int devnull;
	char *work;
	char **uid_map, **gid_map; /* newuidmap/newgidmap argv with a slot for the pid, or NULL */
	char **exit_cmd;
	char **helper;
	int helper_argc;
	pid_t helper_pid;
	int cgroup;
	uint64_t flags;
	char *plan;
	uint64_t plan_size;
	long log_max;
	int log_files;
	int log_fd;
	long log_size;
	enum policy policy;
	int max_retries;
	int report;
	int control;
	pid_t pid;
	char start_time[32];
	int status_rd;
	int start_wr;
	int running;
	int stop_requested;
	int quitting;
	int restarts;
	int tty;
	int interactive;
	int in_fd; /* the write end of the container's stdin pipe (-i without -t), or -1 */
	int has_exit;
	int exit_code;
	int exit_signal;
	char started_at[40];
	char finished_at[40];
	int start_step;
	int start_errno;
	struct timespec run_since;
	struct stream out, err;
} s = { .cgroup = -1, .report = REPORT_FD, .log_fd = -1, .pid = -1, .status_rd = -1, .start_wr = -1,
	.start_step = -1, .in_fd = -1 };

static void die(const char *what);
static void write_all(int fd, const char *buf, size_t len);

/* ---- attachers (DIR/attach) ---- */

enum { FRAME_STDIN = 0, FRAME_RESIZE = 1, FRAME_STDOUT = 1, FRAME_STDERR = 2 };
#define ATTACHERS 16
#define FRAME_MAX 4096
#define ATTACHER_BUFFER (256 * 1024)

/* fd -1: a free slot; buf is allocated while it is taken, so no attacher costs no memory. */
static struct attacher {
	int fd;
	size_t len;
	unsigned char *buf;
} attachers[ATTACHERS];
static int attach_fd = -1;

static void drop_attacher(struct attacher *a)
{
	close(a->fd);
	free(a->buf);
	a->buf = 0;
	a->fd = -1;
	a->len = 0;
}

static void drop_attachers(void)
{
	for (int i = 0; i < ATTACHERS; i++)
		if (attachers[i].fd >= 0)
			drop_attacher(&attachers[i]);
}

/* Listens on DIR/attach, bound through /proc/self/fd so a long DIR fits in sun_path. */
static void open_attach(void)
{
	for (int i = 0; i < ATTACHERS; i++)
		attachers[i].fd = -1;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach", s.dir);
	unlinkat(s.dir, "attach", 0);
	attach_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* 0600: only the container's owner may attach (test/security/attach-socket-other-user.test.ts). */
	mode_t mask = umask(0177);
	int bound = attach_fd < 0 ? -1 : bind(attach_fd, (struct sockaddr *)&addr, sizeof addr);
	umask(mask);
	if (bound < 0 || listen(attach_fd, ATTACHERS) < 0)
		die("listen on DIR/attach");
}

/* The fd the attachers' input goes to, or -1 (no -i, or the run is over). */
static int input_fd(void)
{
	if (!s.interactive)
		return -1;
	return s.tty ? s.out.fd : s.in_fd;
}

static void accept_attachers(void)
{
	int fd;
	while ((fd = accept4(attach_fd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct attacher *free_slot = 0;
		for (int i = 0; i < ATTACHERS && !free_slot; i++)
			if (attachers[i].fd < 0)
				free_slot = &attachers[i];
		/* With no output left to give (the run is over), it is let go at once. */
		if (!free_slot || (s.out.fd < 0 && s.err.fd < 0) || !(free_slot->buf = malloc(3 + FRAME_MAX))) {
			close(fd);
			continue;
		}
		int size = ATTACHER_BUFFER;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
		free_slot->fd = fd;
		free_slot->len = 0;
	}
}

/* Live output to every attacher, as one frame each. */
static void broadcast(int type, const char *data, size_t len)
{
	unsigned char head[3] = { (unsigned char)type, (unsigned char)(len >> 8), (unsigned char)len };
	struct iovec iov[2] = { { head, 3 }, { (void *)data, len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	for (int i = 0; i < ATTACHERS; i++) {
		if (attachers[i].fd < 0)
			continue;
		/* A frame half sent cannot be finished later without blocking the others: let it go. */
		if (sendmsg(attachers[i].fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(3 + len))
			drop_attacher(&attachers[i]);
	}
}

static void attacher_frame(int type, const unsigned char *data, size_t len)
{
	int fd = input_fd();
	if (type == FRAME_STDIN && fd >= 0)
		write_all(fd, (const char *)data, len);
	if (type == FRAME_RESIZE && s.tty && s.out.fd >= 0 && len == 4) {
		struct winsize ws = { .ws_row = (unsigned short)(data[0] << 8 | data[1]),
				      .ws_col = (unsigned short)(data[2] << 8 | data[3]) };
		ioctl(s.out.fd, TIOCSWINSZ, &ws);
	}
}

static void attacher_input(struct attacher *a)
{
	ssize_t n = read(a->fd, a->buf + a->len, 3 + FRAME_MAX - a->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_attacher(a);
		return;
	}
	a->len += (size_t)n;
	size_t at = 0;
	while (a->len - at >= 3) {
		size_t len = (size_t)a->buf[at + 1] << 8 | a->buf[at + 2];
		if (len > FRAME_MAX) {
			drop_attacher(a);
			return;
		}
		if (a->len - at < 3 + len)
			break;
		attacher_frame(a->buf[at], a->buf + at + 3, len);
		at += 3 + len;
	}
	memmove(a->buf, a->buf + at, a->len - at);
	a->len -= at;
}

static void die(const char *what)
{
	dprintf(2, "corral-supervisor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void now_iso(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

/* Field 22 of /proc/PID/stat: with the pid it names the process for good. */
static void read_start_time(pid_t pid, char *out, size_t size)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return;
	p += 2;
	for (int field = 0; field < 19 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return;
	size_t len = strcspn(p, " ");
	if (len >= size)
		len = size - 1;
	memcpy(out, p, len);
	out[len] = 0;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Rewrites process.json through a rename, so readers never see half of it. */
static void write_state(const char *status)
{
	char buf[1024], exit_part[96], start_error[64] = "null", started[48] = "null", finished[48] = "null";
	if (s.has_exit && s.exit_signal)
		snprintf(exit_part, sizeof exit_part, "\"exitCode\":null,\"signal\":%d", s.exit_signal);
	else if (s.has_exit)
		snprintf(exit_part, sizeof exit_part, "\"exitCode\":%d,\"signal\":null", s.exit_code);
	else
		snprintf(exit_part, sizeof exit_part, "\"exitCode\":null,\"signal\":null");
	if (s.start_step >= 0)
		snprintf(start_error, sizeof start_error, "{\"step\":%d,\"errno\":%d}", s.start_step, s.start_errno);
	if (s.started_at[0])
		snprintf(started, sizeof started, "\"%s\"", s.started_at);
	if (s.finished_at[0])
		snprintf(finished, sizeof finished, "\"%s\"", s.finished_at);
	int n = snprintf(buf, sizeof buf,
			 "{\"status\":\"%s\",\"pid\":%d,\"startTime\":\"%s\",\"startedAt\":%s,\"finishedAt\":%s,%s,"
			 "\"restartCount\":%d,\"startError\":%s}\n",
			 status, s.pid < 0 ? -s.pid : s.pid, s.start_time, started, finished, exit_part, s.restarts, start_error);
	int fd = openat(s.dir, "process.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	write_all(fd, buf, (size_t)n);
	close(fd);
	renameat(s.dir, "process.json.tmp", s.dir, "process.json");
}

static void report(int kind, int step, int err, int value)
{
	if (s.report < 0)
		return;
	struct status_record r = { kind, step, err, value };
	write_all(s.report, (const char *)&r, sizeof r);
}

static void end_reports(void)
{
	if (s.report < 0)
		return;
	dup2(s.devnull, s.report);
	s.report = -1;
}

/* ---- logs ---- */

static void open_log(void)
{
	s.log_fd = openat(s.dir, "container.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s.log_fd < 0)
		die("open container.log");
	struct stat st;
	s.log_size = fstat(s.log_fd, &st) == 0 ? st.st_size : 0;
}

/* container.log → .1 → .2 …, keeping at most log_files files (1: the one file starts over).
 * container.log is never missing: the full one is linked as .1, a new one renamed over it. */
static void rotate(void)
{
	close(s.log_fd);
	char from[64], to[64];
	for (int i = s.log_files - 1; i >= 2; i--) {
		snprintf(from, sizeof from, "container.log.%d", i - 1);
		snprintf(to, sizeof to, "container.log.%d", i);
		renameat(s.dir, from, s.dir, to);
	}
	if (s.log_files > 1) {
		unlinkat(s.dir, "container.log.1", 0);
		linkat(s.dir, "container.log", s.dir, "container.log.1", 0);
	}
	int fd = openat(s.dir, "container.log.new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || renameat(s.dir, "container.log.new", s.dir, "container.log") < 0)
		die("rotate container.log");
	close(fd);
	open_log();
}

static size_t escape(char *out, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c == '\r') {
			out[o++] = '\\';
			out[o++] = 'r';
		} else if (c == '\t') {
			out[o++] = '\\';
			out[o++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

/* One json-file line: {"log":"…","stream":"stdout","time":"…"}. */
static void log_line(const char *stream, const char *text, size_t len)
{
	static char line[LINE_MAX_BYTES * 6 + 128];
	char time[40];
	now_iso(time, sizeof time);
	size_t n = (size_t)snprintf(line, sizeof line, "{\"log\":\"");
	n += escape(line + n, text, len);
	n += (size_t)snprintf(line + n, sizeof line - n, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, time);
	if (s.log_max > 0 && s.log_size > 0 && s.log_size + (long)n > s.log_max)
		rotate();
	write_all(s.log_fd, line, n);
	s.log_size += (long)n;
}

/* Reads what the stream has; whole lines are logged, a line longer than the buffer in parts.
 * Returns 0 at EOF (the stream is then closed). */
static int pump(struct stream *st)
{
	ssize_t n = read(st->fd, st->buf + st->len, sizeof st->buf - st->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0) {
		if (st->len)
			log_line(st->name, st->buf, st->len);
		st->len = 0;
		close(st->fd);
		st->fd = -1;
		/* The run's output is over (a terminal's last holder closed it: EIO): so is attaching. */
		if (s.out.fd < 0 && s.err.fd < 0)
			drop_attachers();
		return 0;
	}
	broadcast(st == &s.out ? FRAME_STDOUT : FRAME_STDERR, st->buf + st->len, (size_t)n);
	st->len += (size_t)n;
	size_t start = 0;
	for (size_t i = 0; i < st->len; i++) {
		if (st->buf[i] == '\n') {
			log_line(st->name, st->buf + start, i + 1 - start);
			start = i + 1;
		}
	}
	if (start == 0 && st->len == sizeof st->buf) {
		log_line(st->name, st->buf, st->len);
		start = st->len;
	}
	memmove(st->buf, st->buf + start, st->len - start);
	st->len -= start;
	return 1;
}

static void drain(struct stream *st)
{
	while (st->fd >= 0 && pump(st)) {
		struct pollfd p = { st->fd, POLLIN, 0 };
		if (poll(&p, 1, 0) <= 0)
			break;
	}
}

/* ---- the container process ---- */

static int read_record(struct status_record *r)
{
	size_t got = 0;
	while (got < sizeof *r) {
		ssize_t n = read(s.status_rd, (char *)r + got, sizeof *r - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

static void park(int fd)
{
	dup2(s.devnull, fd);
}

/* Runs the network helper for the init just set up; returns 0 once it runs in the background
 * (its pid read from DIR/network.pid), else its exit status (or 127: not run). */
static int start_helper(void)
{
	if (!s.helper)
		return 0;
	char pid[16];
	snprintf(pid, sizeof pid, "%d", s.pid);
	s.helper[s.helper_argc] = pid;
	unlinkat(s.dir, "network.pid", 0);
	int log = openat(s.dir, "network.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t child = fork();
	if (child == 0) {
		/* As a fresh process: no signal blocked (we block SIGCHLD), SIGPIPE not ignored. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, 0);
		signal(SIGPIPE, SIG_DFL);
		dup2(s.devnull, 0);
		dup2(log, 1);
		dup2(log, 2);
		close_range(3, ~0U, 0);
		execvp(s.helper[0], s.helper);
		dprintf(2, "cannot run %s: %s\n", s.helper[0], strerror(errno));
		_exit(127);
	}
	if (log >= 0)
		close(log);
	int status = 0;
	if (child < 0 || waitpid(child, &status, 0) < 0)
		return 127;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	char buf[16] = { 0 };
	int fd = openat(s.dir, "network.pid", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof buf - 1) < 0)
			buf[0] = 0;
		close(fd);
		unlinkat(s.dir, "network.pid", 0);
	}
	/* It daemonized: as our subreaped child its pid stays its own until we reap it. */
	s.helper_pid = atoi(buf);
	return s.helper_pid > 0 ? 0 : 127;
}

static void stop_helper(void)
{
	if (s.helper_pid <= 0)
		return;
	kill(s.helper_pid, SIGKILL);
	waitpid(s.helper_pid, 0, 0);
	s.helper_pid = 0;
}

/* Runs a newuidmap/newgidmap argv for pid; 0 when it exited 0. Its stderr is ours, its stdout
 * /dev/null. */
static int run_id_helper(char **argv, pid_t pid)
{
	char pid_text[16];
	snprintf(pid_text, sizeof pid_text, "%d", pid);
	argv[1] = pid_text;
	pid_t helper = fork();
	if (helper == 0) {
		dup2(s.devnull, REPORT_FD); /* fd 1 is the creator's report channel */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	int status = 0;
	while (helper > 0 && waitpid(helper, &status, 0) < 0 && errno == EINTR) {
	}
	return helper > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Writes the init's id maps through the setuid helpers (its user namespace is not ours to write). */
static int map_ids(pid_t pid)
{
	return run_id_helper(s.uid_map, pid) || run_id_helper(s.gid_map, pid) ? -1 : 0;
}

/* Reports a launch that failed at step with err and lets go of its status and start pipes. */
static int abandon_launch(int step, int err)
{
	report(STATUS_ERROR, step, err, 0);
	close(s.status_rd);
	s.status_rd = -1;
	close(s.start_wr);
	s.start_wr = -1;
	return err;
}

/* Clones the container's init with the plan; it sets up and waits for start. Returns 0 once it
 * is ready, else the failed step's errno (reported and recorded). */
static int launch(int first)
{
	int st[2], sp[2], mp[2] = { -1, -1 };
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 }, cs[2] = { -1, -1 };
	if (pipe2(st, O_CLOEXEC) || pipe2(sp, O_CLOEXEC) || (s.uid_map && pipe2(mp, O_CLOEXEC)))
		die("pipe2");
	/* A terminal: its master comes back on the console socket; else pipes (stdin with -i). */
	if (s.tty ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cs) != 0
		  : pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || (s.interactive && pipe2(in, O_CLOEXEC)))
		die("the container's stdio");
	if (s.uid_map) {
		dup2(mp[0], MAPS_FD);
		fcntl(MAPS_FD, F_SETFD, FD_CLOEXEC);
		close(mp[0]);
	}
	dup2(st[1], STATUS_FD);
	dup2(sp[0], START_FD);
	dup2(in[0] >= 0 ? in[0] : s.devnull, CHILD_STDIN);
	dup2(out[1] >= 0 ? out[1] : s.devnull, CHILD_STDOUT);
	dup2(err[1] >= 0 ? err[1] : s.devnull, CHILD_STDERR);
	if (cs[1] >= 0)
		dup2(cs[1], CONSOLE_FD);
	/* The status and start pipes must close at exec: EOF means the command runs. */
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	fcntl(START_FD, F_SETFD, FD_CLOEXEC);
	close(st[1]);
	close(sp[0]);
	int child_ends[] = { in[0], out[1], err[1], cs[1] };
	for (size_t i = 0; i < sizeof child_ends / sizeof *child_ends; i++)
		if (child_ends[i] >= 0)
			close(child_ends[i]);
	int32_t pidfd = -1, bad_op = -1;
	int64_t pid = corral_spawn(s.plan, s.plan_size, s.flags, s.cgroup, &pidfd, &bad_op);
	for (int fd = STATUS_FD; fd <= CONSOLE_FD; fd++)
		park(fd);
	if (pidfd >= 0)
		close(pidfd);
	s.status_rd = st[0];
	s.start_wr = sp[1];
	if (s.out.fd >= 0)
		close(s.out.fd);
	if (s.err.fd >= 0)
		close(s.err.fd);
	if (s.in_fd >= 0)
		close(s.in_fd);
	s.out.fd = out[0];
	s.err.fd = err[0];
	s.in_fd = in[1];
	int host_ends[] = { out[0], err[0], in[1] };
	for (size_t i = 0; i < sizeof host_ends / sizeof *host_ends; i++)
		if (host_ends[i] >= 0)
			fcntl(host_ends[i], F_SETFL, O_NONBLOCK);
	if (pid < 0) {
		if (cs[0] >= 0)
			close(cs[0]);
		if (mp[1] >= 0)
			close(mp[1]);
		report(STATUS_ERROR, -1, (int)-pid, 0);
		s.start_step = -1;
		errno = (int)-pid;
		return (int)-pid;
	}
	s.pid = (pid_t)pid;
	read_start_time(s.pid, s.start_time, sizeof s.start_time);
	report(STATUS_PID, 0, 0, s.pid);
	if (mp[1] >= 0) {
		/* Unwritten, the pipe's close ends the init's wait: it exits and the record below fails. */
		if (map_ids(s.pid) == 0)
			write_all(mp[1], "\1", 1);
		close(mp[1]);
	}
	struct status_record r = { 0 };
	if (!read_record(&r) || r.kind != STATUS_READY) {
		int e = r.kind == STATUS_ERROR ? r.err : EPIPE;
		s.start_step = r.kind == STATUS_ERROR ? r.step : -1;
		s.start_errno = e;
		if (cs[0] >= 0)
			close(cs[0]);
		return abandon_launch(s.start_step, e);
	}
	if (cs[0] >= 0) {
		/* Sent by OP_CONSOLE before the init reported ready. */
		int master = corral_receive_terminal(cs[0]);
		close(cs[0]);
		if (master < 0) {
			kill(s.pid, SIGKILL);
			return abandon_launch(-1, -master);
		}
		fcntl(master, F_SETFL, O_NONBLOCK);
		s.out.fd = master;
	}
	int helper = start_helper();
	if (helper != 0) {
		kill(s.pid, SIGKILL);
		stop_helper();
		return abandon_launch(HELPER_STEP, helper);
	}
	/* Recorded before it is reported, so the creator finds the record once it hears. */
	if (first)
		write_state("created");
	report(STATUS_READY, r.step, 0, 0);
	return 0;
}

/* Lets the ready init exec; returns 0 once it runs. */
static int start(void)
{
	char one = 1;
	write_all(s.start_wr, &one, 1);
	close(s.start_wr);
	s.start_wr = -1;
	struct status_record r;
	int failed = read_record(&r) && r.kind == STATUS_ERROR;
	close(s.status_rd);
	s.status_rd = -1;
	if (failed) {
		report(STATUS_ERROR, r.step, r.err, 0);
		s.start_step = r.step;
		s.start_errno = r.err;
		return r.err;
	}
	now_iso(s.started_at, sizeof s.started_at);
	s.finished_at[0] = 0;
	s.has_exit = 0;
	s.running = 1;
	clock_gettime(CLOCK_MONOTONIC, &s.run_since);
	write_state("running");
	report(STATUS_READY, 0, 0, s.pid);
	return 0;
}

static void kill_container(void)
{
	if (s.pid <= 0)
		return;
	if (s.cgroup >= 0) {
		int fd = openat(s.cgroup, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			write_all(fd, "1", 1);
			close(fd);
			return;
		}
	}
	kill(s.pid, SIGKILL);
}

static int wants_restart(void)
{
	if (s.stop_requested || s.quitting)
		return 0;
	switch (s.policy) {
	case POLICY_ON_FAILURE:
		return (s.exit_signal || s.exit_code != 0) && (s.max_retries == 0 || s.restarts < s.max_retries);
	case POLICY_ALWAYS:
	case POLICY_UNLESS_STOPPED:
		return 1;
	default:
		return 0;
	}
}

static long backoff_ms;
static long restart_at; /* CLOCK_MONOTONIC ms of the next restart, 0: none */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records an end (of the command, or of a launch that failed: 127) and applies the policy. */
static void finish(int code, int sig)
{
	s.running = 0;
	s.has_exit = 1;
	s.exit_code = code;
	s.exit_signal = sig;
	now_iso(s.finished_at, sizeof s.finished_at);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* Docker's rule: the backoff doubles from 100 ms and starts over after 10 s of running. */
	if (now.tv_sec - s.run_since.tv_sec >= 10)
		backoff_ms = 0;
	if (wants_restart()) {
		backoff_ms = backoff_ms > 0 ? (backoff_ms * 2 > 60000 ? 60000 : backoff_ms * 2) : 100;
		restart_at = now_ms() + backoff_ms;
		write_state("restarting");
	} else {
		restart_at = 0;
		write_state("exited");
		if (s.exit_cmd && !s.quitting) {
			drain(&s.out);
			drain(&s.err);
			execv(s.exit_cmd[0], s.exit_cmd);
			die("exec the exit command");
		}
	}
}

static void on_exit_status(int status)
{
	drain(&s.out);
	drain(&s.err);
	/* An init that failed its setup was recorded by relaunch already. */
	if (s.running)
		finish(WIFEXITED(status) ? WEXITSTATUS(status) : 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* A volatile overlay refuses its work directory again until the mark of its last use is gone;
 * that use ended cleanly (its mount namespace died with the container), so the mark goes. */
static void reset_overlay(void)
{
	char path[4096];
	if (!s.work)
		return;
	/* overlayfs leaves these at mode 0: we own them (rootless too), so we may open them up. */
	static const char *const dirs[] = { "work", "work/incompat", "work/incompat/volatile" };
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(path, sizeof path, "%s/%s", s.work, dirs[i]);
		chmod(path, 0700);
	}
	snprintf(path, sizeof path, "%s/work/incompat/volatile/dirty", s.work);
	unlink(path);
	snprintf(path, sizeof path, "%s/work/incompat/volatile", s.work);
	rmdir(path);
}

/* Launches and starts again (a restart, or 's' after the end); a failure counts as an exit. */
static void relaunch(int counted)
{
	reset_overlay();
	s.restarts += counted;
	s.start_step = -1;
	if (launch(0) == 0 && start() == 0)
		return;
	finish(127, 0);
}

static void control(void)
{
	char cmds[64];
	ssize_t n = read(s.control, cmds, sizeof cmds);
	for (ssize_t i = 0; i < n; i++) {
		switch (cmds[i]) {
		case 'x':
			s.stop_requested = 1;
			break;
		case 'q':
			s.quitting = 1;
			if (!s.running)
				exit(0);
			kill_container();
			break;
		case 's':
			s.stop_requested = 0;
			if (!s.running) {
				restart_at = 0;
				relaunch(0);
			}
			break;
		}
	}
}

static void reap(int sigfd)
{
	struct signalfd_siginfo info;
	while (read(sigfd, &info, sizeof info) > 0) {
	}
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s.helper_pid)
			s.helper_pid = 0;
		if (pid == s.pid) {
			s.pid = -pid;
			stop_helper();
			on_exit_status(status);
			if (s.quitting)
				exit(0);
		}
	}
}

/* "HELPER A B C ..." as an argv with an empty slot for the pid after HELPER: {HELPER, pid, A, ...}. */
static char **helper_argv(const char *line)
{
	char *copy = strdup(line);
	size_t words = 1;
	for (const char *c = line; *c; c++)
		words += *c == ' ';
	char **argv = calloc(words + 2, sizeof *argv);
	if (!copy || !argv)
		die("calloc");
	size_t n = 0;
	for (char *save = 0, *w = strtok_r(copy, " ", &save); w; w = strtok_r(0, " ", &save)) {
		argv[n++] = w;
		if (n == 1)
			argv[n++] = 0; /* the pid, filled in per launch */
	}
	return argv;
}

static void read_input(void)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len == cap && !(buf = realloc(buf, cap *= 2)))
			die("realloc");
		ssize_t n = read(0, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read the plan");
		if (n == 0)
			break;
		len += (size_t)n;
	}
	char *line[6], *at = buf;
	for (int i = 0; i < 6; i++) {
		char *nl = memchr(at, '\n', len - (size_t)(at - buf));
		if (!nl)
			exit(1); /* the creator went away before sending the plan */
		*nl = 0;
		line[i] = at;
		at = nl + 1;
	}
	s.flags = strtoull(line[0], 0, 10);
	if (strcmp(line[1], "-") != 0) {
		s.cgroup = open(line[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s.cgroup < 0)
			die(line[1]);
	}
	if (strcmp(line[2], "-") != 0)
		s.work = strdup(line[2]);
	if (strcmp(line[3], "-") != 0) {
		int ns = open(line[3], O_RDONLY | O_CLOEXEC);
		if (ns < 0 || dup3(ns, NETNS_FD, O_CLOEXEC) < 0)
			die(line[3]);
		close(ns);
	}
	if (strcmp(line[4], "-") != 0 && strcmp(line[5], "-") != 0) {
		s.uid_map = helper_argv(line[4]);
		s.gid_map = helper_argv(line[5]);
	}
	s.plan = at;
	if ((size_t)(s.plan - buf) + sizeof(struct plan_header) > len || ((struct plan_header *)s.plan)->magic != PLAN_MAGIC)
		exit(1);
	/* The plan must stay aligned as the executor reads it. */
	s.plan_size = len - (size_t)(s.plan - buf);
	char *aligned = aligned_alloc(16, (s.plan_size + 15) & ~(size_t)15);
	memcpy(aligned, s.plan, s.plan_size);
	s.plan = aligned;
	free(buf);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		dprintf(2, "usage: corral-supervisor DIR LOG_MAX_BYTES LOG_MAX_FILES RESTART MAX_RETRIES\n");
		return 2;
	}
	/* Above the fds the plan uses (3..11), so launches never overwrite it. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	s.devnull = fcntl(null, F_DUPFD_CLOEXEC, CONSOLE_FD + 1);
	if (null < 0 || s.devnull < 0)
		die("open /dev/null");
	close(null);
	/* Keep 3..11 taken, so nothing we open lands on the numbers the plan uses; 4 is the sealed
	 * executor image from our creator, which the container's processes exec (OP_REEXEC). */
	if (fcntl(EXE_FD, F_SETFD, FD_CLOEXEC) < 0)
		die("the executor image (fd 4)");
	for (int fd = 3; fd <= CONSOLE_FD; fd++)
		if (fd != s.devnull && fd != EXE_FD)
			dup3(s.devnull, fd, O_CLOEXEC);
	s.dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dir < 0)
		die(argv[1]);
	s.log_max = atol(argv[2]);
	s.log_files = atoi(argv[3]);
	if (s.log_files < 1)
		s.log_files = 1;
	s.policy = !strcmp(argv[4], "on-failure") ? POLICY_ON_FAILURE : !strcmp(argv[4], "always") ? POLICY_ALWAYS
		 : !strcmp(argv[4], "unless-stopped") ? POLICY_UNLESS_STOPPED : POLICY_NO;
	s.max_retries = atoi(argv[5]);
	int arg = 6;
	for (; arg < argc && (!strcmp(argv[arg], "-t") || !strcmp(argv[arg], "-i")); arg++)
		*(argv[arg][1] == 't' ? &s.tty : &s.interactive) = 1;
	if (arg < argc && strcmp(argv[arg], "-n") == 0) {
		s.helper = argv + ++arg;
		while (arg < argc && strcmp(argv[arg], "--") != 0)
			arg++;
		s.helper_argc = (int)(argv + arg - s.helper);
		/* Room for the pid and the NULL: the helper's argv is copied out of argv. */
		char **copy = calloc((size_t)s.helper_argc + 2, sizeof *copy);
		memcpy(copy, s.helper, (size_t)s.helper_argc * sizeof *copy);
		s.helper = copy;
	}
	if (arg + 1 < argc && strcmp(argv[arg], "--") == 0)
		s.exit_cmd = argv + arg + 1;
	s.out = (struct stream){ .fd = -1, .name = "stdout" };
	s.err = (struct stream){ .fd = -1, .name = "stderr" };
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setsid();
	read_input();
	dup2(s.devnull, 0);
	s.control = openat(s.dir, "control", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s.control < 0)
		die("open control");
	open_log();
	open_attach();
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, 0);
	int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0)
		die("signalfd");

	if (launch(1) != 0) {
		end_reports();
		return 1;
	}
	/* Created: wait for 's' (start) or 'q' (abandon); an init that dies meanwhile ends us. */
	while (s.start_wr >= 0) {
		struct pollfd p[2] = { { s.control, POLLIN, 0 }, { sigfd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			reap(sigfd);
			if (s.pid < 0)
				return 1;
		}
		if (p[0].revents) {
			char c;
			while (read(s.control, &c, 1) == 1) {
				if (c == 'q') {
					kill(s.pid, SIGKILL);
					stop_helper();
					return 0;
				}
				if (c == 'x')
					s.stop_requested = 1;
				if (c == 's' && s.start_wr >= 0 && start() != 0) {
					s.has_exit = 1;
					s.exit_code = 127;
					now_iso(s.finished_at, sizeof s.finished_at);
					write_state("exited");
				}
			}
		}
	}
	end_reports();

	for (;;) {
		struct pollfd p[5 + ATTACHERS] = { { sigfd, POLLIN, 0 }, { s.control, POLLIN, 0 }, { s.out.fd, POLLIN, 0 },
						   { s.err.fd, POLLIN, 0 }, { attach_fd, POLLIN, 0 } };
		for (int i = 0; i < ATTACHERS; i++)
			p[5 + i] = (struct pollfd){ attachers[i].fd, POLLIN, 0 };
		long wait = restart_at && !s.running ? restart_at - now_ms() : -1;
		if (restart_at && !s.running && wait <= 0) {
			restart_at = 0;
			relaunch(1);
			continue;
		}
		if (poll(p, 5 + ATTACHERS, (int)wait) < 0)
			continue;
		/* Attachers first: one that connected before start gets the first output. */
		if (p[4].revents)
			accept_attachers();
		for (int i = 0; i < ATTACHERS; i++)
			if (p[5 + i].revents && attachers[i].fd == p[5 + i].fd)
				attacher_input(&attachers[i]);
		if (p[2].revents)
			pump(&s.out);
		if (p[3].revents)
			pump(&s.err);
		/* Commands first: a 'x' written before the signal that ended the command must count. */
		if (p[1].revents)
			control();
		if (p[0].revents)
			reap(sigfd);
	}
}
