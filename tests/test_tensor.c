#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

Test(tensor, zeros_has_shape_and_size) {
    int shape[4] = {2, 3, 4, 5};
    tg_tensor *t = tg_tensor_zeros(4, shape);
    cr_assert_not_null(t);
    cr_assert_eq(t->ndim, 4);
    cr_assert_eq(t->size, 120);
    for (size_t i = 0; i < t->size; i++) {
        cr_assert_eq(t->data[i], 0, "element %zu is %g", i, (double)t->data[i]);
    }
    cr_assert_null(t->grad);
    cr_assert(!t->requires_grad);
    tg_tensor_free(t);
}

Test(tensor, ones_and_from_values) {
    int shape[2] = {2, 2};
    tg_tensor *ones = tg_tensor_ones(2, shape);
    tg_scalar values[4] = {1, -2, 3.5f, 4};
    tg_tensor *v = tg_tensor_from_values(2, shape, values);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ones->data[i], 1);
        cr_assert_eq(v->data[i], values[i]);
    }
    tg_tensor_free(ones);
    tg_tensor_free(v);
}

Test(tensor, scalar_has_zero_dimensions) {
    tg_tensor *t = tg_tensor_ones(0, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(t->size, 1);
    tg_tensor_free(t);
}

Test(tensor, rejects_zero_extent_with_message) {
    int shape[2] = {3, 0};
    tg_tensor *t = tg_tensor_zeros(2, shape);
    cr_assert_null(t);
    cr_assert(strstr(tg_last_error(), "(3, 0)") != NULL, "message: %s", tg_last_error());
}

Test(tensor, rejects_too_many_dimensions) {
    int shape[TG_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1};
    cr_assert_null(tg_tensor_zeros(TG_MAX_DIMS + 1, shape));
    cr_assert(strstr(tg_last_error(), "dimensions") != NULL, "message: %s", tg_last_error());
}

Test(tensor, normal_is_seeded_and_reproducible) {
    int shape[1] = {1000};
    tg_rng a;
    tg_rng b;
    tg_rng_seed(&a, 42);
    tg_rng_seed(&b, 42);
    tg_tensor *x = tg_tensor_normal(1, shape, &a, 0.5, 2.0);
    tg_tensor *y = tg_tensor_normal(1, shape, &b, 0.5, 2.0);
    cr_assert_eq(memcmp(x->data, y->data, x->size * sizeof *x->data), 0);

    double mean = 0.0;
    double sq = 0.0;
    for (size_t i = 0; i < x->size; i++) {
        mean += (double)x->data[i];
        sq += (double)x->data[i] * (double)x->data[i];
    }
    mean /= 1000.0;
    double std = sqrt(sq / 1000.0 - mean * mean);
    /* 1000 samples: the standard error of the mean is 2 / sqrt(1000) = 0.063. */
    cr_assert(fabs(mean - 0.5) < 0.25, "mean %g, expected 0.5", mean);
    cr_assert(fabs(std - 2.0) < 0.2, "std %g, expected 2", std);
    tg_tensor_free(x);
    tg_tensor_free(y);
}

Test(tensor, different_seeds_differ) {
    int shape[1] = {16};
    tg_rng a;
    tg_rng b;
    tg_rng_seed(&a, 1);
    tg_rng_seed(&b, 2);
    tg_tensor *x = tg_tensor_uniform(1, shape, &a, 0.0, 1.0);
    tg_tensor *y = tg_tensor_uniform(1, shape, &b, 0.0, 1.0);
    cr_assert_neq(memcmp(x->data, y->data, x->size * sizeof *x->data), 0);
    tg_tensor_free(x);
    tg_tensor_free(y);
}

Test(tensor, uniform_stays_in_range) {
    int shape[1] = {4096};
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_tensor *x = tg_tensor_uniform(1, shape, &rng, -3.0, 5.0);
    for (size_t i = 0; i < x->size; i++) {
        cr_assert(x->data[i] >= -3 && x->data[i] < 5, "element %zu is %g", i, (double)x->data[i]);
    }
    tg_tensor_free(x);
}

Test(rng, below_covers_every_value) {
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    int counts[5] = {0};
    for (int i = 0; i < 5000; i++) {
        uint64_t v = tg_rng_below(&rng, 5);
        cr_assert_lt(v, 5);
        counts[v]++;
    }
    for (int v = 0; v < 5; v++) {
        cr_assert(counts[v] > 850 && counts[v] < 1150, "value %d drawn %d times of 5000", v,
                  counts[v]);
    }
}

Test(tensor, requires_grad_allocates_zero_grad) {
    int shape[1] = {8};
    tg_tensor *t = tg_tensor_ones(1, shape);
    cr_assert_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    cr_assert_not_null(t->grad);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(t->grad[i], 0);
    }
    t->grad[3] = 5;
    tg_tensor_zero_grad(t);
    cr_assert_eq(t->grad[3], 0);
    tg_tensor_free(t);
}
