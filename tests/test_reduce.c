/* sum, mean, sum_axis and mean_axis: gradient checks in float64 on random
 * shapes and every axis, forward values against double references, output
 * shapes, thread-count determinism and axis errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef tg_tensor *(*full_fn)(tg_tape *, const tg_tensor *);
typedef tg_tensor *(*axis_fn)(tg_tape *, const tg_tensor *, int, bool);

typedef struct axis_args {
    axis_fn op;
    int axis;
    bool keepdim;
} axis_args;

/* Fills shape with 1 to max_ndim random extents in [1, max_extent] and
 * returns the number of dimensions. */
static int random_shape(tg_rng *rng, int max_ndim, int max_extent, int *shape) {
    int ndim = 1 + (int)tg_rng_below(rng, (uint64_t)max_ndim);
    for (int d = 0; d < ndim; d++) {
        shape[d] = 1 + (int)tg_rng_below(rng, (uint64_t)max_extent);
    }
    return ndim;
}

static tg_tensor *apply_full(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    full_fn op = *(full_fn *)user_data;
    return op(tape, in[0]);
}

static tg_tensor *apply_axis(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const axis_args *args = user_data;
    return args->op(tape, in[0], args->axis, args->keepdim);
}

/* Writes the sums (or means) of x along axis into out, viewed as
 * (outer, inner), in double. */
static void reference_axis(double *out, const tg_tensor *x, int axis, bool average) {
    size_t outer = 1;
    size_t inner = 1;
    for (int d = 0; d < axis; d++) {
        outer *= (size_t)x->shape[d];
    }
    for (int d = axis + 1; d < x->ndim; d++) {
        inner *= (size_t)x->shape[d];
    }
    size_t L = (size_t)x->shape[axis];
    for (size_t o = 0; o < outer; o++) {
        for (size_t i = 0; i < inner; i++) {
            double sum = 0.0;
            for (size_t k = 0; k < L; k++) {
                sum += (double)x->data[(o * L + k) * inner + i];
            }
            out[o * inner + i] = average ? sum / (double)L : sum;
        }
    }
}

Test(reduce, sum_mean_gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 31);
    full_fn ops[2] = {tg_sum, tg_mean};
    const char *names[2] = {"sum", "mean"};
    for (int c = 0; c < 8; c++) {
        int shape[TG_MAX_DIMS];
        /* Case 0 is a 0-dimensional tensor. */
        int ndim = c == 0 ? 0 : random_shape(&rng, 4, 4, shape);
        tg_tensor *x = random_input(&rng, ndim, shape);
        for (int k = 0; k < 2; k++) {
            char what[64];
            snprintf(what, sizeof what, "%s case %d", names[k], c);
            expect_gradcheck(what, apply_full, 1, &x, &ops[k], NULL);
        }
        tg_tensor_free(x);
    }
}

Test(reduce, axis_gradcheck_every_axis) {
    tg_rng rng;
    tg_rng_seed(&rng, 32);
    axis_fn ops[2] = {tg_sum_axis, tg_mean_axis};
    const char *names[2] = {"sum_axis", "mean_axis"};
    for (int c = 0; c < 6; c++) {
        int shape[TG_MAX_DIMS];
        int ndim = random_shape(&rng, 4, 4, shape);
        tg_tensor *x = random_input(&rng, ndim, shape);
        for (int axis = -ndim; axis < ndim; axis++) {
            for (int keep = 0; keep < 2; keep++) {
                for (int k = 0; k < 2; k++) {
                    axis_args args = {ops[k], axis, keep == 1};
                    char what[96];
                    snprintf(what, sizeof what, "%s case %d axis %d keepdim %d", names[k], c,
                             axis, keep);
                    expect_gradcheck(what, apply_axis, 1, &x, &args, NULL);
                }
            }
        }
        tg_tensor_free(x);
    }
}

Test(reduce, full_forward_matches_double_sum) {
    tg_rng rng;
    tg_rng_seed(&rng, 33);
    tg_tape *tape = tg_tape_new();
    /* 70000 elements take the parallel path and fill every slice. */
    int sizes[4] = {1, 7, 1000, 70000};
    for (int c = 0; c < 4; c++) {
        tg_tensor *x = random_input(&rng, 1, &sizes[c]);
        double expected = 0.0;
        for (size_t i = 0; i < x->size; i++) {
            expected += (double)x->data[i];
        }
        double expected_mean = expected / (double)x->size;
        tg_tensor *sum = tg_sum(tape, x);
        tg_tensor *mean = tg_mean(tape, x);
        cr_assert_not_null(sum, "%s", tg_tape_error(tape));
        cr_assert_not_null(mean, "%s", tg_tape_error(tape));
        /* Slices reorder the additions, so allow rounding of the terms. */
        expect_close("sum", sum->data, &expected, 1, 1e-12, 1e-12);
        expect_close("mean", mean->data, &expected_mean, 1, 1e-12, 1e-12);
        tg_tensor_free(x);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(reduce, axis_forward_matches_double_sum) {
    tg_rng rng;
    tg_rng_seed(&rng, 34);
    tg_tape *tape = tg_tape_new();
    int shapes[4][4] = {{3, 5, 2, 1}, {2, 130, 3, 0}, {70, 2, 300, 0}, {4, 1, 1, 200}};
    int ndims[4] = {4, 3, 3, 4};
    for (int c = 0; c < 4; c++) {
        tg_tensor *x = random_input(&rng, ndims[c], shapes[c]);
        double *expected = malloc(x->size * sizeof *expected);
        for (int axis = 0; axis < ndims[c]; axis++) {
            for (int average = 0; average < 2; average++) {
                tg_tensor *y = average ? tg_mean_axis(tape, x, axis, false)
                                       : tg_sum_axis(tape, x, axis, false);
                cr_assert_not_null(y, "%s", tg_tape_error(tape));
                reference_axis(expected, x, axis, average == 1);
                char what[64];
                snprintf(what, sizeof what, "case %d axis %d average %d", c, axis, average);
                /* The kernel adds along the axis in the reference's order. */
                expect_close(what, y->data, expected, y->size, 0, 0);
            }
        }
        free(expected);
        tg_tensor_free(x);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(reduce, output_shapes) {
    tg_tape *tape = tg_tape_new();
    int shape[3] = {2, 3, 4};
    tg_tensor *x = tg_tensor_ones(3, shape);

    tg_tensor *sum = tg_sum(tape, x);
    cr_assert_eq(sum->ndim, 0, "sum has %d dimensions", sum->ndim);
    cr_assert_eq(sum->size, 1, "sum has %zu elements", sum->size);
    cr_assert_eq(sum->data[0], 24, "sum of ones is %g", (double)sum->data[0]);
    tg_tensor *mean = tg_mean(tape, x);
    cr_assert_eq(mean->ndim, 0, "mean has %d dimensions", mean->ndim);
    cr_assert_eq(mean->data[0], 1, "mean of ones is %g", (double)mean->data[0]);

    tg_tensor *dropped = tg_sum_axis(tape, x, 1, false);
    cr_assert_eq(dropped->ndim, 2, "ndim %d", dropped->ndim);
    cr_assert_eq(dropped->shape[0], 2, "shape[0] %d", dropped->shape[0]);
    cr_assert_eq(dropped->shape[1], 4, "shape[1] %d", dropped->shape[1]);
    cr_assert_eq(dropped->data[0], 3, "value %g", (double)dropped->data[0]);

    tg_tensor *keepdim_mean = tg_mean_axis(tape, x, -1, true);
    cr_assert_eq(keepdim_mean->ndim, 3, "ndim %d", keepdim_mean->ndim);
    cr_assert_eq(keepdim_mean->shape[0], 2, "shape[0] %d", keepdim_mean->shape[0]);
    cr_assert_eq(keepdim_mean->shape[1], 3, "shape[1] %d", keepdim_mean->shape[1]);
    cr_assert_eq(keepdim_mean->shape[2], 1, "shape[2] %d", keepdim_mean->shape[2]);

    int vector_shape[1] = {5};
    tg_tensor *v = tg_tensor_ones(1, vector_shape);
    tg_tensor *scalar = tg_sum_axis(tape, v, 0, false);
    cr_assert_eq(scalar->ndim, 0, "sum_axis of a vector has %d dimensions", scalar->ndim);
    cr_assert_eq(scalar->data[0], 5, "value %g", (double)scalar->data[0]);

    tg_tensor_free(v);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reduce, backward_adds_scaled_gradient) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 5};
    tg_tensor *x = tg_tensor_ones(2, shape);
    tg_tensor_set_requires_grad(x, true);
    x->grad[3] = 7;
    cr_assert_eq(tg_tape_backward(tape, tg_mean(tape, x)), TG_OK, "%s", tg_last_error());
    double expected[10];
    for (int i = 0; i < 10; i++) {
        expected[i] = i == 3 ? 7.1 : 0.1;
    }
    expect_close("mean gradient", x->grad, expected, 10, 0, 1e-15);

    tg_tape_reset(tape);
    tg_tensor_zero_grad(x);
    tg_tensor *y = tg_mean_axis(tape, x, 0, false);
    tg_scalar seed[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(tg_tape_backward_from(tape, y, seed), TG_OK, "%s", tg_last_error());
    double expected_axis[10] = {0.5, 1, 1.5, 2, 2.5, 0.5, 1, 1.5, 2, 2.5};
    expect_close("mean_axis gradient", x->grad, expected_axis, 10, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* Sums a large tensor fully and along an axis with the given thread count and
 * returns the values and gradients concatenated (caller frees). */
static tg_scalar *run_reductions(int threads, size_t *count) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 35);
    int shape[2] = {300, 700};
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tape *tape = tg_tape_new();
    tg_tensor *full = tg_sum(tape, x);
    tg_tensor *rows = tg_mean_axis(tape, x, 1, false);
    tg_tensor *loss = tg_add(tape, full, tg_sum(tape, tg_mul(tape, rows, rows)));
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    *count = 1 + rows->size + x->size;
    tg_scalar *out = malloc(*count * sizeof *out);
    out[0] = full->data[0];
    memcpy(out + 1, rows->data, rows->size * sizeof *out);
    memcpy(out + 1 + rows->size, x->grad, x->size * sizeof *out);
    tg_tape_free(tape);
    tg_tensor_free(x);
    return out;
}

Test(reduce, same_bits_for_one_and_two_threads) {
    size_t n1;
    size_t n2;
    tg_scalar *one_thread = run_reductions(1, &n1);
    tg_scalar *two_threads = run_reductions(2, &n2);
    cr_assert_eq(n1, n2, "sizes %zu and %zu", n1, n2);
    cr_assert_eq(memcmp(one_thread, two_threads, sizeof *one_thread), 0, "sum is %.17g with 1 thread, %.17g with 2",
                 (double)one_thread[0], (double)two_threads[0]);
    cr_assert_eq(memcmp(one_thread, two_threads, n1 * sizeof *one_thread), 0,
                 "axis means or gradients differ between 1 and 2 threads");
    free(one_thread);
    free(two_threads);
}

Test(reduce, invalid_axis_names_axis_and_shape) {
    tg_tape *tape = tg_tape_new();
    int shape[3] = {2, 3, 4};
    tg_tensor *x = tg_tensor_ones(3, shape);

    cr_assert_null(tg_sum_axis(tape, x, 3, false));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE, "status %d", tg_tape_status(tape));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "sum_axis: axis 3 is out of range for x of shape (2, 3, 4)") != NULL,
              "message: %s", message);
    cr_assert(strstr(message, "-3 to 2") != NULL, "message: %s", message);

    tg_tape_reset(tape);
    cr_assert_null(tg_mean_axis(tape, x, -4, true));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "mean_axis: axis -4 is out of range for x of shape (2, 3, 4)") !=
                  NULL,
              "message: %s", message);

    tg_tape_reset(tape);
    tg_tensor *scalar = tg_tensor_ones(0, shape);
    cr_assert_null(tg_sum_axis(tape, scalar, 0, false));
    message = tg_tape_error(tape);
    cr_assert(strstr(message, "axis 0 is out of range for x of shape ()") != NULL, "message: %s",
              message);
    cr_assert(strstr(message, "tg_sum") != NULL, "message: %s", message);

    tg_tensor_free(scalar);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reduce, null_input_returns_null_quietly) {
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_sum(tape, NULL));
    cr_assert_null(tg_mean_axis(tape, NULL, 0, false));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "status %d", tg_tape_status(tape));
    tg_tape_free(tape);
}

Test(reduce, no_grad_mode_records_no_node) {
    tg_rng rng;
    tg_rng_seed(&rng, 36);
    int shape[2] = {3, 4};
    tg_tensor *x = random_input(&rng, 2, shape);
    tg_tape *tape = tg_tape_new();
    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *y = tg_sum_axis(tape, tg_sum_axis(tape, x, 0, true), 1, false);
    tg_tensor *s = tg_mean(tape, x);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_not_null(s, "%s", tg_tape_error(tape));
    cr_assert_not(y->requires_grad, "output requires grad with recording off");
    long nodes = tg_tape_get_stats(tape).node_count;
    cr_assert_eq(nodes, 0, "%ld nodes recorded with recording off", nodes);
    tg_tape_free(tape);
    tg_tensor_free(x);
}
