/* Layer normalisation over the last dimension, forward and backward fused.
 *
 * Shapes: x (N, C) after folding the leading dimensions into N rows, gamma (C),
 * beta (C), y (N, C).
 *
 * Forward, per row:
 *     mean = sum(x) / C
 *     var  = sum((x - mean)^2) / C                 (biased)
 *     rstd = 1 / sqrt(var + eps)
 *     xhat = (x - mean) * rstd
 *     y    = xhat * gamma + beta
 * Backward, per row, with g = dy * gamma (g = dy without gamma):
 *     dx     += rstd * (g - mean(g) - xhat * mean(g * xhat))
 *     dgamma += dy * xhat,   summed over rows
 *     dbeta  += dy,          summed over rows
 * The dx line follows from differentiating xhat through both the mean and
 * rstd. The forward saves mean and rstd of every row in double, and only when
 * it records a node; the backward recomputes xhat from x.
 *
 * Numerical care: the mean is taken first and the variance from the centred
 * values, so a large common offset in a row does not cancel the variance
 * away as the one-pass E[x^2] - mean^2 would (layernorm_row has the details).
 * Row sums run in SIMD lanes of the scalar type over blocks of LN_BLOCK
 * elements and add the lanes and blocks in double. The mean is subtracted as
 * two scalars hi + lo with hi + lo = mean to double precision: x - hi is
 * exact for x near the mean, so the float build centres as accurately as
 * double would. A constant row has var 0, which gives xhat 0 and
 * rstd = 1 / sqrt(eps).
 *
 * Threads and determinism: rows are independent, so y and dx are computed in
 * parallel over blocks of rows, which the threads take in turn. dgamma and
 * dbeta sum over rows: the rows are cut into chunks of LN_CHUNK_ROWS, each
 * chunk adds its rows in order into its own partial sums, and the partials
 * are then added chunk by chunk in double.
 * The order of every sum is fixed by N and C alone, never by the thread
 * count. The per-row kernels are compiled twice, for AVX2 and for the
 * baseline, and the CPU picks one at load time; without FMA contraction
 * (ISO C mode) both give the same bits.
 */
#include "layernorm.h"

#include <omp.h>
#include <stdbool.h>
#include <string.h>
#include <tgmath.h>

#include "../op.h"

/* Rows per chunk of the dgamma and dbeta partial sums. */
#define LN_CHUNK_ROWS 32
/* Number of elements below which the kernels run on one thread. */
#define LN_PARALLEL_MIN 16384

typedef struct layernorm_saved {
    double *mean;     /* (N) */
    double *rstd;     /* (N) */
    long N;
    int C;
    int gamma_input;  /* index of gamma among the node's inputs, or -1 */
    int beta_input;   /* index of beta, or -1 */
} layernorm_saved;

/* The pieces hi + lo of a row mean and the row's rstd, as scalars. */
typedef struct row_centre {
    tg_scalar hi;
    tg_scalar lo;
    tg_scalar rstd;
} row_centre;

static row_centre row_centre_from(double mean, double rstd) {
    row_centre rc;
    rc.hi = (tg_scalar)mean;
    rc.lo = (tg_scalar)(mean - (double)rc.hi);
    rc.rstd = (tg_scalar)rstd;
    return rc;
}

static inline tg_scalar normalise(tg_scalar x, row_centre rc) {
    return ((x - rc.hi) - rc.lo) * rc.rstd;
}

/* Sixteen bytes of scalars: four floats, or two doubles in the float64 build.
 * GNU C vector types make the row sums use SIMD registers while the order of
 * every sum stays fixed by the code. */
typedef tg_scalar simd __attribute__((vector_size(16)));
#define SIMD_WIDTH ((int)(sizeof(simd) / sizeof(tg_scalar)))

/* Elements per block of a row sum: within a block, two SIMD accumulators add
 * at most LN_BLOCK / 8 = 32 terms per float lane in the scalar type; the lanes
 * and the blocks are added in double. */
#define LN_BLOCK 256

static inline simd simd_load(const tg_scalar *p) {
    simd v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Adds the lanes of a and then of b in double, in lane order. */
static inline double simd_total(simd a, simd b) {
    double total = 0.0;
    for (int l = 0; l < SIMD_WIDTH; l++) {
        total += (double)a[l];
    }
    for (int l = 0; l < SIMD_WIDTH; l++) {
        total += (double)b[l];
    }
    return total;
}

/* Returns the end of the block of a row that starts at start. */
static inline int block_end(int start, int C) {
    return C - start < LN_BLOCK ? C : start + LN_BLOCK;
}

/* Computes mean and rstd of one row and writes y = xhat * gamma + beta;
 * gamma and beta may be NULL.
 * The mean comes in two steps: m0, the plain mean, and then the mean of
 * x - m0, whose terms are small and cancel nothing, so the rounding of the
 * large partial sums in m0 does not survive. The same pass sums (x - m0)^2,
 * and var = mean((x - m0)^2) - (mean - m0)^2 is the corrected two-pass
 * formula (Bjorck), exact up to rounding of the centred terms. */
__attribute__((target_clones("avx2", "default")))
static void layernorm_row(tg_scalar *restrict y, double *mean_out, double *rstd_out,
                          const tg_scalar *restrict x, const tg_scalar *restrict gamma,
                          const tg_scalar *restrict beta, int C, double eps) {
    double sum = 0.0;
    for (int start = 0; start < C; start += LN_BLOCK) {
        int end = block_end(start, C);
        simd a0 = {0};
        simd a1 = {0};
        int i = start;
        for (; i + 2 * SIMD_WIDTH <= end; i += 2 * SIMD_WIDTH) {
            a0 += simd_load(x + i);
            a1 += simd_load(x + i + SIMD_WIDTH);
        }
        double block = simd_total(a0, a1);
        for (; i < end; i++) {
            block += (double)x[i];
        }
        sum += block;
    }
    row_centre first = row_centre_from(sum / C, 1.0);

    /* Centred sums: d = x - m0 and d^2. */
    double sum_d = 0.0;
    double sum_dd = 0.0;
    for (int start = 0; start < C; start += LN_BLOCK) {
        int end = block_end(start, C);
        simd d0 = {0};
        simd d1 = {0};
        simd dd0 = {0};
        simd dd1 = {0};
        int i = start;
        for (; i + 2 * SIMD_WIDTH <= end; i += 2 * SIMD_WIDTH) {
            simd c0 = (simd_load(x + i) - first.hi) - first.lo;
            simd c1 = (simd_load(x + i + SIMD_WIDTH) - first.hi) - first.lo;
            d0 += c0;
            d1 += c1;
            dd0 += c0 * c0;
            dd1 += c1 * c1;
        }
        double block_d = simd_total(d0, d1);
        double block_dd = simd_total(dd0, dd1);
        for (; i < end; i++) {
            tg_scalar c = (x[i] - first.hi) - first.lo;
            block_d += (double)c;
            block_dd += (double)(c * c);
        }
        sum_d += block_d;
        sum_dd += block_dd;
    }
    double shift = sum_d / C;
    double var = sum_dd / C - shift * shift;
    double mean = sum / C + shift;
    double rstd = 1.0 / sqrt((var > 0.0 ? var : 0.0) + eps);
    if (mean_out != NULL) {
        *mean_out = mean;
        *rstd_out = rstd;
    }

    row_centre rc = row_centre_from(mean, rstd);
    if (gamma != NULL && beta != NULL) {
        for (int i = 0; i < C; i++) {
            y[i] = normalise(x[i], rc) * gamma[i] + beta[i];
        }
    } else if (gamma != NULL) {
        for (int i = 0; i < C; i++) {
            y[i] = normalise(x[i], rc) * gamma[i];
        }
    } else if (beta != NULL) {
        for (int i = 0; i < C; i++) {
            y[i] = normalise(x[i], rc) + beta[i];
        }
    } else {
        for (int i = 0; i < C; i++) {
            y[i] = normalise(x[i], rc);
        }
    }
}

/* Returns whether N rows of C run in an OpenMP region. A one-thread region
 * is avoided, not only made serial by an if clause, because libgomp
 * allocates the team of every one-thread region from the heap. */
static bool use_threads(long N, int C) {
    return N * C >= LN_PARALLEL_MIN && omp_get_max_threads() > 1;
}

/* Writes y (N, C), and mean (N) and rstd (N) unless they are NULL. */
static void layernorm_forward(tg_scalar *y, double *mean, double *rstd, const tg_scalar *x,
                              const tg_scalar *gamma, const tg_scalar *beta, long N, int C,
                              double eps) {
    if (!use_threads(N, C)) {
        for (long n = 0; n < N; n++) {
            size_t offset = (size_t)n * (size_t)C;
            layernorm_row(y + offset, mean != NULL ? mean + n : NULL,
                          rstd != NULL ? rstd + n : NULL, x + offset, gamma, beta, C, eps);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, LN_CHUNK_ROWS)
    for (long n = 0; n < N; n++) {
        size_t offset = (size_t)n * (size_t)C;
        layernorm_row(y + offset, mean != NULL ? mean + n : NULL,
                      rstd != NULL ? rstd + n : NULL, x + offset, gamma, beta, C, eps);
    }
}

/* Adds dx for one row, rstd * (g - mean(g) - xhat * mean(g * xhat)) with
 * g = dy * gamma, or writes it when overwrite is true, and, if part_gamma is
 * not NULL, adds dy * xhat into part_gamma and dy into part_beta. gamma may
 * be NULL for a gain of 1. */
__attribute__((target_clones("avx2", "default")))
static void row_backward(tg_scalar *dx, bool overwrite, tg_scalar *part_gamma,
                         tg_scalar *part_beta, const tg_scalar *dy, const tg_scalar *x,
                         row_centre rc, const tg_scalar *gamma, int C) {
    if (part_gamma != NULL) {
        for (int i = 0; i < C; i++) {
            part_gamma[i] += dy[i] * normalise(x[i], rc);
            part_beta[i] += dy[i];
        }
    }
    if (dx == NULL) {
        return;
    }
    double sum_g = 0.0;
    double sum_gx = 0.0;
    for (int start = 0; start < C; start += LN_BLOCK) {
        int end = block_end(start, C);
        simd g0 = {0};
        simd g1 = {0};
        simd gx0 = {0};
        simd gx1 = {0};
        int i = start;
        for (; i + 2 * SIMD_WIDTH <= end; i += 2 * SIMD_WIDTH) {
            simd a = simd_load(dy + i);
            simd b = simd_load(dy + i + SIMD_WIDTH);
            if (gamma != NULL) {
                a *= simd_load(gamma + i);
                b *= simd_load(gamma + i + SIMD_WIDTH);
            }
            g0 += a;
            g1 += b;
            gx0 += a * (((simd_load(x + i) - rc.hi) - rc.lo) * rc.rstd);
            gx1 += b * (((simd_load(x + i + SIMD_WIDTH) - rc.hi) - rc.lo) * rc.rstd);
        }
        double block_g = simd_total(g0, g1);
        double block_gx = simd_total(gx0, gx1);
        for (; i < end; i++) {
            tg_scalar g = gamma != NULL ? dy[i] * gamma[i] : dy[i];
            block_g += (double)g;
            block_gx += (double)(g * normalise(x[i], rc));
        }
        sum_g += block_g;
        sum_gx += block_gx;
    }
    tg_scalar mean_g = (tg_scalar)(sum_g / C);
    tg_scalar mean_gx = (tg_scalar)(sum_gx / C);
    if (gamma != NULL && overwrite) {
        for (int i = 0; i < C; i++) {
            tg_scalar g = dy[i] * gamma[i];
            dx[i] = rc.rstd * ((g - mean_g) - normalise(x[i], rc) * mean_gx);
        }
    } else if (gamma != NULL) {
        for (int i = 0; i < C; i++) {
            tg_scalar g = dy[i] * gamma[i];
            dx[i] += rc.rstd * ((g - mean_g) - normalise(x[i], rc) * mean_gx);
        }
    } else if (overwrite) {
        for (int i = 0; i < C; i++) {
            dx[i] = rc.rstd * ((dy[i] - mean_g) - normalise(x[i], rc) * mean_gx);
        }
    } else {
        for (int i = 0; i < C; i++) {
            dx[i] += rc.rstd * ((dy[i] - mean_g) - normalise(x[i], rc) * mean_gx);
        }
    }
}

/* Runs row_backward over the rows of one chunk. partials, unless NULL, has
 * room for 2 * C scalars per chunk; the chunk's dgamma and dbeta partials are
 * written there. */
static void backward_chunk(tg_scalar *dx, bool dx_first, tg_scalar *partials,
                           const tg_scalar *dy, const tg_scalar *x, const double *mean,
                           const double *rstd, const tg_scalar *gamma, long N, int C,
                           long chunk) {
    tg_scalar *part_gamma = NULL;
    tg_scalar *part_beta = NULL;
    if (partials != NULL) {
        part_gamma = partials + (size_t)chunk * 2 * (size_t)C;
        part_beta = part_gamma + C;
        memset(part_gamma, 0, 2 * (size_t)C * sizeof *part_gamma);
    }
    long end = (chunk + 1) * LN_CHUNK_ROWS < N ? (chunk + 1) * LN_CHUNK_ROWS : N;
    for (long n = chunk * LN_CHUNK_ROWS; n < end; n++) {
        size_t offset = (size_t)n * (size_t)C;
        row_backward(dx != NULL ? dx + offset : NULL, dx_first, part_gamma, part_beta,
                     dy + offset, x + offset, row_centre_from(mean[n], rstd[n]), gamma, C);
    }
}

/* Adds into dx (N, C), or writes it when dx_first is true, and adds into
 * dgamma (C) and dbeta (C). Each of the three may be NULL. partials has room
 * for 2 * C scalars per chunk of rows when dgamma or dbeta is wanted. */
static void layernorm_backward_kernel(tg_scalar *dx, bool dx_first, tg_scalar *dgamma,
                                      tg_scalar *dbeta, tg_scalar *partials,
                                      const tg_scalar *dy, const tg_scalar *x,
                                      const double *mean, const double *rstd,
                                      const tg_scalar *gamma, long N, int C) {
    long n_chunks = (N + LN_CHUNK_ROWS - 1) / LN_CHUNK_ROWS;
    bool want_params = dgamma != NULL || dbeta != NULL;
    tg_scalar *chunk_partials = want_params ? partials : NULL;
    if (!use_threads(N, C)) {
        for (long chunk = 0; chunk < n_chunks; chunk++) {
            backward_chunk(dx, dx_first, chunk_partials, dy, x, mean, rstd, gamma, N, C,
                           chunk);
        }
    } else {
#pragma omp parallel for schedule(dynamic)
        for (long chunk = 0; chunk < n_chunks; chunk++) {
            backward_chunk(dx, dx_first, chunk_partials, dy, x, mean, rstd, gamma, N, C,
                           chunk);
        }
    }
    if (!want_params) {
        return;
    }

    /* Add the chunk partials in chunk order, in double. */
    for (int i = 0; i < C; i++) {
        double sum_gamma = 0.0;
        double sum_beta = 0.0;
        for (long chunk = 0; chunk < n_chunks; chunk++) {
            sum_gamma += (double)partials[(size_t)chunk * 2 * (size_t)C + (size_t)i];
            sum_beta += (double)partials[(size_t)chunk * 2 * (size_t)C + (size_t)C + (size_t)i];
        }
        if (dgamma != NULL) {
            dgamma[i] += (tg_scalar)sum_gamma;
        }
        if (dbeta != NULL) {
            dbeta[i] += (tg_scalar)sum_beta;
        }
    }
}

static void layernorm_backward(tg_node *node) {
    const layernorm_saved *s = node->saved;
    const tg_scalar *gamma = NULL;
    tg_scalar *dgamma = NULL;
    tg_scalar *dbeta = NULL;
    if (s->gamma_input >= 0) {
        gamma = node->inputs[s->gamma_input]->data;
        dgamma = tg_node_input_grad(node, s->gamma_input);
    }
    if (s->beta_input >= 0) {
        dbeta = tg_node_input_grad(node, s->beta_input);
    }
    tg_scalar *partials = NULL;
    if (dgamma != NULL || dbeta != NULL) {
        size_t n_chunks = (size_t)((s->N + LN_CHUNK_ROWS - 1) / LN_CHUNK_ROWS);
        partials = tg_tape_alloc(node->tape, n_chunks * 2 * (size_t)s->C * sizeof *partials);
        if (partials == NULL) {
            return;
        }
    }
    /* Fetched after gamma's and beta's gradients, so that it cannot share a
     * freshly allocated buffer with either. */
    bool dx_first;
    tg_scalar *dx = tg_node_input_grad_first(node, 0, &dx_first);
    layernorm_backward_kernel(dx, dx_first, dgamma, dbeta, partials, node->output->grad,
                              node->inputs[0]->data, s->mean, s->rstd, gamma, s->N, s->C);
}

static const tg_op layernorm_op = {"layernorm", layernorm_backward};

/* Records a shape error unless param is NULL or has shape (C). */
static bool param_shape_ok(tg_tape *tape, const char *name, const tg_tensor *param,
                           const tg_tensor *x) {
    int C = x->shape[x->ndim - 1];
    if (param == NULL || (param->ndim == 1 && param->shape[0] == C)) {
        return true;
    }
    char ps[128];
    char xs[128];
    tg_op_fail(tape, TG_ERR_SHAPE,
               "layernorm: %s has shape %s but x has shape %s; %s must have shape (%d), the "
               "last dimension of x",
               name, tg_shape_format(ps, sizeof ps, param->ndim, param->shape),
               tg_shape_format(xs, sizeof xs, x->ndim, x->shape), name, C);
    return false;
}

tg_tensor *tg_layernorm(tg_tape *tape, const tg_tensor *x, const tg_tensor *gamma,
                        const tg_tensor *beta, double eps) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    if (x->ndim < 1) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "layernorm: x has shape () but needs at least one dimension, the C "
                          "values of each row to normalise");
    }
    if (!param_shape_ok(tape, "gamma", gamma, x) || !param_shape_ok(tape, "beta", beta, x)) {
        return NULL;
    }
    if (!isfinite(eps) || eps < 0.0) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "layernorm: eps is %g but must be finite and at least 0; 1e-5 is the "
                          "usual value", eps);
    }
    int C = x->shape[x->ndim - 1];
    long N = (long)(x->size / (size_t)C);

    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    const tg_tensor *inputs[3] = {x, NULL, NULL};
    int n_inputs = 1;
    int gamma_input = -1;
    int beta_input = -1;
    if (gamma != NULL) {
        gamma_input = n_inputs;
        inputs[n_inputs++] = gamma;
    }
    if (beta != NULL) {
        beta_input = n_inputs;
        inputs[n_inputs++] = beta;
    }

    /* Record first, so that mean and rstd are stored only for a backward. */
    tg_node *node = tg_tape_record(tape, &layernorm_op, y, n_inputs, inputs);
    layernorm_saved *saved = NULL;
    if (node != NULL) {
        saved = tg_tape_alloc(tape, sizeof *saved);
        double *stats = tg_tape_alloc(tape, 2 * (size_t)N * sizeof *stats);
        if (saved == NULL || stats == NULL) {
            return NULL;
        }
        saved->mean = stats;
        saved->rstd = stats + N;
        saved->N = N;
        saved->C = C;
        saved->gamma_input = gamma_input;
        saved->beta_input = beta_input;
        node->saved = saved;
    } else if (tg_tape_status(tape) != TG_OK) {
        return NULL;
    }
    layernorm_forward(y->data, saved != NULL ? saved->mean : NULL,
                      saved != NULL ? saved->rstd : NULL, x->data,
                      gamma != NULL ? gamma->data : NULL, beta != NULL ? beta->data : NULL, N, C,
                      eps);
    return y;
}
