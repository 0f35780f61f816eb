/* The MLP denoiser learns the two moons: trained briefly with the program's
 * training step, its DDPM samples lie near the two arcs.
 *
 * Scale of the bound: the training points (noise std 0.05) lie 0.04 from
 * the arcs on average, a Gaussian with the data's mean and covariance 0.28,
 * and the standard normal x_T about 0.5. Runs of this configuration
 * measured 0.19 after 3000 steps and 0.15 to 0.17 after 4000. The reference MLP
 * learns the fine structure of the moons slowly, so the bound checks that
 * training moves the samples onto the data, not that they are sharp. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "sample.h"
#include "train.h"

#define TRAIN_STEPS 4000
#define SAMPLES 1000
#define MEAN_DISTANCE_BOUND 0.2

/* Distance from (x, y) to the nearer of the two arcs of tg_synthetic_moons:
 * the upper half of the unit circle around (0, 0) and the lower half of the
 * unit circle around (1, 0.5). */
static double arc_distance(double x, double y, double cx, double cy, bool upper) {
    double dx = x - cx;
    double dy = y - cy;
    if (upper ? dy >= 0.0 : dy <= 0.0) {
        return fabs(hypot(dx, dy) - 1.0);
    }
    return fmin(hypot(dx - 1.0, dy), hypot(dx + 1.0, dy));
}

static double moons_distance(double x, double y) {
    return fmin(arc_distance(x, y, 0.0, 0.0, true), arc_distance(x, y, 1.0, 0.5, false));
}

static double mean_distance(const tg_scalar *points, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        sum += moons_distance((double)points[2 * i], (double)points[2 * i + 1]);
    }
    return sum / n;
}

Test(ddpm_moons, trained_mlp_samples_near_moons) {
    omp_set_num_threads(1);
    ddpm_run run;
    memset(&run, 0, sizeof run);
    ddpm_settings *s = &run.settings;
    s->arch = "mlp";
    s->pos = "sinusoidal";
    s->gelu = "tanh";
    s->hidden = 128;
    /* A narrower timestep embedding than the default 128 -> 512 keeps the
     * test fast. */
    s->t_freq_dim = 32;
    s->t_hidden = 128;
    s->schedule = "linear";
    s->timesteps = 1000;
    s->beta_start = 1e-4;
    s->beta_end = 0.02;
    s->lr = 3e-3;
    s->min_lr = 1e-5;
    s->lr_decay = "cosine";
    s->lr_decay_steps = TRAIN_STEPS;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->grad_clip = 1.0;
    s->steps = TRAIN_STEPS;
    s->batch_size = 256;
    s->data = "moons";
    s->val_count = 16;
    s->seed = 3;
    cr_assert_eq(ddpm_data_load(&run.data, "moons", 16), TG_OK, "%s", tg_last_error());
    s->data_dim = run.data.dim;
    cr_assert_eq(ddpm_run_start(&run), TG_OK, "%s", tg_last_error());

    /* The data itself, as a check of the distance function. */
    double data_distance = mean_distance(run.data.points, run.data.count);
    cr_assert_lt(data_distance, 0.05, "training points lie %.4f from the moons", data_distance);

    tg_tape *tape = tg_tape_new();
    for (long step = 0; step < TRAIN_STEPS; step++) {
        double loss;
        double grad_norm;
        tg_status status = ddpm_train_step(&run, tape, tg_lr_at(&run.lr_schedule, step), &loss,
                                           &grad_norm);
        cr_assert_eq(status, TG_OK, "step %ld: %s", step, tg_last_error());
    }
    tg_tape_free(tape);

    ddpm_sample_options options = {
        .ddim = false,
        .variance = DDPM_VARIANCE_BETA,
        .count = SAMPLES,
        .batch = SAMPLES,
        .seed = 9,
    };
    tg_scalar *samples = malloc(2 * SAMPLES * sizeof *samples);
    cr_assert_eq(ddpm_generate(&run.model, &run.diffusion, &options, samples, NULL), TG_OK,
                 "%s", tg_last_error());
    double distance = mean_distance(samples, SAMPLES);
    cr_log_info("DDPM samples lie %.4f from the moons on average", distance);
    cr_assert_lt(distance, MEAN_DISTANCE_BOUND, "DDPM samples lie %.4f from the moons on "
                 "average, expected below %g", distance, MEAN_DISTANCE_BOUND);
    free(samples);
    ddpm_run_free(&run);
}
