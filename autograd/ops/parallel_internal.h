/* When an op's element loop runs in an OpenMP region, shared by the op
 * files. A loop on one thread runs directly, outside any region, and not
 * through a region with a false if clause. libgomp allocates the team of
 * every one-thread region from the heap, and a training step must make no
 * heap allocation.
 */
#ifndef TG_AUTOGRAD_OPS_PARALLEL_INTERNAL_H
#define TG_AUTOGRAD_OPS_PARALLEL_INTERNAL_H

#include <omp.h>
#include <stdbool.h>
#include <stddef.h>

/* Elements below which a loop stays on the calling thread, because starting
 * a region costs more than the work saves. */
#define TG__PARALLEL_MIN_ELEMENTS 32768

/* Returns whether a loop over `elements` runs in an OpenMP region. */
static inline bool tg__use_threads(size_t elements) {
    return elements > TG__PARALLEL_MIN_ELEMENTS && omp_get_max_threads() > 1;
}

#endif
