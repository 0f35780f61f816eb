/* Matrix product C = op(A) op(B), batched, through gemm.
 *
 * Forward:  C = A' B'            with A' = op(A) (M, K), B' = op(B) (K, N).
 * Backward: dA' = dC B'^T and dB' = A'^T dC; for a transposed operand the
 *           gradient of the stored matrix is the transpose of that, which
 *           gemm produces directly by swapping its operands:
 *             dA = dC op(B)^T      (not trans_a)   dA = op(B) dC^T   (trans_a)
 *             dB = op(A)^T dC      (not trans_b)   dB = dC^T op(A)   (trans_b)
 * All updates use beta = 1, so they add into existing gradients. When b is
 * 2-D and a is not transposed, the batch folds into the rows of one gemm, and
 * dB sums over the batch inside that gemm.
 * The forward saves nothing; the backward reads the inputs themselves.
 */
#include "matmul.h"

#include "../gemm.h"
#include "../op.h"

/* Shapes of one product, fixed by the constructor. */
typedef struct matmul_plan {
    int M, N, K;
    long batch;        /* number of products */
    bool a_batched;    /* a has a batch of matrices, else one shared matrix */
    bool b_batched;
    bool trans_a, trans_b;
} matmul_plan;

static void matmul_forward(tg_scalar *c, const tg_scalar *a, const tg_scalar *b,
                           const matmul_plan *p) {
    int lda = p->trans_a ? p->M : p->K;
    int ldb = p->trans_b ? p->K : p->N;
    if (!p->b_batched && !p->trans_a) {
        /* Stack every batch entry of a as rows of one (batch*M, K) matrix. */
        tg_gemm(false, p->trans_b, (int)(p->batch * p->M), p->N, p->K, 1, a, lda, b, ldb, 0, c,
                p->N);
        return;
    }
    size_t a_step = p->a_batched ? (size_t)p->M * (size_t)p->K : 0;
    size_t b_step = p->b_batched ? (size_t)p->K * (size_t)p->N : 0;
    size_t c_step = (size_t)p->M * (size_t)p->N;
    for (long i = 0; i < p->batch; i++) {
        tg_gemm(p->trans_a, p->trans_b, p->M, p->N, p->K, 1, a + (size_t)i * a_step, lda,
                b + (size_t)i * b_step, ldb, 0, c + (size_t)i * c_step, p->N);
    }
}

static void matmul_backward_kernel(tg_scalar *da, tg_scalar *db, const tg_scalar *dc,
                                   const tg_scalar *a, const tg_scalar *b, const matmul_plan *p) {
    int M = p->M;
    int N = p->N;
    int K = p->K;
    int lda = p->trans_a ? M : K;
    int ldb = p->trans_b ? K : N;
    if (!p->b_batched && !p->trans_a) {
        int rows = (int)(p->batch * M);
        if (da != NULL) {
            /* dA (rows, K) += dC (rows, N) op(B)^T */
            tg_gemm(false, !p->trans_b, rows, K, N, 1, dc, N, b, ldb, 1, da, K);
        }
        if (db != NULL) {
            if (p->trans_b) {
                /* dB (N, K) += dC^T (N, rows) A (rows, K) */
                tg_gemm(true, false, N, K, rows, 1, dc, N, a, K, 1, db, K);
            } else {
                /* dB (K, N) += A^T (K, rows) dC (rows, N) */
                tg_gemm(true, false, K, N, rows, 1, a, K, dc, N, 1, db, N);
            }
        }
        return;
    }
    size_t a_step = p->a_batched ? (size_t)M * (size_t)K : 0;
    size_t b_step = p->b_batched ? (size_t)K * (size_t)N : 0;
    size_t c_step = (size_t)M * (size_t)N;
    for (long i = 0; i < p->batch; i++) {
        const tg_scalar *a_i = a + (size_t)i * a_step;
        const tg_scalar *b_i = b + (size_t)i * b_step;
        const tg_scalar *dc_i = dc + (size_t)i * c_step;
        if (da != NULL) {
            tg_scalar *da_i = da + (size_t)i * a_step;
            if (p->trans_a) {
                /* dA (K, M) += op(B) (K, N) dC^T (N, M) */
                tg_gemm(p->trans_b, true, K, M, N, 1, b_i, ldb, dc_i, N, 1, da_i, lda);
            } else {
                /* dA (M, K) += dC (M, N) op(B)^T (N, K) */
                tg_gemm(false, !p->trans_b, M, K, N, 1, dc_i, N, b_i, ldb, 1, da_i, lda);
            }
        }
        if (db != NULL) {
            tg_scalar *db_i = db + (size_t)i * b_step;
            if (p->trans_b) {
                /* dB (N, K) += dC^T (N, M) op(A) (M, K) */
                tg_gemm(true, p->trans_a, N, K, M, 1, dc_i, N, a_i, lda, 1, db_i, ldb);
            } else {
                /* dB (K, N) += op(A)^T (K, M) dC (M, N) */
                tg_gemm(!p->trans_a, false, K, N, M, 1, a_i, lda, dc_i, N, 1, db_i, ldb);
            }
        }
    }
}

static void matmul_backward(tg_node *node) {
    const matmul_plan *p = node->saved;
    tg_scalar *da = tg_node_input_grad(node, 0);
    tg_scalar *db = tg_node_input_grad(node, 1);
    matmul_backward_kernel(da, db, node->output->grad, node->inputs[0]->data,
                           node->inputs[1]->data, p);
}

static const tg_op matmul_op = {"matmul", matmul_backward};

static tg_tensor *matmul_shape_error(tg_tape *tape, const tg_tensor *a, const tg_tensor *b,
                                     bool trans_a, bool trans_b, const char *reason) {
    char as[128];
    char bs[128];
    return tg_op_fail(tape, TG_ERR_SHAPE, "matmul: a %s%s and b %s%s: %s",
                      tg_shape_format(as, sizeof as, a->ndim, a->shape),
                      trans_a ? " (transposed)" : "",
                      tg_shape_format(bs, sizeof bs, b->ndim, b->shape),
                      trans_b ? " (transposed)" : "", reason);
}

tg_tensor *tg_matmul_t(tg_tape *tape, const tg_tensor *a, const tg_tensor *b, bool trans_a,
                       bool trans_b) {
    const tg_tensor *inputs[2] = {a, b};
    if (!tg_op_inputs_ok(tape, 2, inputs)) {
        return NULL;
    }
    if (a->ndim < 2 || b->ndim < 2) {
        return matmul_shape_error(tape, a, b, trans_a, trans_b,
                                  "both operands need at least 2 dimensions");
    }
    matmul_plan p = {.trans_a = trans_a, .trans_b = trans_b};
    int a_rows = a->shape[a->ndim - 2];
    int a_cols = a->shape[a->ndim - 1];
    int b_rows = b->shape[b->ndim - 2];
    int b_cols = b->shape[b->ndim - 1];
    p.M = trans_a ? a_cols : a_rows;
    p.K = trans_a ? a_rows : a_cols;
    p.N = trans_b ? b_rows : b_cols;
    int b_inner = trans_b ? b_cols : b_rows;
    if (p.K != b_inner) {
        return matmul_shape_error(tape, a, b, trans_a, trans_b,
                                  "the inner dimensions differ");
    }

    /* Batch: the leading dimensions of whichever operand has them. */
    p.a_batched = a->ndim > 2;
    p.b_batched = b->ndim > 2;
    const tg_tensor *batch_source = p.a_batched ? a : b;
    if (p.a_batched && p.b_batched) {
        bool same = a->ndim == b->ndim;
        for (int d = 0; same && d < a->ndim - 2; d++) {
            same = a->shape[d] == b->shape[d];
        }
        if (!same) {
            return matmul_shape_error(tape, a, b, trans_a, trans_b,
                                      "batch dimensions must be equal, or one operand 2-D");
        }
    }
    int ndim = batch_source->ndim;
    int shape[TG_MAX_DIMS];
    p.batch = 1;
    for (int d = 0; d < ndim - 2; d++) {
        shape[d] = batch_source->shape[d];
        p.batch *= shape[d];
    }
    shape[ndim - 2] = p.M;
    shape[ndim - 1] = p.N;

    tg_tensor *c = tg_tape_tensor(tape, ndim, shape);
    if (c == NULL) {
        return NULL;
    }
    matmul_forward(c->data, a->data, b->data, &p);

    tg_node *node = tg_tape_record(tape, &matmul_op, c, 2, inputs);
    if (node != NULL) {
        matmul_plan *saved = tg_tape_alloc(tape, sizeof p);
        if (saved == NULL) {
            return NULL;
        }
        *saved = p;
        node->saved = saved;
    }
    return c;
}

tg_tensor *tg_matmul(tg_tape *tape, const tg_tensor *a, const tg_tensor *b) {
    return tg_matmul_t(tape, a, b, false, false);
}
