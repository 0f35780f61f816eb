/* Counts heap allocations of the whole process, libraries included.
 *
 * The benchmark executable defines malloc, calloc, realloc, free,
 * aligned_alloc, posix_memalign and memalign. The dynamic linker resolves
 * every library's calls to these definitions, which count the call and
 * forward it to glibc's allocator through its exported __libc_* entry points,
 * so all memory still comes from, and returns to, the one glibc heap. The
 * glibc manual ("Replacing malloc") lists the functions a replacement must
 * provide. Sanitizer builds replace malloc themselves, so there
 * BENCH_COUNT_ALLOCS is left undefined and nothing is counted.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench_common.h"

#ifdef BENCH_COUNT_ALLOCS

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *p);
void *memalign(size_t alignment, size_t size);

static atomic_long heap_calls;

static void count_call(void) {
    atomic_fetch_add_explicit(&heap_calls, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
    count_call();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_call();
    return __libc_calloc(count, size);
}

void *realloc(void *p, size_t size) {
    count_call();
    return __libc_realloc(p, size);
}

void free(void *p) {
    __libc_free(p);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_call();
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    count_call();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count_call();
    /* POSIX requires a power of two that is a multiple of sizeof(void *). */
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) {
        return EINVAL;
    }
    void *p = __libc_memalign(alignment, size);
    if (p == NULL && size != 0) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

long bench_heap_calls(void) {
    return atomic_load_explicit(&heap_calls, memory_order_relaxed);
}

#else

long bench_heap_calls(void) {
    return -1;
}

#endif
