/* Gradient clipping by global norm and by value.
 *
 * The norm is summed in double in an order that does not depend on the
 * thread count. Each gradient is cut into chunks of CHUNK elements, and the
 * chunks are summed in parallel into separate partial sums. The partial
 * sums are then added in chunk order, parameter by parameter in list order.
 * Scaling and clamping are elementwise and split across threads directly.
 */
#include "clip.h"

#include <math.h>
#include <stdbool.h>

/* Elements per partial sum of squares. */
#define CHUNK 8192

/* Partial sums computed per parallel pass (on the stack). */
#define BATCH 256

/* Elements above which elementwise loops run on all OpenMP threads. */
#define PARALLEL_MIN 32768

/* Returns the sum of squares of x[begin, end) in double. Lane j sums the
 * elements at j, j + LANES, j + 2 LANES and so on in order, so the compiler
 * can keep the lanes in vector registers without reordering any sum. */
/* Kept out of line because GCC 12 stops vectorising the lanes once this is
 * inlined into the loop over chunks. */
static double chunk_sum_squares(const tg_scalar *x, size_t begin, size_t end)
    __attribute__((noinline));

static double chunk_sum_squares(const tg_scalar *x, size_t begin, size_t end) {
    enum { LANES = 8 };
    double acc[LANES] = {0};
    size_t i = begin;
    for (; i + LANES <= end; i += LANES) {
        for (int lane = 0; lane < LANES; lane++) {
            double v = (double)x[i + (size_t)lane];
            acc[lane] += v * v;
        }
    }
    /* The tail has its own sum because writing it into acc[0] stops GCC
     * from vectorising the loop above. */
    double tail = 0;
    for (; i < end; i++) {
        double v = (double)x[i];
        tail += v * v;
    }
    double total = 0;
    for (int lane = 0; lane < LANES; lane++) {
        total += acc[lane];
    }
    return total + tail;
}

static double sum_squares(const tg_scalar *x, size_t n) {
    size_t chunk_count = (n + CHUNK - 1) / CHUNK;
    double total = 0;
    for (size_t first = 0; first < chunk_count; first += BATCH) {
        size_t batch = chunk_count - first < BATCH ? chunk_count - first : BATCH;
        double partial[BATCH];
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (long c = 0; c < (long)batch; c++) {
            size_t begin = (first + (size_t)c) * CHUNK;
            size_t end = begin + CHUNK < n ? begin + CHUNK : n;
            partial[c] = chunk_sum_squares(x, begin, end);
        }
        for (size_t c = 0; c < batch; c++) {
            total += partial[c];
        }
    }
    return total;
}

static tg_status check_grads(const tg_param_list *params, const char *function_name) {
    for (int i = 0; i < params->count; i++) {
        if (params->items[i].tensor->grad == NULL) {
            return tg_set_error(TG_ERR_INVALID, "%s: parameter '%s' has no gradient buffer; call "
                                "tg_tensor_set_requires_grad(tensor, true) on every parameter",
                                function_name, params->items[i].name);
        }
    }
    return TG_OK;
}

static void scale(tg_scalar *x, size_t n, tg_scalar factor) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long i = 0; i < (long)n; i++) {
        x[i] *= factor;
    }
}

tg_status tg_clip_grad_norm(const tg_param_list *params, double max_norm, double *norm_before) {
    const char *function_name = "tg_clip_grad_norm";
    if (!isfinite(max_norm) || max_norm <= 0) {
        return tg_set_error(TG_ERR_INVALID, "%s: max_norm %g is invalid; pass a positive, finite "
                            "norm", function_name, max_norm);
    }
    tg_status status = check_grads(params, function_name);
    if (status != TG_OK) {
        return status;
    }

    /* Sum the squares, remembering the first parameter that is not finite. */
    double total = 0;
    int first_bad = -1;
    for (int i = 0; i < params->count; i++) {
        const tg_tensor *t = params->items[i].tensor;
        double sum = sum_squares(t->grad, t->size);
        if (!isfinite(sum) && first_bad < 0) {
            first_bad = i;
        }
        total += sum;
    }
    double norm = sqrt(total);
    if (norm_before != NULL) {
        *norm_before = norm;
    }
    if (!isfinite(norm)) {
        const char *name = first_bad >= 0 ? params->items[first_bad].name : "(none)";
        return tg_set_error(TG_ERR_NUMERIC, "%s: the gradient norm is %g, first non-finite in "
                            "parameter '%s'; gradients were left unchanged; skip this step and "
                            "check the loss and the learning rate", function_name, norm, name);
    }

    /* NOTE: PyTorch multiplies by min(coefficient, 1) unconditionally, so it
     * also shrinks gradients, by at most a relative 1e-6 / max_norm, when the
     * norm is just under max_norm. Here such gradients stay exactly as they
     * are. */
    if (norm > max_norm) {
        tg_scalar factor = (tg_scalar)(max_norm / (norm + 1e-6));
        for (int i = 0; i < params->count; i++) {
            tg_tensor *t = params->items[i].tensor;
            scale(t->grad, t->size, factor);
        }
    }
    return TG_OK;
}

static void clamp(tg_scalar *x, size_t n, tg_scalar limit) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long i = 0; i < (long)n; i++) {
        tg_scalar v = x[i];
        x[i] = v < -limit ? -limit : (v > limit ? limit : v);
    }
}

tg_status tg_clip_grad_value(const tg_param_list *params, double clip_value) {
    const char *function_name = "tg_clip_grad_value";
    if (!isfinite(clip_value) || clip_value <= 0) {
        return tg_set_error(TG_ERR_INVALID, "%s: clip_value %g is invalid; pass a positive, "
                            "finite value", function_name, clip_value);
    }
    tg_status status = check_grads(params, function_name);
    if (status != TG_OK) {
        return status;
    }
    for (int i = 0; i < params->count; i++) {
        tg_tensor *t = params->items[i].tensor;
        clamp(t->grad, t->size, (tg_scalar)clip_value);
    }
    return TG_OK;
}
