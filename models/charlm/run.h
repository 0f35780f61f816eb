/* The state of a charlm training run and how it is saved and restored.
 *
 * A run holds the model, the optimizer, the learning-rate schedule, the data
 * and every random number stream, so that a checkpoint can continue it as if
 * it had never stopped. The checkpoint layout (see docs/checkpoint-format.md):
 *   config/      attributes: every model and training setting
 *   vocab/       code_points (int32): the vocabulary in id order
 *   model/       one dataset per parameter, nanoGPT names
 *   optimizer/   attributes kind, step; one group per state slot
 *                ("optimizer/exp_avg/<param>"), and initialized (int32, one
 *                flag per parameter in model order)
 *   rng/         train_sampler, eval_sampler, dropout (uint64 x 4 each)
 *   data/        attributes train_batches, eval_batches, corpus_tokens
 *   train/       attributes best_val_loss
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
    const char *data;
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
    tg_text_sampler eval_sampler;
    tg_rng dropout_rng;
    long step;               /* optimizer steps taken */
    double best_val_loss;    /* INFINITY before the first evaluation */
} charlm_run;

/* Fills gpt_config from the settings and the vocabulary size. */
tg_status charlm_model_config(const charlm_settings *s, int vocab_size, gpt_config *config);

/* Builds the schedule, the optimizer and the samplers for a fresh run whose
 * model and corpus are already set. */
tg_status charlm_run_start_training(charlm_run *run);

/* Writes a checkpoint of the run to path (atomically). */
tg_status charlm_run_save(const charlm_run *run, const char *path);

/* Reads the settings stored in the checkpoint at path into s: all of them, or
 * only those of the model when model_only (for --init-from). A field whose
 * flag the user gave (given(flag) is true) keeps its value, and if the field
 * fixes the model, optimizer, schedule or data, a value that differs from
 * the stored one is rejected with a message naming the field and both
 * values. */
tg_status charlm_settings_load(tg_checkpoint_reader *r, const char *path, charlm_settings *s,
                               bool model_only, bool (*given)(const char *flag, void *ctx),
                               void *ctx);

/* Reads the vocabulary stored in a checkpoint. */
tg_status charlm_vocab_load(tg_checkpoint_reader *r, tg_text_vocab **vocab);

/* Restores model weights from a checkpoint into an initialised model. */
tg_status charlm_model_load(tg_checkpoint_reader *r, gpt_model *model);

/* Restores optimizer state, step, samplers and RNGs into a run whose
 * training state was built by charlm_run_start_training. */
tg_status charlm_run_restore_training(charlm_run *run, tg_checkpoint_reader *r);

void charlm_run_free(charlm_run *run);

#endif
