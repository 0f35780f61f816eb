/* softmax and log_softmax: gradient checks in float64 on random shapes and at
 * logits of +-1000, forward values against a double reference, thread-count
 * determinism and shape errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef tg_tensor *(*row_fn)(tg_tape *, const tg_tensor *);

static tg_tensor *apply_row_op(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    row_fn op = *(row_fn *)user_data;
    return op(tape, in[0]);
}

static const row_fn ops[2] = {tg_softmax, tg_log_softmax};
static const char *const names[2] = {"softmax", "log_softmax"};

/* Writes softmax (or log_softmax) of each row of x (N, C) into out in double,
 * with log-sum-exp taken from the row maximum. */
static void reference_rows(double *out, const tg_tensor *x, bool log_form) {
    size_t C = (size_t)x->shape[x->ndim - 1];
    size_t N = x->size / C;
    for (size_t r = 0; r < N; r++) {
        const tg_scalar *x_r = x->data + r * C;
        double m = (double)x_r[0];
        for (size_t j = 1; j < C; j++) {
            m = fmax(m, (double)x_r[j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j < C; j++) {
            sum += exp((double)x_r[j] - m);
        }
        for (size_t j = 0; j < C; j++) {
            double z = (double)x_r[j] - m;
            out[r * C + j] = log_form ? z - log(sum) : exp(z) / sum;
        }
    }
}

Test(softmax, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 51);
    for (int c = 0; c < 8; c++) {
        int shape[TG_MAX_DIMS];
        int ndim = 1 + (int)tg_rng_below(&rng, 4);
        for (int d = 0; d < ndim; d++) {
            shape[d] = 1 + (int)tg_rng_below(&rng, d == ndim - 1 ? 7 : 3);
        }
        tg_tensor *x = random_input(&rng, ndim, shape);
        for (size_t i = 0; i < x->size; i++) {
            x->data[i] *= 2;
        }
        for (int k = 0; k < 2; k++) {
            char what[64];
            snprintf(what, sizeof what, "%s case %d", names[k], c);
            expect_gradcheck(what, apply_row_op, 1, &x, (void *)&ops[k], NULL);
        }
        tg_tensor_free(x);
    }
}

Test(softmax, gradcheck_logits_of_1000) {
    int shape[2] = {3, 4};
    tg_scalar values[12] = {1000, -1000, 0, 999,     /* two large logits close together */
                            -1000, -1000, -1000, -999, /* every logit very negative */
                            1000, 1000, 1000, 1000}; /* equal large logits */
    tg_tensor *x = tg_tensor_from_values(2, shape, values);
    tg_tensor_set_requires_grad(x, true);
    for (int k = 0; k < 2; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s at +-1000", names[k]);
        expect_gradcheck(what, apply_row_op, 1, &x, (void *)&ops[k], NULL);
    }
    tg_tensor_free(x);
}

Test(softmax, forward_matches_double_reference) {
    tg_rng rng;
    tg_rng_seed(&rng, 52);
    tg_tape *tape = tg_tape_new();
    int shapes[3][3] = {{5, 1, 0}, {4, 3, 9}, {2, 700, 0}};
    int ndims[3] = {2, 3, 2};
    for (int c = 0; c < 3; c++) {
        tg_tensor *x = random_input(&rng, ndims[c], shapes[c]);
        for (size_t i = 0; i < x->size; i++) {
            x->data[i] *= 5;
        }
        double *expected = malloc(x->size * sizeof *expected);
        for (int k = 0; k < 2; k++) {
            tg_tensor *y = ops[k](tape, x);
            cr_assert_not_null(y, "%s: %s", names[k], tg_tape_error(tape));
            cr_assert(tg_tensor_same_shape(x, y), "%s changed the shape", names[k]);
            reference_rows(expected, x, k == 1);
            char what[64];
            snprintf(what, sizeof what, "%s case %d", names[k], c);
            expect_close(what, y->data, expected, x->size, 1e-15, 1e-13);
        }
        free(expected);
        tg_tensor_free(x);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(softmax, logits_of_1000_stay_finite) {
    int shape[2] = {2, 3};
    tg_scalar values[6] = {1000, -1000, 0, -1000, -1000, -1000};
    tg_tensor *x = tg_tensor_from_values(2, shape, values);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tape = tg_tape_new();

    tg_tensor *probs = tg_softmax(tape, x);
    double expected_probs[6] = {1, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    expect_close("softmax", probs->data, expected_probs, 6, 0, 1e-15);
    tg_tensor *log_probs = tg_log_softmax(tape, x);
    double expected_log[6] = {0, -2000, -1000, -log(3.0), -log(3.0), -log(3.0)};
    expect_close("log_softmax", log_probs->data, expected_log, 6, 0, 1e-15);

    /* Gradient of sum(log_probs * w): dx_j = w_j - softmax_j * sum(w). */
    int w_shape[2] = {2, 3};
    tg_scalar w_values[6] = {1, 2, 3, 1, 2, 3};
    tg_tensor *w = tg_tensor_from_values(2, w_shape, w_values);
    tg_tensor *loss = tg_sum(tape, tg_add(tape, tg_mul(tape, log_probs, w), probs));
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    for (size_t i = 0; i < 6; i++) {
        cr_assert(isfinite(x->grad[i]), "gradient %zu is %g", i, (double)x->grad[i]);
    }
    /* The softmax term contributes y (1 - sum y) = 0 per element. */
    double expected_grad[6] = {1 - 6, 2, 3, 1 - 2, 2 - 2, 3 - 2};
    expect_close("gradient", x->grad, expected_grad, 6, 1e-15, 1e-15);
    tg_tensor_free(w);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(softmax, backward_adds_into_gradient) {
    int shape[1] = {2};
    tg_scalar values[2] = {0, 0};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(x, true);
    x->grad[0] = 5;
    x->grad[1] = 7;
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_softmax(tape, x);
    tg_scalar seed[2] = {1, 0};
    cr_assert_eq(tg_tape_backward_from(tape, y, seed), TG_OK, "%s", tg_last_error());
    /* dx = y (dy - y . dy) = (0.5 * 0.5, 0.5 * -0.5). */
    double expected[2] = {5.25, 6.75};
    expect_close("softmax gradient", x->grad, expected, 2, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* Runs both ops on a large input with the given thread count and returns
 * their outputs and the input gradient concatenated (caller frees). */
static tg_scalar *run_rows(int threads, size_t *count) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 53);
    int shape[3] = {4, 100, 300};
    tg_tensor *x = random_input(&rng, 3, shape);
    tg_tape *tape = tg_tape_new();
    tg_tensor *probs = tg_softmax(tape, x);
    tg_tensor *log_probs = tg_log_softmax(tape, x);
    tg_tensor *loss = tg_sum(tape, tg_mul(tape, probs, log_probs));
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    *count = 3 * x->size;
    tg_scalar *out = malloc(*count * sizeof *out);
    memcpy(out, probs->data, x->size * sizeof *out);
    memcpy(out + x->size, log_probs->data, x->size * sizeof *out);
    memcpy(out + 2 * x->size, x->grad, x->size * sizeof *out);
    tg_tape_free(tape);
    tg_tensor_free(x);
    return out;
}

Test(softmax, same_bits_for_one_and_two_threads) {
    size_t n1;
    size_t n2;
    tg_scalar *one_thread = run_rows(1, &n1);
    tg_scalar *two_threads = run_rows(2, &n2);
    cr_assert_eq(n1, n2, "sizes %zu and %zu", n1, n2);
    cr_assert_eq(memcmp(one_thread, two_threads, n1 * sizeof *one_thread), 0,
                 "outputs or gradients differ between 1 and 2 threads");
    free(one_thread);
    free(two_threads);
}

Test(softmax, zero_dimensional_input_is_rejected) {
    int shape[1] = {1};
    tg_tensor *x = tg_tensor_ones(0, shape);
    tg_tape *tape = tg_tape_new();
    for (int k = 0; k < 2; k++) {
        tg_tape_reset(tape);
        cr_assert_null(ops[k](tape, x), "%s returned a tensor", names[k]);
        cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE, "status %d", tg_tape_status(tape));
        const char *message = tg_tape_error(tape);
        char expected[64];
        snprintf(expected, sizeof expected, "%s: x has shape ()", names[k]);
        cr_assert(strstr(message, expected) != NULL, "message: %s", message);
        cr_assert(strstr(message, "last axis") != NULL, "message: %s", message);
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(softmax, null_input_returns_null_quietly) {
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_softmax(tape, NULL));
    cr_assert_null(tg_log_softmax(tape, NULL));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "status %d", tg_tape_status(tape));
    tg_tape_free(tape);
}

Test(softmax, no_grad_mode_records_no_node) {
    tg_rng rng;
    tg_rng_seed(&rng, 54);
    int shape[2] = {3, 4};
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tape *tape = tg_tape_new();
    tg_tape_set_grad_enabled(tape, false);
    for (int k = 0; k < 2; k++) {
        tg_tensor *y = ops[k](tape, x);
        cr_assert_not_null(y, "%s: %s", names[k], tg_tape_error(tape));
        cr_assert_not(y->requires_grad, "%s output requires grad", names[k]);
    }
    long nodes = tg_tape_get_stats(tape).node_count;
    cr_assert_eq(nodes, 0, "%ld nodes recorded with recording off", nodes);
    tg_tape_free(tape);
    tg_tensor_free(x);
}
