/* Gradient clipping: norms under the threshold leave gradients untouched,
 * larger ones are scaled exactly, non-finite norms are reported without
 * changes, the norm does not depend on the thread count, clipping by value,
 * and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

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

static void fill_random(model *m, tg_rng *rng, double std) {
    for (size_t i = 0; i < m->weight->size; i++) {
        m->weight->grad[i] = (tg_scalar)(std * tg_rng_normal(rng));
    }
    for (size_t i = 0; i < m->bias->size; i++) {
        m->bias->grad[i] = (tg_scalar)(std * tg_rng_normal(rng));
    }
}

static double reference_norm(const model *m) {
    double sum = 0;
    for (size_t i = 0; i < m->weight->size; i++) {
        sum += (double)m->weight->grad[i] * (double)m->weight->grad[i];
    }
    for (size_t i = 0; i < m->bias->size; i++) {
        sum += (double)m->bias->grad[i] * (double)m->bias->grad[i];
    }
    return sqrt(sum);
}

/* Returns a copy of the weight's and the bias's gradients, in that order. */
static tg_scalar *copy_grads(const model *m) {
    size_t n = m->weight->size + m->bias->size;
    tg_scalar *copy = malloc(n * sizeof *copy);
    memcpy(copy, m->weight->grad, m->weight->size * sizeof *copy);
    memcpy(copy + m->weight->size, m->bias->grad, m->bias->size * sizeof *copy);
    return copy;
}

static bool grads_equal(const model *m, const tg_scalar *copy) {
    return memcmp(m->weight->grad, copy, m->weight->size * sizeof *copy) == 0 &&
           memcmp(m->bias->grad, copy + m->weight->size, m->bias->size * sizeof *copy) == 0;
}

Test(clip, norm_under_threshold_untouched) {
    model m = model_new(1, 2);
    m.weight->grad[0] = 3;
    m.weight->grad[1] = 4;
    tg_scalar *before = copy_grads(&m);
    double norm = -1;
    cr_assert_eq(tg_clip_grad_norm(&m.list, 10, &norm), TG_OK, "%s", tg_last_error());
    cr_assert_eq(norm, 5, "norm %.17g, expected 5", norm);
    cr_assert(grads_equal(&m, before), "gradients under the threshold changed");

    /* A norm equal to max_norm is not over it. */
    cr_assert_eq(tg_clip_grad_norm(&m.list, 5, &norm), TG_OK, "%s", tg_last_error());
    cr_assert(grads_equal(&m, before), "gradients at the threshold changed");
    free(before);
    model_free(&m);
}

Test(clip, norm_over_threshold_scales_exactly) {
    model m = model_new(7, 5);
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    fill_random(&m, &rng, 2.0);
    tg_scalar *before = copy_grads(&m);
    double expected_norm = reference_norm(&m);
    double max_norm = 1.5;
    cr_assert_gt(expected_norm, max_norm, "test set-up: norm %g is not over %g", expected_norm,
                 max_norm);

    double norm = -1;
    cr_assert_eq(tg_clip_grad_norm(&m.list, max_norm, &norm), TG_OK, "%s", tg_last_error());
    cr_assert(fabs(norm - expected_norm) <= 1e-14 * expected_norm,
              "norm %.17g, expected %.17g", norm, expected_norm);

    /* Every element is multiplied by the same factor, rounded once. */
    tg_scalar factor = (tg_scalar)(max_norm / (expected_norm + 1e-6));
    for (size_t i = 0; i < m.weight->size; i++) {
        tg_scalar expected = before[i] * factor;
        cr_assert_eq(m.weight->grad[i], expected, "weight grad %zu is %.9g, expected %.9g", i,
                     (double)m.weight->grad[i], (double)expected);
    }
    for (size_t i = 0; i < m.bias->size; i++) {
        tg_scalar expected = before[m.weight->size + i] * factor;
        cr_assert_eq(m.bias->grad[i], expected, "bias grad %zu is %.9g, expected %.9g", i,
                     (double)m.bias->grad[i], (double)expected);
    }
    double after = reference_norm(&m);
    cr_assert(fabs(after - max_norm) <= 1e-6 * max_norm, "norm after clipping %.9g, expected %g",
              after, max_norm);
    free(before);
    model_free(&m);
}

Test(clip, norm_pointer_may_be_null) {
    model m = model_new(1, 1);
    m.weight->grad[0] = 10;
    cr_assert_eq(tg_clip_grad_norm(&m.list, 1, NULL), TG_OK, "%s", tg_last_error());
    cr_assert(fabs((double)m.weight->grad[0] - 1) <= 1e-6, "grad %g, expected about 1",
              (double)m.weight->grad[0]);
    model_free(&m);
}

static void check_non_finite(tg_scalar bad_value, const char *norm_text) {
    model m = model_new(2, 3);
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    fill_random(&m, &rng, 1.0);
    m.bias->grad[1] = bad_value;
    tg_scalar *before = copy_grads(&m);
    double norm = 0;
    cr_assert_eq(tg_clip_grad_norm(&m.list, 1e-3, &norm), TG_ERR_NUMERIC,
                 "a %s gradient was accepted", norm_text);
    cr_assert(!isfinite(norm), "norm %g reported for a %s gradient", norm, norm_text);
    char fragment[128];
    snprintf(fragment, sizeof fragment, "the gradient norm is %s, first non-finite in parameter "
             "'fc.bias'", norm_text);
    cr_assert(strstr(tg_last_error(), fragment) != NULL, "message '%s' lacks '%s'",
              tg_last_error(), fragment);
    cr_assert(grads_equal(&m, before), "gradients changed after a %s norm", norm_text);
    free(before);
    model_free(&m);
}

Test(clip, non_finite_norm_leaves_grads) {
    check_non_finite((tg_scalar)INFINITY, "inf");
    check_non_finite((tg_scalar)NAN, "nan");
}

/* Returns the norm of a large gradient computed on `threads` threads and
 * stores the clipped gradient in *clipped (caller frees). */
static double clip_large(int threads, tg_scalar **clipped) {
    omp_set_num_threads(threads);
    /* Over 256 chunks of 8192 elements, so the partial sums take two passes. */
    model m = model_new(2100, 1024);
    tg_rng rng;
    tg_rng_seed(&rng, 6);
    fill_random(&m, &rng, 1e-3);
    double expected = reference_norm(&m);
    double norm = 0;
    cr_assert_eq(tg_clip_grad_norm(&m.list, 0.1, &norm), TG_OK, "%s", tg_last_error());
    cr_assert(fabs(norm - expected) <= 1e-12 * expected, "norm %.17g, expected %.17g", norm,
              expected);
    *clipped = copy_grads(&m);
    model_free(&m);
    return norm;
}

Test(clip, large_norm_same_for_any_thread_count) {
    tg_scalar *one_thread_grads;
    tg_scalar *two_threads_grads;
    double one_thread = clip_large(1, &one_thread_grads);
    double two_threads = clip_large(2, &two_threads_grads);
    cr_assert(memcmp(&one_thread, &two_threads, sizeof one_thread) == 0,
              "norm %.17g with 1 thread, %.17g with 2", one_thread, two_threads);
    size_t n = 2100 * 1024 + 1024;
    cr_assert(memcmp(one_thread_grads, two_threads_grads, n * sizeof *one_thread_grads) == 0,
              "1 and 2 threads clipped differently");
    free(one_thread_grads);
    free(two_threads_grads);
}

Test(clip, value_clamps_each_element) {
    model m = model_new(1, 4);
    tg_scalar grads[4] = {-3, -0.25f, 0.5f, 2};
    memcpy(m.weight->grad, grads, sizeof grads);
    m.bias->grad[0] = (tg_scalar)NAN;
    m.bias->grad[1] = 0.75f;
    m.bias->grad[2] = -0.75f;
    m.bias->grad[3] = (tg_scalar)-INFINITY;
    cr_assert_eq(tg_clip_grad_value(&m.list, 0.75), TG_OK, "%s", tg_last_error());
    double expected[4] = {-0.75, -0.25, 0.5, 0.75};
    expect_close("weight grad", m.weight->grad, expected, 4, 0, 0);
    cr_assert(isnan(m.bias->grad[0]), "NaN became %g", (double)m.bias->grad[0]);
    double expected_bias[3] = {0.75, -0.75, -0.75};
    expect_close("bias grad", m.bias->grad + 1, expected_bias, 3, 0, 0);
    model_free(&m);
}

Test(clip, rejects_invalid_arguments) {
    model m = model_new(1, 2);
    m.weight->grad[0] = 100;
    double invalid[4] = {0, -1, NAN, INFINITY};
    const char *messages[4] = {"max_norm 0 is invalid", "max_norm -1 is invalid",
                               "max_norm nan is invalid", "max_norm inf is invalid"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(tg_clip_grad_norm(&m.list, invalid[i], NULL), TG_ERR_INVALID,
                     "max_norm %g accepted", invalid[i]);
        cr_assert(strstr(tg_last_error(), messages[i]) != NULL, "message '%s' lacks '%s'",
                  tg_last_error(), messages[i]);
    }
    cr_assert_eq(tg_clip_grad_value(&m.list, -0.5), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "clip_value -0.5 is invalid") != NULL, "message: %s",
              tg_last_error());
    cr_assert_eq(m.weight->grad[0], 100, "a rejected call changed a gradient");

    int shape[1] = {3};
    tg_tensor *frozen = tg_tensor_zeros(1, shape);
    tg_param_list_add(&m.list, "emb", "weight", TG_PARAM_EMBEDDING, frozen);
    cr_assert_eq(tg_clip_grad_norm(&m.list, 1, NULL), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "parameter 'emb.weight' has no gradient buffer") != NULL,
              "message: %s", tg_last_error());
    cr_assert_eq(tg_clip_grad_value(&m.list, 1), TG_ERR_INVALID);
    cr_assert_eq(m.weight->grad[0], 100, "a rejected call changed a gradient");
    tg_tensor_free(frozen);
    model_free(&m);
}
