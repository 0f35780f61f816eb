/* Results are bitwise identical for the same seed and for 1 and 2 OpenMP
 * threads. The computation mixes every op family on sizes large enough that
 * the kernels take their parallel paths. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

typedef struct run_output {
    tg_scalar *values;
    tg_scalar *grads;
    size_t values_size;
    size_t grads_size;
} run_output;

static run_output run_once(int threads, uint64_t seed) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    int x_shape[3] = {8, 64, 96};
    int w_shape[2] = {96, 96};
    int b_shape[1] = {96};
    tg_tensor *x = tg_tensor_normal(3, x_shape, &rng, 0.0, 1.0);
    tg_tensor *w = tg_tensor_normal(2, w_shape, &rng, 0.0, 0.1);
    tg_tensor *b = tg_tensor_normal(1, b_shape, &rng, 0.0, 0.1);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_set_requires_grad(b, true);

    tg_tape *tape = tg_tape_new();
    tg_tensor *h = tg_add(tape, tg_matmul_t(tape, x, w, false, true), b);
    h = tg_mul(tape, h, h);
    h = tg_div(tape, h, tg_add_scalar(tape, tg_scale(tape, h, 0.5), 1.0));
    tg_tensor *y = tg_matmul(tape, h, w);
    cr_assert_not_null(y, "%s", tg_tape_error(tape));

    tg_scalar *seed_grad = malloc(y->size * sizeof *seed_grad);
    for (size_t i = 0; i < y->size; i++) {
        seed_grad[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, y, seed_grad), TG_OK, "%s", tg_last_error());

    run_output out;
    out.values_size = y->size;
    out.values = malloc(y->size * sizeof *out.values);
    memcpy(out.values, y->data, y->size * sizeof *out.values);
    out.grads_size = w->size + b->size;
    out.grads = malloc(out.grads_size * sizeof *out.grads);
    memcpy(out.grads, w->grad, w->size * sizeof *out.grads);
    memcpy(out.grads + w->size, b->grad, b->size * sizeof *out.grads);

    free(seed_grad);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    return out;
}

static void run_output_free(run_output *out) {
    free(out->values);
    free(out->grads);
}

Test(determinism, same_seed_same_bits) {
    run_output first = run_once(2, 99);
    run_output second = run_once(2, 99);
    cr_assert_eq(memcmp(first.values, second.values, first.values_size * sizeof(tg_scalar)), 0);
    cr_assert_eq(memcmp(first.grads, second.grads, first.grads_size * sizeof(tg_scalar)), 0);
    run_output_free(&first);
    run_output_free(&second);
}

Test(determinism, one_and_two_threads_same_bits) {
    run_output one = run_once(1, 123);
    run_output two = run_once(2, 123);
    cr_assert_eq(memcmp(one.values, two.values, one.values_size * sizeof(tg_scalar)), 0,
                 "forward values differ between 1 and 2 threads");
    cr_assert_eq(memcmp(one.grads, two.grads, one.grads_size * sizeof(tg_scalar)), 0,
                 "gradients differ between 1 and 2 threads");
    run_output_free(&one);
    run_output_free(&two);
}
