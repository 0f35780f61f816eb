/* reshape, permute, transpose, concat, split and slice: forward values against
 * index-by-index references and gradient checks in float64 on random shapes.
 * The tests cover the view and the copying paths, and error messages. Sizes
 * that take the parallel paths must give the same bits on 1 and 2 threads. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* ---- helpers ------------------------------------------------------------- */

/* Fills shape with ndim random extents in [1, max_extent]. */
static void random_shape(tg_rng *rng, int ndim, int max_extent, int *shape) {
    for (int d = 0; d < ndim; d++) {
        shape[d] = 1 + (int)tg_rng_below(rng, (uint64_t)max_extent);
    }
}

/* Fills axes with a random permutation of 0..ndim-1 (Fisher-Yates). */
static void random_permutation(tg_rng *rng, int ndim, int *axes) {
    for (int d = 0; d < ndim; d++) {
        axes[d] = d;
    }
    for (int d = ndim - 1; d > 0; d--) {
        int j = (int)tg_rng_below(rng, (uint64_t)d + 1);
        int swap = axes[d];
        axes[d] = axes[j];
        axes[j] = swap;
    }
}

/* Returns the flat row-major index of coordinates in shape. */
static size_t flat_index(int ndim, const int *shape, const int *coordinates) {
    size_t index = 0;
    for (int d = 0; d < ndim; d++) {
        index = index * (size_t)shape[d] + (size_t)coordinates[d];
    }
    return index;
}

/* Writes the coordinates of flat index `index` in shape. */
static void coordinates_of(size_t index, int ndim, const int *shape, int *coordinates) {
    for (int d = ndim - 1; d >= 0; d--) {
        coordinates[d] = (int)(index % (size_t)shape[d]);
        index /= (size_t)shape[d];
    }
}

/* Writes x permuted by axes (axes in [0, ndim)) into expected, one element at
 * a time. */
static void reference_permute(const tg_tensor *x, const int *axes, double *expected) {
    int shape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = x->shape[axes[i]];
    }
    for (size_t index = 0; index < x->size; index++) {
        int out[TG_MAX_DIMS];
        int in[TG_MAX_DIMS];
        coordinates_of(index, x->ndim, shape, out);
        for (int i = 0; i < x->ndim; i++) {
            in[axes[i]] = out[i];
        }
        expected[index] = (double)x->data[flat_index(x->ndim, x->shape, in)];
    }
}

/* Returns a heap tensor whose elements are 0, 1, 2, ... */
static tg_tensor *arange(int ndim, const int *shape) {
    tg_tensor *t = tg_tensor_zeros(ndim, shape);
    cr_assert_not_null(t, "%s", tg_last_error());
    for (size_t i = 0; i < t->size; i++) {
        t->data[i] = (tg_scalar)i;
    }
    return t;
}

static void expect_shape(const char *what, const tg_tensor *t, int ndim, const int *shape) {
    cr_assert_not_null(t, "%s: the result is NULL", what);
    cr_assert_eq(t->ndim, ndim, "%s: ndim is %d, expected %d", what, t->ndim, ndim);
    for (int d = 0; d < ndim; d++) {
        cr_assert_eq(t->shape[d], shape[d], "%s: extent %d is %d, expected %d", what, d,
                     t->shape[d], shape[d]);
    }
}

static void expect_error(tg_tape *tape, tg_status status, const char *fragment) {
    cr_assert_eq(tg_tape_status(tape), status, "status is %s, expected %s; message: %s",
                 tg_status_name(tg_tape_status(tape)), tg_status_name(status),
                 tg_tape_error(tape));
    cr_assert(strstr(tg_tape_error(tape), fragment) != NULL,
              "message \"%s\" lacks \"%s\"", tg_tape_error(tape), fragment);
}

/* ---- reshape ------------------------------------------------------------- */

typedef struct reshape_case {
    int ndim;
    int shape[TG_MAX_DIMS];
} reshape_case;

/* y = reshape(1.5 x) * w, so the gradient passes through a node into the view
 * of a tape tensor and on to x. */
static tg_tensor *reshape_scaled_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const reshape_case *c = user_data;
    tg_tensor *view = tg_reshape(tape, tg_scale(tape, in[0], 1.5), c->ndim, c->shape);
    return tg_mul(tape, view, in[1]);
}

/* y = reshape(x) * w with x a heap leaf: the view's gradient is x's own. */
static tg_tensor *reshape_leaf_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const reshape_case *c = user_data;
    return tg_mul(tape, tg_reshape(tape, in[0], c->ndim, c->shape), in[1]);
}

Test(reshape, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 101);
    for (int trial = 0; trial < 8; trial++) {
        int x_ndim = 1 + (int)tg_rng_below(&rng, 4);
        int x_shape[TG_MAX_DIMS];
        random_shape(&rng, x_ndim, 4, x_shape);
        tg_tensor *x = random_input(&rng, x_ndim, x_shape);

        /* Target: the reversed shape with one extent inferred, or flat. */
        reshape_case c = {.ndim = x_ndim};
        int w_shape[TG_MAX_DIMS];
        for (int d = 0; d < x_ndim; d++) {
            c.shape[d] = x_shape[x_ndim - 1 - d];
            w_shape[d] = c.shape[d];
        }
        c.shape[tg_rng_below(&rng, (uint64_t)x_ndim)] = -1;
        if (trial % 3 == 2) {
            c.ndim = 1;
            c.shape[0] = -1;
            w_shape[0] = (int)x->size;
        }
        tg_tensor *w = random_input(&rng, c.ndim, w_shape);
        tg_tensor *inputs[2] = {x, w};

        char what[64];
        snprintf(what, sizeof what, "reshape trial %d (scaled)", trial);
        expect_gradcheck(what, reshape_scaled_fn, 2, inputs, &c, NULL);
        snprintf(what, sizeof what, "reshape trial %d (leaf)", trial);
        expect_gradcheck(what, reshape_leaf_fn, 2, inputs, &c, NULL);
        tg_tensor_free(x);
        tg_tensor_free(w);
    }
}

Test(reshape, shares_memory_and_infers_extent) {
    tg_tape *tape = tg_tape_new();
    int x_shape[3] = {2, 3, 4};
    tg_tensor *x = arange(3, x_shape);
    int target[2] = {-1, 4};
    tg_tensor *y = tg_reshape(tape, x, 2, target);
    int expected_shape[2] = {6, 4};
    expect_shape("reshape", y, 2, expected_shape);
    cr_assert_eq(y->data, x->data, "the view does not share x's data");
    cr_assert_eq(y->size, (size_t)24, "size is %zu, expected 24", y->size);
    cr_assert_eq(tg_tape_get_stats(tape).node_count, 0, "reshape recorded %ld nodes",
                 tg_tape_get_stats(tape).node_count);

    tg_tensor *scalar = tg_reshape(tape, tg_slice(tape, y, 0, 5, 6), 0, NULL);
    cr_assert_null(scalar, "a (1, 4) tensor became a scalar");
    expect_error(tape, TG_ERR_SHAPE, "(1, 4)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, one_element_to_scalar) {
    tg_tape *tape = tg_tape_new();
    int x_shape[3] = {1, 1, 1};
    tg_tensor *x = arange(3, x_shape);
    tg_tensor *y = tg_reshape(tape, x, 0, NULL);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->ndim, 0, "ndim is %d, expected 0", y->ndim);
    cr_assert_eq(y->size, (size_t)1, "size is %zu, expected 1", y->size);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, size_mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    int target[2] = {4, 2};
    cr_assert_null(tg_reshape(tape, x, 2, target));
    expect_error(tape, TG_ERR_SHAPE, "reshape: cannot view x (2, 3) of 6 elements as (4, 2)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, uninferable_extent_is_rejected) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    int target[2] = {4, -1};
    cr_assert_null(tg_reshape(tape, x, 2, target));
    expect_error(tape, TG_ERR_SHAPE, "reshape: cannot view x (2, 3) of 6 elements as (4, -1)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, two_inferred_extents_rejected) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    int target[3] = {-1, 2, -1};
    cr_assert_null(tg_reshape(tape, x, 3, target));
    expect_error(tape, TG_ERR_SHAPE, "target shape (-1, 2, -1) for x (2, 3) has more than one -1");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, oversized_target_rejected) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    /* 65536^4 is 2^64, which would wrap to 0 in a size_t product. */
    int target[6] = {65536, 65536, 65536, 65536, -1, 1};
    cr_assert_null(tg_reshape(tape, x, 6, target));
    expect_error(tape, TG_ERR_SHAPE, "cannot view x (2, 3) of 6 elements as (65536, 65536");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, zero_extent_rejected) {
    tg_tape *tape = tg_tape_new();
    int x_shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, x_shape);
    int target[2] = {0, 6};
    cr_assert_null(tg_reshape(tape, x, 2, target));
    expect_error(tape, TG_ERR_SHAPE, "has extent 0");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(reshape, no_grad_view_needs_no_grad) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 102);
    int x_shape[2] = {2, 3};
    tg_tensor *x = random_input(&rng, 2, x_shape);
    tg_tape_set_grad_enabled(tape, false);
    int target[1] = {6};
    tg_tensor *y = tg_reshape(tape, x, 1, target);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert(!y->requires_grad, "a view made without recording requires grad");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* ---- permute and transpose ----------------------------------------------- */

typedef struct permute_case {
    int axes[TG_MAX_DIMS];
} permute_case;

static tg_tensor *permute_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const permute_case *c = user_data;
    return tg_permute(tape, in[0], c->axes);
}

Test(permute, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 201);
    for (int trial = 0; trial < 12; trial++) {
        int ndim = 1 + (int)tg_rng_below(&rng, 5);
        int shape[TG_MAX_DIMS];
        random_shape(&rng, ndim, 3, shape);
        permute_case c;
        random_permutation(&rng, ndim, c.axes);
        tg_tensor *x = random_input(&rng, ndim, shape);
        char what[64];
        snprintf(what, sizeof what, "permute trial %d", trial);
        expect_gradcheck(what, permute_fn, 1, &x, &c, NULL);
        tg_tensor_free(x);
    }
}

/* Checks tg_permute against the reference for x of `shape` and `axes`, and
 * the backward against the inverse permutation of the output gradient. */
static void check_permute_values(int ndim, const int *shape, const int *axes, uint64_t seed) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tensor *x = random_input(&rng, ndim, shape);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_permute(tape, x, axes);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));

    int normalized[TG_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        normalized[i] = axes[i] < 0 ? axes[i] + ndim : axes[i];
        cr_assert_eq(y->shape[i], shape[normalized[i]], "extent %d is %d, expected %d", i,
                     y->shape[i], shape[normalized[i]]);
    }
    double *expected = malloc(x->size * sizeof *expected);
    reference_permute(x, normalized, expected);
    expect_close("permute forward", y->data, expected, x->size, 0, 0);

    /* dx = dy permuted back: dx[in] = dy[out] for each mapped pair. */
    tg_scalar *dy = malloc(y->size * sizeof *dy);
    for (size_t i = 0; i < y->size; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    for (size_t index = 0; index < y->size; index++) {
        int out[TG_MAX_DIMS];
        int in[TG_MAX_DIMS];
        coordinates_of(index, ndim, y->shape, out);
        for (int i = 0; i < ndim; i++) {
            in[normalized[i]] = out[i];
        }
        expected[flat_index(ndim, shape, in)] = (double)dy[index];
    }
    expect_close("permute backward", x->grad, expected, x->size, 0, 0);

    free(dy);
    free(expected);
    tg_tape_free(tape);
    tg_tensor_free(x);
}

Test(permute, forward_backward_match_reference) {
    int shape_a[3] = {2, 3, 4};
    int axes_a[3] = {2, 0, 1};
    check_permute_values(3, shape_a, axes_a, 210);
    int axes_negative[3] = {-1, -3, -2};  /* the same permutation */
    check_permute_values(3, shape_a, axes_negative, 211);

    int shape_b[4] = {2, 5, 3, 7};
    int axes_b[4] = {0, 2, 1, 3};  /* attention heads: innermost axis stays */
    check_permute_values(4, shape_b, axes_b, 212);
    int axes_c[4] = {3, 1, 2, 0};
    check_permute_values(4, shape_b, axes_c, 213);

    int shape_d[4] = {1, 6, 1, 5};  /* extent-1 axes are dropped in planning */
    int axes_d[4] = {3, 2, 0, 1};
    check_permute_values(4, shape_d, axes_d, 214);

    int shape_e[1] = {9};
    int axes_e[1] = {0};
    check_permute_values(1, shape_e, axes_e, 215);
}

Test(permute, large_paths_match_reference) {
    /* Sizes above the parallel threshold, with tile edges that do not divide. */
    int shape_a[3] = {3, 70, 181};
    int axes_a[3] = {2, 1, 0};
    check_permute_values(3, shape_a, axes_a, 220);
    int shape_b[4] = {4, 37, 6, 40};
    int axes_b[4] = {0, 2, 1, 3};
    check_permute_values(4, shape_b, axes_b, 221);
    int shape_c[3] = {5, 33, 300};
    int axes_c[3] = {0, 2, 1};
    check_permute_values(3, shape_c, axes_c, 222);
}

Test(permute, zero_dim_tensor_is_copied) {
    tg_tape *tape = tg_tape_new();
    tg_scalar value = 4.5;
    tg_tensor *x = tg_tensor_from_values(0, NULL, &value);
    tg_tensor *y = tg_permute(tape, x, NULL);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->ndim, 0, "ndim is %d, expected 0", y->ndim);
    cr_assert_eq(y->data[0], value, "value is %g, expected 4.5", (double)y->data[0]);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(permute, repeated_axis_names_axes) {
    tg_tape *tape = tg_tape_new();
    int shape[3] = {2, 3, 4};
    tg_tensor *x = tg_tensor_zeros(3, shape);
    int axes[3] = {0, -3, 1};
    cr_assert_null(tg_permute(tape, x, axes));
    expect_error(tape, TG_ERR_INVALID,
                 "permute: axes (0, -3, 1) are not a permutation of the 3 axes of x (2, 3, 4)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(permute, out_of_range_axis_names_axes) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    int axes[2] = {2, 0};
    cr_assert_null(tg_permute(tape, x, axes));
    expect_error(tape, TG_ERR_INVALID, "permute: axes (2, 0) are not a permutation");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* y = t(x) * t(x): two nodes add into the same gradient. */
static tg_tensor *transpose_square_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const int *axes = user_data;
    tg_tensor *t = tg_transpose(tape, in[0], axes[0], axes[1]);
    tg_tensor *u = tg_transpose(tape, in[0], axes[0], axes[1]);
    return tg_mul(tape, t, u);
}

Test(transpose, gradcheck_accumulates_twice) {
    tg_rng rng;
    tg_rng_seed(&rng, 230);
    int shape[3] = {2, 3, 4};
    tg_tensor *x = random_input(&rng, 3, shape);
    int pairs[3][2] = {{1, 2}, {0, -1}, {-2, 0}};
    for (int k = 0; k < 3; k++) {
        char what[64];
        snprintf(what, sizeof what, "transpose axes %d, %d", pairs[k][0], pairs[k][1]);
        expect_gradcheck(what, transpose_square_fn, 1, &x, pairs[k], NULL);
    }
    tg_tensor_free(x);
}

Test(transpose, matrix_values) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    tg_tensor *x = arange(2, shape);
    tg_tensor *y = tg_transpose(tape, x, 0, 1);
    int expected_shape[2] = {3, 2};
    expect_shape("transpose", y, 2, expected_shape);
    double expected[6] = {0, 3, 1, 4, 2, 5};
    expect_close("transpose", y->data, expected, 6, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(transpose, same_axis_copies) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    tg_tensor *x = arange(2, shape);
    tg_tensor *y = tg_transpose(tape, x, 1, -1);
    expect_shape("transpose", y, 2, shape);
    double expected[6] = {0, 1, 2, 3, 4, 5};
    expect_close("transpose", y->data, expected, 6, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(transpose, out_of_range_axis_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    cr_assert_null(tg_transpose(tape, x, 0, 2));
    expect_error(tape, TG_ERR_INVALID,
                 "transpose: axis 2 is out of range for x (2, 3); each axis must be in [-2, 2)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* ---- concat -------------------------------------------------------------- */

typedef struct concat_case {
    int n;
    int axis;
} concat_case;

static tg_tensor *concat_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const concat_case *c = user_data;
    return tg_concat(tape, c->n, (const tg_tensor *const *)in, c->axis);
}

Test(concat, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 301);
    for (int trial = 0; trial < 10; trial++) {
        int ndim = 1 + (int)tg_rng_below(&rng, 4);
        int shape[TG_MAX_DIMS];
        random_shape(&rng, ndim, 3, shape);
        concat_case c = {.n = 1 + (int)tg_rng_below(&rng, 3),
                         .axis = (int)tg_rng_below(&rng, (uint64_t)ndim)};
        if (trial % 2 == 1) {
            c.axis -= ndim;
        }
        int axis = c.axis < 0 ? c.axis + ndim : c.axis;
        tg_tensor *inputs[3];
        for (int k = 0; k < c.n; k++) {
            shape[axis] = 1 + (int)tg_rng_below(&rng, 3);
            inputs[k] = random_input(&rng, ndim, shape);
        }
        if (c.n > 1) {
            /* An input that needs no gradient gets none. */
            tg_tensor_set_requires_grad(inputs[1], false);
        }
        char what[64];
        snprintf(what, sizeof what, "concat trial %d", trial);
        expect_gradcheck(what, concat_fn, c.n, inputs, &c, NULL);
        for (int k = 0; k < c.n; k++) {
            tg_tensor_free(inputs[k]);
        }
    }
}

/* y = concat(x, x) along an axis: both blocks add into x's gradient. */
static tg_tensor *concat_self_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const tg_tensor *pair[2] = {in[0], in[0]};
    return tg_concat(tape, 2, pair, *(const int *)user_data);
}

Test(concat, gradcheck_same_input_twice) {
    tg_rng rng;
    tg_rng_seed(&rng, 302);
    int shape[3] = {2, 3, 2};
    tg_tensor *x = random_input(&rng, 3, shape);
    for (int axis = 0; axis < 3; axis++) {
        char what[64];
        snprintf(what, sizeof what, "concat self axis %d", axis);
        expect_gradcheck(what, concat_self_fn, 1, &x, &axis, NULL);
    }
    tg_tensor_free(x);
}

Test(concat, forward_values_middle_axis) {
    tg_tape *tape = tg_tape_new();
    int a_shape[3] = {2, 1, 2};
    int b_shape[3] = {2, 2, 2};
    tg_tensor *a = arange(3, a_shape);
    tg_tensor *b = arange(3, b_shape);
    for (size_t i = 0; i < b->size; i++) {
        b->data[i] += 10;
    }
    const tg_tensor *xs[2] = {a, b};
    tg_tensor *y = tg_concat(tape, 2, xs, 1);
    int expected_shape[3] = {2, 3, 2};
    expect_shape("concat", y, 3, expected_shape);
    double expected[12] = {0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17};
    expect_close("concat", y->data, expected, 12, 0, 0);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(concat, large_inputs_match_reference) {
    /* outer 3 rows of long blocks, above the parallel threshold */
    tg_rng rng;
    tg_rng_seed(&rng, 303);
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {3, 20000};
    int b_shape[2] = {3, 9001};
    tg_tensor *a = random_input(&rng, 2, a_shape);
    tg_tensor *b = random_input(&rng, 2, b_shape);
    const tg_tensor *xs[2] = {a, b};
    tg_tensor *y = tg_concat(tape, 2, xs, -1);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    double *expected = malloc(y->size * sizeof *expected);
    for (int r = 0; r < 3; r++) {
        for (int j = 0; j < 29001; j++) {
            expected[r * 29001 + j] = j < 20000 ? (double)a->data[r * 20000 + j]
                                                : (double)b->data[r * 9001 + j - 20000];
        }
    }
    expect_close("concat forward", y->data, expected, y->size, 0, 0);

    /* The backward hands each input its block of dy. */
    tg_scalar *dy = malloc(y->size * sizeof *dy);
    for (size_t i = 0; i < y->size; i++) {
        dy[i] = (tg_scalar)i;
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    double *expected_da = malloc(a->size * sizeof *expected_da);
    double *expected_db = malloc(b->size * sizeof *expected_db);
    for (int r = 0; r < 3; r++) {
        for (int j = 0; j < 29001; j++) {
            if (j < 20000) {
                expected_da[r * 20000 + j] = (double)(r * 29001 + j);
            } else {
                expected_db[r * 9001 + j - 20000] = (double)(r * 29001 + j);
            }
        }
    }
    expect_close("concat da", a->grad, expected_da, a->size, 0, 0);
    expect_close("concat db", b->grad, expected_db, b->size, 0, 0);
    free(expected);
    free(expected_da);
    free(expected_db);
    free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(concat, mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {2, 3};
    int b_shape[2] = {3, 3};
    tg_tensor *a = tg_tensor_zeros(2, a_shape);
    tg_tensor *b = tg_tensor_zeros(2, b_shape);
    const tg_tensor *xs[3] = {a, a, b};
    cr_assert_null(tg_concat(tape, 3, xs, 1));
    expect_error(tape, TG_ERR_SHAPE,
                 "concat: input 0 has shape (2, 3) and input 2 has shape (3, 3)");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(concat, ndim_mismatch_names_both_shapes) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {2, 3};
    int b_shape[3] = {2, 3, 1};
    tg_tensor *a = tg_tensor_zeros(2, a_shape);
    tg_tensor *b = tg_tensor_zeros(3, b_shape);
    const tg_tensor *xs[2] = {a, b};
    cr_assert_null(tg_concat(tape, 2, xs, 0));
    expect_error(tape, TG_ERR_SHAPE,
                 "concat: input 0 has shape (2, 3) and input 1 has shape (2, 3, 1)");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(concat, no_inputs_rejected) {
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_concat(tape, 0, NULL, 0));
    expect_error(tape, TG_ERR_INVALID, "concat: got 0 inputs");
    tg_tape_free(tape);
}

Test(concat, bad_axis_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    tg_tensor *a = tg_tensor_zeros(2, shape);
    const tg_tensor *xs[1] = {a};
    cr_assert_null(tg_concat(tape, 1, xs, -3));
    expect_error(tape, TG_ERR_INVALID, "concat: axis -3 is out of range for input 0 of shape (2, 3)");
    tg_tensor_free(a);
    tg_tape_free(tape);
}

/* ---- slice --------------------------------------------------------------- */

typedef struct slice_case {
    int axis;
    int start;
    int end;
} slice_case;

/* y = slice(x) * 2, so the slice's gradient passes through another node. */
static tg_tensor *slice_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const slice_case *c = user_data;
    return tg_scale(tape, tg_slice(tape, in[0], c->axis, c->start, c->end), 2.0);
}

Test(slice, gradcheck_random_ranges) {
    tg_rng rng;
    tg_rng_seed(&rng, 401);
    for (int trial = 0; trial < 12; trial++) {
        int ndim = 1 + (int)tg_rng_below(&rng, 4);
        int shape[TG_MAX_DIMS];
        random_shape(&rng, ndim, 4, shape);
        slice_case c;
        c.axis = (int)tg_rng_below(&rng, (uint64_t)ndim);
        int extent = shape[c.axis];
        c.start = (int)tg_rng_below(&rng, (uint64_t)extent);
        c.end = c.start + 1 + (int)tg_rng_below(&rng, (uint64_t)(extent - c.start));
        tg_tensor *x = random_input(&rng, ndim, shape);
        char what[96];
        snprintf(what, sizeof what, "slice trial %d axis %d [%d, %d)", trial, c.axis, c.start,
                 c.end);
        expect_gradcheck(what, slice_fn, 1, &x, &c, NULL);
        tg_tensor_free(x);
    }
}

Test(slice, gradcheck_view_and_copy_paths) {
    tg_rng rng;
    tg_rng_seed(&rng, 402);
    int shape[3] = {1, 5, 3};
    tg_tensor *x = random_input(&rng, 3, shape);
    slice_case cases[4] = {
        {1, 1, 4},   /* outer extent 1: a view */
        {2, 0, 3},   /* the whole axis: a view */
        {2, 1, 2},   /* a copy */
        {-1, 2, 3},  /* a copy, negative axis */
    };
    for (int k = 0; k < 4; k++) {
        char what[64];
        snprintf(what, sizeof what, "slice case %d", k);
        expect_gradcheck(what, slice_fn, 1, &x, &cases[k], NULL);
    }
    tg_tensor_free(x);
}

Test(slice, forward_values_and_view) {
    tg_tape *tape = tg_tape_new();
    int shape[3] = {2, 4, 2};
    tg_tensor *x = arange(3, shape);

    tg_tensor *y = tg_slice(tape, x, 1, 1, 3);
    int expected_shape[3] = {2, 2, 2};
    expect_shape("slice", y, 3, expected_shape);
    double expected[8] = {2, 3, 4, 5, 10, 11, 12, 13};
    expect_close("slice", y->data, expected, 8, 0, 0);

    tg_tensor *first = tg_slice(tape, x, 0, 1, 2);
    cr_assert_not_null(first, "%s", tg_tape_error(tape));
    cr_assert_eq(first->data, x->data + 8, "a contiguous slice does not share x's data");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(slice, empty_range_names_range_and_extent) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 4};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    cr_assert_null(tg_slice(tape, x, 1, 3, 3));
    expect_error(tape, TG_ERR_INVALID,
                 "slice: range [3, 3) is invalid for axis 1 of extent 4 in x (2, 4)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(slice, range_past_extent_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 4};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    cr_assert_null(tg_slice(tape, x, -1, 2, 5));
    expect_error(tape, TG_ERR_INVALID,
                 "slice: range [2, 5) is invalid for axis -1 of extent 4 in x (2, 4)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(slice, negative_start_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[1] = {4};
    tg_tensor *x = tg_tensor_zeros(1, shape);
    cr_assert_null(tg_slice(tape, x, 0, -1, 2));
    expect_error(tape, TG_ERR_INVALID, "range [-1, 2)");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

/* ---- split --------------------------------------------------------------- */

typedef struct split_case {
    int axis;
    int n;
    int sizes[4];
} split_case;

/* Splits x and joins the parts back in reverse order, scaling each part by a
 * different factor so that every part's gradient is distinct. */
static tg_tensor *split_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const split_case *c = user_data;
    tg_tensor *parts[4];
    if (tg_split(tape, in[0], c->axis, c->n, c->sizes, parts) != TG_OK) {
        return NULL;
    }
    const tg_tensor *reversed[4];
    for (int k = 0; k < c->n; k++) {
        reversed[k] = tg_scale(tape, parts[c->n - 1 - k], 1.0 + k);
    }
    return tg_concat(tape, c->n, reversed, c->axis);
}

Test(split, gradcheck_random_sizes) {
    tg_rng rng;
    tg_rng_seed(&rng, 501);
    for (int trial = 0; trial < 10; trial++) {
        int ndim = 1 + (int)tg_rng_below(&rng, 3);
        int shape[TG_MAX_DIMS];
        random_shape(&rng, ndim, 3, shape);
        split_case c = {.axis = (int)tg_rng_below(&rng, (uint64_t)ndim),
                        .n = 1 + (int)tg_rng_below(&rng, 4)};
        shape[c.axis] = 0;
        for (int k = 0; k < c.n; k++) {
            c.sizes[k] = 1 + (int)tg_rng_below(&rng, 2);
            shape[c.axis] += c.sizes[k];
        }
        tg_tensor *x = random_input(&rng, ndim, shape);
        char what[64];
        snprintf(what, sizeof what, "split trial %d", trial);
        expect_gradcheck(what, split_fn, 1, &x, &c, NULL);
        tg_tensor_free(x);
    }
}

/* Checks that only the used part of a split receives a gradient. */
static void check_unused_parts_zero(int ndim, const int *shape, int axis) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 502);
    tg_tensor *x = random_input(&rng, ndim, shape);
    int sizes[3] = {1, 2, 1};
    tg_tensor *parts[3];
    cr_assert_eq(tg_split(tape, x, axis, 3, sizes, parts), TG_OK, "%s", tg_tape_error(tape));
    tg_tensor *used = tg_scale(tape, parts[1], 3.0);
    tg_scalar *dy = malloc(used->size * sizeof *dy);
    for (size_t i = 0; i < used->size; i++) {
        dy[i] = 1;
    }
    cr_assert_eq(tg_tape_backward_from(tape, used, dy), TG_OK, "%s", tg_last_error());

    double *expected = malloc(x->size * sizeof *expected);
    for (size_t i = 0; i < x->size; i++) {
        int coordinates[TG_MAX_DIMS];
        coordinates_of(i, ndim, shape, coordinates);
        int c = coordinates[axis];
        expected[i] = c >= 1 && c < 3 ? 3.0 : 0.0;
    }
    expect_close("split dx", x->grad, expected, x->size, 0, 0);
    free(expected);
    free(dy);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(split, unused_parts_get_zero_gradient) {
    int copied[3] = {2, 4, 3};
    check_unused_parts_zero(3, copied, 1);
    int viewed[3] = {1, 4, 3};
    check_unused_parts_zero(3, viewed, 1);
}

Test(split, forward_values_last_axis) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 5};
    tg_tensor *x = arange(2, shape);
    int sizes[2] = {2, 3};
    tg_tensor *parts[2];
    cr_assert_eq(tg_split(tape, x, -1, 2, sizes, parts), TG_OK, "%s", tg_tape_error(tape));
    int first_shape[2] = {2, 2};
    int second_shape[2] = {2, 3};
    expect_shape("split part 0", parts[0], 2, first_shape);
    expect_shape("split part 1", parts[1], 2, second_shape);
    double expected_first[4] = {0, 1, 5, 6};
    double expected_second[6] = {2, 3, 4, 7, 8, 9};
    expect_close("split part 0", parts[0]->data, expected_first, 4, 0, 0);
    expect_close("split part 1", parts[1]->data, expected_second, 6, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(split, sizes_must_sum_to_extent) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 5};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    int sizes[2] = {2, 2};
    tg_tensor *parts[2] = {x, x};
    tg_status status = tg_split(tape, x, 1, 2, sizes, parts);
    cr_assert_eq(status, TG_ERR_SHAPE, "status is %s", tg_status_name(status));
    cr_assert_null(parts[0], "part 0 is set after a failure");
    cr_assert_null(parts[1], "part 1 is set after a failure");
    expect_error(tape, TG_ERR_SHAPE,
                 "split: the 2 sizes sum to 4 but axis 1 of x (2, 5) has extent 5");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(split, zero_size_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[1] = {3};
    tg_tensor *x = tg_tensor_zeros(1, shape);
    int sizes[2] = {3, 0};
    tg_tensor *parts[2];
    tg_status status = tg_split(tape, x, 0, 2, sizes, parts);
    cr_assert_eq(status, TG_ERR_INVALID, "status is %s", tg_status_name(status));
    expect_error(tape, TG_ERR_INVALID, "split: part 1 has size 0");
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(split, failed_tape_clears_outputs) {
    tg_tape *tape = tg_tape_new();
    int shape[2] = {2, 3};
    int other[2] = {4, 4};
    tg_tensor *x = tg_tensor_zeros(2, shape);
    tg_tensor *w = tg_tensor_zeros(2, other);
    tg_tensor *bad = tg_mul(tape, x, w);  /* fails: shapes do not broadcast */
    cr_assert_null(bad);
    int sizes[2] = {1, 1};
    tg_tensor *parts[2] = {x, x};
    tg_status status = tg_split(tape, bad, 0, 2, sizes, parts);
    cr_assert_eq(status, TG_ERR_SHAPE, "status is %s, expected the tape's shape error",
                 tg_status_name(status));
    cr_assert_null(parts[0], "part 0 is set for a NULL input");
    cr_assert_null(parts[1], "part 1 is set for a NULL input");

    /* The tape's first error is kept. */
    expect_error(tape, TG_ERR_SHAPE, "mul:");
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tape);
}

Test(split, null_input_on_healthy_tape_is_invalid) {
    tg_tape *tape = tg_tape_new();
    int sizes[1] = {1};
    tg_tensor *parts[1];
    tg_status status = tg_split(tape, NULL, 0, 1, sizes, parts);
    cr_assert_eq(status, TG_ERR_INVALID, "status is %s", tg_status_name(status));
    cr_assert_null(parts[0], "part 0 is set for a NULL input");
    tg_tape_free(tape);
}

/* ---- NULL chaining and determinism --------------------------------------- */

Test(shape_ops, null_input_returns_null_silently) {
    tg_tape *tape = tg_tape_new();
    int shape[1] = {2};
    int axes[1] = {0};
    cr_assert_null(tg_reshape(tape, NULL, 1, shape));
    cr_assert_null(tg_permute(tape, NULL, axes));
    cr_assert_null(tg_transpose(tape, NULL, 0, 0));
    const tg_tensor *xs[1] = {NULL};
    cr_assert_null(tg_concat(tape, 1, xs, 0));
    cr_assert_null(tg_slice(tape, NULL, 0, 0, 1));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "a NULL input recorded: %s", tg_tape_error(tape));
    tg_tape_free(tape);
}

/* Runs permute, concat and slice forward and backward on large inputs with
 * the given thread count, and returns x's gradient followed by the output. */
static tg_scalar *run_shape_ops(int threads, size_t *count) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 601);
    int shape[3] = {6, 130, 96};
    tg_tensor *x = random_input(&rng, 3, shape);
    tg_tape *tape = tg_tape_new();
    int axes[3] = {2, 0, 1};
    tg_tensor *p = tg_permute(tape, x, axes);             /* (96, 6, 130) */
    tg_tensor *t = tg_transpose(tape, x, 0, 1);          /* (130, 6, 96) */
    tg_tensor *s = tg_slice(tape, t, 2, 10, 90);         /* (130, 6, 80) */
    tg_tensor *r = tg_reshape(tape, s, 3, (int[3]){80, 6, 130});
    const tg_tensor *xs[2] = {p, r};
    tg_tensor *y = tg_concat(tape, 2, xs, 0);            /* (176, 6, 130) */
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_scalar *dy = malloc(y->size * sizeof *dy);
    for (size_t i = 0; i < y->size; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());

    *count = x->size + y->size;
    tg_scalar *result = malloc(*count * sizeof *result);
    memcpy(result, x->grad, x->size * sizeof *result);
    memcpy(result + x->size, y->data, y->size * sizeof *result);
    free(dy);
    tg_tape_free(tape);
    tg_tensor_free(x);
    return result;
}

Test(shape_ops, one_and_two_threads_same_bits) {
    size_t one_count;
    size_t two_count;
    tg_scalar *one = run_shape_ops(1, &one_count);
    tg_scalar *two = run_shape_ops(2, &two_count);
    cr_assert_eq(one_count, two_count, "sizes differ: %zu and %zu", one_count, two_count);
    cr_assert_eq(memcmp(one, two, one_count * sizeof *one), 0,
                 "results differ between 1 and 2 threads");
    free(one);
    free(two);
}
