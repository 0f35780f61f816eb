/* matmul: forward against a naive product in double, gradient checks for every
 * transpose and batch layout, and shape errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef struct matmul_case {
    int a_ndim;
    int a_shape[4];
    int b_ndim;
    int b_shape[4];
    bool trans_a;
    bool trans_b;
} matmul_case;

static const matmul_case cases[] = {
    {2, {3, 4}, 2, {4, 5}, false, false},
    {2, {4, 3}, 2, {4, 5}, true, false},
    {2, {3, 4}, 2, {5, 4}, false, true},
    {2, {4, 3}, 2, {5, 4}, true, true},
    {3, {2, 3, 4}, 2, {4, 5}, false, false},    /* batch folded into rows */
    {3, {2, 3, 4}, 2, {5, 4}, false, true},     /* linear layer layout */
    {3, {2, 4, 3}, 2, {4, 5}, true, false},     /* shared b, transposed a */
    {2, {3, 4}, 3, {2, 4, 5}, false, false},    /* shared a */
    {4, {2, 2, 3, 4}, 4, {2, 2, 4, 5}, false, false},
    {4, {2, 2, 3, 4}, 4, {2, 2, 5, 4}, false, true},  /* attention scores */
    {4, {2, 2, 4, 3}, 4, {2, 2, 4, 5}, true, false},
    {4, {2, 2, 4, 3}, 4, {2, 2, 5, 4}, true, true},
};

static tg_tensor *matmul_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const matmul_case *c = user_data;
    return tg_matmul_t(tape, in[0], in[1], c->trans_a, c->trans_b);
}

/* Element (i, j) of matrix `batch` of op(x), reading x as stored. */
static double element(const tg_tensor *x, long batch, bool batched, bool trans, int i, int j) {
    int rows = x->shape[x->ndim - 2];
    int cols = x->shape[x->ndim - 1];
    size_t base = batched ? (size_t)batch * (size_t)rows * (size_t)cols : 0;
    return trans ? (double)x->data[base + (size_t)j * (size_t)cols + (size_t)i]
                 : (double)x->data[base + (size_t)i * (size_t)cols + (size_t)j];
}

Test(matmul, forward_matches_naive_product) {
    tg_rng rng;
    tg_rng_seed(&rng, 21);
    tg_tape *tape = tg_tape_new();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const matmul_case *c = &cases[k];
        tg_tensor *a = random_input(&rng, c->a_ndim, c->a_shape);
        tg_tensor *b = random_input(&rng, c->b_ndim, c->b_shape);
        tg_tensor *y = tg_matmul_t(tape, a, b, c->trans_a, c->trans_b);
        cr_assert_not_null(y, "case %zu: %s", k, tg_tape_error(tape));
        int M = y->shape[y->ndim - 2];
        int N = y->shape[y->ndim - 1];
        int K = c->trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
        long batches = (long)(y->size / ((size_t)M * (size_t)N));
        double *expected = malloc(y->size * sizeof *expected);
        for (long bt = 0; bt < batches; bt++) {
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    double sum = 0.0;
                    for (int p = 0; p < K; p++) {
                        sum += element(a, bt, a->ndim > 2, c->trans_a, i, p) *
                               element(b, bt, b->ndim > 2, c->trans_b, p, j);
                    }
                    expected[((size_t)bt * (size_t)M + (size_t)i) * (size_t)N + (size_t)j] = sum;
                }
            }
        }
        char what[32];
        snprintf(what, sizeof what, "matmul case %zu", k);
        expect_close(what, y->data, expected, y->size, 1e-12, 1e-12);
        free(expected);
        tg_tensor_free(a);
        tg_tensor_free(b);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

Test(matmul, gradcheck_all_layouts) {
    tg_rng rng;
    tg_rng_seed(&rng, 22);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const matmul_case *c = &cases[k];
        tg_tensor *inputs[2] = {random_input(&rng, c->a_ndim, c->a_shape),
                                random_input(&rng, c->b_ndim, c->b_shape)};
        char what[32];
        snprintf(what, sizeof what, "matmul case %zu", k);
        expect_gradcheck(what, matmul_fn, 2, inputs, (void *)c, NULL);
        tg_tensor_free(inputs[0]);
        tg_tensor_free(inputs[1]);
    }
}

Test(matmul, inner_mismatch_names_shapes) {
    tg_tape *tape = tg_tape_new();
    int a_shape[2] = {3, 4};
    int b_shape[2] = {5, 6};
    tg_tensor *a = tg_tensor_ones(2, a_shape);
    tg_tensor *b = tg_tensor_ones(2, b_shape);
    cr_assert_null(tg_matmul(tape, a, b));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "matmul") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(3, 4)") != NULL, "message: %s", message);
    cr_assert(strstr(message, "(5, 6)") != NULL, "message: %s", message);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(matmul, batch_mismatch_is_rejected) {
    tg_tape *tape = tg_tape_new();
    int a_shape[3] = {2, 3, 4};
    int b_shape[3] = {3, 4, 5};
    tg_tensor *a = tg_tensor_ones(3, a_shape);
    tg_tensor *b = tg_tensor_ones(3, b_shape);
    cr_assert_null(tg_matmul(tape, a, b));
    cr_assert(strstr(tg_tape_error(tape), "batch") != NULL, "message: %s", tg_tape_error(tape));
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}

Test(matmul, one_dimensional_is_rejected) {
    tg_tape *tape = tg_tape_new();
    int shape[1] = {4};
    tg_tensor *a = tg_tensor_ones(1, shape);
    cr_assert_null(tg_matmul(tape, a, a));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    tg_tensor_free(a);
    tg_tape_free(tape);
}
