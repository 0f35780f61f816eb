/* Assertions shared by the test files.
 *
 * expect_close compares two arrays with |actual - expected| <= atol + rtol *
 * |expected| and fails once, on the worst element, with both values.
 * expect_gradcheck runs tg_gradcheck with the given options and fails with the
 * checker's message (worst element, analytic and numeric values).
 */
#ifndef TG_TESTS_CHECK_H
#define TG_TESTS_CHECK_H

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "tapegrad.h"

static inline void expect_close(const char *what, const tg_scalar *actual, const double *expected,
                                size_t n, double atol, double rtol) {
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)actual[i] - expected[i]);
        double excess = diff - (atol + rtol * fabs(expected[i]));
        if (isnan(diff)) {
            excess = INFINITY;
        }
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    cr_assert(n == 0 || worst_excess <= 0.0,
              "%s: element %zu is %.10g, expected %.10g (atol %g, rtol %g)", what, worst,
              (double)actual[worst], expected[worst], atol, rtol);
}

static inline void expect_gradcheck(const char *what, tg_gradcheck_fn fn, int n_inputs,
                                    tg_tensor *const *inputs, void *user_data,
                                    const tg_gradcheck_options *options) {
    tg_gradcheck_result result;
    tg_status status = tg_gradcheck(fn, n_inputs, inputs, user_data, options, &result);
    cr_assert_eq(status, TG_OK, "%s: %s", what, tg_last_error());
    cr_assert_gt(result.checked, 0, "%s: no element was checked", what);
}

/* Returns a heap tensor with N(0, 1) elements that requires grad. */
static inline tg_tensor *random_input(tg_rng *rng, int ndim, const int *shape) {
    tg_tensor *t = tg_tensor_normal(ndim, shape, rng, 0.0, 1.0);
    cr_assert_not_null(t, "could not create an input: %s", tg_last_error());
    cr_assert_eq(tg_tensor_set_requires_grad(t, true), TG_OK, "%s", tg_last_error());
    return t;
}

#endif
