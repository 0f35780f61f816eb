/* dropout: seeded reproducibility, the fraction of zeros, inverted scaling,
 * evaluation identity, p = 1, a gradient check in float64 with a fixed seed,
 * the saved mask in the backward, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

static void expect_error(tg_tape *tape, tg_status status, const char *fragment) {
    cr_assert_eq(tg_tape_status(tape), status, "status is %s, expected %s; message: %s",
                 tg_status_name(tg_tape_status(tape)), tg_status_name(status),
                 tg_tape_error(tape));
    cr_assert(strstr(tg_tape_error(tape), fragment) != NULL,
              "message \"%s\" lacks \"%s\"", tg_tape_error(tape), fragment);
}

typedef struct dropout_case {
    double p;
    uint64_t seed;
} dropout_case;

/* y = dropout(x) * x with the generator seeded afresh on every call, so the
 * mask is the same on every evaluation of the gradient check. */
static tg_tensor *dropout_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const dropout_case *c = user_data;
    tg_rng rng;
    tg_rng_seed(&rng, c->seed);
    return tg_mul(tape, tg_dropout(tape, in[0], c->p, &rng, true), in[0]);
}

Test(dropout, gradcheck_fixed_seed) {
    tg_rng rng;
    tg_rng_seed(&rng, 801);
    double probabilities[4] = {0.2, 0.5, 0.8, 1.0};
    for (int trial = 0; trial < 4; trial++) {
        int ndim = 1 + (int)tg_rng_below(&rng, 3);
        int shape[TG_MAX_DIMS];
        for (int d = 0; d < ndim; d++) {
            shape[d] = 1 + (int)tg_rng_below(&rng, 5);
        }
        tg_tensor *x = random_input(&rng, ndim, shape);
        dropout_case c = {probabilities[trial], 900 + (uint64_t)trial};
        char what[64];
        snprintf(what, sizeof what, "dropout p %g", c.p);
        expect_gradcheck(what, dropout_fn, 1, &x, &c, NULL);
        tg_tensor_free(x);
    }
}

Test(dropout, same_seed_same_mask) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {7, 9};
    tg_tensor *x = tg_tensor_ones(2, shape);
    tg_rng first_rng;
    tg_rng second_rng;
    tg_rng_seed(&first_rng, 42);
    tg_rng_seed(&second_rng, 42);
    tg_tensor *first = tg_dropout(tape, x, 0.5, &first_rng, true);
    tg_tensor *second = tg_dropout(tape, x, 0.5, &second_rng, true);
    cr_assert_not_null(first, "%s", tg_tape_error(tape));
    cr_assert_not_null(second, "%s", tg_tape_error(tape));
    cr_assert_eq(memcmp(first->data, second->data, x->size * sizeof(tg_scalar)), 0,
                 "the same seed gave different masks");
    cr_assert_eq(memcmp(&first_rng, &second_rng, sizeof first_rng), 0,
                 "the generators advanced differently");

    /* The next call continues the stream and draws a new mask. */
    tg_tensor *third = tg_dropout(tape, x, 0.5, &first_rng, true);
    cr_assert_neq(memcmp(first->data, third->data, x->size * sizeof(tg_scalar)), 0,
                  "a second draw repeated the first mask");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, mask_follows_uniform_draws) {
    /* Element i is kept exactly when the i-th uniform draw is at least p. */
    tg_tape *tape = tg_tape_new();
    int shape[1] = {64};
    tg_tensor *x = tg_tensor_ones(1, shape);
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_tensor *y = tg_dropout(tape, x, 0.3, &rng, true);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_rng replay;
    tg_rng_seed(&replay, 5);
    for (int i = 0; i < 64; i++) {
        bool keep = tg_rng_uniform(&replay) >= 0.3;
        cr_assert_eq(y->data[i] != 0, keep, "element %d is %g but its draw says %s", i,
                     (double)y->data[i], keep ? "keep" : "drop");
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, zero_fraction_near_p) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {400, 500};
    tg_tensor *x = tg_tensor_ones(2, shape);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    double probabilities[3] = {0.1, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        double p = probabilities[k];
        tg_tensor *y = tg_dropout(tape, x, p, &rng, true);
        cr_assert_not_null(y, "%s", tg_tape_error(tape));
        size_t zeros = 0;
        for (size_t i = 0; i < y->size; i++) {
            zeros += y->data[i] == 0;
        }
        double fraction = (double)zeros / (double)y->size;
        /* The standard deviation of the fraction is at most 0.0011 here, so
         * 0.006 is over five of them. */
        cr_assert(fabs(fraction - p) < 0.006, "p %g: %zu of %zu zeros, fraction %g", p, zeros,
                  y->size, fraction);
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, kept_values_scaled_by_inverse_keep) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 8);
    int shape[2] = {10, 20};
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tensor *y = tg_dropout(tape, x, 0.25, &rng, true);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    size_t kept = 0;
    for (size_t i = 0; i < x->size; i++) {
        if (y->data[i] == 0) {
            continue;
        }
        kept++;
        double expected = (double)x->data[i] / 0.75;
        cr_assert(fabs((double)y->data[i] - expected) <= 1e-15 * fabs(expected),
                  "element %zu is %.17g, expected %.17g", i, (double)y->data[i], expected);
    }
    cr_assert_gt(kept, (size_t)0, "no element was kept");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, backward_uses_forward_mask) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    int shape[1] = {300};
    tg_tensor *x = random_input(&rng, 1, shape);
    x->grad[0] = 10;  /* the backward adds to this value */
    tg_tensor *y = tg_dropout(tape, x, 0.4, &rng, true);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_scalar dy[300];
    for (int i = 0; i < 300; i++) {
        dy[i] = (tg_scalar)(i + 1);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    double expected[300];
    tg_scalar scale = (tg_scalar)(1.0 / 0.6);
    for (int i = 0; i < 300; i++) {
        expected[i] = y->data[i] == 0 ? 0.0 : (double)(dy[i] * scale);
    }
    expected[0] += 10;
    expect_close("dx", x->grad, expected, 300, 0, 1e-15);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, eval_and_zero_p_return_x) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 10);
    int shape[2] = {3, 4};
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_rng before = rng;
    cr_assert_eq(tg_dropout(tape, x, 0.5, &rng, false), x, "evaluation did not return x");
    cr_assert_eq(tg_dropout(tape, x, 0.0, &rng, true), x, "p = 0 did not return x");
    cr_assert_eq(tg_dropout(tape, x, 0.5, NULL, false), x, "evaluation needed an rng");
    cr_assert_eq(memcmp(&before, &rng, sizeof rng), 0, "the generator advanced");
    tg_tape_stats stats = tg_tape_get_stats(tape);
    cr_assert_eq(stats.node_count, 0, "%ld nodes recorded", stats.node_count);
    cr_assert_eq(stats.arena_used_bytes, (size_t)0, "%zu bytes of step memory used",
                 stats.arena_used_bytes);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, p_one_gives_zeros) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    int shape[2] = {4, 5};
    tg_tensor *x = random_input(&rng, 2, shape);
    x->data[3] = INFINITY;  /* a dropped element is 0 even for infinite x */
    tg_tensor *y = tg_dropout(tape, x, 1.0, &rng, true);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    double zeros[20] = {0};
    expect_close("p = 1", y->data, zeros, 20, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, no_grad_saves_no_mask) {
    /* The same forward in both modes; the recorded one also stores the mask. */
    int shape[1] = {1000};
    tg_tensor *x = tg_tensor_ones(1, shape);
    tg_tensor_set_requires_grad(x, true);
    tg_rng rng;

    tg_tape *recorded = tg_tape_new();
    tg_rng_seed(&rng, 12);
    tg_tensor *y = tg_dropout(recorded, x, 0.5, &rng, true);
    cr_assert_not_null(y, "%s", tg_tape_error(recorded));

    tg_tape *plain = tg_tape_new();
    tg_tape_set_grad_enabled(plain, false);
    tg_rng_seed(&rng, 12);
    tg_tensor *z = tg_dropout(plain, x, 0.5, &rng, true);
    cr_assert_not_null(z, "%s", tg_tape_error(plain));

    cr_assert_eq(memcmp(y->data, z->data, x->size * sizeof(tg_scalar)), 0,
                 "recording changed the output");
    cr_assert(!z->requires_grad, "the no-grad output requires grad");
    size_t recorded_bytes = tg_tape_get_stats(recorded).arena_used_bytes;
    size_t plain_bytes = tg_tape_get_stats(plain).arena_used_bytes;
    cr_assert_geq(recorded_bytes - plain_bytes, x->size * sizeof(tg_scalar),
                  "recorded %zu bytes, no-grad %zu; the mask takes %zu", recorded_bytes,
                  plain_bytes, x->size * sizeof(tg_scalar));
    cr_assert_eq(tg_tape_get_stats(plain).node_count, 0, "the no-grad tape has nodes");
    tg_tape_free(recorded);
    tg_tape_free(plain);
    tg_tensor_free(x);
}

Test(dropout, probability_outside_unit_interval_rejected) {
    int shape[1] = {3};
    tg_tensor *x = tg_tensor_ones(1, shape);
    tg_rng rng;
    tg_rng_seed(&rng, 13);
    double bad[3] = {-0.1, 1.5, NAN};
    const char *fragments[3] = {"probability -0.1 is outside [0, 1]",
                                "probability 1.5 is outside [0, 1]",
                                "probability nan is outside [0, 1]"};
    for (int k = 0; k < 3; k++) {
        tg_tape *tape = tg_tape_new();
        cr_assert_null(tg_dropout(tape, x, bad[k], &rng, true), "p %g was accepted", bad[k]);
        expect_error(tape, TG_ERR_INVALID, fragments[k]);
        tg_tape_free(tape);
    }
    /* Checked in evaluation too, so a bad setting shows up at once. */
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_dropout(tape, x, 2.0, NULL, false));
    expect_error(tape, TG_ERR_INVALID, "dropout: probability 2 is outside [0, 1]");
    tg_tape_free(tape);
    tg_tensor_free(x);
}

Test(dropout, missing_rng_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[1] = {3};
    tg_tensor *x = tg_tensor_ones(1, shape);
    cr_assert_null(tg_dropout(tape, x, 0.5, NULL, true));
    expect_error(tape, TG_ERR_INVALID, "dropout: rng is NULL in training with p = 0.5");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(dropout, null_input_returns_null_silently) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 14);
    cr_assert_null(tg_dropout(tape, NULL, 0.5, &rng, true));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "a NULL input recorded: %s", tg_tape_error(tape));
    tg_tape_free(tape);
}
