/* Gradient clipping by global norm and by value.
 *
 * The norm is summed in double in an order that does not depend on the
 * thread count. Each gradient is cut into chunks of CHUNK elements, and the
 * chunks of all parameters are summed in parallel into separate partial
 * sums. The partial sums are then added in chunk order, parameter by
 * parameter in list order. Scaling and clamping are elementwise and split
 * across threads directly.
 */
#include "clip.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>

/* Elements per partial sum of squares. */
#define CHUNK 8192

/* Chunks summed per parallel pass (partial sums on the stack). */
#define BATCH 256

/* Elements above which elementwise loops run on all OpenMP threads. */
#define PARALLEL_MIN 32768

/* Returns whether a loop over `elements` runs in an OpenMP region. A
 * one-thread region is avoided, not only made serial by an if clause,
 * because libgomp allocates the team of every one-thread region from the
 * heap. */
static bool use_threads(size_t elements) {
    return elements > PARALLEL_MIN && omp_get_max_threads() > 1;
}

/* Returns the sum of squares of x[begin, end) in double. Lane j sums the
 * elements at j, j + LANES, j + 2 LANES and so on in order, so the compiler
 * can keep the lanes in vector registers without reordering any sum. */
/* Compiled for AVX-512, AVX2 and the baseline; every clone adds the same
 * lanes in the same order. The clones are called through a resolver, so the
 * function also stays out of line, which matters because GCC 12 stops
 * vectorising the lanes once this is inlined into the loop over chunks. */
__attribute__((target_clones("avx512f", "avx2", "default")))
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

/* Sums the squares of every gradient. Each gradient is cut into chunks of
 * CHUNK elements, and all chunks of all parameters are summed in parallel,
 * BATCH at a time. The chunk sums are then added in order: chunk by chunk
 * into a sum per parameter, and parameter by parameter into the total.
 * Sets *first_bad to the first parameter whose sum is not finite, or -1. */
static double sum_squares_all(const tg_param_list *params, int *first_bad) {
    double total = 0;
    double param_sum = 0;
    *first_bad = -1;
    int param = 0;         /* parameter of the next chunk to plan */
    size_t next = 0;       /* its first element not yet planned */
    while (param < params->count) {
        /* Plan up to BATCH chunks, in order. */
        int chunk_param[BATCH];
        size_t chunk_begin[BATCH];
        size_t chunk_end[BATCH];
        int batch = 0;
        size_t elements = 0;
        while (batch < BATCH && param < params->count) {
            size_t n = params->items[param].tensor->size;
            chunk_param[batch] = param;
            chunk_begin[batch] = next;
            chunk_end[batch] = next + CHUNK < n ? next + CHUNK : n;
            elements += chunk_end[batch] - next;
            next = chunk_end[batch];
            batch++;
            if (next == n) {
                param++;
                next = 0;
            }
        }

        double partial[BATCH];
        if (!use_threads(elements)) {
            for (int c = 0; c < batch; c++) {
                const tg_scalar *grad = params->items[chunk_param[c]].tensor->grad;
                partial[c] = chunk_sum_squares(grad, chunk_begin[c], chunk_end[c]);
            }
        } else {
#pragma omp parallel for schedule(static)
            for (int c = 0; c < batch; c++) {
                const tg_scalar *grad = params->items[chunk_param[c]].tensor->grad;
                partial[c] = chunk_sum_squares(grad, chunk_begin[c], chunk_end[c]);
            }
        }

        for (int c = 0; c < batch; c++) {
            param_sum += partial[c];
            size_t n = params->items[chunk_param[c]].tensor->size;
            if (chunk_end[c] == n) {
                if (!isfinite(param_sum) && *first_bad < 0) {
                    *first_bad = chunk_param[c];
                }
                total += param_sum;
                param_sum = 0;
            }
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

/* Multiplies span `thread` of `threads` equal spans of the concatenation of
 * all gradients (total elements) by factor. */
static void scale_span(const tg_param_list *params, tg_scalar factor, size_t total,
                       size_t thread, size_t threads) {
    size_t begin = total * thread / threads;
    size_t end = total * (thread + 1) / threads;
    size_t offset = 0;
    for (int i = 0; i < params->count && offset < end; i++) {
        tg_tensor *t = params->items[i].tensor;
        size_t lo = begin > offset ? begin - offset : 0;
        size_t hi = end - offset < t->size ? end - offset : t->size;
        offset += t->size;
        for (size_t k = lo; k < hi; k++) {
            t->grad[k] *= factor;
        }
    }
}

/* Multiplies every gradient by factor, in one parallel region when it pays:
 * the threads split the concatenation of all gradients into equal spans. */
static void scale_all(const tg_param_list *params, tg_scalar factor) {
    size_t total = tg_param_list_numel(params);
    if (!use_threads(total)) {
        scale_span(params, factor, total, 0, 1);
        return;
    }
#pragma omp parallel
    scale_span(params, factor, total, (size_t)omp_get_thread_num(),
               (size_t)omp_get_num_threads());
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
    int first_bad;
    double norm = sqrt(sum_squares_all(params, &first_bad));
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
        scale_all(params, (tg_scalar)(max_norm / (norm + 1e-6)));
    }
    return TG_OK;
}

static void clamp(tg_scalar *x, size_t n, tg_scalar limit) {
    if (!use_threads(n)) {
        for (size_t i = 0; i < n; i++) {
            tg_scalar v = x[i];
            x[i] = v < -limit ? -limit : (v > limit ? limit : v);
        }
        return;
    }
#pragma omp parallel for schedule(static)
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
