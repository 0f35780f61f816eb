/* Inverted dropout.
 *
 * Forward:  m_i = 1 / (1 - p) with probability 1 - p, else 0;  y_i = x_i m_i,
 *           except that a dropped element is exactly 0 even where x_i is
 *           infinite or NaN.
 * Backward: dx_i += dy_i m_i.
 * When a node is recorded, the forward saves the mask m (x->size scalars) in
 * step memory, and otherwise it saves nothing.
 *
 * The mask draws one 64-bit value from rng per element in row-major order and
 * keeps the element when u_i >= p, where u_i is the draw read as a uniform in
 * [0, 1) the way tg_rng_uniform reads it. Drawing is sequential, because the
 * generator is one stream, so the forward is single-threaded and the same
 * for any thread count. The backward multiplies in parallel.
 */
#include "dropout.h"

#include <math.h>
#include <stdint.h>

#include "../op.h"

/* Element count below which the backward runs on one thread. */
#define PARALLEL_MIN_ELEMENTS 32768

/* Computes y from x with a fresh mask from rng, and stores the mask in `mask`
 * unless it is NULL. keep_from is ceil(p * 2^53): a draw keeps its element
 * when its top 53 bits are at least keep_from, which is exactly
 * tg_rng_uniform(rng) >= p without the conversion to double. */
static void dropout_forward(tg_scalar *y, tg_scalar *mask, const tg_scalar *x, size_t n,
                            uint64_t keep_from, tg_scalar scale, tg_rng *rng) {
    if (mask == NULL) {
        for (size_t i = 0; i < n; i++) {
            bool keep = tg_rng_next(rng) >> 11 >= keep_from;
            y[i] = keep ? x[i] * scale : 0;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool keep = tg_rng_next(rng) >> 11 >= keep_from;
        y[i] = keep ? x[i] * scale : 0;
        mask[i] = keep ? scale : 0;
    }
}

static void dropout_backward_kernel(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *mask,
                                    size_t n) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN_ELEMENTS)
    for (long i = 0; i < (long)n; i++) {
        dx[i] += dy[i] * mask[i];
    }
}

static void dropout_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        dropout_backward_kernel(dx, node->output->grad, node->saved, node->output->size);
    }
}

static const tg_op dropout_op = {"dropout", dropout_backward};

tg_tensor *tg_dropout(tg_tape *tape, const tg_tensor *x, double p, tg_rng *rng, bool training) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    if (!(p >= 0.0 && p <= 1.0)) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "dropout: probability %g is outside [0, 1]; pass the fraction of "
                          "elements to zero",
                          p);
    }
    if (!training || p == 0.0) {
        /* Identity: no copy and no node. The API returns a mutable pointer,
         * but ops never write to their inputs. */
        return (tg_tensor *)x;
    }
    if (rng == NULL) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "dropout: rng is NULL in training with p = %g; pass a seeded "
                          "generator for the mask",
                          p);
    }

    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    /* Allocate the mask only if tg_tape_record will record a node. */
    tg_scalar *mask = NULL;
    if (tg_tape_grad_enabled(tape) && x->requires_grad) {
        mask = tg_tape_alloc(tape, x->size * sizeof *mask);
        if (mask == NULL) {
            return NULL;
        }
    }
    tg_scalar scale = p < 1.0 ? (tg_scalar)(1.0 / (1.0 - p)) : 0;
    uint64_t keep_from = (uint64_t)ceil(p * 0x1.0p53);
    dropout_forward(y->data, mask, x->data, x->size, keep_from, scale, rng);

    tg_node *node = tg_tape_record(tape, &dropout_op, y, 1, &x);
    if (node != NULL) {
        node->saved = mask;
    }
    return y;
}
