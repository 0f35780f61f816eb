/* Checks the RMSNorm example in float64: gradients against finite
 * differences with tg_gradcheck, forward values against a direct computation
 * in double, the layer's parameter names, the shape error message, no-grad
 * mode and NULL chaining. Prints one line per check, and exits with status 1
 * if any check failed, after printing the failure's message. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmsnorm.h"
#include "rmsnorm_layer.h"
#include "tapegrad.h"

#ifndef TG_SCALAR_DOUBLE
#error "check_rmsnorm needs the float64 build: link tapegrad::tapegrad_f64 (pkg-config tapegrad_f64)"
#endif

static int failures = 0;

/* Prints "ok <label>" if passed, else "FAIL <label>: <message>" on stderr. */
static void report(bool passed, const char *label, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void report(bool passed, const char *label, const char *format, ...) {
    if (passed) {
        printf("ok    %s\n", label);
        return;
    }
    failures++;
    fprintf(stderr, "FAIL  %s: ", label);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
}

/* Returns a heap tensor with N(mean, std^2) elements that requires grad. */
static tg_tensor *random_param(tg_rng *rng, int ndim, const int *shape, double mean,
                               double std) {
    tg_tensor *t = tg_tensor_normal(ndim, shape, rng, mean, std);
    if (t == NULL || tg_tensor_set_requires_grad(t, true) != TG_OK) {
        fprintf(stderr, "check_rmsnorm: cannot create an input: %s\n", tg_last_error());
        exit(1);
    }
    return t;
}

/* Runs tg_gradcheck with the default float64 tolerance (1e-6) and reports. */
static void expect_gradcheck(const char *label, tg_gradcheck_fn fn, int n_inputs,
                             tg_tensor *const *inputs, void *user_data) {
    tg_gradcheck_result result;
    tg_status status = tg_gradcheck(fn, n_inputs, inputs, user_data, NULL, &result);
    if (status != TG_OK) {
        report(false, label, "%s", tg_last_error());
        return;
    }
    report(result.checked > 0, label, "no element was checked");
}

/* ---- gradients --------------------------------------------------------- */

static tg_tensor *rmsnorm_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    double eps = *(const double *)user_data;
    return my_rmsnorm(tape, in[0], in[1], eps);
}

typedef struct gradcheck_case {
    const char *name;
    int ndim;
    int shape[3];
    double x_std;
    double eps;
} gradcheck_case;

static const gradcheck_case gradcheck_cases[] = {
    {"one row x (6)", 1, {6}, 1.0, 1e-6},
    {"x (3, 5)", 2, {3, 5}, 1.0, 1e-6},
    {"x (2, 3, 7)", 3, {2, 3, 7}, 1.0, 1e-6},
    {"one column x (4, 1)", 2, {4, 1}, 1.0, 1e-6},
    {"two dw blocks x (3, 70)", 2, {3, 70}, 1.0, 1e-6},
    {"eps dominates x (3, 4) std 1e-3", 2, {3, 4}, 1e-3, 1e-5},
    {"large eps x (2, 5)", 2, {2, 5}, 1.0, 0.5},
};

static void check_op_gradients(void) {
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof gradcheck_cases / sizeof gradcheck_cases[0]; i++) {
        const gradcheck_case *c = &gradcheck_cases[i];
        int C = c->shape[c->ndim - 1];
        tg_tensor *inputs[2] = {random_param(&rng, c->ndim, c->shape, 0.0, c->x_std),
                                random_param(&rng, 1, &C, 1.0, 0.5)};
        char label[96];
        snprintf(label, sizeof label, "gradcheck %s", c->name);
        expect_gradcheck(label, rmsnorm_fn, 2, inputs, (void *)&c->eps);
        tg_tensor_free(inputs[0]);
        tg_tensor_free(inputs[1]);
    }
}

/* x + rmsnorm(rmsnorm(x, w), w): x and w each feed two nodes, so a backward
 * that overwrote a gradient instead of adding into it would lose a term. */
static tg_tensor *residual_rmsnorm_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)user_data;
    tg_tensor *inner = my_rmsnorm(tape, in[0], in[1], 1e-6);
    return tg_add(tape, in[0], my_rmsnorm(tape, inner, in[1], 1e-6));
}

static void check_gradients_accumulate(void) {
    tg_rng rng;
    tg_rng_seed(&rng, 8);
    int x_shape[2] = {3, 6};
    int C = 6;
    tg_tensor *inputs[2] = {random_param(&rng, 2, x_shape, 0.0, 1.0),
                            random_param(&rng, 1, &C, 1.0, 0.5)};
    expect_gradcheck("gradcheck inputs used twice", residual_rmsnorm_fn, 2, inputs, NULL);
    tg_tensor_free(inputs[0]);
    tg_tensor_free(inputs[1]);
}

/* ---- the layer ---------------------------------------------------------- */

static tg_tensor *layer_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const my_rmsnorm_layer *layer = user_data;
    return my_rmsnorm_layer_forward(tape, layer, in[0]);
}

static void check_layer(void) {
    my_rmsnorm_layer layer;
    tg_status status = my_rmsnorm_layer_init(&layer, 8, 1e-6);
    report(status == TG_OK, "layer init", "%s", tg_last_error());
    if (status != TG_OK) {
        my_rmsnorm_layer_free(&layer);
        return;
    }
    bool ones = true;
    for (size_t i = 0; i < layer.weight->size; i++) {
        ones = ones && layer.weight->data[i] == 1.0;
    }
    report(ones, "layer weight starts at ones", "weight holds a value other than 1");

    tg_param_list list;
    tg_param_list_init(&list);
    status = my_rmsnorm_layer_params(&layer, "final_norm", &list);
    report(status == TG_OK, "layer params", "%s", tg_last_error());
    report(list.count == 1, "layer has one parameter", "the list holds %d", list.count);
    tg_tensor *found = tg_param_list_find(&list, "final_norm.weight");
    report(found == layer.weight, "layer weight named final_norm.weight",
           "tg_param_list_find returned %p, the weight is %p", (void *)found,
           (void *)layer.weight);
    report(list.count == 1 && list.items[0].kind == TG_PARAM_NORM, "layer weight kind is norm",
           "kind is %s", list.count == 1 ? tg_param_kind_name(list.items[0].kind) : "missing");
    tg_param_list_free(&list);

    /* Check away from the all-ones start, and through the layer's own weight
     * tensor, which tg_gradcheck perturbs in place. */
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    for (size_t i = 0; i < layer.weight->size; i++) {
        layer.weight->data[i] = 1.0 + 0.5 * tg_rng_normal(&rng);
    }
    int x_shape[3] = {2, 3, 8};
    tg_tensor *inputs[2] = {random_param(&rng, 3, x_shape, 0.0, 1.0), layer.weight};
    expect_gradcheck("gradcheck layer forward", layer_fn, 2, inputs, &layer);
    tg_tensor_free(inputs[0]);
    my_rmsnorm_layer_free(&layer);
}

/* ---- forward values, errors, no-grad mode ------------------------------ */

static void check_forward_values(void) {
    tg_rng rng;
    tg_rng_seed(&rng, 10);
    enum { N = 12, C = 6 };
    int x_shape[3] = {3, 4, C};
    int w_shape[1] = {C};
    double eps = 1e-5;
    tg_tensor *x = tg_tensor_normal(3, x_shape, &rng, 0.0, 2.0);
    tg_tensor *w = tg_tensor_normal(1, w_shape, &rng, 1.0, 0.5);
    tg_tape *tape = tg_tape_new();

    tg_tensor *y = my_rmsnorm(tape, x, w, eps);
    report(y != NULL, "forward runs", "%s", tg_tape_error(tape));
    if (y != NULL) {
        /* y = x / sqrt(mean(x^2) + eps) * w, row by row in double. */
        double worst = 0.0;
        for (int n = 0; n < N; n++) {
            double sum_sq = 0.0;
            for (int c = 0; c < C; c++) {
                sum_sq += x->data[n * C + c] * x->data[n * C + c];
            }
            double rms = sqrt(sum_sq / C + eps);
            for (int c = 0; c < C; c++) {
                double expected = x->data[n * C + c] / rms * w->data[c];
                double error = fabs(y->data[n * C + c] - expected) / (1.0 + fabs(expected));
                worst = error > worst ? error : worst;
            }
        }
        report(worst <= 1e-14, "forward matches double computation",
               "largest error %.3g exceeds 1e-14", worst);
    }

    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
}

static void check_errors_and_chaining(void) {
    int x_shape[2] = {2, 4};
    int w_shape[1] = {5};
    tg_tensor *x = tg_tensor_ones(2, x_shape);
    tg_tensor *w = tg_tensor_ones(1, w_shape);
    tg_tape *tape = tg_tape_new();

    tg_tensor *y = my_rmsnorm(tape, x, w, 1e-6);
    const char *message = tg_tape_error(tape);
    report(y == NULL && tg_tape_status(tape) == TG_ERR_SHAPE, "shape mismatch fails",
           "returned %p with status %s", (void *)y, tg_status_name(tg_tape_status(tape)));
    report(strstr(message, "x (2, 4) and weight (5)") != NULL, "shape message names both shapes",
           "message: %s", message);

    /* A failed op returns NULL, and later ops pass the NULL on silently. */
    char first[256];
    snprintf(first, sizeof first, "%s", message);
    tg_tensor *z = my_rmsnorm(tape, y, w, 1e-6);
    report(z == NULL, "NULL input gives NULL", "returned %p", (void *)z);
    report(strcmp(tg_tape_error(tape), first) == 0, "NULL input keeps the first message",
           "message changed to: %s", tg_tape_error(tape));

    tg_tape_reset(tape);
    y = my_rmsnorm(tape, x, x, 0.0);
    report(y == NULL && tg_tape_status(tape) == TG_ERR_SHAPE, "weight (2, 4) fails",
           "status %s", tg_status_name(tg_tape_status(tape)));
    tg_tape_reset(tape);
    int c_shape[1] = {4};
    tg_tensor *w4 = tg_tensor_ones(1, c_shape);
    y = my_rmsnorm(tape, x, w4, 0.0);
    report(y == NULL && tg_tape_status(tape) == TG_ERR_INVALID, "eps 0 fails", "status %s",
           tg_status_name(tg_tape_status(tape)));

    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(w4);
}

static void check_no_grad(void) {
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    int x_shape[2] = {4, 8};
    int C = 8;
    tg_tensor *x = random_param(&rng, 2, x_shape, 0.0, 1.0);
    tg_tensor *w = random_param(&rng, 1, &C, 1.0, 0.5);
    tg_tape *tape = tg_tape_new();

    tg_tensor *recorded = my_rmsnorm(tape, x, w, 1e-6);
    long recorded_nodes = tg_tape_get_stats(tape).node_count;
    report(recorded != NULL && recorded_nodes == 1, "grad mode records one node", "%ld nodes",
           recorded_nodes);

    tg_tape_reset(tape);
    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *y = my_rmsnorm(tape, x, w, 1e-6);
    tg_tape_stats op_stats = tg_tape_get_stats(tape);
    report(y != NULL && op_stats.node_count == 0, "no-grad mode records no node", "%ld nodes",
           op_stats.node_count);
    report(y != NULL && !y->requires_grad, "no-grad output does not require grad",
           "requires_grad is set");

    /* Step memory must hold the output tensor and nothing else. */
    tg_tape_reset(tape);
    tg_tape_tensor(tape, 2, x_shape);
    size_t output_bytes = tg_tape_get_stats(tape).arena_used_bytes;
    report(op_stats.arena_used_bytes == output_bytes, "no-grad mode saves nothing",
           "step memory %zu bytes, the output alone %zu bytes", op_stats.arena_used_bytes,
           output_bytes);

    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
}

int main(void) {
    check_op_gradients();
    check_gradients_accumulate();
    check_layer();
    check_forward_values();
    check_errors_and_chaining();
    check_no_grad();
    if (failures > 0) {
        fprintf(stderr, "check_rmsnorm: %d checks failed\n", failures);
        return 1;
    }
    printf("check_rmsnorm: all checks passed\n");
    return 0;
}
