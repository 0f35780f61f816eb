#include "sample.h"

#include <stdlib.h>
#include <string.h>

#include "progress.h"

/* Seconds between two progress lines. */
#define PROGRESS_PERIOD_S 5.0

typedef struct predict_context {
    const ddpm_model *model;
    tg_tape *tape;
} predict_context;

static tg_status predict_with_model(void *ctx, const tg_scalar *x, const int32_t *t, int n,
                                    tg_scalar *eps) {
    predict_context *p = ctx;
    tg_tensor *prediction = ddpm_model_forward(p->tape, p->model, x, t, n);
    if (prediction == NULL) {
        tg_status status = tg_set_error(tg_tape_status(p->tape), "%s", tg_tape_error(p->tape));
        tg_tape_reset(p->tape);
        return status;
    }
    memcpy(eps, prediction->data, prediction->size * sizeof *eps);
    tg_tape_reset(p->tape);
    return TG_OK;
}

typedef struct progress_context {
    FILE *log;
    int batch;            /* 1-based */
    int batches;
    int evals_done;       /* model evaluations before this batch */
    int evals_total;
    double start_s;
    double last_print_s;
} progress_context;

static void report_progress(void *ctx, int done, int total) {
    progress_context *p = ctx;
    if (p->log == NULL) {
        return;
    }
    double now = progress_now_s();
    if (done < total && now - p->last_print_s < PROGRESS_PERIOD_S) {
        return;
    }
    p->last_print_s = now;
    int evals = p->evals_done + done;
    double elapsed = now - p->start_s;
    double eta = elapsed / evals * (p->evals_total - evals);
    char elapsed_text[32];
    char eta_text[32];
    progress_format_duration(elapsed_text, sizeof elapsed_text, elapsed);
    progress_format_duration(eta_text, sizeof eta_text, eta);
    fprintf(p->log, "sample batch %d/%d  step %4d/%d  %6.1f ms/step  elapsed %s  eta %s\n",
            p->batch, p->batches, done, total, 1e3 * elapsed / evals, elapsed_text, eta_text);
    fflush(p->log);
}

tg_status ddpm_generate(const ddpm_model *model, const ddpm_schedule *diffusion,
                        const ddpm_sample_options *options, tg_scalar *out, FILE *log) {
    int D = model->config.data_dim;
    tg_tape *tape = tg_tape_new();
    if (tape == NULL) {
        return TG_ERR_NOMEM;
    }
    tg_tape_set_grad_enabled(tape, false);
    predict_context predict = {.model = model, .tape = tape};
    int steps = options->ddim ? options->ddim_steps : diffusion->T;
    int batches = (options->count + options->batch - 1) / options->batch;
    progress_context prog = {
        .log = log,
        .batches = batches,
        .evals_total = batches * steps,
        .start_s = progress_now_s(),
    };
    prog.last_print_s = prog.start_s;
    ddpm_sampler sampler = {
        .predict = predict_with_model,
        .predict_ctx = &predict,
        .progress = report_progress,
        .progress_ctx = &prog,
        .clip_x0 = options->clip_x0,
    };
    tg_rng rng;
    tg_rng_seed(&rng, options->seed);
    tg_status status = TG_OK;
    for (int b = 0; b < batches && status == TG_OK; b++) {
        int start = b * options->batch;
        int n = options->count - start < options->batch ? options->count - start : options->batch;
        tg_scalar *x = out + (size_t)start * (size_t)D;
        for (size_t k = 0; k < (size_t)n * (size_t)D; k++) {
            x[k] = (tg_scalar)tg_rng_normal(&rng);
        }
        prog.batch = b + 1;
        prog.evals_done = b * steps;
        if (options->ddim) {
            status = ddpm_sample_ddim(diffusion, &sampler, options->ddim_steps, options->eta, x,
                                      n, D, &rng);
        } else {
            status = ddpm_sample_ddpm(diffusion, &sampler, options->variance, x, n, D, &rng);
        }
    }
    tg_tape_free(tape);
    return status;
}
