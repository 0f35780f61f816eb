/* add, sub, mul, div and scale: forward values, gradient checks in float64
 * with broadcasting, and shape errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef tg_tensor *(*binary_fn)(tg_tape *, const tg_tensor *, const tg_tensor *);

static tg_tensor *apply_binary(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    binary_fn op = *(binary_fn *)user_data;
    return op(tape, in[0], in[1]);
}

typedef struct shape_pair {
    int a_ndim;
    int a_shape[4];
    int b_ndim;
    int b_shape[4];
} shape_pair;

static const shape_pair broadcast_cases[] = {
    {2, {3, 4}, 2, {3, 4}},          /* same shape */
    {3, {2, 3, 4}, 1, {4}},          /* bias over rows */
    {2, {4, 1}, 1, {3}},             /* outer product shape */
    {1, {1}, 3, {2, 3, 2}},          /* scalar-like a */
    {4, {2, 1, 3, 1}, 3, {4, 1, 5}}, /* both sides repeat */
    {3, {2, 3, 4}, 3, {2, 1, 4}},    /* middle axis */
};

static void check_binary(const char *name, binary_fn op, bool positive_b) {
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof broadcast_cases / sizeof broadcast_cases[0]; c++) {
        const shape_pair *p = &broadcast_cases[c];
        tg_tensor *inputs[2] = {random_input(&rng, p->a_ndim, p->a_shape),
                                random_input(&rng, p->b_ndim, p->b_shape)};
        if (positive_b) {
            /* Keep the divisor away from zero: |b| in [0.5, 1.5]. */
            for (size_t i = 0; i < inputs[1]->size; i++) {
                tg_scalar v = inputs[1]->data[i];
                inputs[1]->data[i] = (v < 0 ? -1 : 1) * (0.5 + fmod(fabs(v), 1.0));
            }
        }
        char what[64];
        snprintf(what, sizeof what, "%s case %zu", name, c);
        expect_gradcheck(what, apply_binary, 2, inputs, &op, NULL);
        tg_tensor_free(inputs[0]);
        tg_tensor_free(inputs[1]);
    }
}

Test(elementwise, add_gradcheck_broadcast) {
    check_binary("add", tg_add, false);
}

Test(elementwise, sub_gradcheck_broadcast) {
    check_binary("sub", tg_sub, false);
}

Test(elementwise, mul_gradcheck_broadcast) {
    check_binary("mul", tg_mul, false);
}

Test(elementwise, div_gradcheck_broadcast) {
    check_binary("div", tg_div, true);
}

static tg_tensor *scale_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    return tg_add_scalar(tape, tg_scale(tape, in[0], -2.5), 3.0);
}

Test(elementwise, scale_gradcheck) {
    tg_rng rng;
    tg_rng_seed(&rng, 12);
    int shape[3] = {2, 3, 4};
    tg_tensor *x = random_input(&rng, 3, shape);
    expect_gradcheck("scale", scale_fn, 1, &x, NULL, NULL);
    tg_tensor_free(x);
}

Test(elementwise, broadcast_forward_values) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {2, 1};
    int b_shape[1] = {3};
    tg_scalar a_values[2] = {10, 20};
    tg_scalar b_values[3] = {1, 2, 3};
    tg_tensor *a = tg_tensor_from_values(2, a_shape, a_values);
    tg_tensor *b = tg_tensor_from_values(1, b_shape, b_values);

    tg_tensor *sum = tg_add(tape, a, b);
    cr_assert_eq(sum->ndim, 2);
    cr_assert_eq(sum->shape[0], 2);
    cr_assert_eq(sum->shape[1], 3);
    double expected_sum[6] = {11, 12, 13, 21, 22, 23};
    expect_close("add", sum->data, expected_sum, 6, 0, 0);

    double expected_quotient[6] = {10, 5, 10.0 / 3, 20, 10, 20.0 / 3};
    expect_close("div", tg_div(tape, a, b)->data, expected_quotient, 6, 0, 1e-15);

    double expected_difference[6] = {9, 8, 7, 19, 18, 17};
    expect_close("sub", tg_sub(tape, a, b)->data, expected_difference, 6, 0, 0);

    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(elementwise, broadcast_gradient_sums_repeats) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {4, 3};
    int b_shape[1] = {3};
    tg_tensor *a = tg_tensor_ones(2, a_shape);
    tg_tensor *b = tg_tensor_ones(1, b_shape);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_add(tape, a, b);
    tg_scalar seed[12];
    for (int i = 0; i < 12; i++) {
        seed[i] = (tg_scalar)i;
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, seed), TG_OK);
    double expected[3] = {0 + 3 + 6 + 9, 1 + 4 + 7 + 10, 2 + 5 + 8 + 11};
    expect_close("db", b->grad, expected, 3, 0, 0);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(elementwise, mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {2, 3};
    int b_shape[1] = {2};
    tg_tensor *a = tg_tensor_ones(2, a_shape);
    tg_tensor *b = tg_tensor_ones(1, b_shape);
    cr_assert_null(tg_mul(tape, a, b));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "mul: shapes (2, 3) and (2) do not broadcast") != NULL,
              "message: %s", message);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

/* Returns the gradient of the (B, 1, C) operand of add (or sub) with a
 * (B, N, C) operand, for an upstream gradient seed (B, N, C), on `threads`
 * threads. The broadcast operand is the first one when first is true. */
static tg_scalar *middle_axis_gradient(binary_fn op, bool first, const tg_scalar *seed, int B,
                                       int N, int C, int threads) {
    omp_set_num_threads(threads);
    tg_tape *tape = tg_tape_new();
    int full_shape[3] = {B, N, C};
    int row_shape[3] = {B, 1, C};
    tg_tensor *full = tg_tensor_ones(3, full_shape);
    tg_tensor *row = tg_tensor_ones(3, row_shape);
    cr_assert_eq(tg_tensor_set_requires_grad(row, true), TG_OK);
    tg_tensor *y = first ? op(tape, row, full) : op(tape, full, row);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(tg_tape_backward_from(tape, y, seed), TG_OK, "%s", tg_last_error());
    tg_scalar *grad = malloc(row->size * sizeof *grad);
    memcpy(grad, row->grad, row->size * sizeof *grad);
    tg_tensor_free(full);
    tg_tensor_free(row);
    tg_tape_free(tape);
    return grad;
}

/* Large enough that the reduction over N splits its columns over threads. */
Test(elementwise, middle_axis_gradient_threads) {
    enum { B = 6, N = 40, C = 200 };
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    static tg_scalar seed[B * N * C];
    for (int i = 0; i < B * N * C; i++) {
        seed[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    struct {
        const char *name;
        binary_fn op;
        bool first;
        double sign;
    } cases[] = {
        {"add, broadcast second", tg_add, false, 1},
        {"add, broadcast first", tg_add, true, 1},
        {"sub, broadcast second", tg_sub, false, -1},
        {"sub, broadcast first", tg_sub, true, 1},
    };
    double expected[B * C];
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            /* Summed in the order of the tokens, as the op does. */
            tg_scalar sum = 0;
            for (int n = 0; n < N; n++) {
                sum += seed[(b * N + n) * C + c];
            }
            expected[b * C + c] = (double)sum;
        }
    }
    int saved_threads = omp_get_max_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tg_scalar *one_thread = middle_axis_gradient(cases[k].op, cases[k].first, seed, B, N, C, 1);
        tg_scalar *two_threads = middle_axis_gradient(cases[k].op, cases[k].first, seed, B, N, C, 2);
        double signed_expected[B * C];
        for (int i = 0; i < B * C; i++) {
            signed_expected[i] = cases[k].sign * expected[i];
        }
        expect_close(cases[k].name, one_thread, signed_expected, B * C, 0, 0);
        cr_assert_eq(memcmp(one_thread, two_threads, B * C * sizeof *one_thread), 0,
                     "%s: 1 and 2 threads give different bits", cases[k].name);
        free(one_thread);
        free(two_threads);
    }
    omp_set_num_threads(saved_threads);
}
