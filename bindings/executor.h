#ifndef CORRAL_EXECUTOR_H
#define CORRAL_EXECUTOR_H
#include <stdint.h>
/* Runs a setup plan in the freshly cloned child; returns only on failure (the exit status). */
int corral_execute(void *plan);
/* Goes on with a plan from op first, in the executor image that OP_REEXEC exec'd. */
int corral_resume(void *plan, uint32_t first);
/* OP_CONSOLE (console.c): a pty of the process root's devpts, master sent on sock, slave on 0-2. */
long console_setup(long sock, long rows, long cols);
/* OP_INIT (init.c): returns 0 (or -errno) in the forked child; the caller stays as its init. */
long init_fork(void);
#endif
