/* The executor as its own small static program, with no libc: what a container's processes run
 * between OP_REEXEC and the command's exec, so none of them is the host's node binary. It takes
 * the plan as a memfd: argv[1] its fd, argv[2] the op to go on from. Anything else exits 127. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "executor.h"
#include "plan.h"
#include "rawsys.h"

#define EXIT_USAGE 127

/* The compiler may emit calls to these for struct copies and initializers. */
void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static int parse(const char *s, uint64_t *out)
{
	uint64_t n = 0;
	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > 0xffffffffu)
			return 0;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = n;
	return 1;
}

static int run(long argc, char **argv)
{
	uint64_t fd, first;
	if (argc != 3 || !parse(argv[1], &fd) || !parse(argv[2], &first))
		return EXIT_USAGE;
	struct plan_header h;
	if (raw4(SYS_pread64, fd, &h, sizeof h, 0) != (long)sizeof h || h.magic != PLAN_MAGIC)
		return EXIT_USAGE;
	long plan = raw6(SYS_mmap, 0, h.size, PROT_READ | PROT_WRITE, MAP_PRIVATE, (long)fd, 0);
	raw1(SYS_close, fd);
	if (plan < 0 && plan > -4096)
		return EXIT_USAGE;
	if (plan_check((void *)plan, h.size) != -1 || first >= h.op_count)
		return EXIT_USAGE;
	return corral_resume((void *)plan, (uint32_t)first);
}

/* The entry point: the stack holds argc, then argv. */
__attribute__((noreturn, used)) static void start(long *sp)
{
	raw1(SYS_exit_group, run(sp[0], (char **)(sp + 1)));
	__builtin_unreachable();
}

__asm__(".globl _start\n"
	"_start:\n\t"
	"xor %ebp, %ebp\n\t"
	"mov %rsp, %rdi\n\t"
	"and $-16, %rsp\n\t"
	"call start\n\t"
	"hlt\n");
