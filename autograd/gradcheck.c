#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

tg_gradcheck_options tg_gradcheck_default_options(void) {
    tg_gradcheck_options options = {
#ifdef TG_SCALAR_DOUBLE
        .eps = 1e-6,
        .tolerance = 1e-6,
#else
        .eps = 1e-3,
        .tolerance = 1e-2,
#endif
        .scale_floor = 1.0,
        .seed = 1,
    };
    return options;
}

/* Runs fn without recording and returns sum_i weights_i * out_i in double, or
 * NAN after storing an error if fn fails or changes its output size. */
static double weighted_output(tg_gradcheck_fn fn, tg_tape *tape, tg_tensor *const *inputs,
                              void *user_data, const double *weights, size_t out_size,
                              tg_status *status) {
    tg_tape_reset(tape);
    tg_tensor *out = fn(tape, inputs, user_data);
    if (out == NULL || tg_tape_status(tape) != TG_OK) {
        *status = tg_set_error(tg_tape_status(tape) != TG_OK ? tg_tape_status(tape) : TG_ERR_INVALID,
                               "gradcheck: the function failed: %s", tg_tape_error(tape));
        return (double)NAN;
    }
    if (out->size != out_size) {
        *status = tg_set_error(TG_ERR_INVALID, "gradcheck: the function returned %zu elements on "
                               "one call and %zu on another; it must be deterministic",
                               out_size, out->size);
        return (double)NAN;
    }
    double sum = 0.0;
    for (size_t i = 0; i < out_size; i++) {
        sum += weights[i] * (double)out->data[i];
    }
    return sum;
}

/* Runs fn with recording and backward seeded by the weights, leaving the
 * analytic gradients in the inputs' grad buffers. Sets *out_size. */
static tg_status analytic_pass(tg_gradcheck_fn fn, tg_tape *tape, int n_inputs,
                               tg_tensor *const *inputs, void *user_data, uint64_t seed,
                               double **weights_out, size_t *out_size) {
    for (int k = 0; k < n_inputs; k++) {
        tg_tensor_zero_grad(inputs[k]);
    }
    tg_tensor *out = fn(tape, inputs, user_data);
    if (out == NULL || tg_tape_status(tape) != TG_OK) {
        return tg_set_error(tg_tape_status(tape) != TG_OK ? tg_tape_status(tape) : TG_ERR_INVALID,
                            "gradcheck: the function failed: %s", tg_tape_error(tape));
    }
    *out_size = out->size;

    double *weights = malloc(out->size * sizeof *weights);
    tg_scalar *seed_grad = malloc(out->size * sizeof *seed_grad);
    if (weights == NULL || seed_grad == NULL) {
        free(weights);
        free(seed_grad);
        return tg_set_error(TG_ERR_NOMEM, "gradcheck: out of memory for %zu output weights",
                            out->size);
    }
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (size_t i = 0; i < out->size; i++) {
        seed_grad[i] = (tg_scalar)tg_rng_normal(&rng);
        weights[i] = (double)seed_grad[i];
    }
    tg_status status = tg_tape_backward_from(tape, out, seed_grad);
    free(seed_grad);
    if (status != TG_OK) {
        free(weights);
        return status;
    }
    *weights_out = weights;
    return TG_OK;
}

static double element_error(double analytic, double numeric, double floor) {
    double scale = fmax(fmax(fabs(analytic), fabs(numeric)), floor);
    return fabs(analytic - numeric) / scale;
}

tg_status tg_gradcheck(tg_gradcheck_fn fn, int n_inputs, tg_tensor *const *inputs,
                       void *user_data, const tg_gradcheck_options *options,
                       tg_gradcheck_result *result) {
    tg_gradcheck_options opt = options != NULL ? *options : tg_gradcheck_default_options();
    bool any = false;
    for (int k = 0; k < n_inputs; k++) {
        any = any || inputs[k]->requires_grad;
    }
    if (!any) {
        return tg_set_error(TG_ERR_INVALID, "gradcheck: none of the %d inputs requires grad; call "
                            "tg_tensor_set_requires_grad on the inputs to check", n_inputs);
    }
    tg_tape *tape = tg_tape_new();
    if (tape == NULL) {
        return TG_ERR_NOMEM;
    }

    double *weights = NULL;
    size_t out_size = 0;
    tg_status status = analytic_pass(fn, tape, n_inputs, inputs, user_data, opt.seed, &weights,
                                     &out_size);
    if (status != TG_OK) {
        tg_tape_free(tape);
        return status;
    }

    tg_gradcheck_result r = {.worst_input = -1};
    tg_tape_set_grad_enabled(tape, false);
    for (int k = 0; k < n_inputs && status == TG_OK; k++) {
        tg_tensor *x = inputs[k];
        if (!x->requires_grad) {
            continue;
        }
        for (size_t j = 0; j < x->size; j++) {
            tg_scalar saved = x->data[j];
            x->data[j] = (tg_scalar)((double)saved + opt.eps);
            double plus = weighted_output(fn, tape, inputs, user_data, weights, out_size, &status);
            x->data[j] = (tg_scalar)((double)saved - opt.eps);
            double minus = weighted_output(fn, tape, inputs, user_data, weights, out_size, &status);
            x->data[j] = saved;
            if (status != TG_OK) {
                break;
            }
            double numeric = (plus - minus) / (2.0 * opt.eps);
            double analytic = (double)x->grad[j];
            double error = element_error(analytic, numeric, opt.scale_floor);
            /* A NaN error counts as the worst possible. */
            if (r.worst_input < 0 || error > r.max_error || isnan(error)) {
                r.max_error = isnan(error) ? (double)INFINITY : error;
                r.worst_input = k;
                r.worst_index = j;
                r.analytic = analytic;
                r.numeric = numeric;
            }
            r.checked++;
        }
    }
    free(weights);
    tg_tape_free(tape);
    if (status != TG_OK) {
        return status;
    }
    if (result != NULL) {
        *result = r;
    }
    if (r.max_error > opt.tolerance) {
        return tg_set_error(TG_ERR_NUMERIC,
                            "gradcheck: input %d element %zu: analytic gradient %.10g, numeric "
                            "%.10g, error %.3g exceeds tolerance %.3g",
                            r.worst_input, r.worst_index, r.analytic, r.numeric, r.max_error,
                            opt.tolerance);
    }
    return TG_OK;
}
