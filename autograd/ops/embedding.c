/* Embedding lookup.
 *
 * Letters: V vocabulary (table rows), C channels, N flattened index positions.
 *
 * Forward:  y[n, :] = table[idx[n], :]   for table (V, C), idx (N), y (N, C).
 * Backward: dtable[v, :] += sum of dy[n, :] over every n with idx[n] = v.
 * The forward saves a copy of the N indices in step memory.
 *
 * The backward groups positions by row with a stable counting sort, then sums
 * each row's positions in increasing order of n, in double, and adds the sum
 * to the gradient once. Each table row is handled by one loop iteration, so
 * rows can be spread over threads without atomics and the result is bitwise
 * the same for any thread count. A repeated index accumulates all its rows.
 */
#include "embedding.h"

#include <omp.h>
#include <string.h>

#include "../op.h"
#include "parallel_internal.h"

/* Columns summed at once in the backward (a double accumulator on the stack). */
#define COLUMN_BLOCK 64

static void embedding_forward(tg_scalar *y, const tg_scalar *table, const int32_t *indices,
                              size_t N, size_t C) {
    if (!tg__use_threads(N * C)) {
        for (size_t n = 0; n < N; n++) {
            memcpy(y + n * C, table + (size_t)indices[n] * C, C * sizeof *y);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (long n = 0; n < (long)N; n++) {
        memcpy(y + (size_t)n * C, table + (size_t)indices[n] * C, C * sizeof *y);
    }
}

/* Adds to row v of dtable the sum, in double and in increasing n, of the rows
 * of dy that order[row_end[v - 1] .. row_end[v]) lists. */
static void add_row_sum(tg_scalar *dtable, const tg_scalar *dy, const size_t *order,
                        const size_t *row_end, size_t v, size_t C) {
    size_t first = v == 0 ? 0 : row_end[v - 1];
    size_t last = row_end[v];
    tg_scalar *dtable_v = dtable + v * C;
    for (size_t c0 = 0; c0 < C && first < last; c0 += COLUMN_BLOCK) {
        size_t width = C - c0 < COLUMN_BLOCK ? C - c0 : COLUMN_BLOCK;
        double sum[COLUMN_BLOCK] = {0};
        for (size_t k = first; k < last; k++) {
            const tg_scalar *dy_n = dy + order[k] * C + c0;
            for (size_t j = 0; j < width; j++) {
                sum[j] += (double)dy_n[j];
            }
        }
        for (size_t j = 0; j < width; j++) {
            dtable_v[c0 + j] += (tg_scalar)sum[j];
        }
    }
}

/* Adds dy (N, C) into the rows of dtable (V, C) that indices select. `order`
 * (N entries) and `row_end` (V entries) are scratch memory. */
static void embedding_backward_kernel(tg_scalar *dtable, const tg_scalar *dy,
                                      const int32_t *indices, size_t N, size_t V, size_t C,
                                      size_t *order, size_t *row_end) {
    /* Stable counting sort of the positions by index: afterwards the positions
     * of row v are order[row_begin .. row_end[v]), in increasing n, where
     * row_begin is row_end[v - 1] (0 for v = 0). */
    memset(row_end, 0, V * sizeof *row_end);
    for (size_t n = 0; n < N; n++) {
        row_end[indices[n]]++;
    }
    size_t begin = 0;
    for (size_t v = 0; v < V; v++) {
        size_t count = row_end[v];
        row_end[v] = begin;
        begin += count;
    }
    for (size_t n = 0; n < N; n++) {
        order[row_end[indices[n]]++] = n;
    }

    if (!tg__use_threads(N * C)) {
        for (size_t v = 0; v < V; v++) {
            add_row_sum(dtable, dy, order, row_end, v, C);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (long v = 0; v < (long)V; v++) {
        add_row_sum(dtable, dy, order, row_end, (size_t)v, C);
    }
}

static void embedding_backward(tg_node *node) {
    tg_scalar *dtable = tg_node_input_grad(node, 0);
    if (dtable == NULL) {
        return;
    }
    const tg_tensor *table = node->inputs[0];
    size_t V = (size_t)table->shape[0];
    size_t C = (size_t)table->shape[1];
    size_t N = node->output->size / C;
    size_t *order = tg_tape_alloc(node->tape, N * sizeof *order);
    size_t *row_end = tg_tape_alloc(node->tape, V * sizeof *row_end);
    if (order == NULL || row_end == NULL) {
        return;
    }
    embedding_backward_kernel(dtable, node->output->grad, node->saved, N, V, C, order, row_end);
}

static const tg_op embedding_op = {"embedding", embedding_backward};

/* Records an error naming the first index outside [0, V) and returns false, or
 * returns true if all N indices are valid. */
static bool indices_in_range(tg_tape *tape, const tg_tensor *table, const int32_t *indices,
                             size_t N, int ndim, const int *index_shape) {
    int V = table->shape[0];
    for (size_t n = 0; n < N; n++) {
        if (indices[n] >= 0 && indices[n] < V) {
            continue;
        }
        /* Convert the flat position to coordinates in index_shape. */
        int position[TG_MAX_DIMS];
        size_t rest = n;
        for (int d = ndim - 1; d >= 0; d--) {
            position[d] = (int)(rest % (size_t)index_shape[d]);
            rest /= (size_t)index_shape[d];
        }
        char ps[128];
        char ts[128];
        tg_op_fail(tape, TG_ERR_INVALID,
                   "embedding: index %d at position %s is outside [0, %d) for table %s; every "
                   "index must select a row of the table",
                   (int)indices[n], tg_shape_format(ps, sizeof ps, ndim, position), V,
                   tg_shape_format(ts, sizeof ts, table->ndim, table->shape));
        return false;
    }
    return true;
}

tg_tensor *tg_embedding(tg_tape *tape, const tg_tensor *table, const int32_t *indices, int ndim,
                        const int *index_shape) {
    if (!tg_op_inputs_ok(tape, 1, &table)) {
        return NULL;
    }
    char ts[128];
    if (table->ndim != 2) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "embedding: table has shape %s but must be 2-D (V, C)",
                          tg_shape_format(ts, sizeof ts, table->ndim, table->shape));
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS - 1 || (ndim > 0 && index_shape == NULL)) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "embedding: indices with %d dimensions are invalid; the output adds "
                          "one dimension, so give 0 to %d",
                          ndim, TG_MAX_DIMS - 1);
    }
    if (tg_shape_validate(ndim, index_shape, "embedding: index shape") != TG_OK) {
        return tg_op_fail(tape, TG_ERR_SHAPE, "%s", tg_last_error());
    }
    if (indices == NULL) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "embedding: indices is NULL; pass the index array of the shape given");
    }
    size_t N = tg_shape_size(ndim, index_shape);
    if (!indices_in_range(tape, table, indices, N, ndim, index_shape)) {
        return NULL;
    }

    int shape[TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        shape[d] = index_shape[d];
    }
    shape[ndim] = table->shape[1];
    tg_tensor *y = tg_tape_tensor(tape, ndim + 1, shape);
    if (y == NULL) {
        return NULL;
    }
    embedding_forward(y->data, table->data, indices, N, (size_t)table->shape[1]);

    tg_node *node = tg_tape_record(tape, &embedding_op, y, 1, &table);
    if (node != NULL) {
        int32_t *saved = tg_tape_alloc(tape, N * sizeof *saved);
        if (saved == NULL) {
            return NULL;
        }
        memcpy(saved, indices, N * sizeof *saved);
        node->saved = saved;
    }
    return y;
}
