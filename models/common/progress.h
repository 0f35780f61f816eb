/* Timing and progress figures for training logs: a monotonic clock, a
 * smoothed time per step that leaves out the first (warm-up) step, an ETA,
 * and durations formatted as "3m21s".
 */
#ifndef TG_MODELS_COMMON_PROGRESS_H
#define TG_MODELS_COMMON_PROGRESS_H

#include <stddef.h>

/* Returns seconds on a monotonic clock. */
double progress_now_s(void);

typedef struct progress {
    long first_step;      /* step the run started at (non-zero after a resume) */
    long total_steps;     /* step the run ends at */
    double ema_step_s;    /* exponential moving average of step time, seconds */
    long timed_steps;     /* steps that fed the average */
} progress;

void progress_init(progress *p, long first_step, long total_steps);

/* Records the duration of one step; the first step of the run is skipped. */
void progress_record(progress *p, long step, double step_s);

/* Returns the estimated seconds to the end, or a negative number before any
 * step has been timed. */
double progress_eta_s(const progress *p, long steps_done);

/* Writes a duration as "45s", "3m21s" or "2h05m" into buf and returns buf;
 * "?" for a negative duration. */
char *progress_format_duration(char *buf, size_t size, double seconds);

#endif
