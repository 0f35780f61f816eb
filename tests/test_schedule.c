/* Learning-rate schedules: values at the key steps of each shape (first,
 * end of warmup, middle, end, beyond the end), agreement with the formulas
 * over a whole run, and validation messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tapegrad.h"

static const double pi = 3.14159265358979323846;

static void expect_lr(const tg_lr_schedule *s, long step, double expected) {
    double lr = tg_lr_at(s, step);
    cr_assert(fabs(lr - expected) <= 1e-15 * fabs(expected),
              "step %ld: lr %.17g, expected %.17g", step, lr, expected);
}

Test(schedule, constant_rate_every_step) {
    tg_lr_schedule s = {.lr = 3e-4};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 3e-4);
    expect_lr(&s, 1, 3e-4);
    expect_lr(&s, 1000000, 3e-4);
}

Test(schedule, warmup_then_constant) {
    tg_lr_schedule s = {.lr = 1e-3, .warmup_steps = 4};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 1e-3 * 1 / 5);  /* the first rate is not zero */
    expect_lr(&s, 1, 1e-3 * 2 / 5);
    expect_lr(&s, 3, 1e-3 * 4 / 5);  /* last warmup step */
    expect_lr(&s, 4, 1e-3);          /* end of warmup */
    expect_lr(&s, 500, 1e-3);
}

Test(schedule, cosine_with_warmup_key_steps) {
    tg_lr_schedule s = {.lr = 6e-4, .warmup_steps = 10, .decay = TG_LR_DECAY_COSINE,
                        .min_lr = 6e-5, .decay_steps = 110};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 6e-4 / 11);
    expect_lr(&s, 9, 6e-4 * 10 / 11);
    expect_lr(&s, 10, 6e-4);                     /* end of warmup: the peak */
    expect_lr(&s, 60, 6e-5 + 0.5 * (6e-4 - 6e-5));  /* middle: halfway down */
    expect_lr(&s, 35, 6e-5 + 0.5 * (1 + cos(pi * 0.25)) * (6e-4 - 6e-5));
    expect_lr(&s, 110, 6e-5);                    /* end */
    expect_lr(&s, 111, 6e-5);                    /* beyond the end */
    expect_lr(&s, 100000, 6e-5);
}

Test(schedule, cosine_without_warmup) {
    tg_lr_schedule s = {.lr = 1, .decay = TG_LR_DECAY_COSINE, .min_lr = 0, .decay_steps = 4};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 1);
    expect_lr(&s, 1, 0.5 * (1 + cos(pi / 4)));
    expect_lr(&s, 2, 0.5);
    cr_assert(fabs(tg_lr_at(&s, 4)) <= 1e-16, "end: lr %g, expected 0", tg_lr_at(&s, 4));
    expect_lr(&s, 5, 0);
}

Test(schedule, cosine_matches_formula_every_step) {
    /* The reference written out for each step of a whole run. */
    tg_lr_schedule s = {.lr = 2e-3, .warmup_steps = 37, .decay = TG_LR_DECAY_COSINE,
                        .min_lr = 1e-4, .decay_steps = 1000};
    for (long step = 0; step < 1100; step++) {
        double expected;
        if (step < 37) {
            expected = 2e-3 * (double)(step + 1) / (37 + 1);
        } else if (step > 1000) {
            expected = 1e-4;
        } else {
            double progress = (double)(step - 37) / (double)(1000 - 37);
            expected = 1e-4 + 0.5 * (1 + cos(pi * progress)) * (2e-3 - 1e-4);
        }
        double lr = tg_lr_at(&s, step);
        cr_assert(fabs(lr - expected) <= 1e-15 * expected, "step %ld: lr %.17g, expected %.17g",
                  step, lr, expected);
    }
}

Test(schedule, step_decay_key_steps) {
    tg_lr_schedule s = {.lr = 0.1, .decay = TG_LR_DECAY_STEP, .gamma = 0.5, .step_size = 30};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 0.1);
    expect_lr(&s, 29, 0.1);
    expect_lr(&s, 30, 0.05);
    expect_lr(&s, 59, 0.05);
    expect_lr(&s, 60, 0.025);
    expect_lr(&s, 300, 0.1 * pow(0.5, 10));
}

Test(schedule, step_decay_after_warmup) {
    /* Periods count from the end of warmup. */
    tg_lr_schedule s = {.lr = 0.1, .warmup_steps = 9, .decay = TG_LR_DECAY_STEP, .gamma = 0.1,
                        .step_size = 20};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 0, 0.01);
    expect_lr(&s, 8, 0.09);
    expect_lr(&s, 9, 0.1);
    expect_lr(&s, 28, 0.1);
    expect_lr(&s, 29, 0.1 * 0.1);
    expect_lr(&s, 49, 0.1 * 0.1 * 0.1);
}

Test(schedule, negative_step_gives_nan) {
    tg_lr_schedule s = {.lr = 0.1};
    cr_assert(isnan(tg_lr_at(&s, -1)), "step -1 gave %g", tg_lr_at(&s, -1));
}

Test(schedule, invalid_schedule_gives_nan) {
    tg_lr_schedule s = {.lr = 0.1, .decay = TG_LR_DECAY_COSINE, .min_lr = 0, .decay_steps = 0};
    cr_assert(isnan(tg_lr_at(&s, 0)), "an invalid schedule gave %g", tg_lr_at(&s, 0));
}

static void expect_invalid(const tg_lr_schedule *s, const char *fragment) {
    cr_assert_eq(tg_lr_schedule_validate(s), TG_ERR_INVALID,
                 "schedule accepted; expected an error containing '%s'", fragment);
    cr_assert(strstr(tg_last_error(), fragment) != NULL, "message '%s' lacks '%s'",
              tg_last_error(), fragment);
}

Test(schedule, validation_names_field_and_value) {
    expect_invalid(&(tg_lr_schedule){.lr = 0}, "lr 0 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = -1e-3}, "lr -0.001 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = NAN}, "lr nan is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .warmup_steps = -5},
                   "warmup_steps -5 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = TG_LR_DECAY_COSINE, .min_lr = 2,
                                     .decay_steps = 10},
                   "min_lr 2 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = TG_LR_DECAY_COSINE, .min_lr = -0.5,
                                     .decay_steps = 10},
                   "min_lr -0.5 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .warmup_steps = 10, .decay = TG_LR_DECAY_COSINE,
                                     .decay_steps = 10},
                   "decay_steps 10 is invalid; it must exceed warmup_steps 10");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = TG_LR_DECAY_STEP, .gamma = 0,
                                     .step_size = 10},
                   "gamma 0 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = TG_LR_DECAY_STEP, .gamma = 1.5,
                                     .step_size = 10},
                   "gamma 1.5 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = TG_LR_DECAY_STEP, .gamma = 0.5},
                   "step_size 0 is invalid");
    expect_invalid(&(tg_lr_schedule){.lr = 1, .decay = (tg_lr_decay)7}, "decay 7 is invalid");
}

Test(schedule, unused_fields_are_ignored) {
    /* A constant schedule does not look at the cosine or step fields. */
    tg_lr_schedule s = {.lr = 1, .min_lr = -3, .decay_steps = -1, .gamma = 9, .step_size = -2};
    cr_assert_eq(tg_lr_schedule_validate(&s), TG_OK, "%s", tg_last_error());
    expect_lr(&s, 10, 1);
}
