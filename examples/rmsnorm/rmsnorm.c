/* RMSNorm over the last dimension, as torch.nn.RMSNorm: LayerNorm without the
 * mean subtraction and the bias (Zhang and Sennrich, "Root Mean Square Layer
 * Normalization", 2019, arXiv:1910.07467).
 *
 * Shapes: x (N, C) with N the product of the leading dimensions, weight (C),
 * y (N, C). For each row n:
 *
 * Forward:  r_n  = 1 / sqrt(mean_c(x_nc^2) + eps)
 *           y_nc = x_nc r_n w_c
 * Backward: with g_nc = dy_nc w_c and dr_n/dx_nc = -r_n^3 x_nc / C,
 *           dx_nc += r_n g_nc - r_n^3 x_nc (1/C) sum_c' g_nc' x_nc'
 *           dw_c  += sum_n dy_nc x_nc r_n
 * When a node is recorded, the forward saves r (N scalars) for the backward,
 * which reads x and weight themselves: they live until tg_tape_reset.
 *
 * Sums accumulate in double. Rows are independent, so the forward and dx run
 * in parallel over rows. dw sums over rows: each thread owns whole blocks of
 * columns and adds the rows in order, so dw is bitwise the same for any number
 * of threads.
 */
#include "rmsnorm.h"

#include <math.h>

/* Element count below which the kernels run on one thread. */
#define PARALLEL_MIN_ELEMENTS 32768

/* Columns per block of the dw sum. A block's partial sums live on the stack. */
#define DW_BLOCK 64

/* Writes y and, unless it is NULL, rstd (N). */
static void rmsnorm_forward(tg_scalar *y, tg_scalar *rstd, const tg_scalar *x,
                            const tg_scalar *weight, long N, int C, double eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)C > PARALLEL_MIN_ELEMENTS)
    for (long n = 0; n < N; n++) {
        const tg_scalar *x_n = x + (size_t)n * (size_t)C;
        tg_scalar *y_n = y + (size_t)n * (size_t)C;
        double sum_sq = 0.0;
        for (int c = 0; c < C; c++) {
            double v = (double)x_n[c];
            sum_sq += v * v;
        }
        tg_scalar r = (tg_scalar)(1.0 / sqrt(sum_sq / C + eps));
        for (int c = 0; c < C; c++) {
            y_n[c] = x_n[c] * r * weight[c];
        }
        if (rstd != NULL) {
            rstd[n] = r;
        }
    }
}

/* Adds into dx (N, C) and dweight (C), either of which is NULL when its input
 * does not require grad. Never overwrites, because other ops may add too. */
static void rmsnorm_backward_kernel(tg_scalar *dx, tg_scalar *dweight, const tg_scalar *dy,
                                    const tg_scalar *x, const tg_scalar *weight,
                                    const tg_scalar *rstd, long N, int C) {
    bool parallel = (size_t)N * (size_t)C > PARALLEL_MIN_ELEMENTS;
    if (dx != NULL) {
#pragma omp parallel for schedule(static) if (parallel)
        for (long n = 0; n < N; n++) {
            const tg_scalar *x_n = x + (size_t)n * (size_t)C;
            const tg_scalar *dy_n = dy + (size_t)n * (size_t)C;
            tg_scalar *dx_n = dx + (size_t)n * (size_t)C;
            double dot = 0.0;  /* sum_c g_nc x_nc */
            for (int c = 0; c < C; c++) {
                dot += (double)dy_n[c] * (double)weight[c] * (double)x_n[c];
            }
            double r = (double)rstd[n];
            tg_scalar a = (tg_scalar)r;
            tg_scalar b = (tg_scalar)(r * r * r * dot / C);
            for (int c = 0; c < C; c++) {
                dx_n[c] += a * dy_n[c] * weight[c] - b * x_n[c];
            }
        }
    }
    if (dweight != NULL) {
        int n_blocks = (C + DW_BLOCK - 1) / DW_BLOCK;
#pragma omp parallel for schedule(static) if (parallel && n_blocks > 1)
        for (int block = 0; block < n_blocks; block++) {
            int c0 = block * DW_BLOCK;
            int width = C - c0 < DW_BLOCK ? C - c0 : DW_BLOCK;
            double sum[DW_BLOCK] = {0};
            for (long n = 0; n < N; n++) {
                const tg_scalar *x_n = x + (size_t)n * (size_t)C + c0;
                const tg_scalar *dy_n = dy + (size_t)n * (size_t)C + c0;
                double r = (double)rstd[n];
                for (int j = 0; j < width; j++) {
                    sum[j] += (double)dy_n[j] * (double)x_n[j] * r;
                }
            }
            for (int j = 0; j < width; j++) {
                dweight[c0 + j] += (tg_scalar)sum[j];
            }
        }
    }
}

static void rmsnorm_backward(tg_node *node) {
    const tg_tensor *x = node->inputs[0];
    const tg_tensor *weight = node->inputs[1];
    int C = x->shape[x->ndim - 1];
    long N = (long)(x->size / (size_t)C);
    rmsnorm_backward_kernel(tg_node_input_grad(node, 0), tg_node_input_grad(node, 1),
                            node->output->grad, x->data, weight->data, node->saved, N, C);
}

static const tg_op rmsnorm_op = {"my_rmsnorm", rmsnorm_backward};

tg_tensor *my_rmsnorm(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight, double eps) {
    const tg_tensor *inputs[2] = {x, weight};
    if (!tg_op_inputs_ok(tape, 2, inputs)) {
        return NULL;
    }
    if (x->ndim < 1 || weight->ndim != 1 || weight->shape[0] != x->shape[x->ndim - 1]) {
        char xs[128];
        char ws[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "my_rmsnorm: x %s and weight %s do not fit; weight must have shape "
                          "(C), where C is the last dimension of x",
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape),
                          tg_shape_format(ws, sizeof ws, weight->ndim, weight->shape));
    }
    if (!(eps > 0.0 && isfinite(eps))) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "my_rmsnorm: eps %g is invalid; pass a small positive value such as "
                          "1e-6",
                          eps);
    }
    int C = x->shape[x->ndim - 1];
    long N = (long)(x->size / (size_t)C);

    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    /* Record before computing, so that the forward writes r straight into the
     * node's saved buffer, which exists only when a node is recorded. */
    tg_node *node = tg_tape_record(tape, &rmsnorm_op, y, 2, inputs);
    tg_scalar *rstd = NULL;
    if (node != NULL) {
        rstd = tg_tape_alloc(tape, (size_t)N * sizeof *rstd);
        if (rstd == NULL) {
            return NULL;
        }
        node->saved = rstd;
    } else if (tg_tape_status(tape) != TG_OK) {
        return NULL;  /* recording the node ran out of memory */
    }
    rmsnorm_forward(y->data, rstd, x->data, weight->data, N, C, eps);
    return y;
}
