/* The float32 GELU of the library (tanh form through the vectorised exp of
 * autograd/ops/gelu_internal.h) against the formula evaluated in double:
 * the exp itself over its whole range, GELU values and GELU derivatives.
 * The float64 build, which the gradient checks use, takes exp from libm, so
 * these float paths are checked here. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "autograd/ops/gelu_internal.h"
#include "check.h"
#include "tapegrad.h"

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and its derivative in
 * double. */
static double gelu_reference(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + tanh(u));
}

static double gelu_derivative_reference(double x) {
    double k = 0.7978845608028654;
    double c = 0.044715;
    double t = tanh(k * (x + c * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x);
}

Test(gelu_float, exp_within_two_ulp_of_libm) {
    /* 2 million points over [-87, 87], where no clamping happens. */
    double worst_ulps = 0.0;
    float worst_x = 0.0f;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 174.0f * (float)i / 2000000.0f;
        double exact = exp((double)x);
        double ulp = (double)nextafterf((float)exact, INFINITY) - (double)(float)exact;
        double ulps = fabs((double)tg__expf_clamped(x) - exact) / ulp;
        if (ulps > worst_ulps) {
            worst_ulps = ulps;
            worst_x = x;
        }
    }
    cr_assert_leq(worst_ulps, 2.0, "exp(%.9g) is off by %.2f ulp", (double)worst_x, worst_ulps);
}

Test(gelu_float, exp_clamps_outside_range) {
    float low = tg__expf_clamped(-87.0f);
    float high = tg__expf_clamped(87.0f);
    float inputs[5] = {-1000.0f, -INFINITY, -88.5f, 200.0f, INFINITY};
    float expected[5] = {low, low, low, high, high};
    for (int i = 0; i < 5; i++) {
        float y = tg__expf_clamped(inputs[i]);
        cr_assert(memcmp(&y, &expected[i], sizeof y) == 0, "exp(%g) is %.9g, expected %.9g",
                  (double)inputs[i], (double)y, (double)expected[i]);
    }
    cr_assert(isnormal(low), "exp(-87) is %g, not a normal float", (double)low);
}

Test(gelu_float, values_and_derivatives_match_double) {
    enum { N = 4001 };
    int shape[1] = {N};
    tg_tensor *x = tg_tensor_zeros(1, shape);
    for (int i = 0; i < N; i++) {
        x->data[i] = -20.0f + 40.0f * (float)i / (float)(N - 1);
    }
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_gelu(tape, x, TG_GELU_TANH);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));
    tg_scalar *ones = malloc(N * sizeof *ones);
    for (int i = 0; i < N; i++) {
        ones[i] = 1.0f;
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, ones), TG_OK, "%s", tg_last_error());

    double *expected = malloc(N * sizeof *expected);
    double *expected_grad = malloc(N * sizeof *expected_grad);
    for (int i = 0; i < N; i++) {
        expected[i] = gelu_reference((double)x->data[i]);
        expected_grad[i] = gelu_derivative_reference((double)x->data[i]);
    }
    /* The float argument u carries a rounding of |u| * 1.2e-7, which moves
     * e^(-2u) by up to 2|u| * 1.2e-7 relative: tiny in absolute terms, where
     * GELU is near 0, and below 2e-6 relative where |x| <= 3. PyTorch's float
     * tanh form carries the same rounding of u. */
    expect_close("gelu tanh values", y->data, expected, N, 1e-7, 2e-6);
    expect_close("gelu tanh derivatives", x->grad, expected_grad, N, 1e-6, 2e-6);
    free(ones);
    free(expected);
    free(expected_grad);
    tg_tape_free(tape);
    tg_tensor_free(x);
}
