/* cross_entropy and mse: gradient checks in float64 on random shapes, with
 * ignored targets and at logits of +-1000, forward values against double
 * references, thread-count determinism and errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* An ignore_index away from every class, as PyTorch's default of -100. */
#define IGNORE -100

typedef struct ce_args {
    const int32_t *targets;
    int32_t ignore_index;
} ce_args;

static tg_tensor *apply_cross_entropy(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const ce_args *args = user_data;
    return tg_cross_entropy(tape, in[0], args->targets, args->ignore_index);
}

static tg_tensor *apply_mse(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    return tg_mse(tape, in[0], in[1]);
}

/* Returns the mean over kept rows of -log softmax(x_r)[t_r] in double, or 0
 * if every row is ignored. */
static double reference_cross_entropy(const tg_tensor *logits, const int32_t *targets,
                                      int32_t ignore_index) {
    size_t V = (size_t)logits->shape[logits->ndim - 1];
    size_t N = logits->size / V;
    double total = 0.0;
    long count = 0;
    for (size_t r = 0; r < N; r++) {
        if (ignore_index != TG_IGNORE_INDEX_NONE && targets[r] == ignore_index) {
            continue;
        }
        const tg_scalar *x_r = logits->data + r * V;
        double m = (double)x_r[0];
        for (size_t j = 1; j < V; j++) {
            m = fmax(m, (double)x_r[j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j < V; j++) {
            sum += exp((double)x_r[j] - m);
        }
        total += m + log(sum) - (double)x_r[targets[r]];
        count++;
    }
    return count > 0 ? total / (double)count : 0.0;
}

/* Fills targets (N) with classes in [0, V), replacing about one in
 * `ignore_every` with IGNORE when ignore_every > 0. */
static void random_targets(tg_rng *rng, int32_t *targets, size_t N, int V, int ignore_every) {
    for (size_t r = 0; r < N; r++) {
        targets[r] = (int32_t)tg_rng_below(rng, (uint64_t)V);
        if (ignore_every > 0 && tg_rng_below(rng, (uint64_t)ignore_every) == 0) {
            targets[r] = IGNORE;
        }
    }
}

/* ---- cross_entropy ------------------------------------------------------- */

Test(cross_entropy, gradcheck_random_shapes_and_ignores) {
    tg_rng rng;
    tg_rng_seed(&rng, 61);
    for (int c = 0; c < 10; c++) {
        int shape[TG_MAX_DIMS];
        int ndim = 1 + (int)tg_rng_below(&rng, 3);
        for (int d = 0; d < ndim; d++) {
            shape[d] = 1 + (int)tg_rng_below(&rng, d == ndim - 1 ? 6 : 4);
        }
        tg_tensor *logits = random_input(&rng, ndim, shape);
        for (size_t i = 0; i < logits->size; i++) {
            logits->data[i] *= 3;
        }
        size_t N = logits->size / (size_t)shape[ndim - 1];
        int32_t targets[64];
        /* Even cases ignore nothing; odd cases ignore about a third of the rows. */
        random_targets(&rng, targets, N, shape[ndim - 1], c % 2 == 1 ? 3 : 0);
        ce_args args = {targets, c % 2 == 1 ? IGNORE : TG_IGNORE_INDEX_NONE};
        char what[64];
        snprintf(what, sizeof what, "cross_entropy case %d", c);
        expect_gradcheck(what, apply_cross_entropy, 1, &logits, &args, NULL);
        tg_tensor_free(logits);
    }
}

Test(cross_entropy, gradcheck_logits_of_1000) {
    int shape[2] = {4, 3};
    tg_scalar values[12] = {1000, -1000, 0,  -1000, 1000, 999,
                            -1000, -1000, -999, 1000, 1000, 1000};
    tg_tensor *logits = tg_tensor_from_values(2, shape, values);
    tg_tensor_set_requires_grad(logits, true);
    int32_t targets[4] = {1, 2, 0, 1};
    ce_args args = {targets, TG_IGNORE_INDEX_NONE};
    expect_gradcheck("cross_entropy at +-1000", apply_cross_entropy, 1, &logits, &args, NULL);
    tg_tensor_free(logits);
}

Test(cross_entropy, forward_matches_double_reference) {
    tg_rng rng;
    tg_rng_seed(&rng, 62);
    tg_tape *tape = tg_tape_new();
    int shapes[3][3] = {{7, 1, 0}, {3, 5, 11}, {40, 900, 0}};
    int ndims[3] = {2, 3, 2};
    for (int c = 0; c < 3; c++) {
        tg_tensor *logits = random_input(&rng, ndims[c], shapes[c]);
        int V = shapes[c][ndims[c] - 1];
        size_t N = logits->size / (size_t)V;
        int32_t *targets = malloc(N * sizeof *targets);
        for (int ignore = 0; ignore < 2; ignore++) {
            random_targets(&rng, targets, N, V, ignore ? 4 : 0);
            int32_t ignore_index = ignore ? IGNORE : TG_IGNORE_INDEX_NONE;
            tg_tensor *loss = tg_cross_entropy(tape, logits, targets, ignore_index);
            cr_assert_not_null(loss, "%s", tg_tape_error(tape));
            cr_assert_eq(loss->ndim, 0, "loss has %d dimensions", loss->ndim);
            double expected = reference_cross_entropy(logits, targets, ignore_index);
            char what[64];
            snprintf(what, sizeof what, "cross_entropy case %d ignore %d", c, ignore);
            expect_close(what, loss->data, &expected, 1, 1e-15, 1e-13);
        }
        free(targets);
        tg_tensor_free(logits);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(cross_entropy, logits_of_1000_stay_finite) {
    int shape[2] = {2, 3};
    tg_scalar values[6] = {1000, -1000, 0, 1000, -1000, 0};
    tg_tensor *logits = tg_tensor_from_values(2, shape, values);
    tg_tensor_set_requires_grad(logits, true);
    int32_t targets[2] = {0, 1};
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_cross_entropy(tape, logits, targets, TG_IGNORE_INDEX_NONE);
    /* Row 0 picks the largest logit (loss 0), row 1 the smallest (loss 2000). */
    cr_assert_eq(loss->data[0], 1000, "loss is %g", (double)loss->data[0]);
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    /* dlogits = (softmax - onehot) / 2 with softmax (1, 0, 0) in both rows. */
    double expected[6] = {0, 0, 0, 0.5, -0.5, 0};
    expect_close("gradient", logits->grad, expected, 6, 0, 0);
    tg_tensor_free(logits);
    tg_tape_free(tape);
}

Test(cross_entropy, all_ignored_gives_zero) {
    tg_rng rng;
    tg_rng_seed(&rng, 63);
    int shape[2] = {3, 4};
    tg_tensor *logits = random_input(&rng, 2, shape);
    int32_t targets[3] = {IGNORE, IGNORE, IGNORE};
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_cross_entropy(tape, logits, targets, IGNORE);
    cr_assert_not_null(loss, "%s", tg_tape_error(tape));
    cr_assert_eq(loss->data[0], 0, "loss is %g, expected 0", (double)loss->data[0]);
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    for (size_t i = 0; i < logits->size; i++) {
        cr_assert_eq(logits->grad[i], 0, "gradient %zu is %g", i, (double)logits->grad[i]);
    }
    tg_tensor_free(logits);
    tg_tape_free(tape);
}

Test(cross_entropy, ignore_index_may_be_a_class) {
    /* As in PyTorch, an ignore_index inside [0, V) drops the rows of that class. */
    tg_rng rng;
    tg_rng_seed(&rng, 64);
    int shape[2] = {4, 3};
    tg_tensor *logits = random_input(&rng, 2, shape);
    int32_t targets[4] = {2, 0, 2, 1};
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_cross_entropy(tape, logits, targets, 2);
    cr_assert_not_null(loss, "%s", tg_tape_error(tape));
    int32_t kept_targets[4] = {IGNORE, 0, IGNORE, 1};
    double expected = reference_cross_entropy(logits, kept_targets, IGNORE);
    expect_close("loss", loss->data, &expected, 1, 1e-15, 1e-14);
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    for (int j = 0; j < 3; j++) {
        cr_assert_eq(logits->grad[j], 0, "ignored row 0 has gradient %g at %d",
                     (double)logits->grad[j], j);
    }
    tg_tensor_free(logits);
    tg_tape_free(tape);
}

Test(cross_entropy, targets_are_copied) {
    tg_rng rng;
    tg_rng_seed(&rng, 65);
    int shape[2] = {3, 5};
    tg_tensor *logits = random_input(&rng, 2, shape);
    tg_tensor *reference = tg_tensor_from_values(2, shape, logits->data);
    tg_tensor_set_requires_grad(reference, true);
    int32_t targets[3] = {4, 0, 2};
    int32_t buffer[3] = {4, 0, 2};
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_cross_entropy(tape, logits, buffer, TG_IGNORE_INDEX_NONE);
    /* The caller reuses its buffer before the backward pass. */
    buffer[0] = 1;
    buffer[1] = 1;
    buffer[2] = 1;
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());

    tg_tape *reference_tape = tg_tape_new();
    tg_tensor *reference_loss =
        tg_cross_entropy(reference_tape, reference, targets, TG_IGNORE_INDEX_NONE);
    cr_assert_eq(tg_tape_backward(reference_tape, reference_loss), TG_OK, "%s", tg_last_error());
    double expected[15];
    for (int i = 0; i < 15; i++) {
        expected[i] = (double)reference->grad[i];
    }
    expect_close("gradient", logits->grad, expected, 15, 0, 0);
    tg_tensor_free(logits);
    tg_tensor_free(reference);
    tg_tape_free(tape);
    tg_tape_free(reference_tape);
}

Test(cross_entropy, backward_adds_into_gradient) {
    int shape[1] = {2};
    tg_scalar values[2] = {0, 0};
    tg_tensor *logits = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(logits, true);
    logits->grad[0] = 3;
    logits->grad[1] = 4;
    int32_t target = 1;
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_cross_entropy(tape, logits, &target, TG_IGNORE_INDEX_NONE);
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    double expected[2] = {3.5, 3.5};
    expect_close("gradient", logits->grad, expected, 2, 0, 0);
    tg_tensor_free(logits);
    tg_tape_free(tape);
}

Test(cross_entropy, invalid_target_names_position_and_value) {
    int shape[3] = {2, 2, 5};
    tg_tensor *logits = tg_tensor_ones(3, shape);
    tg_tape *tape = tg_tape_new();

    int32_t too_large[4] = {0, 4, IGNORE, 5};
    cr_assert_null(tg_cross_entropy(tape, logits, too_large, IGNORE));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID, "status %d", tg_tape_status(tape));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "cross_entropy: target 5 at position 3 is invalid") != NULL,
              "message: %s", message);
    cr_assert(strstr(message, "(2, 2, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "[0, 5)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "ignore_index is -100") != NULL, "message: %s", message);

    tg_tape_reset(tape);
    int32_t negative[4] = {0, -1, 1, 2};
    cr_assert_null(tg_cross_entropy(tape, logits, negative, TG_IGNORE_INDEX_NONE));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "target -1 at position 1") != NULL, "message: %s", message);
    cr_assert(strstr(message, "no ignore_index is set") != NULL, "message: %s", message);

    /* With no ignore_index, INT32_MIN is an ordinary invalid target. */
    tg_tape_reset(tape);
    int32_t smallest[4] = {0, 1, 2, INT32_MIN};
    cr_assert_null(tg_cross_entropy(tape, logits, smallest, TG_IGNORE_INDEX_NONE));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID, "status %d", tg_tape_status(tape));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "at position 3") != NULL, "message: %s", message);

    tg_tensor_free(logits);
    tg_tape_free(tape);
}

Test(cross_entropy, bad_arguments_are_rejected) {
    int shape[2] = {2, 3};
    tg_tensor *logits = tg_tensor_ones(2, shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_cross_entropy(tape, logits, NULL, IGNORE));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID, "status %d", tg_tape_status(tape));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "cross_entropy: targets is NULL") != NULL, "message: %s", message);
    cr_assert(strstr(message, "2 class indices") != NULL, "message: %s", message);

    tg_tape_reset(tape);
    tg_tensor *scalar = tg_tensor_ones(0, shape);
    int32_t target = 0;
    cr_assert_null(tg_cross_entropy(tape, scalar, &target, IGNORE));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE, "status %d", tg_tape_status(tape));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "cross_entropy: logits have shape ()") != NULL, "message: %s",
              message);

    tg_tape_reset(tape);
    cr_assert_null(tg_cross_entropy(tape, NULL, &target, IGNORE));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "a NULL input recorded status %d",
                 tg_tape_status(tape));
    tg_tensor_free(scalar);
    tg_tensor_free(logits);
    tg_tape_free(tape);
}

/* ---- mse ----------------------------------------------------------------- */

Test(mse, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 66);
    for (int c = 0; c < 8; c++) {
        int shape[TG_MAX_DIMS];
        int ndim = (int)tg_rng_below(&rng, 4);
        for (int d = 0; d < ndim; d++) {
            shape[d] = 1 + (int)tg_rng_below(&rng, 4);
        }
        tg_tensor *inputs[2] = {random_input(&rng, ndim, shape), random_input(&rng, ndim, shape)};
        char what[64];
        snprintf(what, sizeof what, "mse case %d", c);
        expect_gradcheck(what, apply_mse, 2, inputs, NULL, NULL);
        tg_tensor_free(inputs[0]);
        tg_tensor_free(inputs[1]);
    }
}

Test(mse, gradient_flows_to_each_input) {
    int shape[1] = {3};
    tg_scalar p_values[3] = {1, 2, 3};
    tg_scalar t_values[3] = {0, 4, 3};
    tg_tensor *prediction = tg_tensor_from_values(1, shape, p_values);
    tg_tensor *target = tg_tensor_from_values(1, shape, t_values);
    /* d/dp = 2 (p - t) / n = (2/3, -4/3, 0), and d/dt is its negative. */
    double expected[3] = {2.0 / 3, -4.0 / 3, 0};
    double negated[3] = {-2.0 / 3, 4.0 / 3, 0};

    tg_tensor_set_requires_grad(prediction, true);
    tg_tape *tape = tg_tape_new();
    tg_tensor *loss = tg_mse(tape, prediction, target);
    /* (1 + 4 + 0) / 3 */
    double expected_loss = 5.0 / 3;
    expect_close("loss", loss->data, &expected_loss, 1, 0, 1e-15);
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    expect_close("prediction gradient", prediction->grad, expected, 3, 0, 1e-15);
    cr_assert_null(target->grad, "target received a gradient without requiring grad");

    tg_tensor_set_requires_grad(prediction, false);
    tg_tensor_set_requires_grad(target, true);
    tg_tape_reset(tape);
    cr_assert_eq(tg_tape_backward(tape, tg_mse(tape, prediction, target)), TG_OK, "%s",
                 tg_last_error());
    expect_close("target gradient", target->grad, negated, 3, 0, 1e-15);

    tg_tensor_free(prediction);
    tg_tensor_free(target);
    tg_tape_free(tape);
}

Test(mse, forward_matches_double_reference) {
    tg_rng rng;
    tg_rng_seed(&rng, 67);
    tg_tape *tape = tg_tape_new();
    int sizes[3] = {1, 13, 50000};
    for (int c = 0; c < 3; c++) {
        tg_tensor *p = random_input(&rng, 1, &sizes[c]);
        tg_tensor *t = random_input(&rng, 1, &sizes[c]);
        double total = 0.0;
        for (size_t i = 0; i < p->size; i++) {
            double d = (double)p->data[i] - (double)t->data[i];
            total += d * d;
        }
        double expected = total / (double)p->size;
        tg_tensor *loss = tg_mse(tape, p, t);
        cr_assert_not_null(loss, "%s", tg_tape_error(tape));
        cr_assert_eq(loss->ndim, 0, "loss has %d dimensions", loss->ndim);
        expect_close("mse", loss->data, &expected, 1, 0, 1e-13);
        tg_tensor_free(p);
        tg_tensor_free(t);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(mse, shape_mismatch_names_both_shapes) {
    int p_shape[2] = {2, 3};
    int t_shape[2] = {3, 2};
    tg_tensor *prediction = tg_tensor_ones(2, p_shape);
    tg_tensor *target = tg_tensor_ones(2, t_shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_mse(tape, prediction, target));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE, "status %d", tg_tape_status(tape));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "mse: prediction has shape (2, 3) but target has shape (3, 2)") !=
                  NULL,
              "message: %s", message);
    tg_tensor_free(prediction);
    tg_tensor_free(target);
    tg_tape_free(tape);
}

/* ---- both losses ---------------------------------------------------------- */

/* Runs both losses on the same large logits with the given thread count and
 * returns the two losses and the logits gradient concatenated (caller frees). */
static tg_scalar *run_losses(int threads, size_t *count) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 68);
    int shape[3] = {4, 128, 300};
    tg_tensor *logits = random_input(&rng, 3, shape);
    tg_tensor *target = tg_tensor_normal(3, shape, &rng, 0.0, 1.0);
    size_t N = logits->size / 300;
    int32_t *targets = malloc(N * sizeof *targets);
    random_targets(&rng, targets, N, 300, 5);

    tg_tape *tape = tg_tape_new();
    tg_tensor *ce = tg_cross_entropy(tape, logits, targets, IGNORE);
    tg_tensor *mse = tg_mse(tape, logits, target);
    cr_assert_eq(tg_tape_backward(tape, tg_add(tape, ce, mse)), TG_OK, "%s", tg_last_error());
    *count = 2 + logits->size;
    tg_scalar *out = malloc(*count * sizeof *out);
    out[0] = ce->data[0];
    out[1] = mse->data[0];
    memcpy(out + 2, logits->grad, logits->size * sizeof *out);
    tg_tape_free(tape);
    free(targets);
    tg_tensor_free(logits);
    tg_tensor_free(target);
    return out;
}

Test(loss, same_bits_for_one_and_two_threads) {
    size_t n1;
    size_t n2;
    tg_scalar *one_thread = run_losses(1, &n1);
    tg_scalar *two_threads = run_losses(2, &n2);
    cr_assert_eq(n1, n2, "sizes %zu and %zu", n1, n2);
    cr_assert_eq(memcmp(one_thread, two_threads, sizeof *one_thread), 0,
                 "cross_entropy is %.17g with 1 thread, %.17g with 2", (double)one_thread[0],
                 (double)two_threads[0]);
    cr_assert_eq(memcmp(one_thread + 1, two_threads + 1, sizeof *one_thread), 0,
                 "mse is %.17g with 1 thread, %.17g with 2", (double)one_thread[1],
                 (double)two_threads[1]);
    cr_assert_eq(memcmp(one_thread, two_threads, n1 * sizeof *one_thread), 0,
                 "gradients differ between 1 and 2 threads");
    free(one_thread);
    free(two_threads);
}

Test(loss, no_grad_mode_records_no_node) {
    tg_rng rng;
    tg_rng_seed(&rng, 69);
    int shape[2] = {3, 4};
    tg_tensor *logits = random_input(&rng, 2, shape);
    int32_t targets[3] = {0, 3, IGNORE};
    tg_tape *tape = tg_tape_new();
    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *ce = tg_cross_entropy(tape, logits, targets, IGNORE);
    tg_tensor *mse = tg_mse(tape, logits, logits);
    cr_assert_not_null(ce, "%s", tg_tape_error(tape));
    cr_assert_not_null(mse, "%s", tg_tape_error(tape));
    cr_assert_not(ce->requires_grad, "cross_entropy output requires grad");
    cr_assert_not(mse->requires_grad, "mse output requires grad");
    double expected = reference_cross_entropy(logits, targets, IGNORE);
    expect_close("loss without recording", ce->data, &expected, 1, 1e-15, 1e-14);
    long nodes = tg_tape_get_stats(tape).node_count;
    cr_assert_eq(nodes, 0, "%ld nodes recorded with recording off", nodes);
    tg_tape_free(tape);
    tg_tensor_free(logits);
}
