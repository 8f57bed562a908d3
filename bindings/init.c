/* OP_INIT, in the child: the executor stays behind as the container's init (what tini does for
 * `docker run --init`) while a forked child goes on with the plan and execs the command. The init
 * forwards every signal it gets to that child, reaps every process that ends below it (orphans come
 * to it as PID 1, or as a subreaper without a PID namespace), and exits with the child's status
 * (128 + the signal when a signal ended it). Raw system calls only, like the rest of the executor. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "executor.h"
#include "rawsys.h"

struct raw_siginfo {
	int signo;
	int pad[31];
};

static __attribute__((noreturn)) void serve(long child)
{
	uint64_t all = ~0ull;
	struct raw_siginfo info;
	raw3(SYS_close_range, 0, ~0u, 0);
	for (;;) {
		long sig = raw4(SYS_rt_sigtimedwait, &all, &info, 0, 8);
		if (sig == SIGCHLD) {
			int status;
			long pid;
			while ((pid = raw4(SYS_wait4, -1, &status, WNOHANG, 0)) > 0) {
				if (pid != child)
					continue;
				int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
				raw1(SYS_exit_group, code);
			}
		} else if (sig > 0) {
			raw2(SYS_kill, child, sig);
		}
	}
}

long init_fork(void)
{
	uint64_t all = ~0ull, old;
	/* Blocked before the fork, so no signal is lost before the init waits for them. */
	raw4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	long r = raw2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
	struct clone_args args = { .flags = 0, .exit_signal = SIGCHLD };
	long pid = r < 0 ? r : raw6(SYS_clone3, (long)&args, sizeof args, 0, 0, 0, 0);
	if (pid > 0)
		serve(pid);
	raw4(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
	if (pid < 0)
		return pid;
	r = raw0(SYS_setsid);
	return r < 0 ? r : raw2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
}
