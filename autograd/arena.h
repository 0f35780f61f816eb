/* A bump allocator for the memory of one training step.
 *
 * Everything a forward and backward pass creates (tensors, their data and
 * gradients, tape nodes, saved values) comes from the tape's arena and is
 * released at once by tg_arena_reset. The arena grows by adding chunks. At a
 * reset it merges them into one chunk as large as the step needed, so from the
 * second step of an unchanged model onward a step allocates nothing from the
 * heap.
 */
#ifndef TG_AUTOGRAD_ARENA_H
#define TG_AUTOGRAD_ARENA_H

#include <stddef.h>

/* Alignment of every arena allocation in bytes (one cache line). */
#define TG_ARENA_ALIGN 64

typedef struct tg_arena_chunk tg_arena_chunk;

typedef struct tg_arena {
    tg_arena_chunk *chunks;   /* newest first */
    size_t used_bytes;        /* bytes handed out since the last reset */
    size_t peak_bytes;        /* maximum of used_bytes over the arena's life */
    size_t capacity_bytes;    /* total size of all chunks */
    long heap_allocations;    /* number of chunk allocations so far */
} tg_arena;

/* Initialises an empty arena; no memory is allocated until the first request. */
void tg_arena_init(tg_arena *arena);

/* Frees every chunk. The arena may be initialised and used again. */
void tg_arena_free(tg_arena *arena);

/* Returns `bytes` of uninitialised memory aligned to TG_ARENA_ALIGN, or NULL
 * if the heap is exhausted. The memory lives until the next reset. */
void *tg_arena_alloc(tg_arena *arena, size_t bytes);

/* Returns zeroed memory, otherwise as tg_arena_alloc. */
void *tg_arena_calloc(tg_arena *arena, size_t bytes);

/* Releases everything allocated since the last reset, keeping the capacity. */
void tg_arena_reset(tg_arena *arena);

#endif
