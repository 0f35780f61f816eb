/* Embedding lookup: each integer index selects one row of a table.
 *
 * Letters: V vocabulary (table rows), C channels (row length), B batch,
 * T sequence length.
 */
#ifndef TG_AUTOGRAD_OPS_EMBEDDING_H
#define TG_AUTOGRAD_OPS_EMBEDDING_H

#include <stdint.h>

#include "../tape.h"

/* Gathers rows of a table: table (V, C) and indices of shape index_shape,
 * for example (B, T), give y (B, T, C) with y[b, t, :] = table[indices[b, t], :].
 * indices contains the product of index_shape values in row-major order, and
 * ndim may be 0 to TG_MAX_DIMS - 1 (0 selects a single row and gives y (C)).
 * The indices are copied into the tape's step memory when a node is recorded,
 * so the caller may reuse its array right after the call.
 * Returns a tape tensor that lives until tg_tape_reset, or NULL after recording
 * an error on the tape: TG_ERR_SHAPE if table is not 2-D or index_shape is
 * invalid; TG_ERR_INVALID, naming the position and the value, if an index lies
 * outside [0, V), or if indices is NULL. */
tg_tensor *tg_embedding(tg_tape *tape, const tg_tensor *table, const int32_t *indices, int ndim,
                        const int *index_shape);

#endif
