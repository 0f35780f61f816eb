/* exp, log, sqrt, tanh, sigmoid, relu, silu and gelu: gradient checks in
 * float64 on random shapes and at large |x|, forward values against double
 * references from libm, IEEE edge cases and errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef tg_tensor *(*unary_fn)(tg_tape *, const tg_tensor *);

typedef enum input_domain {
    DOMAIN_ANY,       /* any real number */
    DOMAIN_POSITIVE,  /* at least 0.5, for log and sqrt */
    DOMAIN_NONZERO,   /* at least 0.01 from 0, the kink of relu */
} input_domain;

typedef struct unary_case {
    const char *name;
    unary_fn op;
    double (*reference)(double);
    input_domain domain;
} unary_case;

static tg_tensor *gelu_tanh_fn(tg_tape *tape, const tg_tensor *x) {
    return tg_gelu(tape, x, TG_GELU_TANH);
}

static tg_tensor *gelu_exact_fn(tg_tape *tape, const tg_tensor *x) {
    return tg_gelu(tape, x, TG_GELU_EXACT);
}

static double sigmoid_reference(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static double relu_reference(double x) {
    return x > 0 ? x : 0.0;
}

static double silu_reference(double x) {
    return x / (1.0 + exp(-x));
}

static double gelu_tanh_reference(double x) {
    const double pi = 3.14159265358979323846;
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

/* x * Phi(x) through erfc, which keeps its relative accuracy for negative x. */
static double gelu_exact_reference(double x) {
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static const unary_case cases[] = {
    {"exp", tg_exp, exp, DOMAIN_ANY},
    {"log", tg_log, log, DOMAIN_POSITIVE},
    {"sqrt", tg_sqrt, sqrt, DOMAIN_POSITIVE},
    {"tanh", tg_tanh, tanh, DOMAIN_ANY},
    {"sigmoid", tg_sigmoid, sigmoid_reference, DOMAIN_ANY},
    {"relu", tg_relu, relu_reference, DOMAIN_NONZERO},
    {"silu", tg_silu, silu_reference, DOMAIN_ANY},
    {"gelu tanh", gelu_tanh_fn, gelu_tanh_reference, DOMAIN_ANY},
    {"gelu exact", gelu_exact_fn, gelu_exact_reference, DOMAIN_ANY},
};

#define CASE_COUNT (sizeof cases / sizeof cases[0])

static tg_tensor *apply_unary(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const unary_case *c = user_data;
    return c->op(tape, in[0]);
}

/* Moves every element of x into the case's domain. */
static void fit_domain(tg_tensor *x, input_domain domain) {
    for (size_t i = 0; i < x->size; i++) {
        double v = (double)x->data[i];
        if (domain == DOMAIN_POSITIVE) {
            v = 0.5 + fabs(v);
        } else if (domain == DOMAIN_NONZERO && fabs(v) < 0.01) {
            v = v < 0 ? v - 0.01 : v + 0.01;
        }
        x->data[i] = (tg_scalar)v;
    }
}

Test(unary, gradcheck_random_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 41);
    for (size_t k = 0; k < CASE_COUNT; k++) {
        for (int c = 0; c < 4; c++) {
            int shape[TG_MAX_DIMS];
            int ndim = (int)tg_rng_below(&rng, 5);
            for (int d = 0; d < ndim; d++) {
                shape[d] = 1 + (int)tg_rng_below(&rng, 4);
            }
            tg_tensor *x = random_input(&rng, ndim, shape);
            /* Spread the inputs to N(0, 9) so the tails of each function are hit. */
            for (size_t i = 0; i < x->size; i++) {
                x->data[i] *= 3;
            }
            fit_domain(x, cases[k].domain);
            char what[64];
            snprintf(what, sizeof what, "%s case %d", cases[k].name, c);
            expect_gradcheck(what, apply_unary, 1, &x, (void *)&cases[k], NULL);
            tg_tensor_free(x);
        }
    }
}

Test(unary, gradcheck_large_magnitudes) {
    int shape[1] = {8};
    tg_scalar values[8] = {-1000, -200, -40, -12, 12, 40, 200, 1000};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(x, true);
    /* exp overflows and log and sqrt need positive inputs, so they are not
     * checked here. */
    for (size_t k = 3; k < CASE_COUNT; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s at large |x|", cases[k].name);
        expect_gradcheck(what, apply_unary, 1, &x, (void *)&cases[k], NULL);
    }
    tg_tensor_free(x);
}

Test(unary, forward_matches_libm_reference) {
    int shape[1] = {12};
    tg_scalar values[12] = {-30, -5, -1.5, -1, -0.25, -1e-3, 1e-3, 0.25, 1, 1.5, 5, 30};
    tg_scalar positive[12] = {1e-8, 1e-3, 0.1, 0.5, 1, 2, 3, 10, 100, 1e4, 1e8, 1e12};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor *x_positive = tg_tensor_from_values(1, shape, positive);
    tg_tape *tape = tg_tape_new();
    for (size_t k = 0; k < CASE_COUNT; k++) {
        const unary_case *c = &cases[k];
        const tg_tensor *input = c->domain == DOMAIN_POSITIVE ? x_positive : x;
        tg_tensor *y = c->op(tape, input);
        cr_assert_not_null(y, "%s: %s", c->name, tg_tape_error(tape));
        double expected[12];
        for (int i = 0; i < 12; i++) {
            expected[i] = c->reference((double)input->data[i]);
        }
        /* The kernels evaluate algebraically equal forms, so allow a few
         * roundings. For negative x, 1 + tanh in the gelu tanh form cancels,
         * which leaves an absolute error near 1e-16. */
        expect_close(c->name, y->data, expected, 12, 1e-15, 1e-14);
    }
    tg_tensor_free(x);
    tg_tensor_free(x_positive);
    tg_tape_free(tape);
}

Test(unary, gelu_matches_normal_cdf_values) {
    /* gelu(x) = x Phi(x) with Phi(1) = 0.8413447460685429 and
     * Phi(-1) = 0.15865525393145707, values of the standard normal CDF. */
    int shape[1] = {3};
    tg_scalar values[3] = {-1, 0, 1};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tape *tape = tg_tape_new();
    tg_tensor *exact = tg_gelu(tape, x, TG_GELU_EXACT);
    double expected[3] = {-0.15865525393145707, 0, 0.8413447460685429};
    expect_close("gelu exact", exact->data, expected, 3, 1e-15, 1e-14);
    /* The tanh form differs from the exact form by less than 1e-3 at these points. */
    tg_tensor *approx = tg_gelu(tape, x, TG_GELU_TANH);
    expect_close("gelu tanh", approx->data, expected, 3, 1e-3, 0);
    cr_assert_neq(approx->data[2], exact->data[2], "both forms give %.17g at 1",
                  (double)exact->data[2]);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, saturating_functions_stay_finite) {
    int shape[2] = {1, 2};
    tg_scalar values[2] = {-1000, 1000};
    tg_tensor *x = tg_tensor_from_values(2, shape, values);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tape = tg_tape_new();

    tg_tensor *s = tg_sigmoid(tape, x);
    cr_assert_eq(s->data[0], 0, "sigmoid(-1000) = %g", (double)s->data[0]);
    cr_assert_eq(s->data[1], 1, "sigmoid(1000) = %g", (double)s->data[1]);
    tg_tensor *silu = tg_silu(tape, x);
    cr_assert_eq(silu->data[0], 0, "silu(-1000) = %g", (double)silu->data[0]);
    cr_assert_eq(silu->data[1], 1000, "silu(1000) = %g", (double)silu->data[1]);
    tg_tensor *t = tg_tanh(tape, x);
    cr_assert_eq(t->data[0], -1, "tanh(-1000) = %g", (double)t->data[0]);
    cr_assert_eq(t->data[1], 1, "tanh(1000) = %g", (double)t->data[1]);

    tg_tensor *total = tg_sum(tape, tg_add(tape, tg_add(tape, s, silu), t));
    cr_assert_eq(tg_tape_backward(tape, total), TG_OK, "%s", tg_last_error());
    /* d/dx of sigmoid + silu + tanh: 0 at -1000 and exactly 1 (from silu) at 1000. */
    cr_assert_eq(x->grad[0], 0, "gradient at -1000 is %g", (double)x->grad[0]);
    cr_assert_eq(x->grad[1], 1, "gradient at 1000 is %g", (double)x->grad[1]);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, domain_edges_follow_ieee) {
    int shape[1] = {2};
    tg_scalar values[2] = {0, -1};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tape *tape = tg_tape_new();
    tg_tensor *l = tg_log(tape, x);
    cr_assert(isinf(l->data[0]) && l->data[0] < 0, "log(0) = %g", (double)l->data[0]);
    cr_assert(isnan(l->data[1]), "log(-1) = %g", (double)l->data[1]);
    tg_tensor *r = tg_sqrt(tape, x);
    cr_assert_eq(r->data[0], 0, "sqrt(0) = %g", (double)r->data[0]);
    cr_assert(isnan(r->data[1]), "sqrt(-1) = %g", (double)r->data[1]);
    cr_assert_eq(tg_tape_status(tape), TG_OK, "%s", tg_tape_error(tape));
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, relu_gradient_at_zero_is_zero) {
    int shape[1] = {3};
    tg_scalar values[3] = {-1, 0, 2};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tape = tg_tape_new();
    cr_assert_eq(tg_tape_backward(tape, tg_sum(tape, tg_relu(tape, x))), TG_OK, "%s",
                 tg_last_error());
    double expected[3] = {0, 0, 1};
    expect_close("relu gradient", x->grad, expected, 3, 0, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, backward_adds_into_gradient) {
    int shape[1] = {2};
    tg_scalar values[2] = {0, 1};
    tg_tensor *x = tg_tensor_from_values(1, shape, values);
    tg_tensor_set_requires_grad(x, true);
    x->grad[0] = 10;
    x->grad[1] = 20;
    tg_tape *tape = tg_tape_new();
    cr_assert_eq(tg_tape_backward(tape, tg_sum(tape, tg_exp(tape, x))), TG_OK, "%s",
                 tg_last_error());
    double expected[2] = {11, 20 + exp(1.0)};
    expect_close("exp gradient", x->grad, expected, 2, 0, 1e-15);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, gelu_rejects_invalid_approx) {
    int shape[1] = {2};
    tg_tensor *x = tg_tensor_ones(1, shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_gelu(tape, x, (tg_gelu_approx)7));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID, "status %d", tg_tape_status(tape));
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, "gelu: invalid approx 7") != NULL, "message: %s", message);
    cr_assert(strstr(message, "TG_GELU_TANH") != NULL, "message: %s", message);
    tg_tensor_free(x);
    tg_tape_free(tape);
}

Test(unary, null_input_returns_null_quietly) {
    tg_tape *tape = tg_tape_new();
    for (size_t k = 0; k < CASE_COUNT; k++) {
        cr_assert_null(cases[k].op(tape, NULL), "%s returned a tensor", cases[k].name);
    }
    cr_assert_eq(tg_tape_status(tape), TG_OK, "status %d", tg_tape_status(tape));
    tg_tape_free(tape);
}

Test(unary, no_grad_mode_records_no_node) {
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    int shape[2] = {3, 4};
    tg_tensor *x = random_input(&rng, 2, shape);
    fit_domain(x, DOMAIN_POSITIVE);
    tg_tape *tape = tg_tape_new();
    tg_tape_set_grad_enabled(tape, false);
    for (size_t k = 0; k < CASE_COUNT; k++) {
        tg_tensor *y = cases[k].op(tape, x);
        cr_assert_not_null(y, "%s: %s", cases[k].name, tg_tape_error(tape));
        cr_assert_not(y->requires_grad, "%s output requires grad", cases[k].name);
    }
    long nodes = tg_tape_get_stats(tape).node_count;
    cr_assert_eq(nodes, 0, "%ld nodes recorded with recording off", nodes);
    tg_tape_free(tape);
    tg_tensor_free(x);
}
