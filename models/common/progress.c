#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdio.h>
#include <time.h>

/* Weight of the newest step in the moving average: about the last 20 steps. */
#define PROGRESS_EMA_WEIGHT 0.05

double progress_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(progress *p, long first_step, long total_steps) {
    p->first_step = first_step;
    p->total_steps = total_steps;
    p->ema_step_s = 0.0;
    p->timed_steps = 0;
}

void progress_record(progress *p, long step, double step_s) {
    if (step == p->first_step) {
        return;  /* warm-up: caches, page faults, the arena growing */
    }
    if (p->timed_steps == 0) {
        p->ema_step_s = step_s;
    } else {
        p->ema_step_s += PROGRESS_EMA_WEIGHT * (step_s - p->ema_step_s);
    }
    p->timed_steps++;
}

double progress_eta_s(const progress *p, long steps_done) {
    if (p->timed_steps == 0) {
        return -1.0;
    }
    long remaining = p->total_steps - steps_done;
    return remaining > 0 ? (double)remaining * p->ema_step_s : 0.0;
}

char *progress_format_duration(char *buf, size_t size, double seconds) {
    if (seconds < 0.0) {
        snprintf(buf, size, "?");
        return buf;
    }
    long s = (long)(seconds + 0.5);
    if (s < 60) {
        snprintf(buf, size, "%lds", s);
    } else if (s < 3600) {
        snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    } else {
        snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    }
    return buf;
}
