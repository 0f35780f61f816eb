/* cross_entropy and mse.
 *
 * Shapes: logits (..., V) are N = size / V rows, with targets (N) class
 * indices; mse takes prediction and target of one shape with n elements. Both
 * losses are 0-dimensional.
 *
 * cross_entropy, with K the set of rows whose target t_r is not ignored:
 *   Forward:  m_r = max_j x_rj,  lse_r = m_r + log(sum_j exp(x_rj - m_r)),
 *             loss = (1 / |K|) sum_{r in K} (lse_r - x_{r t_r}),  0 if K is empty
 *   Backward: dx_rj += (exp(x_rj - lse_r) - [j = t_r]) dloss / |K| for r in K,
 *             nothing for ignored rows or an empty K
 *   The forward saves lse (N) and a copy of the targets, so the backward is
 *   one pass over the logits that neither searches the maximum nor sums again.
 * mse, with d = prediction - target:
 *   Forward:  loss = (1 / n) sum d^2
 *   Backward: dprediction += (2 / n) d dloss,  dtarget -= (2 / n) d dloss
 *   The forward saves nothing; the backward reads both inputs.
 *
 * Numerics: subtracting the row maximum keeps exp from overflowing, and the
 * row sum is at least 1, so the log is finite for any finite logits. The loss
 * accumulates in double.
 *
 * Determinism: the rows (or elements) are cut into at most LOSS_SLICES slices
 * whose bounds depend only on the count. One OpenMP loop runs over the slices,
 * each summing its rows in order, and the slice sums are then added in order,
 * so the loss is the same for any thread count.
 */
#include "loss.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "../op.h"
#include "parallel_internal.h"

/* Maximum number of slices of a loss sum. */
#define LOSS_SLICES 256

/* Returns the first index of slice s of n items cut into `slices` parts. */
static size_t slice_begin(size_t n, size_t slices, size_t s) {
    size_t base = n / slices;
    size_t extra = n % slices;
    return s * base + (s < extra ? s : extra);
}

/* ---- cross_entropy ------------------------------------------------------- */

/* Values the cross-entropy forward saves for its backward. */
typedef struct cross_entropy_saved {
    tg_scalar *lse;    /* (N) log-sum-exp of each kept row */
    int32_t *targets;  /* (N) copy of the caller's targets */
} cross_entropy_saved;

/* Returns the sum of lse_r - x_{r t_r} over the kept rows r in [begin, end),
 * writing lse_r into lse when lse is not NULL. */
static double cross_entropy_slice(tg_scalar *lse, const tg_scalar *logits,
                                  const int32_t *targets, size_t V, int32_t ignore_index,
                                  size_t begin, size_t end) {
    double acc = 0.0;
    for (size_t r = begin; r < end; r++) {
        if (targets[r] == ignore_index) {
            continue;
        }
        const tg_scalar *x_r = logits + r * V;
        tg_scalar m = x_r[0];
        for (size_t j = 1; j < V; j++) {
            m = x_r[j] > m ? x_r[j] : m;
        }
        double sum = 0.0;
        for (size_t j = 0; j < V; j++) {
            sum += (double)exp(x_r[j] - m);
        }
        double lse_r = (double)m + log(sum);
        if (lse != NULL) {
            lse[r] = (tg_scalar)lse_r;
        }
        acc += lse_r - (double)x_r[targets[r]];
    }
    return acc;
}

/* Returns the sum over kept rows of lse_r - x_{r t_r}, and writes lse_r into
 * lse (N) for kept rows when lse is not NULL. Every target must already be
 * in [0, V) or equal to ignore_index. */
static double cross_entropy_forward(tg_scalar *lse, const tg_scalar *logits,
                                    const int32_t *targets, size_t N, size_t V,
                                    int32_t ignore_index) {
    double partials[LOSS_SLICES];
    size_t slices = N < LOSS_SLICES ? N : LOSS_SLICES;
    if (!tg__use_threads(N * V)) {
        for (size_t s = 0; s < slices; s++) {
            partials[s] = cross_entropy_slice(lse, logits, targets, V, ignore_index,
                                              slice_begin(N, slices, s),
                                              slice_begin(N, slices, s + 1));
        }
    } else {
#pragma omp parallel for schedule(static)
        for (long s = 0; s < (long)slices; s++) {
            partials[s] = cross_entropy_slice(lse, logits, targets, V, ignore_index,
                                              slice_begin(N, slices, (size_t)s),
                                              slice_begin(N, slices, (size_t)s + 1));
        }
    }
    double total = 0.0;
    for (size_t s = 0; s < slices; s++) {
        total += partials[s];
    }
    return total;
}

/* Adds (softmax - onehot) * scale into row r of dlogits unless the row is
 * ignored. With overwrite, writes it instead, and writes zeros for an ignored row. */
static void cross_entropy_row_backward(tg_scalar *dlogits, bool overwrite,
                                       const tg_scalar *logits, const tg_scalar *lse,
                                       const int32_t *targets, size_t V, int32_t ignore_index,
                                       tg_scalar scale, size_t r) {
    int32_t t = targets[r];
    tg_scalar *dx_r = dlogits + r * V;
    if (t == ignore_index) {
        if (overwrite) {
            memset(dx_r, 0, V * sizeof *dx_r);
        }
        return;
    }
    const tg_scalar *x_r = logits + r * V;
    tg_scalar lse_r = lse[r];
    if (overwrite) {
        for (size_t j = 0; j < V; j++) {
            dx_r[j] = exp(x_r[j] - lse_r) * scale;
        }
    } else {
        for (size_t j = 0; j < V; j++) {
            dx_r[j] += exp(x_r[j] - lse_r) * scale;
        }
    }
    dx_r[t] -= scale;
}

/* Adds (softmax - onehot) * scale into dlogits for kept rows, where scale is
 * dloss / count, or with overwrite writes every row. */
static void cross_entropy_backward(tg_scalar *dlogits, bool overwrite, const tg_scalar *logits,
                                   const tg_scalar *lse, const int32_t *targets, size_t N,
                                   size_t V, int32_t ignore_index, tg_scalar scale) {
    if (!tg__use_threads(N * V)) {
        for (size_t r = 0; r < N; r++) {
            cross_entropy_row_backward(dlogits, overwrite, logits, lse, targets, V, ignore_index,
                                       scale, r);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)N; r++) {
        cross_entropy_row_backward(dlogits, overwrite, logits, lse, targets, V, ignore_index,
                                   scale, (size_t)r);
    }
}

static void cross_entropy_node_backward(tg_node *node) {
    size_t count = (size_t)node->ints[2];
    bool first;
    tg_scalar *dlogits = tg_node_input_grad_first(node, 0, &first);
    if (dlogits == NULL) {
        return;
    }
    if (count == 0) {
        if (first) {
            memset(dlogits, 0, node->inputs[0]->size * sizeof *dlogits);
        }
        return;
    }
    const cross_entropy_saved *saved = node->saved;
    tg_scalar scale = (tg_scalar)((double)node->output->grad[0] / (double)count);
    cross_entropy_backward(dlogits, first, node->inputs[0]->data, saved->lse, saved->targets,
                           (size_t)node->ints[0], (size_t)node->ints[1], (int32_t)node->ints[3],
                           scale);
}

static const tg_op cross_entropy_op = {"cross_entropy", cross_entropy_node_backward};

/* Checks every target and returns the number of kept rows, or -1 after
 * recording an error that names the first invalid target. */
static long validate_targets(tg_tape *tape, const tg_tensor *logits, const int32_t *targets,
                             size_t N, size_t V, int32_t ignore_index) {
    long count = 0;
    for (size_t r = 0; r < N; r++) {
        int32_t t = targets[r];
        if (t == ignore_index && ignore_index != TG_IGNORE_INDEX_NONE) {
            continue;
        }
        if (t < 0 || (size_t)t >= V) {
            char ls[128];
            char ignore[64];
            tg_shape_format(ls, sizeof ls, logits->ndim, logits->shape);
            if (ignore_index == TG_IGNORE_INDEX_NONE) {
                snprintf(ignore, sizeof ignore, "no ignore_index is set");
            } else {
                snprintf(ignore, sizeof ignore, "ignore_index is %d", (int)ignore_index);
            }
            tg_op_fail(tape, TG_ERR_INVALID,
                       "cross_entropy: target %d at position %zu is invalid for logits of shape "
                       "%s; a target must be a class index in [0, %zu) or ignore_index, and %s",
                       (int)t, r, ls, V, ignore);
            return -1;
        }
        count++;
    }
    return count;
}

tg_tensor *tg_cross_entropy(tg_tape *tape, const tg_tensor *logits, const int32_t *targets,
                            int32_t ignore_index) {
    if (!tg_op_inputs_ok(tape, 1, &logits)) {
        return NULL;
    }
    if (logits->ndim == 0) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "cross_entropy: logits have shape () but need at least one dimension; "
                          "pass logits of shape (..., V)");
    }
    size_t V = (size_t)logits->shape[logits->ndim - 1];
    size_t N = logits->size / V;
    if (targets == NULL) {
        char ls[128];
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "cross_entropy: targets is NULL; pass %zu class indices, one per row "
                          "of logits of shape %s",
                          N, tg_shape_format(ls, sizeof ls, logits->ndim, logits->shape));
    }
    long count = validate_targets(tape, logits, targets, N, V, ignore_index);
    if (count < 0) {
        return NULL;
    }

    tg_tensor *loss = tg_tape_tensor(tape, 0, logits->shape);
    if (loss == NULL) {
        return NULL;
    }
    cross_entropy_saved *saved = NULL;
    tg_node *node = tg_tape_record(tape, &cross_entropy_op, loss, 1, &logits);
    if (node != NULL) {
        saved = tg_tape_alloc(tape, sizeof *saved);
        if (saved == NULL) {
            return NULL;
        }
        saved->lse = tg_tape_alloc(tape, N * sizeof *saved->lse);
        saved->targets = tg_tape_alloc(tape, N * sizeof *saved->targets);
        if (saved->lse == NULL || saved->targets == NULL) {
            return NULL;
        }
        memcpy(saved->targets, targets, N * sizeof *targets);
        node->saved = saved;
        node->ints[0] = (int64_t)N;
        node->ints[1] = (int64_t)V;
        node->ints[2] = count;
        node->ints[3] = ignore_index;
    }

    /* With no ignore_index, no validated target equals INT32_MIN, so the
     * kernels' plain comparison ignores nothing. */
    double total = cross_entropy_forward(saved != NULL ? saved->lse : NULL, logits->data, targets,
                                         N, V, ignore_index);
    loss->data[0] = count > 0 ? (tg_scalar)(total / (double)count) : 0;
    return loss;
}

/* ---- mse ----------------------------------------------------------------- */

/* Returns the sum of (prediction - target)^2 over the elements [begin, end). */
static double mse_slice(const tg_scalar *prediction, const tg_scalar *target, size_t begin,
                        size_t end) {
    double acc = 0.0;
    for (size_t i = begin; i < end; i++) {
        double d = (double)prediction[i] - (double)target[i];
        acc += d * d;
    }
    return acc;
}

/* Returns the sum of (prediction - target)^2 over n elements. */
static double mse_forward(const tg_scalar *prediction, const tg_scalar *target, size_t n) {
    double partials[LOSS_SLICES];
    size_t slices = n < LOSS_SLICES ? n : LOSS_SLICES;
    if (!tg__use_threads(n)) {
        for (size_t s = 0; s < slices; s++) {
            partials[s] = mse_slice(prediction, target, slice_begin(n, slices, s),
                                    slice_begin(n, slices, s + 1));
        }
    } else {
#pragma omp parallel for schedule(static)
        for (long s = 0; s < (long)slices; s++) {
            partials[s] = mse_slice(prediction, target, slice_begin(n, slices, (size_t)s),
                                    slice_begin(n, slices, (size_t)s + 1));
        }
    }
    double total = 0.0;
    for (size_t s = 0; s < slices; s++) {
        total += partials[s];
    }
    return total;
}

/* Adds scale * (prediction - target) into dprediction and subtracts it from
 * dtarget over the elements [begin, end). Either gradient may be NULL. */
static void mse_backward_range(tg_scalar *dprediction, tg_scalar *dtarget,
                               const tg_scalar *prediction, const tg_scalar *target, size_t begin,
                               size_t end, tg_scalar scale) {
    for (size_t i = begin; i < end; i++) {
        tg_scalar g = scale * (prediction[i] - target[i]);
        if (dprediction != NULL) {
            dprediction[i] += g;
        }
        if (dtarget != NULL) {
            dtarget[i] -= g;
        }
    }
}

/* Adds scale * (prediction - target) into dprediction and subtracts it from
 * dtarget. Either gradient may be NULL. */
static void mse_backward(tg_scalar *dprediction, tg_scalar *dtarget, const tg_scalar *prediction,
                         const tg_scalar *target, size_t n, tg_scalar scale) {
    if (!tg__use_threads(n)) {
        mse_backward_range(dprediction, dtarget, prediction, target, 0, n, scale);
        return;
    }
    int threads = omp_get_max_threads();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < threads; t++) {
        mse_backward_range(dprediction, dtarget, prediction, target,
                           slice_begin(n, (size_t)threads, (size_t)t),
                           slice_begin(n, (size_t)threads, (size_t)t + 1), scale);
    }
}

static void mse_node_backward(tg_node *node) {
    tg_scalar *dprediction = tg_node_input_grad(node, 0);
    tg_scalar *dtarget = tg_node_input_grad(node, 1);
    size_t n = node->inputs[0]->size;
    tg_scalar scale = (tg_scalar)(2.0 * (double)node->output->grad[0] / (double)n);
    mse_backward(dprediction, dtarget, node->inputs[0]->data, node->inputs[1]->data, n, scale);
}

static const tg_op mse_op = {"mse", mse_node_backward};

tg_tensor *tg_mse(tg_tape *tape, const tg_tensor *prediction, const tg_tensor *target) {
    const tg_tensor *inputs[2] = {prediction, target};
    if (!tg_op_inputs_ok(tape, 2, inputs)) {
        return NULL;
    }
    if (!tg_tensor_same_shape(prediction, target)) {
        char ps[128];
        char ts[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "mse: prediction has shape %s but target has shape %s; the shapes "
                          "must be equal",
                          tg_shape_format(ps, sizeof ps, prediction->ndim, prediction->shape),
                          tg_shape_format(ts, sizeof ts, target->ndim, target->shape));
    }
    tg_tensor *loss = tg_tape_tensor(tape, 0, prediction->shape);
    if (loss == NULL) {
        return NULL;
    }
    double total = mse_forward(prediction->data, target->data, prediction->size);
    loss->data[0] = (tg_scalar)(total / (double)prediction->size);
    tg_tape_record(tape, &mse_op, loss, 2, inputs);
    return loss;
}
