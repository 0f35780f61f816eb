/* Training steps of the character-level GPT give the same bits with 1 and 2
 * OpenMP threads: the losses and every parameter after three AdamW steps
 * with gradient clipping. The model is nanoGPT's CPU configuration, so every
 * kernel takes the path a real training run takes, and a second
 * configuration with dropout, sinusoidal positions and no biases takes the
 * other paths of the layers. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "gpt.h"
#include "optim/clip.h"

#define STEPS 3

typedef struct run_result {
    double losses[STEPS];
    tg_scalar *params;  /* every parameter after the last step, in list order */
    size_t params_size;
} run_result;

static run_result train(const gpt_config *config, int threads) {
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    gpt_model model;
    cr_assert_eq(gpt_init(&model, config, &rng), TG_OK, "%s", tg_last_error());
    tg_adam_options options = tg_adamw_default_options();
    options.beta2 = 0.99;
    options.weight_decay = 0.1;
    tg_optimizer *opt = tg_adamw_new(&model.params, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());

    enum { B = 12 };
    int T = config->block_size;
    int32_t x[B * 64];
    int32_t y[B * 64];
    cr_assert_leq(T, 64);
    tg_tape *tape = tg_tape_new();
    tg_rng dropout_rng;
    tg_rng_seed(&dropout_rng, 11);
    tg_mode mode = {.training = true, .rng = &dropout_rng};
    run_result result = {0};
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < B * T; i++) {
            x[i] = (int32_t)(tg_rng_next(&rng) % (uint64_t)config->vocab_size);
            y[i] = (int32_t)(tg_rng_next(&rng) % (uint64_t)config->vocab_size);
        }
        tg_tensor *loss = gpt_loss(tape, &model, x, y, B, T, &mode);
        cr_assert_not_null(loss, "%s", tg_tape_error(tape));
        cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
        result.losses[step] = (double)loss->data[0];
        double norm;
        cr_assert_eq(tg_clip_grad_norm(&model.params, 1.0, &norm), TG_OK, "%s",
                     tg_last_error());
        cr_assert_eq(tg_optimizer_step(opt, 1e-3), TG_OK, "%s", tg_last_error());
        tg_param_list_zero_grad(&model.params);
        tg_tape_reset(tape);
    }

    result.params_size = tg_param_list_numel(&model.params);
    result.params = malloc(result.params_size * sizeof *result.params);
    size_t at = 0;
    for (int i = 0; i < model.params.count; i++) {
        const tg_tensor *t = model.params.items[i].tensor;
        memcpy(result.params + at, t->data, t->size * sizeof *t->data);
        at += t->size;
    }
    tg_tape_free(tape);
    tg_optimizer_free(opt);
    gpt_free(&model);
    omp_set_num_threads(saved_threads);
    return result;
}

static void expect_same_bits(const gpt_config *config, const char *what) {
    run_result one = train(config, 1);
    run_result two = train(config, 2);
    for (int step = 0; step < STEPS; step++) {
        cr_assert(memcmp(&one.losses[step], &two.losses[step], sizeof(double)) == 0,
                  "%s: loss of step %d is %.9g with 1 thread but %.9g with 2", what, step,
                  one.losses[step], two.losses[step]);
    }
    cr_assert_eq(one.params_size, two.params_size);
    size_t first_difference = one.params_size;
    for (size_t i = 0; i < one.params_size; i++) {
        if (memcmp(&one.params[i], &two.params[i], sizeof(tg_scalar)) != 0) {
            first_difference = i;
            break;
        }
    }
    cr_assert_eq(first_difference, one.params_size,
                 "%s: parameter element %zu is %.9g with 1 thread but %.9g with 2", what,
                 first_difference,
                 first_difference < one.params_size ? (double)one.params[first_difference] : 0.0,
                 first_difference < one.params_size ? (double)two.params[first_difference] : 0.0);
    free(one.params);
    free(two.params);
}

Test(charlm_threads, nanogpt_config_same_bits) {
    gpt_config config = {
        .vocab_size = 65,
        .block_size = 64,
        .n_layer = 4,
        .n_head = 4,
        .n_embd = 128,
        .pos_kind = TG_POS_LEARNED,
        .pos_combine = TG_POS_ADD,
        .bias = true,
        .tie_weights = true,
        .dropout = 0.0,
        .gelu = TG_GELU_TANH,
    };
    expect_same_bits(&config, "nanoGPT configuration");
}

Test(charlm_threads, dropout_config_same_bits) {
    gpt_config config = {
        .vocab_size = 65,
        .block_size = 48,
        .n_layer = 2,
        .n_head = 4,
        .n_embd = 96,
        .pos_kind = TG_POS_SINUSOIDAL,
        .pos_combine = TG_POS_ADD,
        .bias = false,
        .tie_weights = true,
        .dropout = 0.1,
        .gelu = TG_GELU_EXACT,
    };
    expect_same_bits(&config, "dropout configuration");
}
