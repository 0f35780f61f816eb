#define _POSIX_C_SOURCE 200809L
/* Resuming ddpm training: a run trained to step k, checkpointed by the
 * training loop and resumed to step N ends bitwise equal to a run trained
 * straight to N: weights, EMA, optimizer step and the random streams. Runs
 * the training loop of the program (ddpm_train) on the synthetic moons with
 * a small MLP, with 1 and 2 OpenMP threads. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "train.h"

#define TOTAL_STEPS 12
#define FIRST_STEPS 5

static void test_settings(ddpm_settings *s, long steps, int threads) {
    memset(s, 0, sizeof *s);
    s->arch = "mlp";
    s->patch = 4;
    s->width = 16;
    s->depth = 1;
    s->heads = 1;
    s->pos = "sinusoidal";
    s->gelu = "tanh";
    s->hidden = 32;
    s->t_freq_dim = 16;
    s->t_hidden = 32;
    s->schedule = "linear";
    s->timesteps = 100;
    s->beta_start = 1e-4;
    s->beta_end = 0.02;
    s->lr = 1e-3;
    s->min_lr = 1e-4;
    s->lr_decay = "cosine";
    s->warmup_steps = 2;
    s->lr_decay_steps = TOTAL_STEPS;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->grad_clip = 1.0;
    s->ema = 0.9;
    s->steps = steps;
    /* 8192 points in batches of 2048 end an epoch every 4 steps, so the
     * resumed run crosses epoch boundaries. */
    s->batch_size = 2048;
    s->data = "moons";
    s->val_count = 64;
    s->seed = 5;
    s->threads = threads;
    s->eval_interval = 4;
    s->log_interval = 100;
    s->ckpt_interval = 4;
    s->keep_last = 2;
}

static void start_run(ddpm_run *run, long steps, int threads) {
    memset(run, 0, sizeof *run);
    test_settings(&run->settings, steps, threads);
    cr_assert_eq(ddpm_data_load(&run->data, "moons", 64), TG_OK, "%s", tg_last_error());
    run->settings.data_dim = run->data.dim;
    cr_assert_eq(ddpm_run_start(run), TG_OK, "%s", tg_last_error());
}

static void make_temp_dir(char *dir, size_t size) {
    snprintf(dir, size, "/tmp/tapegrad-ddpm-resume-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "cannot create a temporary folder");
}

static void remove_dir(const char *dir) {
    char command[1100];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    cr_assert_eq(system(command), 0, "cannot remove %s", dir);
}

static void train_quietly(ddpm_run *run, const char *dir, bool resuming) {
    FILE *log = fopen("/dev/null", "w");
    cr_assert_not_null(log);
    int code = ddpm_train(run, dir, resuming, log, stderr);
    fclose(log);
    cr_assert_eq(code, 0, "ddpm_train exited with %d", code);
}

static void expect_same_params(const char *what, const tg_param_list *a, const tg_param_list *b) {
    cr_assert_eq(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        const tg_tensor *x = a->items[i].tensor;
        const tg_tensor *y = b->items[i].tensor;
        size_t differ = 0;
        for (size_t k = 0; k < x->size; k++) {
            differ += memcmp(&x->data[k], &y->data[k], sizeof x->data[k]) != 0;
        }
        cr_assert_eq(differ, 0, "%s: %zu of %zu values of %s differ", what, differ, x->size,
                     a->items[i].name);
    }
}

static void check_resume(int threads) {
    omp_set_num_threads(threads);
    char straight_dir[64];
    char resumed_dir[64];
    make_temp_dir(straight_dir, sizeof straight_dir);
    make_temp_dir(resumed_dir, sizeof resumed_dir);

    ddpm_run straight;
    start_run(&straight, TOTAL_STEPS, threads);
    train_quietly(&straight, straight_dir, false);

    ddpm_run first;
    start_run(&first, FIRST_STEPS, threads);
    train_quietly(&first, resumed_dir, false);
    ddpm_run_free(&first);

    char path[1024];
    cr_assert_eq(tg_checkpoint_step_path(path, sizeof path, resumed_dir, "ckpt", FIRST_STEPS),
                 TG_OK);
    ddpm_run resumed;
    start_run(&resumed, TOTAL_STEPS, threads);
    tg_status status;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, DDPM_KIND, &status);
    cr_assert_not_null(r, "%s", tg_last_error());
    cr_assert_eq(ddpm_run_restore(&resumed, r), TG_OK, "%s", tg_last_error());
    tg_checkpoint_close(r);
    cr_assert_eq(resumed.step, FIRST_STEPS, "restored step %ld", resumed.step);
    train_quietly(&resumed, resumed_dir, true);

    cr_assert_eq(resumed.step, straight.step, "steps %ld and %ld", resumed.step, straight.step);
    expect_same_params("weights", &resumed.model.params, &straight.model.params);
    expect_same_params("EMA", &resumed.ema_model.params, &straight.ema_model.params);
    cr_assert_eq(tg_optimizer_get_step(resumed.optimizer),
                 tg_optimizer_get_step(straight.optimizer));
    cr_assert_eq(memcmp(&resumed.noise_rng, &straight.noise_rng, sizeof straight.noise_rng), 0,
                 "the noise streams differ");
    tg_epoch_sampler_state a;
    tg_epoch_sampler_state b;
    tg_epoch_sampler_get_state(resumed.sampler, &a);
    tg_epoch_sampler_get_state(straight.sampler, &b);
    cr_assert(a.epoch == b.epoch && a.position == b.position,
              "sampler at epoch %llu position %llu, expected epoch %llu position %llu",
              (unsigned long long)a.epoch, (unsigned long long)a.position,
              (unsigned long long)b.epoch, (unsigned long long)b.position);
    cr_assert_gt(b.epoch, 1, "the run should cross epochs; it is at epoch %llu",
                 (unsigned long long)b.epoch);

    ddpm_run_free(&resumed);
    ddpm_run_free(&straight);
    remove_dir(straight_dir);
    remove_dir(resumed_dir);
}

Test(ddpm_resume, matches_straight_run_one_thread) {
    check_resume(1);
}

Test(ddpm_resume, matches_straight_run_two_threads) {
    check_resume(2);
}

/* The thread count changes no bit of training. */
Test(ddpm_resume, one_and_two_threads_agree) {
    char dir1[64];
    char dir2[64];
    make_temp_dir(dir1, sizeof dir1);
    make_temp_dir(dir2, sizeof dir2);
    ddpm_run one;
    ddpm_run two;
    start_run(&one, TOTAL_STEPS, 1);
    start_run(&two, TOTAL_STEPS, 2);
    train_quietly(&one, dir1, false);
    train_quietly(&two, dir2, false);
    expect_same_params("weights", &one.model.params, &two.model.params);
    expect_same_params("EMA", &one.ema_model.params, &two.ema_model.params);
    ddpm_run_free(&one);
    ddpm_run_free(&two);
    remove_dir(dir1);
    remove_dir(dir2);
}
