/* libgomp's spin-waiting, limited for machines whose cores other processes
 * share.
 *
 * An OpenMP thread that waits at a barrier or for work first spins:
 * libgomp's default is 300000 spins when OMP_WAIT_POLICY is unset (GCC's
 * libgomp manual, GOMP_SPINCOUNT). A spinning thread keeps its core busy, so
 * on a loaded 2-core machine a 2-thread charlm step measured 682 ms instead
 * of 120 ms with GOMP_SPINCOUNT=1000, the value the PyTorch reference
 * trainers set for themselves.
 */
#ifndef TG_MODELS_COMMON_SPIN_WAIT_H
#define TG_MODELS_COMMON_SPIN_WAIT_H

#include <stddef.h>

/* The GOMP_SPINCOUNT that spin_wait_limit sets. */
#define SPIN_WAIT_COUNT "1000"

/* Re-executes the program with GOMP_SPINCOUNT=SPIN_WAIT_COUNT when the
 * environment sets neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY, and returns
 * otherwise or if the exec fails. libgomp reads both variables once, when it
 * is loaded, so only a new image of the program gets the value. The process
 * keeps its id, arguments and open files. Call it first in main, with main's
 * argv, before anything is printed or opened. */
void spin_wait_limit(char **argv);

/* Writes the spin-waiting settings the process runs with, for a settings
 * block: "GOMP_SPINCOUNT 1000, OMP_WAIT_POLICY unset", at most size bytes
 * with the terminating zero. Returns buffer. */
const char *spin_wait_describe(char *buffer, size_t size);

#endif
