/* The host's side of OP_CONSOLE, called from Node through koffi: receives the pty master a
 * container process sent over its console socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The fd received on sock (close-on-exec), checked to be a pty master (TIOCGPTN), or -errno:
 * -EAGAIN when nothing was sent, -ENOTTY when what came is not a pty master. */
int32_t corral_receive_terminal(int32_t sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof control.buf };
	ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (n != 1 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	int fd = *(int *)CMSG_DATA(c);
	unsigned int ptn;
	if (ioctl(fd, TIOCGPTN, &ptn) != 0) {
		close(fd);
		return -ENOTTY;
	}
	return fd;
}
