#include "schedule.h"

#include <math.h>
#include <stdbool.h>

/* Strict C11 <math.h> does not define M_PI. */
static const double pi = 3.14159265358979323846;

/* Returns TG_OK or TG_ERR_INVALID, and sets the error message only when
 * report is true, because tg_lr_at must leave the error state alone. */
static tg_status check_schedule(const tg_lr_schedule *s, bool report) {
    tg_status invalid = TG_ERR_INVALID;
    if (!isfinite(s->lr) || s->lr <= 0) {
        return report ? tg_set_error(invalid, "lr schedule: lr %g is invalid; pass a positive, "
                                     "finite rate", s->lr) : invalid;
    }
    if (s->warmup_steps < 0) {
        return report ? tg_set_error(invalid, "lr schedule: warmup_steps %ld is invalid; pass 0 or "
                                     "more", s->warmup_steps) : invalid;
    }
    switch (s->decay) {
    case TG_LR_DECAY_NONE:
        return TG_OK;
    case TG_LR_DECAY_COSINE:
        if (!(s->min_lr >= 0 && s->min_lr <= s->lr)) {
            return report ? tg_set_error(invalid, "lr schedule: min_lr %g is invalid; pass a value "
                                         "in [0, lr] with lr %g", s->min_lr, s->lr) : invalid;
        }
        if (s->decay_steps <= s->warmup_steps) {
            return report ? tg_set_error(invalid, "lr schedule: decay_steps %ld is invalid; it must "
                                         "exceed warmup_steps %ld", s->decay_steps,
                                         s->warmup_steps) : invalid;
        }
        return TG_OK;
    case TG_LR_DECAY_STEP:
        if (!(s->gamma > 0 && s->gamma <= 1)) {
            return report ? tg_set_error(invalid, "lr schedule: gamma %g is invalid; pass a value "
                                         "in (0, 1]", s->gamma) : invalid;
        }
        if (s->step_size < 1) {
            return report ? tg_set_error(invalid, "lr schedule: step_size %ld is invalid; pass 1 or "
                                         "more", s->step_size) : invalid;
        }
        return TG_OK;
    }
    return report ? tg_set_error(invalid, "lr schedule: decay %d is invalid; pass "
                                 "TG_LR_DECAY_NONE, TG_LR_DECAY_COSINE or TG_LR_DECAY_STEP",
                                 (int)s->decay) : invalid;
}

tg_status tg_lr_schedule_validate(const tg_lr_schedule *schedule) {
    return check_schedule(schedule, true);
}

double tg_lr_at(const tg_lr_schedule *s, long step) {
    if (step < 0 || check_schedule(s, false) != TG_OK) {
        return (double)NAN;
    }
    long warmup = s->warmup_steps;
    if (step < warmup) {
        return s->lr * (double)(step + 1) / (double)(warmup + 1);
    }
    switch (s->decay) {
    case TG_LR_DECAY_NONE:
        return s->lr;
    case TG_LR_DECAY_COSINE: {
        if (step > s->decay_steps) {
            return s->min_lr;
        }
        double progress = (double)(step - warmup) / (double)(s->decay_steps - warmup);
        return s->min_lr + 0.5 * (1 + cos(pi * progress)) * (s->lr - s->min_lr);
    }
    case TG_LR_DECAY_STEP: {
        long periods = (step - warmup) / s->step_size;
        return s->lr * pow(s->gamma, (double)periods);
    }
    }
    return (double)NAN;
}
