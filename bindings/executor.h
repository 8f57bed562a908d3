#ifndef CORRAL_EXECUTOR_H
#define CORRAL_EXECUTOR_H
/* Runs a setup plan in the freshly cloned child; returns only on failure (the exit status). */
int corral_execute(void *plan);
#endif
