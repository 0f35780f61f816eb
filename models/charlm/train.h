/* Training and evaluation for `charlm`. */
#ifndef TG_MODELS_CHARLM_TRAIN_H
#define TG_MODELS_CHARLM_TRAIN_H

#include <stdio.h>

#include "run.h"

/* Trains run from run->step to its settings' steps, logging to `log` and
 * writing checkpoints and metrics.csv into out_dir. Returns the process exit
 * code: 0 on success or after a clean stop on SIGINT or SIGTERM, 1 on error
 * (the message goes to err and earlier checkpoints stay intact). */
int charlm_train(charlm_run *run, const char *out_dir, bool resuming, bool skip_nonfinite,
                 FILE *log, FILE *err);

/* Averages the loss over iters batches of split drawn from the run's
 * evaluation sampler, without recording gradients. x and y hold
 * batch_size * block_size ids each. */
tg_status charlm_estimate_loss(charlm_run *run, tg_tape *tape, const tg_text_split *split,
                               long iters, long batch_size, int32_t *x, int32_t *y,
                               double *mean_loss);

#endif
