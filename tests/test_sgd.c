/* SGD: trajectories against a double-precision reference written from the
 * update rule and against PyTorch 1.13 recordings, convergence on a
 * quadratic and on the Rosenbrock function, the momentum buffer's first step,
 * state access for checkpoints, thread-count determinism and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures/optim/torch_reference.h"
#include "tapegrad.h"

/* A weight (R, C) that decays and a bias (C) that does not. */
typedef struct model {
    tg_param_list list;
    tg_tensor *weight;
    tg_tensor *bias;
} model;

static model model_new(int rows, int cols) {
    model m;
    int weight_shape[2] = {rows, cols};
    int bias_shape[1] = {cols};
    m.weight = tg_tensor_zeros(2, weight_shape);
    m.bias = tg_tensor_zeros(1, bias_shape);
    cr_assert_not_null(m.weight, "%s", tg_last_error());
    cr_assert_not_null(m.bias, "%s", tg_last_error());
    cr_assert_eq(tg_tensor_set_requires_grad(m.weight, true), TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_tensor_set_requires_grad(m.bias, true), TG_OK, "%s", tg_last_error());
    tg_param_list_init(&m.list);
    cr_assert_eq(tg_param_list_add(&m.list, "fc", "weight", TG_PARAM_WEIGHT, m.weight), TG_OK);
    cr_assert_eq(tg_param_list_add(&m.list, "fc", "bias", TG_PARAM_BIAS, m.bias), TG_OK);
    return m;
}

static void model_free(model *m) {
    tg_param_list_free(&m->list);
    tg_tensor_free(m->weight);
    tg_tensor_free(m->bias);
}

static void copy_in(tg_scalar *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        dst[i] = (tg_scalar)src[i];
    }
}

/* ---- reference in double, written from the update rule in sgd.h ----- */

typedef struct sgd_config {
    const char *name;
    double momentum;
    double dampening;
    bool nesterov;
    double weight_decay;
} sgd_config;

/* One parameter's reference state. */
typedef struct sgd_reference {
    double *p;
    double *buf;
    bool has_buf;
} sgd_reference;

static void sgd_reference_step(sgd_reference *r, const tg_scalar *g, size_t n, double lr,
                               double weight_decay, const sgd_config *c) {
    for (size_t i = 0; i < n; i++) {
        double d = (double)g[i] + weight_decay * r->p[i];
        if (c->momentum != 0) {
            if (r->has_buf) {
                r->buf[i] = c->momentum * r->buf[i] + (1 - c->dampening) * d;
            } else {
                r->buf[i] = d;
            }
            d = c->nesterov ? d + c->momentum * r->buf[i] : r->buf[i];
        }
        r->p[i] -= lr * d;
    }
    r->has_buf = true;
}

static const sgd_config reference_configs[] = {
    {"plain", 0, 0, false, 0},
    {"momentum", 0.9, 0, false, 0},
    {"momentum with dampening", 0.9, 0.3, false, 0},
    {"nesterov", 0.9, 0, true, 0},
    {"weight decay", 0, 0, false, 0.05},
    {"momentum, dampening and weight decay", 0.8, 0.5, false, 0.1},
    {"nesterov with weight decay", 0.7, 0, true, 0.1},
};

/* Eight steps from random values with random gradients and a rate that
 * changes every step; the weight decays, the bias does not. */
static void check_against_reference(const sgd_config *c) {
    enum { STEPS = 8 };
    model m = model_new(3, 4);
    tg_rng rng;
    tg_rng_seed(&rng, 21);
    tg_tensor *tensors[2] = {m.weight, m.bias};
    double *p_ref[2];
    double *buf_ref[2];
    sgd_reference ref[2];
    for (int k = 0; k < 2; k++) {
        size_t n = tensors[k]->size;
        p_ref[k] = malloc(n * sizeof(double));
        buf_ref[k] = calloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++) {
            tensors[k]->data[i] = (tg_scalar)tg_rng_normal(&rng);
            p_ref[k][i] = (double)tensors[k]->data[i];
        }
        ref[k] = (sgd_reference){p_ref[k], buf_ref[k], false};
    }
    tg_sgd_options options = {.momentum = c->momentum, .dampening = c->dampening,
                              .nesterov = c->nesterov, .weight_decay = c->weight_decay};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s: %s", c->name, tg_last_error());

    for (int step = 0; step < STEPS; step++) {
        double lr = 0.1 * (1 + 0.25 * (step % 3));
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < tensors[k]->size; i++) {
                tensors[k]->grad[i] = (tg_scalar)tg_rng_normal(&rng);
            }
            double decay = k == 0 ? c->weight_decay : 0.0;
            sgd_reference_step(&ref[k], tensors[k]->grad, tensors[k]->size, lr, decay, c);
        }
        cr_assert_eq(tg_optimizer_step(opt, lr), TG_OK, "%s: %s", c->name, tg_last_error());
        char what[128];
        snprintf(what, sizeof what, "%s, weight after step %d", c->name, step + 1);
        expect_close(what, m.weight->data, p_ref[0], m.weight->size, 1e-6, 0);
        snprintf(what, sizeof what, "%s, bias after step %d", c->name, step + 1);
        expect_close(what, m.bias->data, p_ref[1], m.bias->size, 1e-6, 0);
    }
    if (c->momentum != 0) {
        tg_optimizer_state state;
        cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", "momentum_buffer", &state), TG_OK,
                     "%s", tg_last_error());
        expect_close("momentum buffer", state.tensor->data, buf_ref[0], m.weight->size, 1e-6, 0);
    }
    for (int k = 0; k < 2; k++) {
        free(p_ref[k]);
        free(buf_ref[k]);
    }
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(sgd, trajectories_match_double_reference) {
    for (size_t c = 0; c < sizeof reference_configs / sizeof reference_configs[0]; c++) {
        check_against_reference(&reference_configs[c]);
    }
}

/* ---- PyTorch 1.13 recordings (tests/fixtures/optim) ----------------- */

static void check_torch_case(const torch_case *tc) {
    model m = model_new(2, 3);
    copy_in(m.weight->data, tc->weight_init, TORCH_WEIGHT_SIZE);
    copy_in(m.bias->data, tc->bias_init, TORCH_BIAS_SIZE);
    tg_sgd_options options = {.momentum = tc->momentum, .dampening = tc->dampening,
                              .nesterov = tc->nesterov != 0, .weight_decay = tc->weight_decay};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s: %s", tc->name, tg_last_error());

    for (int step = 0; step < TORCH_STEPS; step++) {
        copy_in(m.weight->grad, tc->weight_grad[step], TORCH_WEIGHT_SIZE);
        copy_in(m.bias->grad, tc->bias_grad[step], TORCH_BIAS_SIZE);
        cr_assert_eq(tg_optimizer_step(opt, tc->lr[step]), TG_OK, "%s", tg_last_error());
        char what[128];
        snprintf(what, sizeof what, "%s, weight after step %d", tc->name, step + 1);
        expect_close(what, m.weight->data, tc->weight_after[step], TORCH_WEIGHT_SIZE, 1e-6, 0);
        snprintf(what, sizeof what, "%s, bias after step %d", tc->name, step + 1);
        expect_close(what, m.bias->data, tc->bias_after[step], TORCH_BIAS_SIZE, 1e-6, 0);
    }
    cr_assert_eq(tg_optimizer_state_count(opt), 2 * tc->slot_count, "%s: %d state slots",
                 tc->name, tg_optimizer_state_count(opt));
    for (int s = 0; s < tc->slot_count; s++) {
        tg_optimizer_state state;
        cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", tc->slot_names[s], &state), TG_OK,
                     "%s", tg_last_error());
        expect_close(tc->slot_names[s], state.tensor->data, tc->weight_state[s],
                     TORCH_WEIGHT_SIZE, 1e-6, 0);
        cr_assert_eq(tg_optimizer_state_find(opt, "fc.bias", tc->slot_names[s], &state), TG_OK,
                     "%s", tg_last_error());
        expect_close(tc->slot_names[s], state.tensor->data, tc->bias_state[s], TORCH_BIAS_SIZE,
                     1e-6, 0);
    }
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(sgd, trajectories_match_torch_recordings) {
    int checked = 0;
    for (size_t c = 0; c < sizeof torch_cases / sizeof torch_cases[0]; c++) {
        if (strcmp(torch_cases[c].optimizer, "sgd") == 0) {
            check_torch_case(&torch_cases[c]);
            checked++;
        }
    }
    cr_assert_eq(checked, 3, "expected 3 SGD cases in the fixture, found %d", checked);
}

/* ---- convergence ---------------------------------------------------- */

/* f(x) = sum_i a_i (x_i - c_i)^2 with curvatures from 0.25 to 10. */
static const double quadratic_a[4] = {1, 4, 0.25, 10};
static const double quadratic_c[4] = {1, -2, 3, 0.5};

static void quadratic_grad(const tg_tensor *x, tg_scalar *g) {
    for (int i = 0; i < 4; i++) {
        g[i] = (tg_scalar)(2 * quadratic_a[i] * ((double)x->data[i] - quadratic_c[i]));
    }
}

/* f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum at (1, 1). */
static void rosenbrock_grad(const tg_tensor *p, tg_scalar *g) {
    double x = (double)p->data[0];
    double y = (double)p->data[1];
    g[0] = (tg_scalar)(-2 * (1 - x) - 400 * x * (y - x * x));
    g[1] = (tg_scalar)(200 * (y - x * x));
}

typedef void (*grad_fn)(const tg_tensor *, tg_scalar *);

/* Runs `steps` steps from start and returns the largest distance of a
 * coordinate from the expected minimum. */
static double minimise(grad_fn grad, int n, const double *start, const double *minimum,
                       const tg_sgd_options *options, double lr, int steps) {
    int shape[1] = {n};
    tg_tensor *x = tg_tensor_zeros(1, shape);
    tg_tensor_set_requires_grad(x, true);
    copy_in(x->data, start, (size_t)n);
    tg_param_list list;
    tg_param_list_init(&list);
    tg_param_list_add(&list, NULL, "x", TG_PARAM_WEIGHT, x);
    tg_optimizer *opt = tg_sgd_new(&list, options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    for (int step = 0; step < steps; step++) {
        grad(x, x->grad);
        cr_assert_eq(tg_optimizer_step(opt, lr), TG_OK, "%s", tg_last_error());
    }
    double error = 0;
    for (int i = 0; i < n; i++) {
        error = fmax(error, fabs((double)x->data[i] - minimum[i]));
    }
    tg_optimizer_free(opt);
    tg_param_list_free(&list);
    tg_tensor_free(x);
    return error;
}

Test(sgd, converges_on_quadratic) {
    double start[4] = {0, 0, 0, 0};
    tg_sgd_options plain = {0};
    double error = minimise(quadratic_grad, 4, start, quadratic_c, &plain, 0.04, 1000);
    cr_assert_lt(error, 1e-4, "plain SGD: max error %g after 1000 steps", error);
    tg_sgd_options momentum = {.momentum = 0.9};
    error = minimise(quadratic_grad, 4, start, quadratic_c, &momentum, 0.05, 250);
    cr_assert_lt(error, 1e-4, "momentum SGD: max error %g after 250 steps", error);
    tg_sgd_options nesterov = {.momentum = 0.9, .nesterov = true};
    error = minimise(quadratic_grad, 4, start, quadratic_c, &nesterov, 0.05, 250);
    cr_assert_lt(error, 1e-4, "nesterov SGD: max error %g after 250 steps", error);
}

Test(sgd, converges_on_rosenbrock) {
    double start[2] = {-1.2, 1};
    double minimum[2] = {1, 1};
    tg_sgd_options momentum = {.momentum = 0.9};
    double error = minimise(rosenbrock_grad, 2, start, minimum, &momentum, 1e-3, 5000);
    cr_assert_lt(error, 1e-4, "momentum SGD: max error %g after 5000 steps", error);
    tg_sgd_options nesterov = {.momentum = 0.9, .nesterov = true};
    error = minimise(rosenbrock_grad, 2, start, minimum, &nesterov, 1e-3, 5000);
    cr_assert_lt(error, 1e-4, "nesterov SGD: max error %g after 5000 steps", error);
}

/* ---- momentum buffer and state -------------------------------------- */

Test(sgd, first_step_copies_gradient_undampened) {
    model m = model_new(1, 2);
    tg_sgd_options options = {.momentum = 0.9, .dampening = 0.5};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    tg_optimizer_state state;
    cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", "momentum_buffer", &state), TG_OK,
                 "%s", tg_last_error());
    cr_assert(!state.initialized, "the momentum buffer exists before the first step");

    m.weight->grad[0] = 2;
    m.weight->grad[1] = -4;
    cr_assert_eq(tg_optimizer_step(opt, 0.1), TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", "momentum_buffer", &state), TG_OK);
    cr_assert(state.initialized, "the momentum buffer is missing after the first step");
    double expected_buf[2] = {2, -4};
    expect_close("buffer after step 1", state.tensor->data, expected_buf, 2, 0, 0);
    double expected_p[2] = {-0.2, 0.4};
    expect_close("weight after step 1", m.weight->data, expected_p, 2, 1e-7, 0);

    /* The second step dampens: buf = 0.9 * buf + 0.5 * g. */
    cr_assert_eq(tg_optimizer_step(opt, 0.1), TG_OK, "%s", tg_last_error());
    double expected_buf2[2] = {0.9 * 2 + 0.5 * 2, 0.9 * -4 + 0.5 * -4};
    expect_close("buffer after step 2", state.tensor->data, expected_buf2, 2, 1e-6, 0);
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(sgd, state_found_by_name_and_slot) {
    model m = model_new(2, 2);
    tg_sgd_options options = {.momentum = 0.5};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_state_count(opt), 2, "%d slots", tg_optimizer_state_count(opt));

    const char *names[2] = {"fc.weight", "fc.bias"};
    const tg_tensor *params[2] = {m.weight, m.bias};
    for (int i = 0; i < 2; i++) {
        tg_optimizer_state state;
        cr_assert_eq(tg_optimizer_state_get(opt, i, &state), TG_OK, "%s", tg_last_error());
        cr_assert_str_eq(state.param_name, names[i]);
        cr_assert_str_eq(state.slot_name, "momentum_buffer");
        cr_assert(tg_tensor_same_shape(state.tensor, params[i]), "slot %d has the wrong shape",
                  i);
        tg_optimizer_state found;
        cr_assert_eq(tg_optimizer_state_find(opt, names[i], "momentum_buffer", &found), TG_OK);
        cr_assert_eq(found.tensor, state.tensor, "find and get disagree for %s", names[i]);
    }

    tg_optimizer_state state;
    cr_assert_eq(tg_optimizer_state_get(opt, 2, &state), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "index 2 is out of range") != NULL, "message: %s",
              tg_last_error());
    cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", "exp_avg", &state), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "no slot 'exp_avg' for parameter 'fc.weight'") != NULL,
              "message: %s", tg_last_error());
    cr_assert_eq(tg_optimizer_state_find(opt, "fc.scale", "momentum_buffer", &state),
                 TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "no parameter 'fc.scale'") != NULL, "message: %s",
              tg_last_error());
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(sgd, plain_sgd_keeps_no_state) {
    model m = model_new(2, 2);
    tg_optimizer *opt = tg_sgd_new(&m.list, NULL);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_state_count(opt), 0);
    tg_optimizer_state state;
    cr_assert_eq(tg_optimizer_state_find(opt, "fc.weight", "momentum_buffer", &state),
                 TG_ERR_INVALID);
    tg_optimizer_free(opt);
    model_free(&m);
}

/* Copies the step count, every slot and the initialized flags of src into dst. */
static void copy_state(tg_optimizer *dst, const tg_optimizer *src) {
    cr_assert_eq(tg_optimizer_set_step(dst, tg_optimizer_get_step(src)), TG_OK);
    for (int i = 0; i < tg_optimizer_state_count(src); i++) {
        tg_optimizer_state saved;
        tg_optimizer_state restored;
        cr_assert_eq(tg_optimizer_state_get(src, i, &saved), TG_OK);
        cr_assert_eq(tg_optimizer_state_find(dst, saved.param_name, saved.slot_name, &restored),
                     TG_OK, "%s", tg_last_error());
        memcpy(restored.tensor->data, saved.tensor->data,
               saved.tensor->size * sizeof *saved.tensor->data);
        cr_assert_eq(tg_optimizer_set_initialized(dst, saved.param_name, saved.initialized),
                     TG_OK);
    }
}

Test(sgd, restored_state_continues_exactly) {
    model a = model_new(3, 3);
    model b = model_new(3, 3);
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_sgd_options options = {.momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01};
    tg_optimizer *opt_a = tg_sgd_new(&a.list, &options);
    tg_optimizer *opt_b = tg_sgd_new(&b.list, &options);
    cr_assert_not_null(opt_a, "%s", tg_last_error());
    cr_assert_not_null(opt_b, "%s", tg_last_error());
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < a.weight->size; i++) {
            a.weight->grad[i] = (tg_scalar)tg_rng_normal(&rng);
        }
        cr_assert_eq(tg_optimizer_step(opt_a, 0.1), TG_OK);
    }

    /* Restore a's parameters and state into b, then step both alike. */
    memcpy(b.weight->data, a.weight->data, a.weight->size * sizeof *a.weight->data);
    memcpy(b.bias->data, a.bias->data, a.bias->size * sizeof *a.bias->data);
    copy_state(opt_b, opt_a);
    cr_assert_eq(tg_optimizer_get_step(opt_b), 3);
    for (size_t i = 0; i < a.weight->size; i++) {
        a.weight->grad[i] = (tg_scalar)tg_rng_normal(&rng);
        b.weight->grad[i] = a.weight->grad[i];
    }
    cr_assert_eq(tg_optimizer_step(opt_a, 0.1), TG_OK);
    cr_assert_eq(tg_optimizer_step(opt_b, 0.1), TG_OK);
    cr_assert(memcmp(a.weight->data, b.weight->data, a.weight->size * sizeof(tg_scalar)) == 0,
              "the restored optimizer diverged from the original");

    /* A parameter marked uninitialized starts its buffer afresh from the
     * decayed gradient g + 0.01 * p. */
    double expected_buf[9];
    for (size_t i = 0; i < b.weight->size; i++) {
        expected_buf[i] = (double)b.weight->grad[i] + 0.01 * (double)b.weight->data[i];
    }
    cr_assert_eq(tg_optimizer_set_initialized(opt_b, "fc.weight", false), TG_OK);
    cr_assert_eq(tg_optimizer_step(opt_b, 0.1), TG_OK);
    tg_optimizer_state state;
    cr_assert_eq(tg_optimizer_state_find(opt_b, "fc.weight", "momentum_buffer", &state), TG_OK);
    cr_assert(state.initialized, "the buffer is not marked initialized after the step");
    expect_close("restarted buffer", state.tensor->data, expected_buf, b.weight->size, 1e-6, 0);
    cr_assert_eq(tg_optimizer_set_initialized(opt_b, "fc.missing", true), TG_ERR_INVALID);
    cr_assert_eq(tg_optimizer_set_step(opt_b, -1), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "step -1 is invalid") != NULL, "message: %s",
              tg_last_error());
    tg_optimizer_free(opt_a);
    tg_optimizer_free(opt_b);
    model_free(&a);
    model_free(&b);
}

/* ---- determinism ---------------------------------------------------- */

static tg_scalar *run_large(int threads) {
    omp_set_num_threads(threads);
    model m = model_new(300, 400);
    tg_rng rng;
    tg_rng_seed(&rng, 8);
    for (size_t i = 0; i < m.weight->size; i++) {
        m.weight->data[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    tg_sgd_options options = {.momentum = 0.9, .nesterov = true, .weight_decay = 0.1};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < m.weight->size; i++) {
            m.weight->grad[i] = (tg_scalar)tg_rng_normal(&rng);
        }
        cr_assert_eq(tg_optimizer_step(opt, 0.01), TG_OK);
    }
    tg_scalar *out = malloc(m.weight->size * sizeof *out);
    memcpy(out, m.weight->data, m.weight->size * sizeof *out);
    tg_optimizer_free(opt);
    model_free(&m);
    return out;
}

Test(sgd, large_update_same_for_any_thread_count) {
    tg_scalar *one_thread = run_large(1);
    tg_scalar *two_threads = run_large(2);
    cr_assert(memcmp(one_thread, two_threads, 300 * 400 * sizeof *one_thread) == 0,
              "1 and 2 threads gave different parameters");
    free(one_thread);
    free(two_threads);
}

/* ---- errors --------------------------------------------------------- */

static void expect_rejected(const tg_sgd_options *options, const char *fragment) {
    model m = model_new(1, 1);
    tg_optimizer *opt = tg_sgd_new(&m.list, options);
    cr_assert_null(opt, "options accepted; expected an error containing '%s'", fragment);
    cr_assert(strstr(tg_last_error(), fragment) != NULL, "message '%s' lacks '%s'",
              tg_last_error(), fragment);
    model_free(&m);
}

Test(sgd, rejects_invalid_options) {
    expect_rejected(&(tg_sgd_options){.nesterov = true},
                    "nesterov needs momentum > 0 and dampening 0, but momentum is 0");
    expect_rejected(&(tg_sgd_options){.nesterov = true, .momentum = 0.9, .dampening = 0.1},
                    "momentum is 0.9 and dampening 0.1");
    expect_rejected(&(tg_sgd_options){.momentum = -0.5}, "momentum -0.5 is invalid");
    expect_rejected(&(tg_sgd_options){.momentum = 0.9, .dampening = 1.5},
                    "dampening 1.5 is invalid");
    expect_rejected(&(tg_sgd_options){.weight_decay = -0.01}, "weight_decay -0.01 is invalid");
    expect_rejected(&(tg_sgd_options){.weight_decay = NAN}, "weight_decay nan is invalid");
}

Test(sgd, rejects_parameter_without_grad) {
    int shape[1] = {2};
    tg_tensor *w = tg_tensor_zeros(1, shape);
    tg_param_list list;
    tg_param_list_init(&list);
    tg_param_list_add(&list, "head", "weight", TG_PARAM_WEIGHT, w);
    cr_assert_null(tg_sgd_new(&list, NULL));
    cr_assert(strstr(tg_last_error(), "sgd: parameter 'head.weight' has no gradient buffer") !=
              NULL, "message: %s", tg_last_error());
    tg_param_list_free(&list);
    tg_tensor_free(w);
}

Test(sgd, rejects_empty_or_repeated_params) {
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_null(tg_sgd_new(&list, NULL));
    cr_assert(strstr(tg_last_error(), "the parameter list is empty") != NULL, "message: %s",
              tg_last_error());
    model m = model_new(1, 1);
    tg_param_list_add(&m.list, "tied", "weight", TG_PARAM_WEIGHT, m.weight);
    cr_assert_null(tg_sgd_new(&m.list, NULL));
    cr_assert(strstr(tg_last_error(), "'fc.weight' and 'tied.weight' are the same tensor") !=
              NULL, "message: %s", tg_last_error());
    model_free(&m);
}

Test(sgd, step_rejects_invalid_lr) {
    model m = model_new(1, 2);
    m.weight->data[0] = 1;
    m.weight->grad[0] = 1;
    tg_optimizer *opt = tg_sgd_new(&m.list, NULL);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_step(opt, 0), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "sgd step: lr 0 is invalid") != NULL, "message: %s",
              tg_last_error());
    cr_assert_eq(tg_optimizer_step(opt, -0.1), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "lr -0.1 is invalid") != NULL, "message: %s",
              tg_last_error());
    cr_assert_eq(tg_optimizer_step(opt, INFINITY), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "lr inf is invalid") != NULL, "message: %s",
              tg_last_error());
    cr_assert_eq(tg_optimizer_get_step(opt), 0, "a rejected step was counted");
    cr_assert_eq(m.weight->data[0], 1, "a rejected step changed the parameter");
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(sgd, reports_kind_and_options) {
    model m = model_new(1, 1);
    tg_sgd_options options = {.momentum = 0.9, .nesterov = true, .weight_decay = 0.05};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_get_kind(opt), TG_OPTIMIZER_SGD);
    cr_assert_str_eq(tg_optimizer_kind_name(tg_optimizer_get_kind(opt)), "sgd");
    cr_assert_eq(tg_optimizer_param_count(opt), 2);
    tg_sgd_options got;
    cr_assert_eq(tg_sgd_get_options(opt, &got), TG_OK);
    cr_assert_eq(got.momentum, 0.9, "momentum %g", got.momentum);
    cr_assert(got.nesterov, "nesterov lost");
    cr_assert_eq(got.weight_decay, 0.05, "weight_decay %g", got.weight_decay);
    cr_assert_not_null(got.groups, "the groups are not reported");
    tg_adam_options adam;
    cr_assert_eq(tg_adam_get_options(opt, &adam), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "the optimizer is sgd, not adam or adamw") != NULL,
              "message: %s", tg_last_error());
    tg_optimizer_free(opt);
    model_free(&m);
}
