/* sum, mean, sum_axis and mean_axis.
 *
 * Shapes: x (d0, ..., dk). A full reduction gives y (), one element. An axis
 * reduction views x as (outer, L, inner): L is the extent of the axis, outer
 * the product of the extents before it and inner the product of those after
 * it. It gives y (outer, inner), shaped as x without the axis, or with extent
 * 1 there under keepdim.
 *
 * Forward:  y = s * sum over the reduced elements of x, with s = 1 for sums
 *           and s = 1 / (number of reduced elements) for means.
 * Backward: dx += s * dy, with dy repeated along the reduced elements.
 * The forward saves only the scale s and the (outer, L, inner) view.
 *
 * Numerics and determinism: sums accumulate in double. A full reduction cuts
 * x into at most SUM_SLICES slices whose bounds depend only on the size, sums
 * the slices in parallel and then adds the slice sums in order, so the result
 * is the same for any thread count. An axis reduction hands each block of
 * outputs to one thread, which sums every output in order along the axis.
 */
#include "reduce.h"

#include <stddef.h>

#include "../op.h"

/* Maximum number of slices of a full reduction. */
#define SUM_SLICES 256
/* Width of the block of outputs one thread sums along an axis. */
#define AXIS_BLOCK 64
/* Element count above which kernels start OpenMP threads. */
#define PARALLEL_MIN 32768

/* ---- sum and mean over all elements -------------------------------------- */

/* Returns the first index of slice s of n elements cut into `slices` parts. */
static size_t slice_begin(size_t n, size_t slices, size_t s) {
    size_t base = n / slices;
    size_t extra = n % slices;
    return s * base + (s < extra ? s : extra);
}

static void sum_all_forward(tg_scalar *y, const tg_scalar *x, size_t n, double divisor) {
    double partials[SUM_SLICES];
    size_t slices = n < SUM_SLICES ? n : SUM_SLICES;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long s = 0; s < (long)slices; s++) {
        size_t end = slice_begin(n, slices, (size_t)s + 1);
        double acc = 0.0;
        for (size_t i = slice_begin(n, slices, (size_t)s); i < end; i++) {
            acc += (double)x[i];
        }
        partials[s] = acc;
    }
    double total = 0.0;
    for (size_t s = 0; s < slices; s++) {
        total += partials[s];
    }
    y[0] = (tg_scalar)(total / divisor);
}

/* Adds scale * dy into every element of dx. */
static void sum_all_backward(tg_scalar *dx, const tg_scalar *dy, size_t n, tg_scalar scale) {
    tg_scalar g = scale * dy[0];
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long i = 0; i < (long)n; i++) {
        dx[i] += g;
    }
}

static void sum_all_node_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        sum_all_backward(dx, node->output->grad, node->inputs[0]->size, (tg_scalar)node->scalar);
    }
}

static const tg_op sum_op = {"sum", sum_all_node_backward};
static const tg_op mean_op = {"mean", sum_all_node_backward};

static tg_tensor *sum_all(tg_tape *tape, const tg_op *op, const tg_tensor *x, bool average) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    tg_tensor *y = tg_tape_tensor(tape, 0, x->shape);
    if (y == NULL) {
        return NULL;
    }
    double divisor = average ? (double)x->size : 1.0;
    sum_all_forward(y->data, x->data, x->size, divisor);
    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        node->scalar = 1.0 / divisor;
    }
    return y;
}

tg_tensor *tg_sum(tg_tape *tape, const tg_tensor *x) {
    return sum_all(tape, &sum_op, x, false);
}

tg_tensor *tg_mean(tg_tape *tape, const tg_tensor *x) {
    return sum_all(tape, &mean_op, x, true);
}

/* ---- sum and mean along one axis ----------------------------------------- */

/* x (outer, L, inner) gives y (outer, inner) = sum over L / divisor. Each task
 * sums a block of up to AXIS_BLOCK neighbouring outputs, reading x row by row
 * so that the inner elements are read contiguously. */
static void sum_axis_forward(tg_scalar *y, const tg_scalar *x, size_t outer, size_t L,
                             size_t inner, double divisor) {
    size_t blocks = (inner + AXIS_BLOCK - 1) / AXIS_BLOCK;
    size_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (outer * L * inner > PARALLEL_MIN)
    for (long task = 0; task < (long)tasks; task++) {
        size_t o = (size_t)task / blocks;
        size_t first = ((size_t)task % blocks) * AXIS_BLOCK;
        size_t width = inner - first < AXIS_BLOCK ? inner - first : AXIS_BLOCK;
        double acc[AXIS_BLOCK];
        for (size_t i = 0; i < width; i++) {
            acc[i] = 0.0;
        }
        const tg_scalar *x_o = x + o * L * inner + first;
        for (size_t k = 0; k < L; k++) {
            const tg_scalar *x_ok = x_o + k * inner;
            for (size_t i = 0; i < width; i++) {
                acc[i] += (double)x_ok[i];
            }
        }
        tg_scalar *y_o = y + o * inner + first;
        for (size_t i = 0; i < width; i++) {
            y_o[i] = (tg_scalar)(acc[i] / divisor);
        }
    }
}

/* Adds scale * dy (outer, inner) into dx (outer, L, inner) along L. */
static void sum_axis_backward(tg_scalar *dx, const tg_scalar *dy, size_t outer, size_t L,
                              size_t inner, tg_scalar scale) {
    size_t rows = outer * L;
#pragma omp parallel for schedule(static) if (rows * inner > PARALLEL_MIN)
    for (long r = 0; r < (long)rows; r++) {
        tg_scalar *dx_r = dx + (size_t)r * inner;
        const tg_scalar *dy_o = dy + ((size_t)r / L) * inner;
        for (size_t i = 0; i < inner; i++) {
            dx_r[i] += scale * dy_o[i];
        }
    }
}

static void sum_axis_node_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        sum_axis_backward(dx, node->output->grad, (size_t)node->ints[0], (size_t)node->ints[1],
                          (size_t)node->ints[2], (tg_scalar)node->scalar);
    }
}

static const tg_op sum_axis_op = {"sum_axis", sum_axis_node_backward};
static const tg_op mean_axis_op = {"mean_axis", sum_axis_node_backward};

static tg_tensor *sum_axis(tg_tape *tape, const tg_op *op, const tg_tensor *x, int axis,
                           bool keepdim, bool average) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    if (axis < -x->ndim || axis >= x->ndim) {
        char xs[128];
        tg_shape_format(xs, sizeof xs, x->ndim, x->shape);
        if (x->ndim == 0) {
            return tg_op_fail(tape, TG_ERR_SHAPE,
                              "%s: axis %d is out of range for x of shape %s, which has no axes; "
                              "use tg_sum or tg_mean for a 0-dimensional tensor",
                              op->name, axis, xs);
        }
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "%s: axis %d is out of range for x of shape %s; expected an axis from "
                          "%d to %d",
                          op->name, axis, xs, -x->ndim, x->ndim - 1);
    }
    int a = axis < 0 ? axis + x->ndim : axis;

    /* Output shape and the (outer, L, inner) view of x. */
    int shape[TG_MAX_DIMS];
    int ndim = 0;
    size_t outer = 1;
    size_t inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < a) {
            outer *= (size_t)x->shape[d];
        } else if (d > a) {
            inner *= (size_t)x->shape[d];
        }
        if (d != a) {
            shape[ndim++] = x->shape[d];
        } else if (keepdim) {
            shape[ndim++] = 1;
        }
    }
    size_t L = (size_t)x->shape[a];

    tg_tensor *y = tg_tape_tensor(tape, ndim, shape);
    if (y == NULL) {
        return NULL;
    }
    double divisor = average ? (double)L : 1.0;
    sum_axis_forward(y->data, x->data, outer, L, inner, divisor);

    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        node->ints[0] = (int64_t)outer;
        node->ints[1] = (int64_t)L;
        node->ints[2] = (int64_t)inner;
        node->scalar = 1.0 / divisor;
    }
    return y;
}

tg_tensor *tg_sum_axis(tg_tape *tape, const tg_tensor *x, int axis, bool keepdim) {
    return sum_axis(tape, &sum_axis_op, x, axis, keepdim, false);
}

tg_tensor *tg_mean_axis(tg_tape *tape, const tg_tensor *x, int axis, bool keepdim) {
    return sum_axis(tape, &mean_axis_op, x, axis, keepdim, true);
}
