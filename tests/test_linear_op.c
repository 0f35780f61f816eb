/* The fused linear op, plain and with a residual: forward against a naive
 * product in double, gradient checks with and without bias, and shape
 * errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

static tg_tensor *linear_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    bool with_bias = *(bool *)user_data;
    return tg_linear(tape, in[0], in[1], with_bias ? in[2] : NULL);
}

Test(linear_op, forward_matches_naive) {
    tg_rng rng;
    tg_rng_seed(&rng, 31);
    int x_shape[3] = {2, 3, 5};
    int w_shape[2] = {4, 5};
    int b_shape[1] = {4};
    tg_tensor *x = random_input(&rng, 3, x_shape);
    tg_tensor *w = random_input(&rng, 2, w_shape);
    tg_tensor *b = random_input(&rng, 1, b_shape);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_linear(tape, x, w, b);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->ndim, 3);
    cr_assert_eq(y->shape[2], 4);
    double expected[24];
    for (int n = 0; n < 6; n++) {
        for (int o = 0; o < 4; o++) {
            double sum = (double)b->data[o];
            for (int i = 0; i < 5; i++) {
                sum += (double)x->data[n * 5 + i] * (double)w->data[o * 5 + i];
            }
            expected[n * 4 + o] = sum;
        }
    }
    expect_close("linear", y->data, expected, 24, 1e-12, 1e-12);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
}

Test(linear_op, gradcheck_with_and_without_bias) {
    tg_rng rng;
    tg_rng_seed(&rng, 32);
    int x_shape[3] = {2, 3, 5};
    int w_shape[2] = {4, 5};
    int b_shape[1] = {4};
    for (int with = 0; with < 2; with++) {
        bool with_bias = with == 1;
        tg_tensor *inputs[3] = {random_input(&rng, 3, x_shape), random_input(&rng, 2, w_shape),
                                random_input(&rng, 1, b_shape)};
        expect_gradcheck(with_bias ? "linear with bias" : "linear without bias", linear_fn,
                         with_bias ? 3 : 2, inputs, &with_bias, NULL);
        for (int i = 0; i < 3; i++) {
            tg_tensor_free(inputs[i]);
        }
    }
}

Test(linear_op, mismatch_names_shapes) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {3, 5};
    int w_shape[2] = {4, 6};
    tg_tensor *x = tg_tensor_ones(2, x_shape);
    tg_tensor *w = tg_tensor_ones(2, w_shape);
    cr_assert_null(tg_linear(tape, x, w, NULL));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "(3, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(4, 6)") != NULL, "message: %s", message);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
}

Test(linear_op, bias_mismatch_is_rejected) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {3, 5};
    int w_shape[2] = {4, 5};
    int b_shape[1] = {3};
    tg_tensor *x = tg_tensor_ones(2, x_shape);
    tg_tensor *w = tg_tensor_ones(2, w_shape);
    tg_tensor *b = tg_tensor_ones(1, b_shape);
    cr_assert_null(tg_linear(tape, x, w, b));
    cr_assert(strstr(tg_tape_error(tape), "bias (3)") != NULL, "message: %s", tg_tape_error(tape));
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
}

static tg_tensor *linear_residual_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    bool with_bias = *(bool *)user_data;
    return tg_linear_residual(tape, in[0], in[1], with_bias ? in[2] : NULL, in[3]);
}

Test(linear_op, residual_forward_matches_naive) {
    tg_rng rng;
    tg_rng_seed(&rng, 33);
    int x_shape[3] = {2, 3, 5};
    int w_shape[2] = {4, 5};
    int b_shape[1] = {4};
    int r_shape[3] = {2, 3, 4};
    tg_tensor *x = random_input(&rng, 3, x_shape);
    tg_tensor *w = random_input(&rng, 2, w_shape);
    tg_tensor *b = random_input(&rng, 1, b_shape);
    tg_tensor *r = random_input(&rng, 3, r_shape);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_linear_residual(tape, x, w, b, r);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->size, 24);
    double expected[24];
    for (int n = 0; n < 6; n++) {
        for (int o = 0; o < 4; o++) {
            double sum = (double)r->data[n * 4 + o] + (double)b->data[o];
            for (int i = 0; i < 5; i++) {
                sum += (double)x->data[n * 5 + i] * (double)w->data[o * 5 + i];
            }
            expected[n * 4 + o] = sum;
        }
    }
    expect_close("linear_residual", y->data, expected, 24, 1e-12, 1e-12);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_tensor_free(r);
}

Test(linear_op, residual_gradcheck_with_and_without_bias) {
    tg_rng rng;
    tg_rng_seed(&rng, 34);
    int x_shape[3] = {2, 3, 5};
    int w_shape[2] = {4, 5};
    int b_shape[1] = {4};
    int r_shape[3] = {2, 3, 4};
    for (int with = 0; with < 2; with++) {
        bool with_bias = with == 1;
        tg_tensor *inputs[4] = {random_input(&rng, 3, x_shape), random_input(&rng, 2, w_shape),
                                random_input(&rng, 1, b_shape), random_input(&rng, 3, r_shape)};
        expect_gradcheck(with_bias ? "linear_residual with bias" : "linear_residual without bias",
                         linear_residual_fn, 4, inputs, &with_bias, NULL);
        for (int i = 0; i < 4; i++) {
            tg_tensor_free(inputs[i]);
        }
    }
}

Test(linear_op, residual_mismatch_names_shapes) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {3, 5};
    int w_shape[2] = {4, 5};
    int r_shape[2] = {3, 5};
    tg_tensor *x = tg_tensor_ones(2, x_shape);
    tg_tensor *w = tg_tensor_ones(2, w_shape);
    tg_tensor *r = tg_tensor_ones(2, r_shape);
    cr_assert_null(tg_linear_residual(tape, x, w, NULL, r));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "residual (3, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "weight (4, 5)") != NULL, "message: %s", message);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(r);
}
