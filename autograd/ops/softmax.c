/* softmax and log_softmax over the last axis.
 *
 * Shapes: x (..., C) is read as N = size / C independent rows of C elements;
 * y has the shape of x.
 *
 * softmax:
 *   Forward:  m = max_j x_j,  y_j = exp(x_j - m) / sum_k exp(x_k - m)
 *   Backward: dx_j += y_j (dy_j - sum_k dy_k y_k)
 * log_softmax:
 *   Forward:  y_j = (x_j - m) - log(sum_k exp(x_k - m))
 *   Backward: dx_j += dy_j - exp(y_j) sum_k dy_k
 * The forward saves nothing: both backwards read the output y, which lives
 * until the tape's reset.
 *
 * Numerics: subtracting the row maximum m leaves every exponent at most 0, so
 * exp never overflows and the largest term is exactly 1, which keeps the sum
 * at least 1 and its log finite. Row sums accumulate in double.
 *
 * Parallelism: one OpenMP loop over rows; each row is computed by one thread
 * in a fixed order, so results do not depend on the thread count.
 */
#include "softmax.h"

#include <tgmath.h>

#include "../op.h"

/* Element count above which kernels start OpenMP threads. */
#define PARALLEL_MIN 32768

static tg_scalar row_max(const tg_scalar *x, size_t C) {
    tg_scalar m = x[0];
    for (size_t j = 1; j < C; j++) {
        m = x[j] > m ? x[j] : m;
    }
    return m;
}

/* ---- softmax ------------------------------------------------------------- */

static void softmax_forward(tg_scalar *y, const tg_scalar *x, size_t N, size_t C) {
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (long r = 0; r < (long)N; r++) {
        const tg_scalar *x_r = x + (size_t)r * C;
        tg_scalar *y_r = y + (size_t)r * C;
        tg_scalar m = row_max(x_r, C);
        double sum = 0.0;
        for (size_t j = 0; j < C; j++) {
            tg_scalar e = exp(x_r[j] - m);
            y_r[j] = e;
            sum += (double)e;
        }
        tg_scalar inv_sum = (tg_scalar)(1.0 / sum);
        for (size_t j = 0; j < C; j++) {
            y_r[j] *= inv_sum;
        }
    }
}

/* Adds the gradient into dx. */
static void softmax_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *y, size_t N,
                             size_t C) {
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (long r = 0; r < (long)N; r++) {
        const tg_scalar *y_r = y + (size_t)r * C;
        const tg_scalar *dy_r = dy + (size_t)r * C;
        tg_scalar *dx_r = dx + (size_t)r * C;
        double dot = 0.0;
        for (size_t j = 0; j < C; j++) {
            dot += (double)(dy_r[j] * y_r[j]);
        }
        tg_scalar dot_s = (tg_scalar)dot;
        for (size_t j = 0; j < C; j++) {
            dx_r[j] += y_r[j] * (dy_r[j] - dot_s);
        }
    }
}

/* ---- log_softmax --------------------------------------------------------- */

static void log_softmax_forward(tg_scalar *y, const tg_scalar *x, size_t N, size_t C) {
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (long r = 0; r < (long)N; r++) {
        const tg_scalar *x_r = x + (size_t)r * C;
        tg_scalar *y_r = y + (size_t)r * C;
        tg_scalar m = row_max(x_r, C);
        double sum = 0.0;
        for (size_t j = 0; j < C; j++) {
            sum += (double)exp(x_r[j] - m);
        }
        tg_scalar log_sum = (tg_scalar)log(sum);
        for (size_t j = 0; j < C; j++) {
            y_r[j] = (x_r[j] - m) - log_sum;
        }
    }
}

/* Adds the gradient into dx. */
static void log_softmax_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *y, size_t N,
                                 size_t C) {
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (long r = 0; r < (long)N; r++) {
        const tg_scalar *y_r = y + (size_t)r * C;
        const tg_scalar *dy_r = dy + (size_t)r * C;
        tg_scalar *dx_r = dx + (size_t)r * C;
        double dy_sum = 0.0;
        for (size_t j = 0; j < C; j++) {
            dy_sum += (double)dy_r[j];
        }
        tg_scalar dy_sum_s = (tg_scalar)dy_sum;
        for (size_t j = 0; j < C; j++) {
            dx_r[j] += dy_r[j] - exp(y_r[j]) * dy_sum_s;
        }
    }
}

/* ---- node glue and constructors ------------------------------------------ */

static void softmax_node_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        softmax_backward(dx, node->output->grad, node->output->data, (size_t)node->ints[0],
                         (size_t)node->ints[1]);
    }
}

static void log_softmax_node_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        log_softmax_backward(dx, node->output->grad, node->output->data, (size_t)node->ints[0],
                             (size_t)node->ints[1]);
    }
}

static const tg_op softmax_op = {"softmax", softmax_node_backward};
static const tg_op log_softmax_op = {"log_softmax", log_softmax_node_backward};

typedef void (*row_forward_fn)(tg_scalar *y, const tg_scalar *x, size_t N, size_t C);

static tg_tensor *row_op(tg_tape *tape, const tg_op *op, row_forward_fn forward,
                         const tg_tensor *x) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    if (x->ndim == 0) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "%s: x has shape () but needs at least one dimension, because the %s "
                          "runs over the last axis",
                          op->name, op->name);
    }
    size_t C = (size_t)x->shape[x->ndim - 1];
    size_t N = x->size / C;
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    forward(y->data, x->data, N, C);
    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        node->ints[0] = (int64_t)N;
        node->ints[1] = (int64_t)C;
    }
    return y;
}

tg_tensor *tg_softmax(tg_tape *tape, const tg_tensor *x) {
    return row_op(tape, &softmax_op, softmax_forward, x);
}

tg_tensor *tg_log_softmax(tg_tape *tape, const tg_tensor *x) {
    return row_op(tape, &log_softmax_op, log_softmax_forward, x);
}
