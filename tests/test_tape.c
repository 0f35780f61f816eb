#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

static tg_tape *tape;

static void setup(void) {
    tape = tg_tape_new();
    cr_assert_not_null(tape);
}

static void teardown(void) {
    tg_tape_free(tape);
}

TestSuite(tape, .init = setup, .fini = teardown);

static tg_tensor *param(int n, tg_scalar value) {
    int shape[1] = {n};
    tg_tensor *t = tg_tensor_zeros(1, shape);
    tg_tensor_fill(t, value);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static tg_status backward_with_ones(tg_tensor *out) {
    tg_scalar ones[64];
    for (int i = 0; i < 64; i++) {
        ones[i] = 1;
    }
    cr_assert_leq(out->size, 64);
    return tg_tape_backward_from(tape, out, ones);
}

Test(tape, shared_input_receives_sum_of_gradients) {
    /* y = x * x + 3 x, so dy/dx = 2 x + 3. */
    tg_tensor *x = param(4, 2);
    tg_tensor *square = tg_mul(tape, x, x);
    tg_tensor *y = tg_add(tape, square, tg_scale(tape, x, 3.0));
    cr_assert_eq(backward_with_ones(y), TG_OK, "%s", tg_last_error());
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(x->grad[i], 7, "grad[%d] is %g, expected 7", i, (double)x->grad[i]);
    }
    tg_tensor_free(x);
}

Test(tape, gradients_accumulate_until_zeroed) {
    tg_tensor *x = param(3, 1);
    for (int step = 0; step < 3; step++) {
        tg_tensor *y = tg_scale(tape, x, 2.0);
        cr_assert_eq(backward_with_ones(y), TG_OK);
        tg_tape_reset(tape);
    }
    cr_assert_eq(x->grad[0], 6, "after 3 backward calls grad is %g, expected 6",
                 (double)x->grad[0]);
    tg_tensor_zero_grad(x);
    cr_assert_eq(x->grad[0], 0);
    tg_tensor_free(x);
}

Test(tape, no_grad_mode_records_nothing) {
    tg_tensor *x = param(3, 1);
    bool previous = tg_tape_set_grad_enabled(tape, false);
    cr_assert(previous);
    tg_tensor *y = tg_mul(tape, x, x);
    cr_assert_not_null(y);
    cr_assert(!y->requires_grad);
    cr_assert_eq(tg_tape_get_stats(tape).node_count, 0);
    cr_assert_eq(y->data[0], 1);
    tg_tape_set_grad_enabled(tape, true);
    tg_tensor_free(x);
}

Test(tape, constants_record_no_node) {
    int shape[1] = {3};
    tg_tensor *a = tg_tensor_ones(1, shape);
    tg_tensor *y = tg_add(tape, a, a);
    cr_assert(!y->requires_grad);
    cr_assert_eq(tg_tape_get_stats(tape).node_count, 0);
    tg_tensor_free(a);
}

Test(tape, backward_twice_is_rejected) {
    tg_tensor *x = param(1, 1);
    tg_tensor *y = tg_scale(tape, x, 2.0);
    cr_assert_eq(tg_tape_backward(tape, y), TG_OK);
    cr_assert_eq(tg_tape_backward(tape, y), TG_ERR_STATE);
    cr_assert(strstr(tg_last_error(), "tg_tape_reset") != NULL, "message: %s", tg_last_error());
    tg_tensor_free(x);
}

Test(tape, backward_rejects_non_scalar_loss) {
    tg_tensor *x = param(3, 1);
    tg_tensor *y = tg_scale(tape, x, 2.0);
    cr_assert_eq(tg_tape_backward(tape, y), TG_ERR_SHAPE);
    cr_assert(strstr(tg_last_error(), "(3)") != NULL, "message: %s", tg_last_error());
    tg_tensor_free(x);
}

Test(tape, shape_error_names_op_and_shapes) {
    int a_shape[2] = {2, 3};
    int b_shape[2] = {4, 3};
    tg_tensor *a = tg_tensor_ones(2, a_shape);
    tg_tensor *b = tg_tensor_ones(2, b_shape);
    tg_tensor *y = tg_add(tape, a, b);
    cr_assert_null(y);
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "add") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(2, 3)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(4, 3)") != NULL, "message: %s", message);

    /* Later ops pass the failure along without replacing the message. */
    cr_assert_null(tg_mul(tape, y, a));
    cr_assert_str_eq(tg_tape_error(tape), message);
    cr_assert_eq(tg_tape_backward(tape, y), TG_ERR_SHAPE);

    tg_tape_reset(tape);
    cr_assert_eq(tg_tape_status(tape), TG_OK);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

Test(tape, steady_state_step_allocates_nothing) {
    int shape[2] = {64, 64};
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_tensor *w = tg_tensor_normal(2, shape, &rng, 0.0, 1.0);
    tg_tensor_set_requires_grad(w, true);
    long allocations_after_first = 0;
    for (int step = 0; step < 5; step++) {
        tg_tensor *h = w;
        for (int layer = 0; layer < 40; layer++) {
            h = tg_matmul(tape, h, w);
            h = tg_scale(tape, h, 0.1);
        }
        tg_scalar seed[64 * 64];
        for (int i = 0; i < 64 * 64; i++) {
            seed[i] = 1;
        }
        cr_assert_eq(tg_tape_backward_from(tape, h, seed), TG_OK);
        tg_tape_reset(tape);
        if (step == 1) {
            allocations_after_first = tg_tape_get_stats(tape).heap_allocations;
        }
    }
    cr_assert_eq(tg_tape_get_stats(tape).heap_allocations, allocations_after_first,
                 "steps 3 to 5 allocated %ld arena chunks",
                 tg_tape_get_stats(tape).heap_allocations - allocations_after_first);
    tg_tensor_free(w);
}

Test(tape, view_gradient_reaches_base) {
    int shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_ones(2, shape);
    tg_tensor_set_requires_grad(x, true);
    int flat[1] = {6};
    tg_tensor *v = tg_tape_view(tape, x, 0, 1, flat);
    tg_tensor *y = tg_scale(tape, v, 4.0);
    cr_assert_eq(backward_with_ones(y), TG_OK);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(x->grad[i], 4);
    }
    tg_tensor_free(x);
}
