/* Fused linear map: y = x W^T + b over N = prod(leading dims) rows.
 *
 * x (N, IN), W (OUT, IN), b (OUT), y (N, OUT). (IN and OUT, because complex.h,
 * which cblas.h pulls in, defines I.)
 * Forward:  y rows start as b, then gemm adds x W^T (beta = 1), so the bias
 *           costs no separate pass over y.
 * Backward: dx += dy W          (N, OUT) (OUT, IN)
 *           dW += dy^T x        (OUT, N) (N, IN)
 *           db += sum_n dy[n]   rows summed in order, so the result does not
 *                               depend on the thread count.
 *           dx and dW run on two threads at once when both are wanted.
 * The forward saves nothing; the backward reads x and W.
 */
#include "linear.h"

#include <omp.h>
#include <string.h>

#include "../gemm.h"
#include "../op.h"

static void linear_forward(tg_scalar *y, const tg_scalar *x, const tg_scalar *w,
                           const tg_scalar *b, int N, int IN, int OUT) {
    if (b != NULL) {
        for (int n = 0; n < N; n++) {
            memcpy(y + (size_t)n * (size_t)OUT, b, (size_t)OUT * sizeof *b);
        }
    }
    tg_gemm(false, true, N, OUT, IN, 1, x, IN, w, IN, b != NULL ? 1 : 0, y, OUT);
}

/* Adds db (OUT) += sum over the N rows of dy, in row order. */
static void bias_backward(tg_scalar *db, const tg_scalar *dy, int N, int OUT) {
    for (int n = 0; n < N; n++) {
        const tg_scalar *dy_n = dy + (size_t)n * (size_t)OUT;
        for (int o = 0; o < OUT; o++) {
            db[o] += dy_n[o];
        }
    }
}

/* Runs task 0 (dx and db) or task 1 (dW) of the backward. */
static void linear_backward_task(int task, tg_scalar *dx, tg_scalar *dw, tg_scalar *db,
                                 const tg_scalar *dy, const tg_scalar *x, const tg_scalar *w,
                                 int N, int IN, int OUT) {
    if (task == 0 && dx != NULL) {
        /* dx (N, IN) += dy (N, OUT) W (OUT, IN) */
        tg_gemm(false, false, N, IN, OUT, 1, dy, OUT, w, IN, 1, dx, IN);
    }
    if (task == 0 && db != NULL) {
        bias_backward(db, dy, N, OUT);
    }
    if (task == 1 && dw != NULL) {
        /* dW (OUT, IN) += dy^T (OUT, N) x (N, IN) */
        tg_gemm(true, false, OUT, IN, N, 1, dy, OUT, x, IN, 1, dw, IN);
    }
}

/* Adds into dx, dw and db, each of which may be NULL. The two products are
 * independent and cost the same, so with two or more threads each runs as
 * one gemm on its own thread. OpenBLAS's OpenMP build runs a gemm called
 * inside an active parallel region on the calling thread alone. A product
 * that runs alone is threaded by OpenBLAS. Either way each product is the
 * same gemm call for any thread count, so the bits do not depend on it. */
static void linear_backward_kernel(tg_scalar *dx, tg_scalar *dw, tg_scalar *db,
                                   const tg_scalar *dy, const tg_scalar *x, const tg_scalar *w,
                                   int N, int IN, int OUT) {
    if (dx == NULL || dw == NULL || omp_get_max_threads() < 2) {
        linear_backward_task(0, dx, dw, db, dy, x, w, N, IN, OUT);
        linear_backward_task(1, dx, dw, db, dy, x, w, N, IN, OUT);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(2)
    for (int task = 0; task < 2; task++) {
        linear_backward_task(task, dx, dw, db, dy, x, w, N, IN, OUT);
    }
}

static void linear_backward(tg_node *node) {
    const tg_tensor *x = node->inputs[0];
    const tg_tensor *w = node->inputs[1];
    int OUT = w->shape[0];
    int IN = w->shape[1];
    int N = (int)(x->size / (size_t)IN);
    tg_scalar *db = node->n_inputs == 3 ? tg_node_input_grad(node, 2) : NULL;
    linear_backward_kernel(tg_node_input_grad(node, 0), tg_node_input_grad(node, 1), db,
                           node->output->grad, x->data, w->data, N, IN, OUT);
}

static const tg_op linear_op = {"linear", linear_backward};

tg_tensor *tg_linear(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                     const tg_tensor *bias) {
    const tg_tensor *inputs[3] = {x, weight, bias};
    int n_inputs = bias != NULL ? 3 : 2;
    if (!tg_op_inputs_ok(tape, 2, inputs)) {
        return NULL;
    }
    char xs[128];
    char ws[128];
    if (weight->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != weight->shape[1]) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "linear: x %s and weight %s do not fit; the weight must be 2-D "
                          "(out, in) with in equal to the last dimension of x",
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape),
                          tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
    }
    if (bias != NULL && (bias->ndim != 1 || bias->shape[0] != weight->shape[0])) {
        char bs[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "linear: bias %s does not fit weight %s; the bias must be (out)",
                          tg_shape_format(bs, sizeof bs, bias->ndim, bias->shape),
                          tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
    }
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
    linear_forward(y->data, x->data, weight->data, bias != NULL ? bias->data : NULL, N, IN, OUT);
    tg_tape_record(tape, &linear_op, y, n_inputs, inputs);
    return y;
}
