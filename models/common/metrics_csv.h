/* metrics.csv of a training run: one row per training step and per
 * evaluation, in the columns
 *
 *     step,split,loss,lr,grad_norm,ms_per_step,tokens_per_s
 *
 * (ddpm writes training items per second into tokens_per_s). A resumed run
 * first drops the rows after the step it resumes from, so the file again
 * contains one row per step however often the run was stopped.
 */
#ifndef TG_MODELS_COMMON_METRICS_CSV_H
#define TG_MODELS_COMMON_METRICS_CSV_H

#include <stdbool.h>
#include <stdio.h>

#include "autograd/status.h"

/* Opens out_dir/metrics.csv for appending: a new file with the header, or,
 * when resuming, the existing one without its rows after `step` (written
 * through a temporary file renamed over it). */
tg_status metrics_csv_open(const char *out_dir, bool resuming, long step, FILE **metrics);

/* Flushes metrics.csv and reports a write that failed since the last flush. */
tg_status metrics_csv_flush(FILE *metrics, const char *out_dir);

#endif
