/* The fused MLP op: gradient checks in both GELU forms with and without
 * biases and residual, the forward against the composition of linear, gelu,
 * linear and add, the forward without gradients, bits for 1 and 2 threads,
 * and shape errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef struct mlp_case {
    bool biases;
    bool residual;
    tg_gelu_approx approx;
} mlp_case;

/* inputs: x, fc_weight, fc_bias, proj_weight, proj_bias, residual. */
static tg_tensor *mlp_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const mlp_case *c = user_data;
    return tg_gelu_mlp(tape, in[0], in[1], c->biases ? in[2] : NULL, in[3],
                       c->biases ? in[4] : NULL, c->residual ? in[5] : NULL, c->approx);
}

/* Fills inputs with random tensors for x (B, T, C) and hidden width H. */
static void make_inputs(tg_tensor **inputs, tg_rng *rng, int B, int T, int C, int H) {
    int x_shape[3] = {B, T, C};
    int w1_shape[2] = {H, C};
    int w2_shape[2] = {C, H};
    inputs[0] = random_input(rng, 3, x_shape);
    inputs[1] = random_input(rng, 2, w1_shape);
    inputs[2] = random_input(rng, 1, &H);
    inputs[3] = random_input(rng, 2, w2_shape);
    inputs[4] = random_input(rng, 1, &C);
    inputs[5] = random_input(rng, 3, x_shape);
}

static void free_inputs(tg_tensor **inputs) {
    for (int i = 0; i < 6; i++) {
        tg_tensor_free(inputs[i]);
    }
}

Test(gelu_mlp, gradcheck_all_variants) {
    tg_rng rng;
    tg_rng_seed(&rng, 41);
    for (int variant = 0; variant < 8; variant++) {
        mlp_case c = {.biases = (variant & 1) != 0, .residual = (variant & 2) != 0,
                      .approx = (variant & 4) != 0 ? TG_GELU_EXACT : TG_GELU_TANH};
        tg_tensor *inputs[6];
        make_inputs(inputs, &rng, 2, 3, 4, 6);
        char what[96];
        snprintf(what, sizeof what, "gelu_mlp %s, %s biases, %s residual",
                 c.approx == TG_GELU_TANH ? "tanh" : "exact", c.biases ? "with" : "without",
                 c.residual ? "with" : "without");
        expect_gradcheck(what, mlp_fn, 6, inputs, &c, NULL);
        free_inputs(inputs);
    }
}

Test(gelu_mlp, gradcheck_large_pre_activations) {
    /* Pre-activations of magnitude up to about 60 reach the clamped exp and
     * the flat tails of GELU. */
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    tg_tensor *inputs[6];
    make_inputs(inputs, &rng, 1, 4, 3, 5);
    for (size_t i = 0; i < inputs[1]->size; i++) {
        inputs[1]->data[i] *= 20;
    }
    mlp_case c = {.biases = true, .residual = true, .approx = TG_GELU_TANH};
    expect_gradcheck("gelu_mlp with large pre-activations", mlp_fn, 6, inputs, &c, NULL);
    free_inputs(inputs);
}

Test(gelu_mlp, forward_matches_composition) {
    tg_rng rng;
    tg_rng_seed(&rng, 43);
    for (int form = 0; form < 2; form++) {
        tg_gelu_approx approx = form == 0 ? TG_GELU_TANH : TG_GELU_EXACT;
        tg_tensor *in[6];
        make_inputs(in, &rng, 3, 5, 8, 16);
        tg_tape *tape = tg_tape_new();
        tg_tensor *fused = tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], in[5], approx);
        tg_tensor *h = tg_linear(tape, in[0], in[1], in[2]);
        h = tg_linear(tape, tg_gelu(tape, h, approx), in[3], in[4]);
        tg_tensor *composed = tg_add(tape, in[5], h);
        cr_assert_not_null(fused, "%s", tg_tape_error(tape));
        cr_assert_not_null(composed, "%s", tg_tape_error(tape));
        cr_assert_eq(fused->size, composed->size);
        double *expected = malloc(composed->size * sizeof *expected);
        for (size_t i = 0; i < composed->size; i++) {
            expected[i] = (double)composed->data[i];
        }
        /* Both evaluate the same sums in different orders. */
        expect_close(approx == TG_GELU_TANH ? "tanh form" : "exact form", fused->data, expected,
                     fused->size, 1e-12, 1e-12);
        free(expected);
        tg_tape_free(tape);
        free_inputs(in);
    }
}

Test(gelu_mlp, forward_without_grad_matches) {
    tg_rng rng;
    tg_rng_seed(&rng, 44);
    tg_tensor *in[6];
    make_inputs(in, &rng, 2, 4, 8, 32);
    tg_tape *tape = tg_tape_new();
    tg_tensor *recorded = tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], in[5],
                                      TG_GELU_TANH);
    cr_assert_not_null(recorded, "%s", tg_tape_error(tape));
    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *plain = tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], in[5],
                                   TG_GELU_TANH);
    cr_assert_not_null(plain, "%s", tg_tape_error(tape));
    cr_assert(!plain->requires_grad, "an output without gradient recording requires grad");
    cr_assert(memcmp(recorded->data, plain->data, plain->size * sizeof *plain->data) == 0,
              "the forward without gradient recording differs from the recorded one");
    tg_tape_free(tape);
    free_inputs(in);
}

typedef struct thread_run {
    tg_scalar *values;
    tg_scalar *grads;
    size_t values_size;
    size_t grads_size;
} thread_run;

/* Runs forward and backward with the given thread count on inputs large
 * enough for the parallel paths, and copies the output and all gradients. */
static thread_run run_with_threads(int threads) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 45);
    tg_tensor *in[6];
    make_inputs(in, &rng, 8, 64, 64, 256);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], in[5], TG_GELU_TANH);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_tensor *loss = tg_sum(tape, tg_mul(tape, y, y));
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    thread_run run = {.values_size = y->size};
    run.values = malloc(y->size * sizeof *run.values);
    memcpy(run.values, y->data, y->size * sizeof *run.values);
    for (int i = 0; i < 6; i++) {
        run.grads_size += in[i]->size;
    }
    run.grads = malloc(run.grads_size * sizeof *run.grads);
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        memcpy(run.grads + at, in[i]->grad, in[i]->size * sizeof *run.grads);
        at += in[i]->size;
    }
    tg_tape_free(tape);
    free_inputs(in);
    return run;
}

Test(gelu_mlp, one_and_two_threads_same_bits) {
    int saved_threads = omp_get_max_threads();
    thread_run one = run_with_threads(1);
    thread_run two = run_with_threads(2);
    omp_set_num_threads(saved_threads);
    cr_assert(memcmp(one.values, two.values, one.values_size * sizeof(tg_scalar)) == 0,
              "forward values differ between 1 and 2 threads");
    cr_assert(memcmp(one.grads, two.grads, one.grads_size * sizeof(tg_scalar)) == 0,
              "gradients differ between 1 and 2 threads");
    free(one.values);
    free(one.grads);
    free(two.values);
    free(two.grads);
}

Test(gelu_mlp, shape_errors_name_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 46);
    tg_tensor *in[6];
    make_inputs(in, &rng, 2, 3, 4, 6);
    int wrong_shape[2] = {6, 5};
    tg_tensor *wrong = tg_tensor_ones(2, wrong_shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_gelu_mlp(tape, in[0], in[1], in[2], wrong, in[4], in[5], TG_GELU_TANH));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "proj_weight has shape (6, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(4, 6)") != NULL, "message: %s", message);

    tg_tape_reset(tape);
    cr_assert_null(tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], wrong, TG_GELU_TANH));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "residual has shape (6, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(2, 3, 4)") != NULL, "message: %s", message);

    tg_tape_reset(tape);
    cr_assert_null(tg_gelu_mlp(tape, in[0], in[1], in[2], in[3], in[4], in[5],
                               (tg_gelu_approx)9));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID);
    cr_assert(strstr(tg_tape_error(tape), "invalid approx 9") != NULL, "message: %s",
              tg_tape_error(tape));
    tg_tape_free(tape);
    tg_tensor_free(wrong);
    free_inputs(in);
}
