/* exp, log, sqrt, tanh, sigmoid, relu, silu and gelu.
 *
 * Shapes: x (any shape) gives y of the same shape; the kernels see both as n
 * contiguous elements.
 *
 * Forward:  y = f(x) at every element.
 * Backward: dx += dy * f'(x), written with y where that saves work:
 *   exp:       f' = y
 *   log:       f' = 1 / x
 *   sqrt:      f' = 1 / (2 y)
 *   tanh:      f' = 1 - y^2
 *   sigmoid:   f' = y (1 - y)
 *   relu:      f' = 1 if x > 0, else 0
 *   silu:      y = x s with s = sigmoid(x);  f' = s (1 + x (1 - s))
 *   gelu tanh: y = 0.5 x (1 + tanh(k (x + c x^3))), k = sqrt(2/pi),
 *              c = 0.044715, evaluated as x sigmoid(2 k (x + c x^3))
 *   gelu exact: y = x Phi(x) with Phi(x) = 0.5 (1 + erf(x / sqrt(2)))
 *   gelu_internal.h derives both derivatives and describes their evaluation.
 * The forward saves nothing: the backward reads x, or the output y for exp,
 * sqrt, tanh and sigmoid, both of which live until the tape's reset. silu and
 * gelu recompute their sigmoid or tanh from x instead of storing it.
 *
 * Numerics: sigmoid evaluates exp only at -|x|, so it neither overflows nor
 * loses the small tail values, and silu inherits that.
 */
#include "unary.h"

#include <omp.h>
#include <tgmath.h>

#include "../op.h"
#include "gelu_internal.h"
#include "parallel_internal.h"

typedef void (*unary_forward_fn)(tg_scalar *y, const tg_scalar *x, size_t n);
/* Adds dy * f'(x) into dx, reading x and the forward's output y. */
typedef void (*unary_backward_fn)(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                                  const tg_scalar *y, size_t n);

/* A unary op's descriptor with its kernels. The tg_op comes first, so the op
 * pointer stored in a node converts back to the unary_op. */
typedef struct unary_op {
    tg_op op;
    unary_forward_fn forward;
    unary_backward_fn backward;
} unary_op;

/* ---- exp ----------------------------------------------------------------- */

static void exp_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = exp(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = exp(x[i]);
        }
    }
}

static void exp_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                         const tg_scalar *y, size_t n) {
    (void)x;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * y[i];
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * y[i];
        }
    }
}

/* ---- log ----------------------------------------------------------------- */

static void log_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = log(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = log(x[i]);
        }
    }
}

static void log_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                         const tg_scalar *y, size_t n) {
    (void)y;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] / x[i];
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] / x[i];
        }
    }
}

/* ---- sqrt ---------------------------------------------------------------- */

static void sqrt_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = sqrt(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = sqrt(x[i]);
        }
    }
}

static void sqrt_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                          const tg_scalar *y, size_t n) {
    (void)x;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] / (2 * y[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] / (2 * y[i]);
        }
    }
}

/* ---- tanh ---------------------------------------------------------------- */

static void tanh_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = tanh(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = tanh(x[i]);
        }
    }
}

static void tanh_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                          const tg_scalar *y, size_t n) {
    (void)x;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * (1 - y[i] * y[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * (1 - y[i] * y[i]);
        }
    }
}

/* ---- sigmoid ------------------------------------------------------------- */

/* Returns 1 / (1 + e^-x) with exp taken only at -|x|, so it cannot overflow. */
static tg_scalar sigmoid_of(tg_scalar x) {
    if (x >= 0) {
        return 1 / (1 + exp(-x));
    }
    tg_scalar e = exp(x);
    return e / (1 + e);
}

static void sigmoid_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = sigmoid_of(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = sigmoid_of(x[i]);
        }
    }
}

static void sigmoid_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                             const tg_scalar *y, size_t n) {
    (void)x;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * y[i] * (1 - y[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += dy[i] * y[i] * (1 - y[i]);
        }
    }
}

/* ---- relu ---------------------------------------------------------------- */

static void relu_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = x[i] > 0 ? x[i] : 0;
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = x[i] > 0 ? x[i] : 0;
        }
    }
}

static void relu_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                          const tg_scalar *y, size_t n) {
    (void)y;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += x[i] > 0 ? dy[i] : 0;
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += x[i] > 0 ? dy[i] : 0;
        }
    }
}

/* ---- silu ---------------------------------------------------------------- */

static void silu_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = x[i] * sigmoid_of(x[i]);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = x[i] * sigmoid_of(x[i]);
        }
    }
}

static void silu_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                          const tg_scalar *y, size_t n) {
    (void)y;
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            tg_scalar s = sigmoid_of(x[i]);
            dx[i] += dy[i] * s * (1 + x[i] * (1 - s));
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            tg_scalar s = sigmoid_of(x[i]);
            dx[i] += dy[i] * s * (1 + x[i] * (1 - s));
        }
    }
}

/* ---- gelu, tanh and exact forms (gelu_internal.h) ------------------------- */

/* Elements per block of the GELU loops below: each block is one call of a
 * kernel compiled for AVX-512, AVX2 and the baseline, of which the CPU picks
 * one at load time. Without FMA contraction (ISO C mode) all three do the
 * same operations in the same order, so they give the same bits. */
#define GELU_BLOCK 4096

__attribute__((target_clones("avx512f", "avx2", "default")))
static void gelu_forward_block(tg_scalar *restrict y, const tg_scalar *restrict x, size_t n,
                               tg_gelu_approx approx) {
    if (approx == TG_GELU_TANH) {
        for (size_t i = 0; i < n; i++) {
            y[i] = tg__gelu_tanh(x[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            y[i] = tg__gelu_exact(x[i]);
        }
    }
}

/* y = gelu(x), then x = gelu'(x). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void gelu_forward_derivative_block(tg_scalar *restrict y, tg_scalar *restrict x, size_t n,
                                          tg_gelu_approx approx) {
    if (approx == TG_GELU_TANH) {
        for (size_t i = 0; i < n; i++) {
            tg_scalar derivative;
            tg__gelu_tanh_pair(x[i], &y[i], &derivative);
            x[i] = derivative;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            y[i] = tg__gelu_exact(x[i]);
            x[i] = tg__gelu_exact_derivative(x[i]);
        }
    }
}

/* out = dy * gelu'(x) when replace, else out += dy * gelu'(x). out may be dy
 * itself, so neither carries restrict. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void gelu_backward_block(tg_scalar *out, const tg_scalar *dy,
                                const tg_scalar *restrict x, size_t n, tg_gelu_approx approx,
                                bool replace) {
    if (approx == TG_GELU_TANH && replace) {
        for (size_t i = 0; i < n; i++) {
            out[i] = dy[i] * tg__gelu_tanh_derivative(x[i]);
        }
    } else if (approx == TG_GELU_TANH) {
        for (size_t i = 0; i < n; i++) {
            out[i] += dy[i] * tg__gelu_tanh_derivative(x[i]);
        }
    } else if (replace) {
        for (size_t i = 0; i < n; i++) {
            out[i] = dy[i] * tg__gelu_exact_derivative(x[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            out[i] += dy[i] * tg__gelu_exact_derivative(x[i]);
        }
    }
}

void tg__gelu_forward(tg_scalar *y, const tg_scalar *x, size_t n, tg_gelu_approx approx) {
    long blocks = (long)((n + GELU_BLOCK - 1) / GELU_BLOCK);
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_forward_block(y + begin, x + begin, count, approx);
        }
    } else {
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_forward_block(y + begin, x + begin, count, approx);
        }
    }
}

void tg__gelu_forward_derivative(tg_scalar *y, tg_scalar *x, size_t n, tg_gelu_approx approx) {
    long blocks = (long)((n + GELU_BLOCK - 1) / GELU_BLOCK);
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_forward_derivative_block(y + begin, x + begin, count, approx);
        }
    } else {
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_forward_derivative_block(y + begin, x + begin, count, approx);
        }
    }
}

void tg__gelu_backward(tg_scalar *out, const tg_scalar *dy, const tg_scalar *x, size_t n,
                       tg_gelu_approx approx, bool replace) {
    long blocks = (long)((n + GELU_BLOCK - 1) / GELU_BLOCK);
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_backward_block(out + begin, dy + begin, x + begin, count, approx, replace);
        }
    } else {
        for (long k = 0; k < blocks; k++) {
            size_t begin = (size_t)k * GELU_BLOCK;
            size_t count = n - begin < GELU_BLOCK ? n - begin : GELU_BLOCK;
            gelu_backward_block(out + begin, dy + begin, x + begin, count, approx, replace);
        }
    }
}

static void gelu_tanh_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    tg__gelu_forward(y, x, n, TG_GELU_TANH);
}

static void gelu_tanh_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                               const tg_scalar *y, size_t n) {
    (void)y;
    tg__gelu_backward(dx, dy, x, n, TG_GELU_TANH, false);
}

static void gelu_exact_forward(tg_scalar *y, const tg_scalar *x, size_t n) {
    tg__gelu_forward(y, x, n, TG_GELU_EXACT);
}

static void gelu_exact_backward(tg_scalar *dx, const tg_scalar *dy, const tg_scalar *x,
                                const tg_scalar *y, size_t n) {
    (void)y;
    tg__gelu_backward(dx, dy, x, n, TG_GELU_EXACT, false);
}

/* ---- node glue and constructors ------------------------------------------ */

static void unary_node_backward(tg_node *node) {
    const unary_op *u = (const unary_op *)node->op;
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        u->backward(dx, node->output->grad, node->inputs[0]->data, node->output->data,
                    node->output->size);
    }
}

static const unary_op exp_op = {{"exp", unary_node_backward}, exp_forward, exp_backward};
static const unary_op log_op = {{"log", unary_node_backward}, log_forward, log_backward};
static const unary_op sqrt_op = {{"sqrt", unary_node_backward}, sqrt_forward, sqrt_backward};
static const unary_op tanh_op = {{"tanh", unary_node_backward}, tanh_forward, tanh_backward};
static const unary_op sigmoid_op = {
    {"sigmoid", unary_node_backward}, sigmoid_forward, sigmoid_backward};
static const unary_op relu_op = {{"relu", unary_node_backward}, relu_forward, relu_backward};
static const unary_op silu_op = {{"silu", unary_node_backward}, silu_forward, silu_backward};
static const unary_op gelu_tanh_op = {
    {"gelu_tanh", unary_node_backward}, gelu_tanh_forward, gelu_tanh_backward};
static const unary_op gelu_exact_op = {
    {"gelu", unary_node_backward}, gelu_exact_forward, gelu_exact_backward};

static tg_tensor *unary(tg_tape *tape, const unary_op *u, const tg_tensor *x) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    u->forward(y->data, x->data, x->size);
    tg_tape_record(tape, &u->op, y, 1, &x);
    return y;
}

tg_tensor *tg_exp(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &exp_op, x);
}

tg_tensor *tg_log(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &log_op, x);
}

tg_tensor *tg_sqrt(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &sqrt_op, x);
}

tg_tensor *tg_tanh(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &tanh_op, x);
}

tg_tensor *tg_sigmoid(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &sigmoid_op, x);
}

tg_tensor *tg_relu(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &relu_op, x);
}

tg_tensor *tg_silu(tg_tape *tape, const tg_tensor *x) {
    return unary(tape, &silu_op, x);
}

tg_tensor *tg_gelu(tg_tape *tape, const tg_tensor *x, tg_gelu_approx approx) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    switch (approx) {
    case TG_GELU_TANH:
        return unary(tape, &gelu_tanh_op, x);
    case TG_GELU_EXACT:
        return unary(tape, &gelu_exact_op, x);
    }
    return tg_op_fail(tape, TG_ERR_INVALID,
                      "gelu: invalid approx %d; pass TG_GELU_TANH or TG_GELU_EXACT",
                      (int)approx);
}
