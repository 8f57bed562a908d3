/* OP_CONSOLE, in the child: a pseudo-terminal from the devpts instance of the process root, its
 * master handed to the host over a socket (SCM_RIGHTS, as runc's --console-socket), its slave the
 * controlling terminal and fds 0-2. Raw system calls only, like the rest of the executor. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "executor.h"
#include "rawsys.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* /dev/pts/ptmx resolved inside the process root, never following a link out of it, and checked to
 * be the ptmx device (5:2) of a devpts: the container's own instance, not the host's /dev/ptmx. */
static long open_ptmx(void)
{
	long root = raw4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	if (root < 0)
		return root;
	struct open_how how = { .flags = O_RDWR | O_NOCTTY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	long fd = raw4(SYS_openat2, root, "/dev/pts/ptmx", &how, sizeof how);
	raw1(SYS_close, root);
	if (fd < 0)
		return fd;
	struct stat sb;
	long r = raw4(SYS_newfstatat, fd, "", &sb, AT_EMPTY_PATH);
	uint64_t dev = sb.st_rdev;
	uint64_t major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffull);
	uint64_t minor = (dev & 0xff) | ((dev >> 12) & ~0xffull);
	if (r == 0 && (!S_ISCHR(sb.st_mode) || major != 5 || minor != 2))
		r = -ENXIO;
	if (r < 0) {
		raw1(SYS_close, fd);
		return r;
	}
	return fd;
}

static long send_fd(long sock, long fd)
{
	char byte = 'M';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = { 0 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof control.buf };
	control.h.cmsg_level = SOL_SOCKET;
	control.h.cmsg_type = SCM_RIGHTS;
	control.h.cmsg_len = CMSG_LEN(sizeof(int));
	*(int *)CMSG_DATA(&control.h) = (int)fd;
	long r;
	do
		r = raw3(SYS_sendmsg, sock, &msg, MSG_NOSIGNAL);
	while (r == -EINTR);
	return r < 0 ? r : 0;
}

long console_setup(long sock, long rows, long cols)
{
	long master = open_ptmx();
	if (master < 0)
		return master;
	int unlock = 0;
	long r = raw3(SYS_ioctl, master, TIOCSPTLCK, &unlock);
	if (r == 0 && rows > 0 && cols > 0) {
		struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
		r = raw3(SYS_ioctl, master, TIOCSWINSZ, &ws);
	}
	long slave = r < 0 ? r : raw3(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave >= 0)
		r = send_fd(sock, master);
	raw1(SYS_close, master);
	raw1(SYS_close, sock);
	if (slave < 0)
		return slave;
	if (r == 0)
		r = raw3(SYS_ioctl, slave, TIOCSCTTY, 0);
	for (int fd = 0; fd < 3 && r >= 0; fd++)
		r = raw3(SYS_dup3, slave, fd, 0);
	if (slave > 2)
		raw1(SYS_close, slave);
	return r < 0 ? r : 0;
}
