/* One training process per run folder. Two processes that train into the
 * same --out folder would interleave their checkpoints and metrics, so a
 * program takes an exclusive lock on "<dir>/.lock" before it writes
 * anything there and holds it until it exits. The lock is flock(2) on an
 * open file, so the kernel releases it when the process ends, even by a
 * kill. A lock file left behind therefore blocks no later run.
 */
#ifndef TG_MODELS_COMMON_RUN_LOCK_H
#define TG_MODELS_COMMON_RUN_LOCK_H

#include <stdio.h>

/* Takes the lock of run folder `dir` and returns its file descriptor, which
 * the caller keeps open while it trains. If another process holds the lock,
 * or the lock file cannot be opened, writes one line to `err` that starts
 * with `program` and names the folder (and the other process's id when the
 * lock file gives it), and returns -1. */
int run_lock_acquire(const char *program, const char *dir, FILE *err);

/* Releases a lock taken by run_lock_acquire. Does nothing for fd -1. */
void run_lock_release(int fd);

#endif
