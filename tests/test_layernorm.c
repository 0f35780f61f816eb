/* layernorm: forward and backward against formulas evaluated in double,
 * gradient checks in float64 with and without affine parameters, rows with a
 * large common offset and constant rows, determinism across thread counts,
 * step memory, and errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* Forward in double with two passes: y (N, C) from x (N, C); gamma and beta
 * may be NULL. */
static void reference_forward(double *y, const tg_scalar *x, const tg_scalar *gamma,
                              const tg_scalar *beta, long N, int C, double eps) {
    for (long n = 0; n < N; n++) {
        const tg_scalar *x_n = x + n * C;
        double mean = 0.0;
        for (int i = 0; i < C; i++) {
            mean += (double)x_n[i];
        }
        mean /= C;
        double var = 0.0;
        for (int i = 0; i < C; i++) {
            var += ((double)x_n[i] - mean) * ((double)x_n[i] - mean);
        }
        var /= C;
        double rstd = 1.0 / sqrt(var + eps);
        for (int i = 0; i < C; i++) {
            double xhat = ((double)x_n[i] - mean) * rstd;
            y[n * C + i] = xhat * (gamma != NULL ? (double)gamma[i] : 1.0) +
                           (beta != NULL ? (double)beta[i] : 0.0);
        }
    }
}

/* Gradient of x for dy, from the centred values xc (N, C) (x minus the row
 * mean, given exactly by the caller) and the textbook formula. */
static void reference_dx(double *dx, const double *xc, const tg_scalar *dy,
                         const tg_scalar *gamma, long N, int C, double eps) {
    for (long n = 0; n < N; n++) {
        const double *c = xc + n * C;
        double var = 0.0;
        for (int i = 0; i < C; i++) {
            var += c[i] * c[i];
        }
        double rstd = 1.0 / sqrt(var / C + eps);
        double mean_g = 0.0;
        double mean_gx = 0.0;
        for (int i = 0; i < C; i++) {
            double g = (double)dy[n * C + i] * (gamma != NULL ? (double)gamma[i] : 1.0);
            mean_g += g / C;
            mean_gx += g * c[i] * rstd / C;
        }
        for (int i = 0; i < C; i++) {
            double g = (double)dy[n * C + i] * (gamma != NULL ? (double)gamma[i] : 1.0);
            dx[n * C + i] = rstd * (g - mean_g - c[i] * rstd * mean_gx);
        }
    }
}

typedef struct ln_params {
    bool with_gamma;
    bool with_beta;
    double eps;
} ln_params;

/* inputs: x, then gamma and beta when the params say so. */
static tg_tensor *layernorm_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const ln_params *lp = user_data;
    const tg_tensor *gamma = lp->with_gamma ? in[1] : NULL;
    const tg_tensor *beta = lp->with_beta ? in[lp->with_gamma ? 2 : 1] : NULL;
    return tg_layernorm(tape, in[0], gamma, beta, lp->eps);
}

/* Draws a shape of 1 to 3 dimensions with extents in [1, 5] and C in [2, 9]. */
static int random_shape(tg_rng *rng, int *shape) {
    int ndim = 1 + (int)tg_rng_below(rng, 3);
    for (int d = 0; d < ndim - 1; d++) {
        shape[d] = 1 + (int)tg_rng_below(rng, 5);
    }
    shape[ndim - 1] = 2 + (int)tg_rng_below(rng, 8);
    return ndim;
}

static void gradcheck_random_shapes(uint64_t seed, bool with_gamma, bool with_beta) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    ln_params lp = {with_gamma, with_beta, 1e-5};
    for (int trial = 0; trial < 6; trial++) {
        int shape[3];
        int ndim = random_shape(&rng, shape);
        int C = shape[ndim - 1];
        tg_tensor *inputs[3];
        int n_inputs = 0;
        inputs[n_inputs++] = random_input(&rng, ndim, shape);
        if (with_gamma) {
            inputs[n_inputs++] = random_input(&rng, 1, &C);
        }
        if (with_beta) {
            inputs[n_inputs++] = random_input(&rng, 1, &C);
        }
        char what[96];
        char xs[64];
        snprintf(what, sizeof what, "layernorm x %s gamma %d beta %d",
                 tg_shape_format(xs, sizeof xs, ndim, shape), with_gamma, with_beta);
        expect_gradcheck(what, layernorm_fn, n_inputs, inputs, &lp, NULL);
        for (int i = 0; i < n_inputs; i++) {
            tg_tensor_free(inputs[i]);
        }
    }
}

Test(layernorm, forward_matches_double_reference) {
    tg_rng rng;
    tg_rng_seed(&rng, 31);
    tg_tape *tape = tg_tape_new();
    for (int trial = 0; trial < 8; trial++) {
        int shape[3];
        int ndim = random_shape(&rng, shape);
        int C = shape[ndim - 1];
        tg_tensor *x = tg_tensor_normal(ndim, shape, &rng, 3.0, 2.0);
        tg_tensor *gamma = tg_tensor_normal(1, &C, &rng, 1.0, 0.5);
        tg_tensor *beta = tg_tensor_normal(1, &C, &rng, 0.0, 0.5);
        bool affine = trial % 2 == 0;
        tg_tensor *y = tg_layernorm(tape, x, affine ? gamma : NULL, affine ? beta : NULL, 1e-5);
        cr_assert_not_null(y, "trial %d: %s", trial, tg_tape_error(tape));
        cr_assert(tg_tensor_same_shape(x, y), "trial %d: y has another shape than x", trial);
        double *expected = malloc(x->size * sizeof *expected);
        reference_forward(expected, x->data, affine ? gamma->data : NULL,
                          affine ? beta->data : NULL, (long)(x->size / (size_t)C), C, 1e-5);
        char what[48];
        snprintf(what, sizeof what, "layernorm trial %d (affine %d)", trial, affine);
        expect_close(what, y->data, expected, x->size, 1e-12, 1e-12);
        free(expected);
        tg_tensor_free(x);
        tg_tensor_free(gamma);
        tg_tensor_free(beta);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(layernorm, gradcheck_with_affine) {
    gradcheck_random_shapes(32, true, true);
}

Test(layernorm, gradcheck_without_affine) {
    gradcheck_random_shapes(33, false, false);
}

Test(layernorm, gradcheck_gamma_only_or_beta_only) {
    gradcheck_random_shapes(34, true, false);
    gradcheck_random_shapes(35, false, true);
}

/* Rows offset + {0, 1, ..., C-1} scaled by step, for offsets that make the
 * one-pass variance E[x^2] - mean^2 lose most or all of its digits. */
static void check_offset_row(double offset, int C) {
    tg_rng rng;
    tg_rng_seed(&rng, 36);
    int shape[2] = {2, C};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *gamma = tg_tensor_normal(1, &C, &rng, 1.0, 0.5);
    tg_tensor *beta = tg_tensor_normal(1, &C, &rng, 0.0, 0.5);
    tg_tensor_set_requires_grad(gamma, true);
    double *centred = malloc(x->size * sizeof *centred);
    for (int n = 0; n < 2; n++) {
        double row_offset = n == 0 ? offset : -offset;
        for (int i = 0; i < C; i++) {
            x->data[n * C + i] = (tg_scalar)(row_offset + i);
            centred[n * C + i] = i - (C - 1) / 2.0;
        }
    }

    /* The input must really defeat the one-pass formula for the test to mean
     * anything; 40000 does in float32 and 1e8 in float64. */
    double sum = 0.0;
    double sum_sq = 0.0;
    for (int i = 0; i < C; i++) {
        sum += (double)(tg_scalar)x->data[i];
        sum_sq += (double)(tg_scalar)x->data[i] * (double)(tg_scalar)x->data[i];
    }
    double true_var = (double)(C * C - 1) / 12.0;
    double one_pass_var = sum_sq / C - (sum / C) * (sum / C);
    if (offset >= 1e8) {
        cr_assert_gt(fabs(one_pass_var - true_var), 1e-3 * true_var,
                     "offset %g: the one-pass variance %.10g is already accurate (true %.10g)",
                     offset, one_pass_var, true_var);
    }

    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_layernorm(tape, x, gamma, beta, 1e-5);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    double *expected = malloc(x->size * sizeof *expected);
    for (int n = 0; n < 2; n++) {
        double rstd = 1.0 / sqrt(true_var + 1e-5);
        for (int i = 0; i < C; i++) {
            expected[n * C + i] = centred[n * C + i] * rstd * (double)gamma->data[i] +
                                  (double)beta->data[i];
        }
    }
    char what[64];
    snprintf(what, sizeof what, "y with offset %g", offset);
    expect_close(what, y->data, expected, x->size, 1e-12, 1e-12);

    tg_scalar *dy = malloc(x->size * sizeof *dy);
    for (size_t i = 0; i < x->size; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    reference_dx(expected, centred, dy, gamma->data, 2, C, 1e-5);
    snprintf(what, sizeof what, "dx with offset %g", offset);
    expect_close(what, x->grad, expected, x->size, 1e-10, 1e-10);
    double dgamma[64];
    for (int i = 0; i < C; i++) {
        dgamma[i] = 0.0;
        for (int n = 0; n < 2; n++) {
            dgamma[i] += (double)dy[n * C + i] * centred[n * C + i] / sqrt(true_var + 1e-5);
        }
    }
    snprintf(what, sizeof what, "dgamma with offset %g", offset);
    expect_close(what, gamma->grad, dgamma, (size_t)C, 1e-10, 1e-10);

    free(dy);
    free(expected);
    free(centred);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}

Test(layernorm, large_offset_rows_stay_accurate) {
    check_offset_row(40000.0, 4);   /* the row 40000, 40001, 40002, 40003 */
    check_offset_row(40000.0, 37);
    check_offset_row(1e8, 4);
    check_offset_row(1e8, 20);
}

Test(layernorm, constant_row_is_finite) {
    tg_rng rng;
    tg_rng_seed(&rng, 37);
    int C = 6;
    int shape[2] = {3, C};
    tg_tensor *x = tg_tensor_normal(2, shape, &rng, 0.0, 1.0);
    for (int i = 0; i < C; i++) {
        x->data[C + i] = 7.25;  /* row 1 is constant */
    }
    tg_tensor *gamma = random_input(&rng, 1, &C);
    tg_tensor *beta = random_input(&rng, 1, &C);
    tg_tensor_set_requires_grad(x, true);

    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_layernorm(tape, x, gamma, beta, 1e-5);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    for (int i = 0; i < C; i++) {
        cr_assert_eq(y->data[C + i], beta->data[i],
                     "y[1][%d] is %.10g, expected beta %.10g for a constant row", i,
                     (double)y->data[C + i], (double)beta->data[i]);
    }
    tg_scalar dy[18];
    for (int i = 0; i < 18; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());

    /* xhat is 0, so dx = rstd * (g - mean(g)) with rstd = 1 / sqrt(eps). */
    double expected[6];
    double mean_g = 0.0;
    for (int i = 0; i < C; i++) {
        mean_g += (double)dy[C + i] * (double)gamma->data[i] / C;
    }
    for (int i = 0; i < C; i++) {
        expected[i] = ((double)dy[C + i] * (double)gamma->data[i] - mean_g) / sqrt(1e-5);
    }
    expect_close("dx of the constant row", x->grad + C, expected, (size_t)C, 1e-9, 1e-9);
    for (size_t i = 0; i < x->size; i++) {
        cr_assert(isfinite(x->grad[i]), "dx[%zu] is %g", i, (double)x->grad[i]);
    }
    for (int i = 0; i < C; i++) {
        cr_assert(isfinite(gamma->grad[i]), "dgamma[%d] is %g", i, (double)gamma->grad[i]);
        cr_assert(isfinite(beta->grad[i]), "dbeta[%d] is %g", i, (double)beta->grad[i]);
    }
    tg_tape_free(tape);

    /* The gradient check passes through the constant row too. */
    tg_tensor *inputs[3] = {x, gamma, beta};
    ln_params lp = {true, true, 1e-5};
    expect_gradcheck("layernorm with a constant row", layernorm_fn, 3, inputs, &lp, NULL);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}

typedef struct ln_run {
    tg_scalar *y;
    tg_scalar *grads;  /* dx, then dgamma, then dbeta */
    size_t y_size;
    size_t grads_size;
} ln_run;

/* Runs forward and backward on (4, 64, 96), large enough for the parallel
 * paths, with the given number of threads. */
static ln_run run_with_threads(int threads) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 38);
    int shape[3] = {4, 64, 96};
    int C = 96;
    tg_tensor *x = random_input(&rng, 3, shape);
    tg_tensor *gamma = random_input(&rng, 1, &C);
    tg_tensor *beta = random_input(&rng, 1, &C);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_layernorm(tape, x, gamma, beta, 1e-5);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_scalar *dy = malloc(y->size * sizeof *dy);
    for (size_t i = 0; i < y->size; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());

    ln_run run = {.y_size = y->size, .grads_size = x->size + 2 * (size_t)C};
    run.y = malloc(run.y_size * sizeof *run.y);
    run.grads = malloc(run.grads_size * sizeof *run.grads);
    memcpy(run.y, y->data, run.y_size * sizeof *run.y);
    memcpy(run.grads, x->grad, x->size * sizeof *run.grads);
    memcpy(run.grads + x->size, gamma->grad, (size_t)C * sizeof *run.grads);
    memcpy(run.grads + x->size + C, beta->grad, (size_t)C * sizeof *run.grads);
    free(dy);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
    return run;
}

Test(layernorm, one_and_two_threads_same_bits) {
    int saved_threads = omp_get_max_threads();
    ln_run one_thread = run_with_threads(1);
    ln_run two_threads = run_with_threads(2);
    omp_set_num_threads(saved_threads);
    size_t y_bytes = one_thread.y_size * sizeof(tg_scalar);
    size_t grads_bytes = one_thread.grads_size * sizeof(tg_scalar);
    cr_assert_eq(memcmp(one_thread.y, two_threads.y, y_bytes), 0,
                 "y differs between 1 and 2 threads");
    cr_assert_eq(memcmp(one_thread.grads, two_threads.grads, grads_bytes), 0,
                 "dx, dgamma or dbeta differs between 1 and 2 threads");
    free(one_thread.y);
    free(one_thread.grads);
    free(two_threads.y);
    free(two_threads.grads);
}

Test(layernorm, backward_adds_into_gradients) {
    tg_rng rng;
    tg_rng_seed(&rng, 39);
    int shape[2] = {3, 5};
    int C = 5;
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tensor *gamma = random_input(&rng, 1, &C);
    tg_tensor *beta = random_input(&rng, 1, &C);
    tg_scalar dy[15];
    for (int i = 0; i < 15; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    tg_scalar first[25];
    for (int pass = 0; pass < 2; pass++) {
        tg_tape *tape = tg_tape_new();
        tg_tensor *y = tg_layernorm(tape, x, gamma, beta, 1e-5);
        cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
        tg_tape_free(tape);
        if (pass == 0) {
            memcpy(first, x->grad, 15 * sizeof *first);
            memcpy(first + 15, gamma->grad, 5 * sizeof *first);
            memcpy(first + 20, beta->grad, 5 * sizeof *first);
        }
    }
    /* A second backward adds the same values again: g + g is exact. */
    for (int i = 0; i < 15; i++) {
        cr_assert_eq(x->grad[i], 2 * first[i], "dx[%d] is %g after two passes, expected %g", i,
                     (double)x->grad[i], 2 * (double)first[i]);
    }
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(gamma->grad[i], 2 * first[15 + i], "dgamma[%d] is %g, expected %g", i,
                     (double)gamma->grad[i], 2 * (double)first[15 + i]);
        cr_assert_eq(beta->grad[i], 2 * first[20 + i], "dbeta[%d] is %g, expected %g", i,
                     (double)beta->grad[i], 2 * (double)first[20 + i]);
    }
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}

Test(layernorm, no_grad_saves_nothing) {
    tg_rng rng;
    tg_rng_seed(&rng, 40);
    int shape[2] = {64, 8};
    int C = 8;
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tensor *gamma = random_input(&rng, 1, &C);

    /* Step memory of the output tensor alone. */
    tg_tape *tape = tg_tape_new();
    cr_assert_not_null(tg_tape_tensor(tape, 2, shape));
    size_t output_only = tg_tape_get_stats(tape).arena_used_bytes;
    tg_tape_reset(tape);

    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *y = tg_layernorm(tape, x, gamma, NULL, 1e-5);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_not(y->requires_grad, "y requires grad in no-grad mode");
    tg_tape_stats stats = tg_tape_get_stats(tape);
    cr_assert_eq(stats.node_count, 0, "%ld nodes recorded in no-grad mode", stats.node_count);
    cr_assert_eq(stats.arena_used_bytes, output_only,
                 "no-grad layernorm used %zu bytes of step memory, the output alone %zu",
                 stats.arena_used_bytes, output_only);

    /* With recording on, mean and rstd (64 doubles each) are kept. */
    tg_tape_reset(tape);
    tg_tape_set_grad_enabled(tape, true);
    y = tg_layernorm(tape, x, gamma, NULL, 1e-5);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    stats = tg_tape_get_stats(tape);
    cr_assert_eq(stats.node_count, 1);
    cr_assert_geq(stats.arena_used_bytes, output_only + 2 * 64 * sizeof(double),
                  "recording layernorm used only %zu bytes", stats.arena_used_bytes);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
}

static void expect_message(const tg_tape *tape, const char *part) {
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, part) != NULL, "message \"%s\" lacks \"%s\"", message, part);
}

Test(layernorm, gamma_mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int x_shape[3] = {2, 3, 768};
    int gamma_shape[1] = {512};
    tg_tensor *x = tg_tensor_zeros(3, x_shape);
    tg_tensor *gamma = tg_tensor_ones(1, gamma_shape);
    cr_assert_null(tg_layernorm(tape, x, gamma, NULL, 1e-5));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    expect_message(tape, "layernorm: gamma has shape (512) but x has shape (2, 3, 768)");
    expect_message(tape, "(768)");
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tape_free(tape);
}

Test(layernorm, beta_mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {4, 6};
    int beta_shape[2] = {1, 6};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    tg_tensor *beta = tg_tensor_zeros(2, beta_shape);
    cr_assert_null(tg_layernorm(tape, x, NULL, beta, 1e-5));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    expect_message(tape, "beta has shape (1, 6) but x has shape (4, 6)");
    tg_tensor_free(x);
    tg_tensor_free(beta);
    tg_tape_free(tape);
}

Test(layernorm, scalar_input_is_rejected) {
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_zeros(0, NULL);
    cr_assert_null(tg_layernorm(tape, x, NULL, NULL, 1e-5));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    expect_message(tape, "layernorm: x has shape ()");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(layernorm, bad_eps_is_rejected) {
    int shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    double bad[3] = {-1e-5, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        tg_tape *tape = tg_tape_new();
        cr_assert_null(tg_layernorm(tape, x, NULL, NULL, bad[i]));
        cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID, "eps %g gave status %d", bad[i],
                     tg_tape_status(tape));
        expect_message(tape, "layernorm: eps is");
        tg_tape_free(tape);
    }
    tg_tensor_free(x);
}

Test(layernorm, null_input_adds_no_error) {
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_layernorm(tape, NULL, NULL, NULL, 1e-5));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "a NULL input recorded: %s", tg_tape_error(tape));
    tg_tape_free(tape);
}
