/* The state of a charlm training run and how it is saved and restored.
 *
 * A run contains the model, the optimizer, the learning-rate schedule, the data
 * and every random number stream, so that a checkpoint can continue it as if
 * it had never stopped. The checkpoint layout (see docs/checkpoint-format.md):
 *   config/      attributes: every model and training setting
 *   vocab/       code_points (int32): the vocabulary in id order
 *   model/       one dataset per parameter, nanoGPT names
 *   optimizer/   attributes kind, step; one group per state slot
 *                ("optimizer/exp_avg/<param>"), and initialized (int32, one
 *                flag per parameter in model order)
 *   rng/         train_sampler, dropout (uint64 x 4 each)
 *   data/        attributes train_batches, corpus_tokens
 *   train/       attributes best_val_loss
 * Evaluations draw their batches from a sampler seeded afresh each time (see
 * charlm_estimate_loss), so they leave no state to save: a run stopped at any
 * step and resumed trains exactly as one that never stopped.
 */
#ifndef TG_MODELS_CHARLM_RUN_H
#define TG_MODELS_CHARLM_RUN_H

#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "datasets/text.h"
#include "gpt.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

/* Model kind stored in charlm checkpoints. */
#define CHARLM_KIND "charlm"

/* Longest --data path, including the terminating NUL. */
#define CHARLM_PATH_MAX 4096

/* The values the choice settings accept, each list ending with NULL. The
 * settings' string fields always point at one of these constants. */
extern const char *const charlm_pos_choices[];
extern const char *const charlm_combine_choices[];
extern const char *const charlm_gelu_choices[];
extern const char *const charlm_optimizer_choices[];

typedef struct charlm_settings {
    /* Model. */
    long n_layer, n_head, n_embd, block_size, pos_dim;
    const char *pos;          /* "learned" or "sinusoidal" */
    const char *pos_combine;  /* "add" or "concat" */
    const char *gelu;         /* "tanh" or "erf" */
    bool bias, tie_weights;
    double dropout;
    /* Optimization. */
    const char *optimizer;    /* "adamw", "adam" or "sgd" */
    double lr, min_lr, beta1, beta2, eps, weight_decay, momentum, grad_clip;
    bool nesterov, decay_embeddings;
    long warmup_steps, lr_decay_steps, steps, batch_size;
    /* Data and bookkeeping. */
    char data[CHARLM_PATH_MAX];  /* the text file; "" until set */
    double val_fraction;
    long seed, threads, eval_interval, eval_iters, final_eval_iters, log_interval;
    long ckpt_interval, keep_last;
} charlm_settings;

/* A model plus everything needed to train it. */
typedef struct charlm_run {
    charlm_settings settings;
    gpt_model model;
    tg_optimizer *optimizer;
    tg_lr_schedule schedule;
    tg_text_corpus *corpus;
    tg_text_split train_split;
    tg_text_split val_split;
    tg_text_sampler train_sampler;
    tg_rng dropout_rng;
    long step;               /* optimizer steps taken */
    double best_val_loss;    /* INFINITY before the first evaluation */
} charlm_run;

/* Fills gpt_config from the settings and the vocabulary size. */
tg_status charlm_model_config(const charlm_settings *s, int vocab_size, gpt_config *config);

/* Checks the settings that do not depend on the data: the model shape and
 * the learning-rate schedule. The message names the flags and their values. */
tg_status charlm_settings_validate(const charlm_settings *s);

/* Copies path into s->data. Returns TG_ERR_INVALID if it does not fit. */
tg_status charlm_settings_set_data(charlm_settings *s, const char *path);

/* Builds the schedule, the optimizer, the training sampler and the dropout
 * generator for a fresh run whose model and corpus are already set. */
tg_status charlm_run_start_training(charlm_run *run);

/* Writes a checkpoint of the run to path (atomically). */
tg_status charlm_run_save(const charlm_run *run, const char *path);

/* Reads the settings stored in the checkpoint at path into s: all of them, or
 * only those of the model when model_only (for --init-from). A field whose
 * flag the user gave (given(flag) is true) keeps its value. If that field
 * fixes the model, optimizer, schedule or data, a value that differs from
 * the stored one is TG_ERR_INVALID, with a message naming the field and both
 * values. A stored choice outside its list is TG_ERR_FORMAT. */
tg_status charlm_settings_load(tg_checkpoint_reader *r, const char *path, charlm_settings *s,
                               bool model_only, bool (*given)(const char *flag, void *ctx),
                               void *ctx);

/* Reads the vocabulary stored in the checkpoint r, opened from path. The
 * caller frees *vocab with tg_text_vocab_free. */
tg_status charlm_vocab_load(tg_checkpoint_reader *r, const char *path, tg_text_vocab **vocab);

/* Restores model weights from a checkpoint into an initialised model. */
tg_status charlm_model_load(tg_checkpoint_reader *r, gpt_model *model);

/* Restores optimizer state, step, training sampler and dropout generator
 * from the checkpoint r, opened from path, into a run whose training state
 * was built by charlm_run_start_training. */
tg_status charlm_run_restore_training(charlm_run *run, tg_checkpoint_reader *r, const char *path);

void charlm_run_free(charlm_run *run);

#endif
