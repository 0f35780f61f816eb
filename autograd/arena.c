#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Smallest chunk the arena allocates, so that tiny first requests do not
 * produce a long list of tiny chunks. */
#define MIN_CHUNK_BYTES ((size_t)1 << 20)

struct tg_arena_chunk {
    tg_arena_chunk *next;
    size_t size;   /* usable bytes in data */
    size_t used;   /* bytes handed out from data */
    unsigned char *data;
};

static size_t align_up(size_t n) {
    return (n + TG_ARENA_ALIGN - 1) & ~(size_t)(TG_ARENA_ALIGN - 1);
}

static tg_arena_chunk *chunk_new(size_t size) {
    tg_arena_chunk *chunk = malloc(sizeof *chunk);
    if (chunk == NULL) {
        return NULL;
    }
    chunk->data = aligned_alloc(TG_ARENA_ALIGN, align_up(size));
    if (chunk->data == NULL) {
        free(chunk);
        return NULL;
    }
    chunk->size = align_up(size);
    chunk->used = 0;
    chunk->next = NULL;
    return chunk;
}

static void chunks_free(tg_arena_chunk *chunk) {
    while (chunk != NULL) {
        tg_arena_chunk *next = chunk->next;
        free(chunk->data);
        free(chunk);
        chunk = next;
    }
}

void tg_arena_init(tg_arena *arena) {
    memset(arena, 0, sizeof *arena);
}

void tg_arena_free(tg_arena *arena) {
    chunks_free(arena->chunks);
    arena->chunks = NULL;
    arena->used_bytes = 0;
    arena->capacity_bytes = 0;
}

void *tg_arena_alloc(tg_arena *arena, size_t bytes) {
    size_t need = align_up(bytes == 0 ? 1 : bytes);
    tg_arena_chunk *chunk = arena->chunks;
    if (chunk == NULL || chunk->size - chunk->used < need) {
        size_t size = need > MIN_CHUNK_BYTES ? need : MIN_CHUNK_BYTES;
        /* Grow geometrically so a first step with many tensors adds few chunks. */
        if (size < arena->capacity_bytes / 2) {
            size = arena->capacity_bytes / 2;
        }
        chunk = chunk_new(size);
        if (chunk == NULL) {
            return NULL;
        }
        chunk->next = arena->chunks;
        arena->chunks = chunk;
        arena->capacity_bytes += chunk->size;
        arena->heap_allocations++;
    }
    void *p = chunk->data + chunk->used;
    chunk->used += need;
    arena->used_bytes += need;
    if (arena->used_bytes > arena->peak_bytes) {
        arena->peak_bytes = arena->used_bytes;
    }
    return p;
}

void *tg_arena_calloc(tg_arena *arena, size_t bytes) {
    void *p = tg_arena_alloc(arena, bytes);
    if (p != NULL) {
        memset(p, 0, bytes);
    }
    return p;
}

void tg_arena_reset(tg_arena *arena) {
    /* Merge several chunks into one big enough for everything the last step
     * used, so the next step fits in a single chunk. If that allocation fails,
     * keep the old chunks: they still work, only less compactly. */
    if (arena->chunks != NULL && arena->chunks->next != NULL) {
        tg_arena_chunk *merged = chunk_new(arena->capacity_bytes);
        if (merged != NULL) {
            chunks_free(arena->chunks);
            arena->chunks = merged;
            arena->capacity_bytes = merged->size;
            arena->heap_allocations++;
        }
    }
    for (tg_arena_chunk *c = arena->chunks; c != NULL; c = c->next) {
        c->used = 0;
    }
    arena->used_bytes = 0;
}
