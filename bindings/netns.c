/* Sockets inside network namespaces for Node, which itself never changes namespace: a short-lived
 * thread of our own (all signals blocked) unshares a new network namespace or joins one, opens the
 * namespace and a socket in it (a socket keeps the namespace it was made in), and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

struct netns_job {
	int32_t nsfd; /* namespace to join, or -1 for a new one */
	int32_t family, type, protocol;
	int32_t out_ns, out_sock, err;
};

static void *netns_work(void *arg)
{
	struct netns_job *j = arg;
	if (j->nsfd < 0) {
		if (unshare(CLONE_NEWNET) < 0) {
			j->err = errno;
			return 0;
		}
		j->out_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (j->out_ns < 0) {
			j->err = errno;
			return 0;
		}
	} else if (setns(j->nsfd, CLONE_NEWNET) < 0) {
		j->err = errno;
		return 0;
	}
	j->out_sock = socket(j->family, j->type | SOCK_CLOEXEC, j->protocol);
	if (j->out_sock < 0) {
		j->err = errno;
		if (j->out_ns >= 0)
			close(j->out_ns);
		j->out_ns = -1;
	}
	return 0;
}

/* nsfd < 0: makes a network namespace (its fd in *out_ns) and a socket in it (*out_sock);
 * nsfd >= 0: a socket in that namespace. Returns 0 or -errno. */
int32_t corral_netns_socket(int32_t nsfd, int32_t family, int32_t type, int32_t protocol, int32_t *out_ns, int32_t *out_sock)
{
	struct netns_job j = { nsfd, family, type, protocol, -1, -1, 0 };
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int r = pthread_create(&t, 0, netns_work, &j);
	pthread_sigmask(SIG_SETMASK, &old, 0);
	if (r != 0)
		return -r;
	pthread_join(t, 0);
	*out_ns = j.out_ns;
	*out_sock = j.out_sock;
	return j.err ? -j.err : 0;
}
