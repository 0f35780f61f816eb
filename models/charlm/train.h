/* Training and evaluation for `charlm`. */
#ifndef TG_MODELS_CHARLM_TRAIN_H
#define TG_MODELS_CHARLM_TRAIN_H

#include <stdio.h>

#include "run.h"

/* Trains run from run->step to its settings' steps, logging to `log` and
 * writing checkpoints and metrics.csv into out_dir. When resuming, rows of
 * metrics.csv after run->step (from a continuation that the resume replaces)
 * are dropped first. Returns the process exit code: 0 on success or after a
 * clean stop on SIGINT or SIGTERM, 1 on error (the message goes to err and
 * earlier checkpoints stay intact). */
int charlm_train(charlm_run *run, const char *out_dir, bool resuming, bool skip_nonfinite,
                 FILE *log, FILE *err);

/* Averages the loss of run's model over iters batches of split drawn from
 * sampler, without recording gradients. x and y hold batch_size * block_size
 * ids each. Training evaluates with a sampler seeded with seed + 1 afresh for
 * each split, so batch i of a split is the same at every evaluation and an
 * evaluation changes no state that a checkpoint would need. */
tg_status charlm_estimate_loss(charlm_run *run, tg_tape *tape, tg_text_sampler *sampler,
                               const tg_text_split *split, long iters, long batch_size,
                               int32_t *x, int32_t *y, double *mean_loss);

#endif
