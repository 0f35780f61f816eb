/* embedding: forward rows against the table, gradient checks in float64 on
 * random shapes with repeated indices, exact accumulation of repeated rows,
 * bitwise equality for 1 and 2 threads, and index and shape errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef struct lookup {
    int ndim;
    int shape[TG_MAX_DIMS];
    int32_t indices[64];
} lookup;

static tg_tensor *embedding_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const lookup *l = user_data;
    return tg_embedding(tape, in[0], l->indices, l->ndim, l->shape);
}

static void expect_error(tg_tape *tape, tg_status status, const char *fragment) {
    cr_assert_eq(tg_tape_status(tape), status, "status is %s, expected %s; message: %s",
                 tg_status_name(tg_tape_status(tape)), tg_status_name(status),
                 tg_tape_error(tape));
    cr_assert(strstr(tg_tape_error(tape), fragment) != NULL,
              "message \"%s\" lacks \"%s\"", tg_tape_error(tape), fragment);
}

Test(embedding, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 701);
    for (int trial = 0; trial < 10; trial++) {
        int V = 1 + (int)tg_rng_below(&rng, 6);
        int C = 1 + (int)tg_rng_below(&rng, 5);
        lookup l = {.ndim = (int)tg_rng_below(&rng, 4)};
        size_t N = 1;
        for (int d = 0; d < l.ndim; d++) {
            l.shape[d] = 1 + (int)tg_rng_below(&rng, 4);
            N *= (size_t)l.shape[d];
        }
        for (size_t n = 0; n < N; n++) {
            l.indices[n] = (int32_t)tg_rng_below(&rng, (uint64_t)V);
        }
        int table_shape[2] = {V, C};
        tg_tensor *table = random_input(&rng, 2, table_shape);
        char what[64];
        snprintf(what, sizeof what, "embedding trial %d (V %d, C %d, %zu indices)", trial, V, C,
                 N);
        expect_gradcheck(what, embedding_fn, 1, &table, &l, NULL);
        tg_tensor_free(table);
    }
}

Test(embedding, forward_copies_rows) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {4, 3};
    tg_scalar values[12] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
    tg_tensor *table = tg_tensor_from_values(2, table_shape, values);
    int32_t indices[4] = {3, 0, 3, 1};
    int index_shape[2] = {2, 2};
    tg_tensor *y = tg_embedding(tape, table, indices, 2, index_shape);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->ndim, 3, "ndim is %d, expected 3", y->ndim);
    cr_assert_eq(y->shape[0], 2, "extent 0 is %d, expected 2", y->shape[0]);
    cr_assert_eq(y->shape[1], 2, "extent 1 is %d, expected 2", y->shape[1]);
    cr_assert_eq(y->shape[2], 3, "extent 2 is %d, expected 3", y->shape[2]);
    double expected[12] = {30, 31, 32, 0, 1, 2, 30, 31, 32, 10, 11, 12};
    expect_close("embedding", y->data, expected, 12, 0, 0);
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, scalar_index_gives_one_row) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {2, 3};
    tg_scalar values[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *table = tg_tensor_from_values(2, table_shape, values);
    int32_t index = 1;
    tg_tensor *y = tg_embedding(tape, table, &index, 0, NULL);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert_eq(y->ndim, 1, "ndim is %d, expected 1", y->ndim);
    cr_assert_eq(y->shape[0], 3, "extent 0 is %d, expected 3", y->shape[0]);
    double expected[3] = {4, 5, 6};
    expect_close("embedding", y->data, expected, 3, 0, 0);
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, repeated_indices_accumulate) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {3, 2};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    tg_tensor_set_requires_grad(table, true);
    table->grad[0] = 100;  /* the backward adds to this value */
    int32_t indices[5] = {1, 0, 1, 1, 0};
    int index_shape[1] = {5};
    tg_tensor *y = tg_embedding(tape, table, indices, 1, index_shape);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));

    /* The caller's array may change after the call. */
    for (int n = 0; n < 5; n++) {
        indices[n] = 2;
    }
    tg_scalar dy[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    double expected[6] = {100 + 3 + 9, 4 + 10, 1 + 5 + 7, 2 + 6 + 8, 0, 0};
    expect_close("dtable", table->grad, expected, 6, 0, 0);
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, no_grad_records_nothing) {
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 702);
    int table_shape[2] = {5, 4};
    tg_tensor *table = random_input(&rng, 2, table_shape);
    tg_tape_set_grad_enabled(tape, false);
    int32_t indices[3] = {4, 0, 2};
    int index_shape[1] = {3};
    tg_tensor *y = tg_embedding(tape, table, indices, 1, index_shape);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    cr_assert(!y->requires_grad, "the output requires grad without recording");
    cr_assert_eq(tg_tape_get_stats(tape).node_count, 0, "%ld nodes recorded",
                 tg_tape_get_stats(tape).node_count);
    tg_tensor_free(table);
    tg_tape_free(tape);
}

/* Runs embedding forward and backward with many repeats on a size above the
 * parallel threshold, and returns the table's gradient. */
static tg_scalar *run_embedding(int threads, size_t *count) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 703);
    int table_shape[2] = {50, 96};
    tg_tensor *table = random_input(&rng, 2, table_shape);
    int index_shape[2] = {16, 256};
    int32_t *indices = malloc(16 * 256 * sizeof *indices);
    for (int n = 0; n < 16 * 256; n++) {
        indices[n] = (int32_t)tg_rng_below(&rng, 50);
    }
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_embedding(tape, table, indices, 2, index_shape);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_scalar *dy = malloc(y->size * sizeof *dy);
    for (size_t i = 0; i < y->size; i++) {
        dy[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, dy), TG_OK, "%s", tg_last_error());
    *count = table->size;
    tg_scalar *grad = malloc(table->size * sizeof *grad);
    memcpy(grad, table->grad, table->size * sizeof *grad);
    free(dy);
    free(indices);
    tg_tape_free(tape);
    tg_tensor_free(table);
    return grad;
}

Test(embedding, one_and_two_threads_same_bits) {
    size_t one_count;
    size_t two_count;
    tg_scalar *one = run_embedding(1, &one_count);
    tg_scalar *two = run_embedding(2, &two_count);
    cr_assert_eq(one_count, two_count, "sizes differ: %zu and %zu", one_count, two_count);
    cr_assert_eq(memcmp(one, two, one_count * sizeof *one), 0,
                 "table gradients differ between 1 and 2 threads");
    free(one);
    free(two);
}

Test(embedding, index_too_large_names_position) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {5, 3};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    int32_t indices[6] = {0, 1, 2, 4, 5, 1};
    int index_shape[2] = {2, 3};
    cr_assert_null(tg_embedding(tape, table, indices, 2, index_shape));
    expect_error(tape, TG_ERR_INVALID,
                 "embedding: index 5 at position (1, 1) is outside [0, 5) for table (5, 3)");
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, negative_index_names_position) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {5, 3};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    int32_t indices[3] = {0, -1, 9};
    int index_shape[1] = {3};
    cr_assert_null(tg_embedding(tape, table, indices, 1, index_shape));
    expect_error(tape, TG_ERR_INVALID, "embedding: index -1 at position (1) is outside [0, 5)");
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, table_must_be_matrix) {
    tg_tape *tape = tg_tape_new();
    int table_shape[3] = {5, 3, 2};
    tg_tensor *table = tg_tensor_zeros(3, table_shape);
    int32_t indices[1] = {0};
    int index_shape[1] = {1};
    cr_assert_null(tg_embedding(tape, table, indices, 1, index_shape));
    expect_error(tape, TG_ERR_SHAPE, "embedding: table has shape (5, 3, 2) but must be 2-D");
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, too_many_index_dims_rejected) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {5, 3};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    int32_t indices[1] = {0};
    int index_shape[TG_MAX_DIMS] = {1, 1, 1, 1, 1, 1};
    cr_assert_null(tg_embedding(tape, table, indices, TG_MAX_DIMS, index_shape));
    expect_error(tape, TG_ERR_SHAPE, "embedding: indices with 6 dimensions are invalid");
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, zero_index_extent_rejected) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {5, 3};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    int32_t indices[1] = {0};
    int index_shape[2] = {2, 0};
    cr_assert_null(tg_embedding(tape, table, indices, 2, index_shape));
    expect_error(tape, TG_ERR_SHAPE, "(2, 0)");
    tg_tensor_free(table);
    tg_tape_free(tape);
}

Test(embedding, null_indices_rejected) {
    tg_tape *tape = tg_tape_new();
    int table_shape[2] = {5, 3};
    tg_tensor *table = tg_tensor_zeros(2, table_shape);
    int index_shape[1] = {2};
    cr_assert_null(tg_embedding(tape, table, NULL, 1, index_shape));
    expect_error(tape, TG_ERR_INVALID, "embedding: indices is NULL");
    tg_tensor_free(table);
    tg_tape_free(tape);
}
