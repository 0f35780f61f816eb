/* Transformer MLP as one op: y = r + gelu(x W1^T + b1) W2^T + b2.
 *
 * Letters: N rows (the leading dimensions of x folded), C model width, H
 * hidden width. Shapes: x (N, C), W1 (H, C), b1 (H), W2 (C, H), b2 (C), r
 * and y (N, C). The biases b1 and b2 and the residual r are optional.
 *
 * Forward:  a = x W1^T + b1             (N, H)   pre-activation
 *           g = gelu(a)                 (N, H)   saved
 *           d = gelu'(a)                (N, H)   saved, in a's memory
 *           y = r + g W2^T + b2         (N, C)
 * Backward, with dy the gradient of y:
 *           dr  += dy
 *           dW2 += dy^T g,  db2 += sum_n dy[n]
 *           dg   = dy W2                (N, H)   in scratch memory
 *           da   = dg * d               in place
 *           dW1 += da^T x,  db1 += sum_n da[n]
 *           dx  += da W1
 * gelu_internal.h gives gelu and gelu' in both forms. The forward computes
 * gelu' with gelu, sharing its exp, so the backward's GELU step is one
 * multiplication.
 *
 * Why one op: composed of linear, gelu, linear and add, the MLP keeps a, g,
 * g W2^T + b2 and the gradients of all three until the tape's reset. That
 * is 2 N H + 2 N C more floats than here, where the only gradient of hidden
 * width is one scratch buffer that every layer's backward reuses. The two products of
 * each backward phase are independent and of equal cost, so with two or
 * more threads each runs as one gemm on its own thread. Each product is the
 * same gemm call for any thread count and the elementwise steps split only
 * over independent elements, so the bits do not depend on the thread count.
 */
#include "gelu_mlp.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "../gemm.h"
#include "../op.h"
#include "../tape_internal.h"
#include "gelu_internal.h"
#include "linear_internal.h"
#include "parallel_internal.h"

typedef struct gelu_mlp_saved {
    tg_scalar *derivative;  /* gelu'(a) (N, H) */
    tg_scalar *hidden;      /* g (N, H) */
    int N, C, H;
    tg_gelu_approx approx;
    int b1_input, b2_input, residual_input;  /* node input indices, or -1 */
} gelu_mlp_saved;

/* Writes y (N, C) and g (N, H), using a (N, H) for the pre-activation. With
 * save_derivative, a is left holding gelu'(a). b1, b2 and residual may be
 * NULL. */
static void gelu_mlp_forward(tg_scalar *y, tg_scalar *a, tg_scalar *g, const tg_scalar *x,
                             const tg_scalar *w1, const tg_scalar *b1, const tg_scalar *w2,
                             const tg_scalar *b2, const tg_scalar *residual, int N, int C, int H,
                             tg_gelu_approx approx, bool save_derivative) {
    tg__linear_forward(a, x, w1, b1, NULL, N, C, H);
    size_t n = (size_t)N * (size_t)H;
    if (save_derivative) {
        tg__gelu_forward_derivative(g, a, n, approx);
    } else {
        tg__gelu_forward(g, a, n, approx);
    }
    tg__linear_forward(y, g, w2, b2, residual, N, H, C);
}

/* dg *= derivative over n elements. */
static void gelu_backward_in_place(tg_scalar *restrict dg, const tg_scalar *restrict derivative,
                                   size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dg[i] *= derivative[i];
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dg[i] *= derivative[i];
        }
    }
}

/* Runs task 0 (dW2 and db2) or task 1 (dg = dy W2) of the first backward
 * phase. dw2 and db2 may be NULL. */
static void second_layer_backward_task(int task, tg_scalar *dg, tg_scalar *dw2, tg_scalar *db2,
                                       const tg_scalar *dy, const tg_scalar *g,
                                       const tg_scalar *w2, int N, int C, int H) {
    if (task == 0 && dw2 != NULL) {
        /* dW2 (C, H) += dy^T (C, N) g (N, H) */
        tg_gemm(true, false, C, H, N, 1, dy, C, g, H, 1, dw2, H);
    }
    if (task == 0 && db2 != NULL) {
        tg__column_sums_add(db2, dy, N, C);
    }
    if (task == 1) {
        /* dg (N, H) = dy (N, C) W2 (C, H) */
        tg_gemm(false, false, N, H, C, 1, dy, C, w2, H, 0, dg, H);
    }
}

/* Adds into dx (N, C), dw1, db1, dw2 and db2, each of which may be NULL;
 * dg (N, H) is scratch. dr is handled by the node glue. */
static void gelu_mlp_backward_kernel(tg_scalar *dx, tg_scalar *dw1, tg_scalar *db1,
                                     tg_scalar *dw2, tg_scalar *db2, tg_scalar *dg,
                                     const tg_scalar *dy, const tg_scalar *x,
                                     const tg_scalar *derivative, const tg_scalar *g,
                                     const tg_scalar *w1, const tg_scalar *w2,
                                     const gelu_mlp_saved *s) {
    int N = s->N;
    int C = s->C;
    int H = s->H;
    if (omp_get_max_threads() < 2 || (dw2 == NULL && db2 == NULL)) {
        second_layer_backward_task(0, dg, dw2, db2, dy, g, w2, N, C, H);
        second_layer_backward_task(1, dg, dw2, db2, dy, g, w2, N, C, H);
    } else {
#pragma omp parallel for schedule(static) num_threads(2)
        for (int task = 0; task < 2; task++) {
            second_layer_backward_task(task, dg, dw2, db2, dy, g, w2, N, C, H);
        }
    }
    gelu_backward_in_place(dg, derivative, (size_t)N * (size_t)H);
    tg__linear_backward(dx, dw1, db1, dg, x, w1, N, C, H);
}

static void gelu_mlp_backward(tg_node *node) {
    const gelu_mlp_saved *s = node->saved;
    const tg_scalar *dy = node->output->grad;
    if (s->residual_input >= 0) {
        tg_scalar *dr = tg_node_input_grad(node, s->residual_input);
        if (dr != NULL) {
            size_t n = node->output->size;
            if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
                for (long i = 0; i < (long)n; i++) {
                    dr[i] += dy[i];
                }
            } else {
                for (long i = 0; i < (long)n; i++) {
                    dr[i] += dy[i];
                }
            }
        }
    }
    tg_scalar *dx = tg_node_input_grad(node, 0);
    tg_scalar *dw1 = tg_node_input_grad(node, 1);
    tg_scalar *dw2 = tg_node_input_grad(node, 2);
    tg_scalar *db1 = s->b1_input >= 0 ? tg_node_input_grad(node, s->b1_input) : NULL;
    tg_scalar *db2 = s->b2_input >= 0 ? tg_node_input_grad(node, s->b2_input) : NULL;
    if (dx == NULL && dw1 == NULL && db1 == NULL && dw2 == NULL && db2 == NULL) {
        return;
    }
    tg_scalar *dg = tg__tape_scratch(node->tape, (size_t)s->N * (size_t)s->H * sizeof *dg);
    if (dg == NULL) {
        return;
    }
    gelu_mlp_backward_kernel(dx, dw1, db1, dw2, db2, dg, dy, node->inputs[0]->data, s->derivative,
                             s->hidden, node->inputs[1]->data, node->inputs[2]->data, s);
}

static const tg_op gelu_mlp_op = {"gelu_mlp", gelu_mlp_backward};

/* Records a shape error naming `name`'s shape and the expected one. */
static tg_tensor *shape_error(tg_tape *tape, const char *name, const tg_tensor *t,
                              const char *expected) {
    char ts[128];
    return tg_op_fail(tape, TG_ERR_SHAPE, "gelu_mlp: %s has shape %s but must be %s", name,
                      tg_shape_format(ts, sizeof ts, t->ndim, t->shape), expected);
}

/* Checks every shape against x (N, C) and W1 (H, C); returns false after
 * recording an error. */
static bool shapes_ok(tg_tape *tape, const tg_tensor *x, const tg_tensor *w1,
                      const tg_tensor *b1, const tg_tensor *w2, const tg_tensor *b2,
                      const tg_tensor *residual) {
    char expected[128];
    if (x->ndim < 1) {
        shape_error(tape, "x", x, "(..., C) with at least one dimension");
        return false;
    }
    int C = x->shape[x->ndim - 1];
    if (w1->ndim != 2 || w1->shape[1] != C) {
        snprintf(expected, sizeof expected, "(H, %d), with C = %d the last dimension of x", C, C);
        shape_error(tape, "fc_weight", w1, expected);
        return false;
    }
    int H = w1->shape[0];
    if (b1 != NULL && (b1->ndim != 1 || b1->shape[0] != H)) {
        snprintf(expected, sizeof expected, "(%d), the rows of fc_weight", H);
        shape_error(tape, "fc_bias", b1, expected);
        return false;
    }
    if (w2->ndim != 2 || w2->shape[0] != C || w2->shape[1] != H) {
        snprintf(expected, sizeof expected, "(%d, %d), (C, H) for fc_weight (H, C)", C, H);
        shape_error(tape, "proj_weight", w2, expected);
        return false;
    }
    if (b2 != NULL && (b2->ndim != 1 || b2->shape[0] != C)) {
        snprintf(expected, sizeof expected, "(%d), the last dimension of x", C);
        shape_error(tape, "proj_bias", b2, expected);
        return false;
    }
    if (residual != NULL && !tg_tensor_same_shape(residual, x)) {
        char xs[128];
        snprintf(expected, sizeof expected, "the shape of x, %s",
                 tg_shape_format(xs, sizeof xs, x->ndim, x->shape));
        shape_error(tape, "residual", residual, expected);
        return false;
    }
    return true;
}

tg_tensor *tg_gelu_mlp(tg_tape *tape, const tg_tensor *x, const tg_tensor *fc_weight,
                       const tg_tensor *fc_bias, const tg_tensor *proj_weight,
                       const tg_tensor *proj_bias, const tg_tensor *residual,
                       tg_gelu_approx approx) {
    const tg_tensor *required[3] = {x, fc_weight, proj_weight};
    if (!tg_op_inputs_ok(tape, 3, required)) {
        return NULL;
    }
    if (approx != TG_GELU_TANH && approx != TG_GELU_EXACT) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "gelu_mlp: invalid approx %d; pass TG_GELU_TANH or TG_GELU_EXACT",
                          (int)approx);
    }
    if (!shapes_ok(tape, x, fc_weight, fc_bias, proj_weight, proj_bias, residual)) {
        return NULL;
    }
    int C = x->shape[x->ndim - 1];
    int H = fc_weight->shape[0];
    int N = (int)(x->size / (size_t)C);
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }

    const tg_tensor *inputs[6] = {x, fc_weight, proj_weight, NULL, NULL, NULL};
    int n_inputs = 3;
    gelu_mlp_saved s = {.N = N, .C = C, .H = H, .approx = approx, .b1_input = -1,
                        .b2_input = -1, .residual_input = -1};
    if (fc_bias != NULL) {
        s.b1_input = n_inputs;
        inputs[n_inputs++] = fc_bias;
    }
    if (proj_bias != NULL) {
        s.b2_input = n_inputs;
        inputs[n_inputs++] = proj_bias;
    }
    if (residual != NULL) {
        s.residual_input = n_inputs;
        inputs[n_inputs++] = residual;
    }

    /* Record first: g and gelu'(a) are kept only for a backward. Without one,
     * a and g live in scratch memory for the forward alone. */
    tg_node *node = tg_tape_record(tape, &gelu_mlp_op, y, n_inputs, inputs);
    size_t hidden_size = (size_t)N * (size_t)H;
    if (node != NULL) {
        gelu_mlp_saved *saved = tg_tape_alloc(tape, sizeof *saved);
        s.derivative = tg_tape_alloc(tape, hidden_size * sizeof *s.derivative);
        s.hidden = tg_tape_alloc(tape, hidden_size * sizeof *s.hidden);
        if (saved == NULL || s.derivative == NULL || s.hidden == NULL) {
            return NULL;
        }
        *saved = s;
        node->saved = saved;
    } else {
        if (tg_tape_status(tape) != TG_OK) {
            return NULL;
        }
        s.derivative = tg__tape_scratch(tape, 2 * hidden_size * sizeof *s.derivative);
        if (s.derivative == NULL) {
            return NULL;
        }
        s.hidden = s.derivative + hidden_size;
    }
    gelu_mlp_forward(y->data, s.derivative, s.hidden, x->data, fc_weight->data,
                     fc_bias != NULL ? fc_bias->data : NULL, proj_weight->data,
                     proj_bias != NULL ? proj_bias->data : NULL,
                     residual != NULL ? residual->data : NULL, N, C, H, approx, node != NULL);
    return y;
}
