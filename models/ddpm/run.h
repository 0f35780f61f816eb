/* The state of a ddpm training run and how it is saved and restored.
 *
 * A run contains the denoiser, its exponential moving average (EMA), the
 * optimizer, the learning-rate schedule, the diffusion schedule, the data and
 * every random number stream, so that a checkpoint continues it bit for bit.
 * The checkpoint layout (see docs/checkpoint-format.md):
 *   config/      attributes: every model, diffusion and training setting
 *   model/       one dataset per parameter
 *   ema/         the EMA of every parameter, attribute decay (only with --ema)
 *   optimizer/   attributes kind, step; one group per state slot
 *                ("optimizer/exp_avg/<param>"), and initialized (int32, one
 *                flag per parameter in model order)
 *   rng/         noise (timesteps and noise of the batches), epoch_sampler
 *                (the sampler's generator at the start of its epoch),
 *                uint64 x 4 each
 *   data/        attributes epoch, position, count of the epoch sampler
 *   train/       attribute best_val_loss
 */
#ifndef TG_MODELS_DDPM_RUN_H
#define TG_MODELS_DDPM_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "data.h"
#include "denoiser.h"
#include "diffusion.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

/* Model kind stored in ddpm checkpoints. */
#define DDPM_KIND "ddpm"

/* Seed of the fixed timesteps and noise of the validation set. */
#define DDPM_VAL_NOISE_SEED 1234

typedef struct ddpm_settings {
    /* Model. */
    const char *arch;        /* "dit" or "mlp" */
    long patch, width, depth, heads, hidden, t_freq_dim, t_hidden;
    const char *pos;         /* "sinusoidal" or "learned" */
    const char *gelu;        /* "tanh" or "erf" */
    long data_dim, image_size;  /* from the data */
    /* Diffusion. */
    const char *schedule;    /* "linear" or "cosine" */
    long timesteps;
    double beta_start, beta_end;
    /* Optimization. */
    double lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip, ema;
    const char *lr_decay;    /* "none" or "cosine" */
    long warmup_steps, lr_decay_steps, steps, batch_size;
    /* Data and bookkeeping. */
    const char *data;
    long val_count, seed, threads, eval_interval, log_interval, ckpt_interval, keep_last;
    /* Skip a step whose loss or gradient is not finite instead of stopping.
     * A choice of this invocation: checkpoints do not store it. */
    bool skip_nonfinite;
} ddpm_settings;

/* The accepted values of the settings that are choices, NULL-terminated. */
extern const char *const ddpm_arch_choices[];
extern const char *const ddpm_pos_choices[];
extern const char *const ddpm_gelu_choices[];
extern const char *const ddpm_schedule_choices[];
extern const char *const ddpm_decay_choices[];

typedef struct ddpm_run {
    ddpm_settings settings;
    ddpm_model model;
    ddpm_model ema_model;        /* its parameters are the EMA; unused with ema 0 */
    ddpm_schedule diffusion;
    tg_optimizer *optimizer;
    tg_lr_schedule lr_schedule;
    ddpm_data data;
    tg_epoch_sampler *sampler;
    tg_rng noise_rng;
    long step;                   /* optimizer steps taken */
    double best_val_loss;        /* INFINITY before the first evaluation */
} ddpm_run;

/* Fills the denoiser's configuration from the settings. */
tg_status ddpm_model_config_from(const ddpm_settings *s, ddpm_model_config *config);

/* Builds the diffusion schedule from the settings. */
tg_status ddpm_diffusion_from(const ddpm_settings *s, ddpm_schedule *diffusion);

/* Checks the settings that need no data: the learning-rate schedule.
 * Returns TG_ERR_INVALID with a message naming the flags. */
tg_status ddpm_settings_validate(const ddpm_settings *s);

/* Creates the model (weights from seed), the EMA copy, the diffusion
 * schedule, the optimizer, the learning-rate schedule, the sampler and the
 * noise stream of a fresh run whose settings and data are set. */
tg_status ddpm_run_start(ddpm_run *run);

/* Writes a checkpoint of the run to path (atomically). */
tg_status ddpm_run_save(const ddpm_run *run, const char *path);

/* Reads the settings stored in the checkpoint at path into s: all of them, or
 * only those of the model when model_only (for --init-from). A field whose
 * flag the user gave (given(flag) is true) keeps its value. If such a field
 * fixes the model, diffusion, optimizer or data, a value that differs from
 * the stored one is rejected with a message naming the field and both
 * values. */
tg_status ddpm_settings_load(tg_checkpoint_reader *r, const char *path, ddpm_settings *s,
                             bool model_only, bool (*given)(const char *flag, void *ctx),
                             void *ctx);

/* Reads the weights of group "model" or "ema" into an initialised model. */
tg_status ddpm_weights_load(tg_checkpoint_reader *r, const char *group, ddpm_model *model);

/* Restores the EMA, optimizer state, step, sampler and RNGs into a run built
 * by ddpm_run_start. */
tg_status ddpm_run_restore(ddpm_run *run, tg_checkpoint_reader *r);

/* Sets the EMA to the current weights (a fresh run, or --init-from). */
void ddpm_run_reset_ema(ddpm_run *run);

/* Updates the EMA after a step: ema = decay * ema + (1 - decay) * weight. */
void ddpm_run_update_ema(ddpm_run *run);

void ddpm_run_free(ddpm_run *run);

#endif
