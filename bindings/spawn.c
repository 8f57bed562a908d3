/* The parent side of a spawn, called from Node through koffi: clone3 with the plan's namespaces
 * (and CLONE_PIDFD, optionally CLONE_INTO_CGROUP), the child running executor.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "executor.h"
#include "plan.h"
#include "rawsys.h"

#define VFORK_STACK_SIZE (256 * 1024)

static void *vfork_stack;
/* Held by a CLONE_VM caller until its child has exec'd or exited: the main thread spawns
 * containers, a libuv thread the overlay probe (lib/fs/overlay-probe.ts), and they share the stack. */
static pthread_mutex_t vfork_stack_lock = PTHREAD_MUTEX_INITIALIZER;

/* Clones a child that runs the plan (size bytes). With CLONE_VM|CLONE_VFORK in flags the call
 * returns once the child has exec'd or failed. Returns the child's pid (its pidfd in *pidfd) or
 * -errno; -EBADMSG without a clone when the plan fails its check (the op's index in *bad_op). */
int64_t corral_spawn(void *plan, uint64_t size, uint64_t flags, int32_t cgroup_fd, int32_t *pidfd, int32_t *bad_op)
{
	long bad = plan_check(plan, size);
	if (bad != -1) {
		*bad_op = (int32_t)bad;
		return -EBADMSG;
	}
	struct clone_args args = { 0 };
	args.flags = flags | CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)pidfd;
	args.exit_signal = SIGCHLD;
	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	if (flags & CLONE_VM) {
		/* The caller is suspended until the child execs, so one stack serves every spawn, one
		 * caller at a time. */
		pthread_mutex_lock(&vfork_stack_lock);
		if (!vfork_stack) {
			void *m = mmap(0, VFORK_STACK_SIZE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
			if (m == MAP_FAILED) {
				pthread_mutex_unlock(&vfork_stack_lock);
				return -12; /* ENOMEM */
			}
			vfork_stack = m;
		}
		args.stack = (uint64_t)(uintptr_t)vfork_stack;
		args.stack_size = VFORK_STACK_SIZE;
	}
	sigset_t all, old;
	sigfillset(&all);
	raw4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	long pid = raw_clone3(&args, sizeof args, corral_execute, plan);
	raw4(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
	if (flags & CLONE_VM)
		pthread_mutex_unlock(&vfork_stack_lock);
	return pid;
}
