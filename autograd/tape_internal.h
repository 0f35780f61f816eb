/* Tape functions for the library's own ops, not part of the public API. */
#ifndef TG_AUTOGRAD_TAPE_INTERNAL_H
#define TG_AUTOGRAD_TAPE_INTERNAL_H

#include <stddef.h>

#include "tape.h"

/* Returns `bytes` of uninitialised step memory, aligned to 64 bytes, for
 * temporaries inside one op's forward or backward. Every call may return the
 * same memory, so its contents last only until the next call, and an op that
 * needs several buffers carves them from one request. The memory comes from
 * the tape's arena, sized to the largest request seen so far, so in a
 * repeated step all requests share one allocation. Returns NULL after
 * recording an out-of-memory error on the tape. */
void *tg__tape_scratch(tg_tape *tape, size_t bytes);

#endif
