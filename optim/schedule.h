/* Learning-rate schedules as pure functions of the step number.
 *
 * A schedule is a small value struct. tg_lr_at(schedule, step) returns the
 * rate for 0-based step `step`, so resuming from a checkpoint needs only the
 * step count. With W = warmup_steps, D = decay_steps and lr the peak rate:
 *
 *     warmup (step < W):  lr * (step + 1) / (W + 1)
 *     then, by decay:
 *       TG_LR_DECAY_NONE:    lr
 *       TG_LR_DECAY_COSINE:  min_lr + 0.5 * (1 + cos(pi * (step - W) / (D - W))) * (lr - min_lr)
 *                            for step <= D, and min_lr after D
 *       TG_LR_DECAY_STEP:    lr * gamma^floor((step - W) / step_size)
 *
 * The first warmup step's rate is lr / (W + 1), not zero, so no step is
 * wasted. A zero-initialized struct with lr set is a constant rate:
 *
 *     tg_lr_schedule schedule = {.lr = 6e-4, .warmup_steps = 100,
 *                                .decay = TG_LR_DECAY_COSINE, .min_lr = 6e-5,
 *                                .decay_steps = 5000};
 */
#ifndef TG_OPTIM_SCHEDULE_H
#define TG_OPTIM_SCHEDULE_H

#include "autograd/status.h"

typedef enum tg_lr_decay {
    TG_LR_DECAY_NONE,    /* constant after warmup */
    TG_LR_DECAY_COSINE,  /* half a cosine from lr down to min_lr, then min_lr */
    TG_LR_DECAY_STEP,    /* multiply by gamma every step_size steps */
} tg_lr_decay;

typedef struct tg_lr_schedule {
    double lr;           /* the rate after warmup and before decay, > 0 */
    long warmup_steps;   /* length of the linear warmup, 0 for none */
    tg_lr_decay decay;
    double min_lr;       /* cosine: final rate, in [0, lr] */
    long decay_steps;    /* cosine: step at which min_lr is reached, > warmup_steps */
    double gamma;        /* step decay: factor per period, in (0, 1] */
    long step_size;      /* step decay: period in steps, >= 1 */
} tg_lr_schedule;

/* Checks the fields the chosen decay uses and returns TG_OK, or
 * TG_ERR_INVALID with a message naming the field and its value. */
tg_status tg_lr_schedule_validate(const tg_lr_schedule *schedule);

/* Returns the learning rate of 0-based step `step`. Returns NaN, which
 * tg_optimizer_step rejects, for a negative step or a schedule that
 * tg_lr_schedule_validate rejects. */
double tg_lr_at(const tg_lr_schedule *schedule, long step);

#endif
