/* Fused linear map: y = x W^T + b over N = prod(leading dims) rows, with an
 * optional residual r added: y = r + x W^T + b.
 *
 * x (N, IN), W (OUT, IN), b (OUT), r (N, OUT), y (N, OUT). (IN and OUT,
 * because complex.h, which cblas.h pulls in, defines I.)
 * Forward:  y rows start as r + b (or r, or b, or 0), then gemm adds x W^T
 *           (beta = 1), so neither costs a separate pass over y. Large
 *           products run as two gemms on the halves of the rows, on two
 *           threads when there are two.
 * Backward: dx += dy W          (N, OUT) (OUT, IN)
 *           dW += dy^T x        (OUT, N) (N, IN)
 *           db += sum_n dy[n]   rows summed in order, so the result does not
 *                               depend on the thread count
 *           dr += dy
 *           dx and dr are written instead of added to when this op is the
 *           first to reach their gradients (tg_node_input_grad_first).
 *           dx and dW run on two threads at once when both are wanted.
 * The forward saves nothing; the backward reads x and W. Adding the residual
 * inside the op spares a residual network the tensor x W^T + b and its
 * gradient, which a separate add would keep until the tape's reset.
 */
#include "linear.h"

#include <omp.h>
#include <string.h>

#include "../gemm.h"
#include "../op.h"
#include "linear_internal.h"

/* Element count above which elementwise loops start OpenMP threads. */
#define PARALLEL_MIN 32768
/* The forward splits its rows in two halves of at least this many rows... */
#define FORWARD_MIN_ROWS 32
/* ...when the product has at least this many multiply-adds (2^20). */
#define FORWARD_SPLIT_MIN_MULTIPLIES 1048576.0

/* Writes rows [r0, r1) of y = residual + x W^T + b. */
static void linear_forward_rows(tg_scalar *y, const tg_scalar *x, const tg_scalar *w,
                                const tg_scalar *b, const tg_scalar *residual, int r0, int r1,
                                int IN, int OUT) {
    size_t row = (size_t)OUT;
    for (int n = r0; n < r1; n++) {
        tg_scalar *y_n = y + (size_t)n * row;
        if (residual != NULL && b != NULL) {
            const tg_scalar *r_n = residual + (size_t)n * row;
            for (size_t o = 0; o < row; o++) {
                y_n[o] = r_n[o] + b[o];
            }
        } else if (residual != NULL) {
            memcpy(y_n, residual + (size_t)n * row, row * sizeof *y_n);
        } else if (b != NULL) {
            memcpy(y_n, b, row * sizeof *y_n);
        }
    }
    bool accumulate = residual != NULL || b != NULL;
    tg_gemm(false, true, r1 - r0, OUT, IN, 1, x + (size_t)r0 * (size_t)IN, IN, w, IN,
            accumulate ? 1 : 0, y + (size_t)r0 * row, OUT);
}

void tg__linear_forward(tg_scalar *y, const tg_scalar *x, const tg_scalar *w, const tg_scalar *b,
                        const tg_scalar *residual, int N, int IN, int OUT) {
    /* Large products run as two gemms on the two halves of the rows, on two
     * threads when there are two. The halves depend on the shape alone, so
     * every thread count makes the same gemm calls and gets the same bits.
     * The threads take the halves in turn (schedule dynamic), so when another
     * process occupies one core, the thread that has a core runs both halves
     * instead of waiting for the other. OpenBLAS's own threading of one gemm
     * measured 20 % slower for the (768, 128) x (128, 384) products of the
     * charlm benchmark. */
    bool halves = N >= 2 * FORWARD_MIN_ROWS &&
                  (double)N * IN * OUT >= FORWARD_SPLIT_MIN_MULTIPLIES;
    if (!halves) {
        linear_forward_rows(y, x, w, b, residual, 0, N, IN, OUT);
        return;
    }
    int middle = N / 2;
    if (omp_get_max_threads() < 2) {
        linear_forward_rows(y, x, w, b, residual, 0, middle, IN, OUT);
        linear_forward_rows(y, x, w, b, residual, middle, N, IN, OUT);
        return;
    }
#pragma omp parallel for schedule(dynamic) num_threads(2)
    for (int half = 0; half < 2; half++) {
        linear_forward_rows(y, x, w, b, residual, half == 0 ? 0 : middle,
                            half == 0 ? middle : N, IN, OUT);
    }
}

/* Compiled for AVX-512, AVX2 and the baseline: each column's sum runs in
 * row order in every clone, so all give the same bits. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void column_sums_add(tg_scalar *restrict db, const tg_scalar *restrict dy, int N,
                            int OUT) {
    for (int n = 0; n < N; n++) {
        const tg_scalar *dy_n = dy + (size_t)n * (size_t)OUT;
        for (int o = 0; o < OUT; o++) {
            db[o] += dy_n[o];
        }
    }
}

void tg__column_sums_add(tg_scalar *db, const tg_scalar *dy, int N, int OUT) {
    column_sums_add(db, dy, N, OUT);
}

/* Runs task 0 (dx and db) or task 1 (dW) of the backward. dx is written,
 * not added to, when dx_first is true. */
static void linear_backward_task(int task, tg_scalar *dx, bool dx_first, tg_scalar *dw,
                                 tg_scalar *db, const tg_scalar *dy, const tg_scalar *x,
                                 const tg_scalar *w, int N, int IN, int OUT) {
    if (task == 0 && dx != NULL) {
        /* dx (N, IN) (+)= dy (N, OUT) W (OUT, IN) */
        tg_gemm(false, false, N, IN, OUT, 1, dy, OUT, w, IN, dx_first ? 0 : 1, dx, IN);
    }
    if (task == 0 && db != NULL) {
        tg__column_sums_add(db, dy, N, OUT);
    }
    if (task == 1 && dw != NULL) {
        /* dW (OUT, IN) += dy^T (OUT, N) x (N, IN) */
        tg_gemm(true, false, OUT, IN, N, 1, dy, OUT, x, IN, 1, dw, IN);
    }
}

static void linear_backward_kernel(tg_scalar *dx, bool dx_first, tg_scalar *dw, tg_scalar *db,
                                   const tg_scalar *dy, const tg_scalar *x, const tg_scalar *w,
                                   int N, int IN, int OUT) {
    if ((dx == NULL && dw == NULL) || omp_get_max_threads() < 2) {
        linear_backward_task(0, dx, dx_first, dw, db, dy, x, w, N, IN, OUT);
        linear_backward_task(1, dx, dx_first, dw, db, dy, x, w, N, IN, OUT);
        return;
    }
    /* Taken in turn, as the halves of the forward. A lone dx or dW product
     * runs in the region too: called outside one, OpenBLAS 0.3.21 may thread
     * it itself, and its threaded sgemm allocates 512 KiB from the heap on
     * every call (measured for ddpm's patch embedding). */
#pragma omp parallel for schedule(dynamic) num_threads(2)
    for (int task = 0; task < 2; task++) {
        linear_backward_task(task, dx, dx_first, dw, db, dy, x, w, N, IN, OUT);
    }
}

void tg__linear_backward(tg_scalar *dx, tg_scalar *dw, tg_scalar *db, const tg_scalar *dy,
                         const tg_scalar *x, const tg_scalar *w, int N, int IN, int OUT) {
    linear_backward_kernel(dx, false, dw, db, dy, x, w, N, IN, OUT);
}

/* Adds dy (n) into dr (n), or copies it there when first is true. */
static void residual_backward(tg_scalar *dr, bool first, const tg_scalar *dy, size_t n) {
    if (first) {
        memcpy(dr, dy, n * sizeof *dr);
        return;
    }
    /* No region with one thread or a false if clause: libgomp allocates the
     * team of every one-thread region from the heap. */
    if (n <= PARALLEL_MIN || omp_get_max_threads() < 2) {
        for (size_t i = 0; i < n; i++) {
            dr[i] += dy[i];
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        dr[i] += dy[i];
    }
}

/* node->ints[0] and ints[1] hold the input indices of the bias and the
 * residual, or -1 when absent. */
static void linear_backward(tg_node *node) {
    const tg_tensor *x = node->inputs[0];
    const tg_tensor *w = node->inputs[1];
    int bias_input = (int)node->ints[0];
    int residual_input = (int)node->ints[1];
    int OUT = w->shape[0];
    int IN = w->shape[1];
    int N = (int)(x->size / (size_t)IN);
    const tg_scalar *dy = node->output->grad;
    /* The residual's gradient is complete before the other inputs' are
     * fetched, in case the residual is also x. */
    if (residual_input >= 0) {
        bool dr_first;
        tg_scalar *dr = tg_node_input_grad_first(node, residual_input, &dr_first);
        if (dr != NULL) {
            residual_backward(dr, dr_first, dy, node->output->size);
        }
    }
    bool dx_first;
    tg_scalar *dx = tg_node_input_grad_first(node, 0, &dx_first);
    tg_scalar *dw = tg_node_input_grad(node, 1);
    tg_scalar *db = bias_input >= 0 ? tg_node_input_grad(node, bias_input) : NULL;
    if (dx_first && (dx == dw || dx == db)) {
        /* x is also the weight or the bias: both add into one buffer. */
        memset(dx, 0, x->size * sizeof *dx);
        dx_first = false;
    }
    linear_backward_kernel(dx, dx_first, dw, db, dy, x->data, w->data, N, IN, OUT);
}

static const tg_op linear_op = {"linear", linear_backward};
static const tg_op linear_residual_op = {"linear_residual", linear_backward};

/* Checks the shapes, records an error naming them on a mismatch. */
static bool linear_shapes_ok(tg_tape *tape, const char *op_name, const tg_tensor *x,
                             const tg_tensor *weight, const tg_tensor *bias) {
    char xs[128];
    char ws[128];
    if (weight->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != weight->shape[1]) {
        tg_op_fail(tape, TG_ERR_SHAPE,
                   "%s: x %s and weight %s do not fit; the weight must be 2-D (out, in) with in "
                   "equal to the last dimension of x",
                   op_name, tg_shape_format(xs, sizeof xs, x->ndim, x->shape),
                   tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
        return false;
    }
    if (bias != NULL && (bias->ndim != 1 || bias->shape[0] != weight->shape[0])) {
        char bs[128];
        tg_op_fail(tape, TG_ERR_SHAPE,
                   "%s: bias %s does not fit weight %s; the bias must be (out)", op_name,
                   tg_shape_format(bs, sizeof bs, bias->ndim, bias->shape),
                   tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
        return false;
    }
    return true;
}

/* Runs the op with an optional residual, whose shape the caller checked. */
static tg_tensor *linear_run(tg_tape *tape, const tg_op *op, const tg_tensor *x,
                             const tg_tensor *weight, const tg_tensor *bias,
                             const tg_tensor *residual) {
    int OUT = weight->shape[0];
    int IN = weight->shape[1];
    int shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    shape[x->ndim - 1] = OUT;
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, shape);
    if (y == NULL) {
        return NULL;
    }
    int N = (int)(x->size / (size_t)IN);
    tg__linear_forward(y->data, x->data, weight->data, bias != NULL ? bias->data : NULL,
                       residual != NULL ? residual->data : NULL, N, IN, OUT);

    const tg_tensor *inputs[4] = {x, weight, NULL, NULL};
    int n_inputs = 2;
    int bias_input = -1;
    int residual_input = -1;
    if (bias != NULL) {
        bias_input = n_inputs;
        inputs[n_inputs++] = bias;
    }
    if (residual != NULL) {
        residual_input = n_inputs;
        inputs[n_inputs++] = residual;
    }
    tg_node *node = tg_tape_record(tape, op, y, n_inputs, inputs);
    if (node != NULL) {
        node->ints[0] = bias_input;
        node->ints[1] = residual_input;
    }
    return y;
}

tg_tensor *tg_linear(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                     const tg_tensor *bias) {
    const tg_tensor *inputs[2] = {x, weight};
    if (!tg_op_inputs_ok(tape, 2, inputs) || !linear_shapes_ok(tape, "linear", x, weight, bias)) {
        return NULL;
    }
    return linear_run(tape, &linear_op, x, weight, bias, NULL);
}

tg_tensor *tg_linear_residual(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                              const tg_tensor *bias, const tg_tensor *residual) {
    const tg_tensor *inputs[3] = {x, weight, residual};
    if (!tg_op_inputs_ok(tape, 3, inputs) ||
        !linear_shapes_ok(tape, "linear_residual", x, weight, bias)) {
        return NULL;
    }
    bool fits = residual->ndim == x->ndim &&
                residual->shape[x->ndim - 1] == weight->shape[0] &&
                memcmp(residual->shape, x->shape, (size_t)(x->ndim - 1) * sizeof *x->shape) == 0;
    if (!fits) {
        char rs[128];
        char xs[128];
        char ws[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "linear_residual: residual %s does not fit x %s and weight %s; the "
                          "residual must have the shape of x with the last dimension out",
                          tg_shape_format(rs, sizeof rs, residual->ndim, residual->shape),
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape),
                          tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
    }
    return linear_run(tape, &linear_residual_op, x, weight, bias, residual);
}
