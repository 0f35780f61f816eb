/* Training and validation for `ddpm`. */
#ifndef TG_MODELS_DDPM_TRAIN_H
#define TG_MODELS_DDPM_TRAIN_H

#include <stdio.h>

#include "run.h"

/* The fixed noised validation set: the data's validation items at
 * timesteps and with noise drawn once from a generator seeded with seed
 * (DDPM_VAL_NOISE_SEED in training): all the timesteps first, then the
 * noise, row-major. */
typedef struct ddpm_val_set {
    int count;
    int dim;
    int32_t *t;        /* (count) */
    tg_scalar *noise;  /* (count, D) */
    tg_scalar *x_t;    /* (count, D) */
} ddpm_val_set;

tg_status ddpm_val_set_init(ddpm_val_set *v, const ddpm_data *data,
                            const ddpm_schedule *diffusion, uint64_t seed);

void ddpm_val_set_free(ddpm_val_set *v);

/* Computes the MSE of model's noise prediction over the whole set, in
 * batches of batch_size, summed in double. */
tg_status ddpm_validation_mse(const ddpm_model *model, const ddpm_val_set *v, int batch_size,
                              tg_tape *tape, double *mse);

/* Trains run from run->step to its settings' steps, logging to `log` and
 * writing checkpoints and metrics.csv into out_dir. Returns the process exit
 * code: 0 on success or after a clean stop on SIGINT or SIGTERM, 1 on error
 * (the message goes to err and earlier checkpoints stay intact). */
int ddpm_train(ddpm_run *run, const char *out_dir, bool resuming, FILE *log, FILE *err);

/* Takes one optimizer step: draws a batch, its timesteps and noise, and
 * updates the weights and the EMA. Writes the batch loss and the gradient
 * norm before clipping. When either is not finite, returns TG_ERR_NUMERIC
 * naming the step, or with settings.skip_nonfinite returns TG_OK and leaves
 * the weights, the optimizer and the EMA unchanged (the batch and the noise
 * are still drawn). Exposed for tests. */
tg_status ddpm_train_step(ddpm_run *run, tg_tape *tape, double lr, double *loss,
                          double *grad_norm);

#endif
