/* The training loop of `ddpm train`: steps, periodic validation, logging,
 * checkpoints, and a clean stop on SIGINT or SIGTERM. */
#include "train.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_csv.h"
#include "optim/clip.h"
#include "progress.h"
#include "spin_wait.h"
#include "stop_signal.h"

/* Images per forward pass of a validation. */
#define VAL_BATCH 256

/* ---- Validation ----------------------------------------------------------- */

tg_status ddpm_val_set_init(ddpm_val_set *v, const ddpm_data *data,
                            const ddpm_schedule *diffusion, uint64_t seed) {
    memset(v, 0, sizeof *v);
    size_t n = (size_t)data->val_count * (size_t)data->dim;
    v->t = malloc((size_t)data->val_count * sizeof *v->t);
    v->noise = malloc(n * sizeof *v->noise);
    v->x_t = malloc(n * sizeof *v->x_t);
    if (v->t == NULL || v->noise == NULL || v->x_t == NULL) {
        ddpm_val_set_free(v);
        return tg_set_error(TG_ERR_NOMEM, "out of memory for %d validation items",
                            data->val_count);
    }
    v->count = data->val_count;
    v->dim = data->dim;
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (int i = 0; i < v->count; i++) {
        v->t[i] = (int32_t)tg_rng_below(&rng, (uint64_t)diffusion->T);
    }
    for (size_t k = 0; k < n; k++) {
        v->noise[k] = (tg_scalar)tg_rng_normal(&rng);
    }
    ddpm_q_sample(diffusion, data->val, v->t, v->noise, v->count, v->dim, v->x_t);
    return TG_OK;
}

void ddpm_val_set_free(ddpm_val_set *v) {
    free(v->t);
    free(v->noise);
    free(v->x_t);
    memset(v, 0, sizeof *v);
}

tg_status ddpm_validation_mse(const ddpm_model *model, const ddpm_val_set *v, int batch_size,
                              tg_tape *tape, double *mse) {
    bool previous = tg_tape_set_grad_enabled(tape, false);
    double sum = 0.0;
    tg_status status = TG_OK;
    for (int start = 0; start < v->count && status == TG_OK; start += batch_size) {
        int n = v->count - start < batch_size ? v->count - start : batch_size;
        size_t offset = (size_t)start * (size_t)v->dim;
        tg_tensor *prediction = ddpm_model_forward(tape, model, v->x_t + offset, v->t + start, n);
        if (prediction == NULL) {
            status = tg_set_error(tg_tape_status(tape), "%s", tg_tape_error(tape));
            break;
        }
        for (size_t k = 0; k < prediction->size; k++) {
            double diff = (double)prediction->data[k] - (double)v->noise[offset + k];
            sum += diff * diff;
        }
        tg_tape_reset(tape);
    }
    tg_tape_set_grad_enabled(tape, previous);
    *mse = sum / ((double)v->count * (double)v->dim);
    return status;
}

/* ---- One step ------------------------------------------------------------- */

tg_status ddpm_train_step(ddpm_run *run, tg_tape *tape, double lr, double *loss,
                          double *grad_norm) {
    const ddpm_settings *s = &run->settings;
    int B = (int)s->batch_size;
    int D = run->data.dim;
    size_t values = (size_t)B * (size_t)D;

    /* Step memory from the tape, released by the reset below. */
    size_t *indices = tg_tape_alloc(tape, (size_t)B * sizeof *indices);
    int32_t *t = tg_tape_alloc(tape, (size_t)B * sizeof *t);
    tg_scalar *x0 = tg_tape_alloc(tape, values * sizeof *x0);
    tg_scalar *noise = tg_tape_alloc(tape, values * sizeof *noise);
    tg_scalar *x_t = tg_tape_alloc(tape, values * sizeof *x_t);
    if (indices == NULL || t == NULL || x0 == NULL || noise == NULL || x_t == NULL) {
        tg_tape_reset(tape);
        return tg_set_error(TG_ERR_NOMEM, "out of memory for a batch of %d items", B);
    }
    int n = 0;
    tg_epoch_sampler_next(run->sampler, indices, &n);
    ddpm_data_gather(&run->data, indices, n, x0);
    for (int i = 0; i < B; i++) {
        t[i] = (int32_t)tg_rng_below(&run->noise_rng, (uint64_t)s->timesteps);
    }
    for (size_t k = 0; k < values; k++) {
        noise[k] = (tg_scalar)tg_rng_normal(&run->noise_rng);
    }
    ddpm_q_sample(&run->diffusion, x0, t, noise, B, D, x_t);

    tg_tensor *loss_tensor = ddpm_model_loss(tape, &run->model, x_t, t, noise, B);
    tg_status status = tg_tape_backward(tape, loss_tensor);
    bool measured = status == TG_OK;
    if (measured) {
        *loss = (double)loss_tensor->data[0];
        /* Without clipping the norm is still measured, for the log and the
         * finiteness check: no finite norm exceeds DBL_MAX. */
        double max_norm = s->grad_clip > 0.0 ? s->grad_clip : DBL_MAX;
        status = tg_clip_grad_norm(&run->model.params, max_norm, grad_norm);
    }
    /* tg_clip_grad_norm returns TG_ERR_NUMERIC for a norm that is not finite. */
    bool finite = status == TG_OK && isfinite(*loss);
    if (measured && (status == TG_OK || status == TG_ERR_NUMERIC) && !finite) {
        if (s->skip_nonfinite) {
            status = TG_OK;
        } else {
            status = tg_set_error(TG_ERR_NUMERIC, "step %ld: the loss (%g) or the gradient "
                                  "norm (%g) is not finite; lower --lr, raise --warmup-steps, or "
                                  "pass --skip-nonfinite to skip such steps", run->step + 1,
                                  *loss, *grad_norm);
        }
    } else if (status == TG_OK) {
        status = tg_optimizer_step(run->optimizer, lr);
        if (status == TG_OK) {
            ddpm_run_update_ema(run);
        }
    }
    tg_param_list_zero_grad(&run->model.params);
    tg_tape_reset(tape);
    return status;
}

/* ---- Logging -------------------------------------------------------------- */

static void print_settings(const ddpm_run *run, const char *out_dir, FILE *log) {
    const ddpm_settings *s = &run->settings;
    const ddpm_data *d = &run->data;
    fprintf(log, "ddpm train\n");
    if (d->image_size > 0) {
        fprintf(log, "  data         %s (%d training images of %d x %d, %d validation images)\n",
                s->data, d->count, d->image_size, d->image_size, d->val_count);
    } else {
        fprintf(log, "  data         %s (%d training points of dimension %d, %d validation "
                "points)\n", s->data, d->count, d->dim, d->val_count);
    }
    if (strcmp(s->arch, "dit") == 0) {
        fprintf(log, "  model        patch Transformer: %ld x %ld patches, width %ld, %ld blocks, "
                "%ld heads, %s positions, %s GELU\n", s->patch, s->patch, s->width, s->depth,
                s->heads, s->pos, s->gelu);
    } else {
        fprintf(log, "  model        MLP: width %ld\n", s->hidden);
    }
    fprintf(log, "  t embedding  sinusoid %ld -> %ld -> model width\n", s->t_freq_dim,
            s->t_hidden);
    fprintf(log, "  parameters   %zu\n", tg_param_list_numel(&run->model.params));
    fprintf(log, "  diffusion    %ld steps, %s betas", s->timesteps, s->schedule);
    if (strcmp(s->schedule, "linear") == 0) {
        fprintf(log, " %g to %g", s->beta_start, s->beta_end);
    }
    fprintf(log, ", epsilon prediction, MSE\n");
    fprintf(log, "  batch        %ld items per step\n", s->batch_size);
    fprintf(log, "  optimizer    adamw, betas (%g, %g), eps %g, weight decay %g, clip %g, "
            "EMA %g\n", s->beta1, s->beta2, s->eps, s->weight_decay, s->grad_clip, s->ema);
    fprintf(log, "  schedule     lr %g, warmup %ld steps, decay %s", s->lr, s->warmup_steps,
            s->lr_decay);
    if (strcmp(s->lr_decay, "cosine") == 0) {
        fprintf(log, " to %g at step %ld", s->min_lr, s->lr_decay_steps);
    }
    fprintf(log, "\n  steps        %ld to %ld\n", run->step, s->steps);
    char spin[128];
    fprintf(log, "  threads      %ld (%s)\n", s->threads, spin_wait_describe(spin, sizeof spin));
    fprintf(log, "  seed         %ld\n", s->seed);
    fprintf(log, "  output       %s (checkpoint every %ld steps, keep last %ld)\n", out_dir,
            s->ckpt_interval, s->keep_last);
    fflush(log);
}

static void log_step(const ddpm_run *run, double loss, double lr, double step_ms,
                     const progress *p, bool skipped, FILE *log) {
    const ddpm_settings *s = &run->settings;
    /* Both figures come from the moving average over about the last 20 steps,
     * without the first step of the run. Until a step is timed, the latest
     * step's time stands in. */
    double average_ms = p->ema_step_s > 0.0 ? 1e3 * p->ema_step_s : step_ms;
    double samples_per_s = (double)s->batch_size / (1e-3 * average_ms);
    char eta[32];
    progress_format_duration(eta, sizeof eta, progress_eta_s(p, run->step));
    fprintf(log, "step %6ld/%ld  loss %.4f  lr %.3e  %7.1f ms/step  %7.1f samples/s  eta %s%s\n",
            run->step, s->steps, loss, lr, average_ms, samples_per_s, eta,
            skipped ? "  (skipped: not finite)" : "");
    fflush(log);
}

/* ---- Checkpoints and validation ------------------------------------------ */

static tg_status save_step_checkpoint(const ddpm_run *run, const char *out_dir, char *path,
                                      size_t path_size) {
    tg_status status = tg_checkpoint_step_path(path, path_size, out_dir, "ckpt", run->step);
    if (status == TG_OK) {
        status = ddpm_run_save(run, path);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_rotate(out_dir, "ckpt", (int)run->settings.keep_last,
                                      (int64_t)run->step, NULL);
    }
    return status;
}

/* Validates the weights and, with an EMA, the EMA; logs both and saves the
 * best checkpoint when the sampling weights (the EMA if any) improve. */
static tg_status evaluate(ddpm_run *run, const ddpm_val_set *v, tg_tape *tape,
                          const char *out_dir, FILE *log, FILE *metrics) {
    bool ema = run->settings.ema > 0.0;
    double lr = tg_lr_at(&run->lr_schedule, run->step);
    double mse = NAN;
    double ema_mse = NAN;
    tg_status status = ddpm_validation_mse(&run->model, v, VAL_BATCH, tape, &mse);
    if (status == TG_OK && ema) {
        status = ddpm_validation_mse(&run->ema_model, v, VAL_BATCH, tape, &ema_mse);
    }
    if (status != TG_OK) {
        return status;
    }
    fprintf(log, "eval step %ld: val MSE %.5f", run->step, mse);
    if (ema) {
        fprintf(log, ", EMA %.5f", ema_mse);
    }
    fprintf(log, " (%d fixed noised items)\n", v->count);
    fflush(log);
    if (metrics != NULL) {
        fprintf(metrics, "%ld,val,%.6f,%.6g,,,\n", run->step, mse, lr);
        if (ema) {
            fprintf(metrics, "%ld,val_ema,%.6f,%.6g,,,\n", run->step, ema_mse, lr);
        }
        fflush(metrics);
    }
    double score = ema ? ema_mse : mse;
    if (score < run->best_val_loss) {
        run->best_val_loss = score;
        char path[1024];
        status = tg_checkpoint_best_path(path, sizeof path, out_dir, "ckpt");
        if (status == TG_OK) {
            status = ddpm_run_save(run, path);
        }
    }
    return status;
}

/* ---- The loop ------------------------------------------------------------- */

static const char *signal_name(int signal_number) {
    if (signal_number == SIGINT) {
        return "SIGINT";
    }
    if (signal_number == SIGTERM) {
        return "SIGTERM";
    }
    return "a signal";
}

/* Runs steps until the end or a stop signal, with periodic validations and
 * checkpoints. Counts the skipped steps in *skipped and stores the signal
 * received, or 0, in *signal_number. */
static tg_status train_loop(ddpm_run *run, const ddpm_val_set *val, tg_tape *tape,
                            const char *out_dir, FILE *log, FILE *metrics, long *skipped,
                            int *signal_number) {
    const ddpm_settings *s = &run->settings;
    progress prog;
    progress_init(&prog, run->step, s->steps);
    char path[1024];
    tg_status status = TG_OK;
    *signal_number = 0;
    while (status == TG_OK && run->step < s->steps) {
        double lr = tg_lr_at(&run->lr_schedule, run->step);
        double start = progress_now_s();
        double loss = NAN;
        double grad_norm = NAN;
        status = ddpm_train_step(run, tape, lr, &loss, &grad_norm);
        if (status != TG_OK) {
            break;
        }
        /* A step that returns TG_OK with values that are not finite was skipped. */
        bool step_skipped = !isfinite(loss) || !isfinite(grad_norm);
        *skipped += step_skipped ? 1 : 0;
        double step_s = progress_now_s() - start;
        progress_record(&prog, run->step, step_s);
        run->step++;

        fprintf(metrics, "%ld,batch,%.6f,%.6g,%.6g,%.3f,%.1f\n", run->step, loss, lr, grad_norm,
                1e3 * step_s, (double)s->batch_size / step_s);
        if (run->step % s->log_interval == 0 || run->step == s->steps || run->step == 1) {
            log_step(run, loss, lr, 1e3 * step_s, &prog, step_skipped, log);
            status = metrics_csv_flush(metrics, out_dir);
        }
        if (status == TG_OK && run->step % s->eval_interval == 0 && run->step < s->steps) {
            status = evaluate(run, val, tape, out_dir, log, metrics);
        }
        bool saved = false;
        if (status == TG_OK && run->step % s->ckpt_interval == 0 && run->step < s->steps) {
            status = save_step_checkpoint(run, out_dir, path, sizeof path);
            if (status == TG_OK) {
                fprintf(log, "checkpoint %s\n", path);
                fflush(log);
                saved = true;
            }
        }
        *signal_number = stop_signal_received();
        if (status == TG_OK && *signal_number != 0) {
            status = metrics_csv_flush(metrics, out_dir);
            if (status == TG_OK && !saved) {
                status = save_step_checkpoint(run, out_dir, path, sizeof path);
            }
            if (status == TG_OK) {
                fprintf(log, "stopped by %s after step %ld of %ld; checkpoint written to %s; "
                        "continue with: ddpm train --out %s --resume %s\n",
                        signal_name(*signal_number), run->step, s->steps, path, out_dir, path);
                fflush(log);
            }
            break;
        }
    }
    return status;
}

int ddpm_train(ddpm_run *run, const char *out_dir, bool resuming, FILE *log, FILE *err) {
    const ddpm_settings *s = &run->settings;
    omp_set_num_threads((int)s->threads);
    tg_tape *tape = tg_tape_new();
    ddpm_val_set val;
    if (tape == NULL ||
        ddpm_val_set_init(&val, &run->data, &run->diffusion, DDPM_VAL_NOISE_SEED) != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        tg_tape_free(tape);
        return 1;
    }
    FILE *metrics = NULL;
    if (metrics_csv_open(out_dir, resuming, run->step, &metrics) != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        ddpm_val_set_free(&val);
        tg_tape_free(tape);
        return 1;
    }
    print_settings(run, out_dir, log);
    if (stop_signal_install() != 0) {
        fprintf(err, "ddpm train: cannot install signal handlers: %s\n", strerror(errno));
    }

    tg_status status = TG_OK;
    if (!resuming) {
        status = evaluate(run, &val, tape, out_dir, log, metrics);
    }
    long skipped = 0;
    int signal_number = 0;
    if (status == TG_OK) {
        status = train_loop(run, &val, tape, out_dir, log, metrics, &skipped, &signal_number);
    }
    if (status == TG_OK && signal_number == 0) {
        status = evaluate(run, &val, tape, out_dir, log, metrics);
        char path[1024];
        if (status == TG_OK) {
            status = save_step_checkpoint(run, out_dir, path, sizeof path);
        }
        if (status == TG_OK) {
            fprintf(log, "checkpoint %s\n", path);
        }
    }
    if (skipped > 0) {
        fprintf(log, "skipped %ld steps with a non-finite loss or gradient\n", skipped);
    }
    fflush(log);
    if (fclose(metrics) != 0 && status == TG_OK) {
        status = tg_set_error(TG_ERR_IO, "writing %s/metrics.csv failed: %s", out_dir,
                              strerror(errno));
    }
    ddpm_val_set_free(&val);
    tg_tape_free(tape);
    if (status != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        fprintf(err, "ddpm train: stopped at step %ld; earlier checkpoints in %s are intact\n",
                run->step, out_dir);
        return 1;
    }
    return 0;
}
