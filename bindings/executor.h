#ifndef CORRAL_EXECUTOR_H
#define CORRAL_EXECUTOR_H
#include <stdint.h>
/* Runs a setup plan in the freshly cloned child; returns only on failure (the exit status). */
int corral_execute(void *plan);
/* Goes on with a plan from op first, in the executor image that OP_REEXEC exec'd. */
int corral_resume(void *plan, uint32_t first);
#endif
