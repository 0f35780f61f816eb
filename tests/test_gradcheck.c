/* The gradient checker itself: it passes correct ops and catches wrong ones.
 * Built against the float64 library. */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* square_wrong: y = x^2 with a backward of 3x instead of 2x. */
static void square_wrong_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    const tg_tensor *x = node->inputs[0];
    for (size_t i = 0; i < x->size; i++) {
        dx[i] += node->output->grad[i] * 3 * x->data[i];
    }
}

/* square_silent: y = x^2 with a backward that adds nothing. */
static void square_silent_backward(tg_node *node) {
    (void)node;
}

static const tg_op square_wrong_op = {"square_wrong", square_wrong_backward};
static const tg_op square_silent_op = {"square_silent", square_silent_backward};

static tg_tensor *square_with(tg_tape *tape, const tg_tensor *x, const tg_op *op) {
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    for (size_t i = 0; i < x->size; i++) {
        y->data[i] = x->data[i] * x->data[i];
    }
    tg_tape_record(tape, op, y, 1, &x);
    return y;
}

static tg_tensor *wrong_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    return square_with(tape, in[0], &square_wrong_op);
}

static tg_tensor *silent_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    return square_with(tape, in[0], &square_silent_op);
}

static tg_tensor *product_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    return tg_mul(tape, in[0], in[1]);
}

Test(gradcheck, passes_correct_op) {
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    int shape[2] = {3, 4};
    tg_tensor *inputs[2] = {random_input(&rng, 2, shape), random_input(&rng, 2, shape)};
    tg_gradcheck_result result;
    tg_status status = tg_gradcheck(product_fn, 2, inputs, NULL, NULL, &result);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    cr_assert_eq(result.checked, 24);
    cr_assert_lt(result.max_error, 1e-8, "max error %g", result.max_error);
    tg_tensor_free(inputs[0]);
    tg_tensor_free(inputs[1]);
}

Test(gradcheck, catches_wrong_backward) {
    tg_rng rng;
    tg_rng_seed(&rng, 6);
    int shape[1] = {5};
    tg_tensor *x = random_input(&rng, 1, shape);
    tg_gradcheck_result result;
    tg_status status = tg_gradcheck(wrong_fn, 1, &x, NULL, NULL, &result);
    cr_assert_eq(status, TG_ERR_NUMERIC);
    cr_assert_gt(result.max_error, 0.1, "max error %g", result.max_error);
    /* The reported element's analytic value is 1.5 times the numeric one. */
    cr_assert(fabs(result.analytic - 1.5 * result.numeric) < 1e-6 * fabs(result.numeric) + 1e-9,
              "analytic %g, numeric %g", result.analytic, result.numeric);
    cr_assert(strstr(tg_last_error(), "analytic") != NULL, "message: %s", tg_last_error());
    tg_tensor_free(x);
}

Test(gradcheck, catches_backward_leaving_zero) {
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    int shape[1] = {5};
    tg_tensor *x = random_input(&rng, 1, shape);
    tg_gradcheck_result result;
    tg_status status = tg_gradcheck(silent_fn, 1, &x, NULL, NULL, &result);
    cr_assert_eq(status, TG_ERR_NUMERIC);
    cr_assert_eq(result.analytic, 0.0);
    cr_assert_neq(result.numeric, 0.0);
    tg_tensor_free(x);
}

Test(gradcheck, reports_worst_element_index) {
    /* Only element 3 is large, so the wrong backward is worst there. */
    int shape[1] = {6};
    tg_scalar values[6] = {0.01, 0.02, 0.03, 5.0, 0.01, 0.02};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(x, true);
    tg_gradcheck_options options = tg_gradcheck_default_options();
    options.scale_floor = 1e-12;
    tg_gradcheck_result result;
    tg_gradcheck(wrong_fn, 1, &x, NULL, &options, &result);
    cr_assert_eq(result.worst_input, 0);
    cr_assert_eq(result.checked, 6);
    tg_tensor_free(x);
}

Test(gradcheck, rejects_inputs_without_grad) {
    int shape[1] = {2};
    tg_tensor *x = tg_tensor_ones(1, shape);
    cr_assert_eq(tg_gradcheck(silent_fn, 1, &x, NULL, NULL, NULL), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "requires grad") != NULL, "message: %s", tg_last_error());
    tg_tensor_free(x);
}

Test(gradcheck, build_is_double_precision) {
    cr_assert_eq(sizeof(tg_scalar), sizeof(double));
}
