/* The training loop of `charlm train`: steps, periodic evaluation, logging,
 * checkpoints, and a clean stop on SIGINT or SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "metrics_csv.h"
#include "optim/clip.h"
#include "progress.h"
#include "spin_wait.h"
#include "stop_signal.h"

/* Batch buffers and the tape, allocated once for the whole run. */
typedef struct step_buffers {
    tg_tape *tape;
    int32_t *x;  /* (B, T) inputs */
    int32_t *y;  /* (B, T) targets */
} step_buffers;

static tg_status buffers_init(step_buffers *b, long batch_size, long block_size) {
    size_t n = (size_t)batch_size * (size_t)block_size;
    b->tape = tg_tape_new();
    b->x = malloc(n * sizeof *b->x);
    b->y = malloc(n * sizeof *b->y);
    if (b->tape == NULL || b->x == NULL || b->y == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "out of memory allocating batch buffers");
    }
    return TG_OK;
}

static void buffers_free(step_buffers *b) {
    tg_tape_free(b->tape);
    free(b->x);
    free(b->y);
}

tg_status charlm_estimate_loss(charlm_run *run, tg_tape *tape, tg_text_sampler *sampler,
                               const tg_text_split *split, long iters, long batch_size,
                               int32_t *x, int32_t *y, double *mean_loss) {
    int B = (int)batch_size;
    int T = (int)run->settings.block_size;
    bool previous = tg_tape_set_grad_enabled(tape, false);
    double sum = 0.0;
    tg_status status = TG_OK;
    for (long i = 0; i < iters && status == TG_OK; i++) {
        status = tg_text_sampler_next(sampler, split, B, T, x, y);
        if (status != TG_OK) {
            break;
        }
        tg_tensor *loss = gpt_loss(tape, &run->model, x, y, B, T, NULL);
        if (loss == NULL) {
            status = tg_set_error(tg_tape_status(tape), "%s", tg_tape_error(tape));
        } else {
            sum += (double)loss->data[0];
        }
        tg_tape_reset(tape);
    }
    tg_tape_set_grad_enabled(tape, previous);
    *mean_loss = sum / (double)iters;
    return status;
}

/* ---- Logging -------------------------------------------------------------- */

static void print_settings(const charlm_run *run, const char *out_dir, FILE *log) {
    const charlm_settings *s = &run->settings;
    const gpt_config *c = &run->model.config;
    fprintf(log, "charlm train\n");
    fprintf(log, "  data         %s (%zu characters, vocabulary %d)\n", s->data,
            tg_text_corpus_size(run->corpus), c->vocab_size);
    fprintf(log, "  split        train %zu, validation %zu characters (validation fraction %g)\n",
            run->train_split.size, run->val_split.size, s->val_fraction);
    fprintf(log, "  model        %d layers, %d heads, width %d, context %d, %s positions (%s), "
            "%s GELU, %s head, dropout %g\n",
            c->n_layer, c->n_head, run->model.width, c->block_size, s->pos, s->pos_combine,
            s->gelu, c->tie_weights ? "tied" : "separate", c->dropout);
    fprintf(log, "  parameters   %zu\n", tg_param_list_numel(&run->model.params));
    fprintf(log, "  batch        %ld x %ld = %ld tokens per step\n", s->batch_size, s->block_size,
            s->batch_size * s->block_size);
    if (strcmp(s->optimizer, "sgd") == 0) {
        fprintf(log, "  optimizer    sgd, momentum %g%s, weight decay %g, clip %g\n",
                s->momentum, s->nesterov ? " (Nesterov)" : "", s->weight_decay, s->grad_clip);
    } else {
        fprintf(log, "  optimizer    %s, betas (%g, %g), eps %g, weight decay %g%s, clip %g\n",
                s->optimizer, s->beta1, s->beta2, s->eps, s->weight_decay,
                s->decay_embeddings ? " (embeddings too)" : "", s->grad_clip);
    }
    fprintf(log, "  schedule     lr %g, warmup %ld steps, cosine to %g at step %ld\n", s->lr,
            s->warmup_steps, s->min_lr, s->lr_decay_steps);
    fprintf(log, "  steps        %ld to %ld\n", run->step, s->steps);
    char spin[128];
    fprintf(log, "  threads      %ld (%s)\n", s->threads, spin_wait_describe(spin, sizeof spin));
    fprintf(log, "  seed         %ld\n", s->seed);
    fprintf(log, "  output       %s (checkpoint every %ld steps, keep last %ld)\n", out_dir,
            s->ckpt_interval, s->keep_last);
    fflush(log);
}

/* ---- Checkpoints ---------------------------------------------------------- */

static tg_status save_step_checkpoint(const charlm_run *run, const char *out_dir, char *path,
                                      size_t path_size) {
    tg_status status = tg_checkpoint_step_path(path, path_size, out_dir, "ckpt", run->step);
    if (status == TG_OK) {
        status = charlm_run_save(run, path);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_rotate(out_dir, "ckpt", (int)run->settings.keep_last,
                                      (int64_t)run->step, NULL);
    }
    return status;
}

/* Evaluates both splits, logs them and saves the best checkpoint when the
 * validation loss improves. */
static tg_status evaluate(charlm_run *run, step_buffers *b, long iters, const char *out_dir,
                          FILE *log, FILE *metrics) {
    double train_loss;
    double val_loss;
    double lr = tg_lr_at(&run->schedule, run->step);
    uint64_t eval_seed = (uint64_t)run->settings.seed + 1;
    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, eval_seed);
    tg_status status = charlm_estimate_loss(run, b->tape, &sampler, &run->train_split, iters,
                                            run->settings.batch_size, b->x, b->y, &train_loss);
    if (status == TG_OK) {
        tg_text_sampler_init(&sampler, eval_seed);
        status = charlm_estimate_loss(run, b->tape, &sampler, &run->val_split, iters,
                                      run->settings.batch_size, b->x, b->y, &val_loss);
    }
    if (status != TG_OK) {
        return status;
    }
    fprintf(log, "eval step %ld: train loss %.4f, val loss %.4f (%ld batches per split)\n",
            run->step, train_loss, val_loss, iters);
    fflush(log);
    fprintf(metrics, "%ld,train,%.6f,%.6g,,,\n%ld,val,%.6f,%.6g,,,\n", run->step, train_loss, lr,
            run->step, val_loss, lr);
    status = metrics_csv_flush(metrics, out_dir);
    if (status == TG_OK && val_loss < run->best_val_loss) {
        run->best_val_loss = val_loss;
        char path[1024];
        status = tg_checkpoint_best_path(path, sizeof path, out_dir, "ckpt");
        if (status == TG_OK) {
            status = charlm_run_save(run, path);
        }
    }
    return status;
}

/* ---- The loop ------------------------------------------------------------- */

typedef struct step_result {
    double loss;
    double grad_norm;
    bool skipped;
} step_result;

static tg_status train_step(charlm_run *run, step_buffers *b, double lr, bool skip_nonfinite,
                            step_result *result) {
    const charlm_settings *s = &run->settings;
    int B = (int)s->batch_size;
    int T = (int)s->block_size;
    tg_status status = tg_text_sampler_next(&run->train_sampler, &run->train_split, B, T, b->x,
                                            b->y);
    if (status != TG_OK) {
        return status;
    }
    tg_mode mode = {.training = true, .rng = &run->dropout_rng};
    tg_tensor *loss = gpt_loss(b->tape, &run->model, b->x, b->y, B, T, &mode);
    status = tg_tape_backward(b->tape, loss);
    if (status != TG_OK) {
        return status;
    }
    result->loss = (double)loss->data[0];
    result->skipped = false;
    result->grad_norm = 0.0;
    /* Without clipping the norm is still measured, for the log and the
     * finiteness check: no finite norm exceeds DBL_MAX. */
    double max_norm = s->grad_clip > 0.0 ? s->grad_clip : DBL_MAX;
    status = tg_clip_grad_norm(&run->model.params, max_norm, &result->grad_norm);
    if (status != TG_OK && status != TG_ERR_NUMERIC) {
        return status;
    }
    bool finite = isfinite(result->loss) && status == TG_OK;
    if (!finite) {
        if (!skip_nonfinite) {
            return tg_set_error(TG_ERR_NUMERIC, "step %ld: the loss (%g) or the gradient norm "
                                "(%g) is not finite; lower --lr, raise --warmup-steps, or pass "
                                "--skip-nonfinite to skip such steps", run->step + 1,
                                result->loss, result->grad_norm);
        }
        result->skipped = true;
        status = TG_OK;
    } else {
        status = tg_optimizer_step(run->optimizer, lr);
    }
    tg_param_list_zero_grad(&run->model.params);
    tg_tape_reset(b->tape);
    return status;
}

static void log_step(const charlm_run *run, const step_result *r, double lr, double step_ms,
                     const progress *p, FILE *log) {
    const charlm_settings *s = &run->settings;
    /* Both rates are moving averages over about the last 20 steps, leaving out
     * the first step of the run; before a step is timed, the latest one shows. */
    double average_ms = p->ema_step_s > 0.0 ? 1e3 * p->ema_step_s : step_ms;
    double tokens_per_s = (double)(s->batch_size * s->block_size) / (1e-3 * average_ms);
    char eta[32];
    progress_format_duration(eta, sizeof eta, progress_eta_s(p, run->step));
    fprintf(log, "step %6ld/%ld  loss %.4f  lr %.3e  %7.1f ms/step  %7.0f tok/s  eta %s%s\n",
            run->step, s->steps, r->loss, lr, average_ms, tokens_per_s, eta,
            r->skipped ? "  (skipped: not finite)" : "");
    fflush(log);
}

static const char *signal_name(int signal_number) {
    if (signal_number == SIGINT) {
        return "SIGINT";
    }
    if (signal_number == SIGTERM) {
        return "SIGTERM";
    }
    return "a signal";
}

/* Runs steps until the end or a stop signal, with periodic evaluations and
 * checkpoints. Stores the signal received, or 0, in *signal_number. */
static tg_status train_loop(charlm_run *run, step_buffers *b, const char *out_dir,
                            bool skip_nonfinite, FILE *log, FILE *metrics, long *skipped,
                            double *train_s, int *signal_number) {
    const charlm_settings *s = &run->settings;
    progress prog;
    progress_init(&prog, run->step, s->steps);
    char path[1024];
    tg_status status = TG_OK;
    *signal_number = 0;
    while (status == TG_OK && run->step < s->steps) {
        double lr = tg_lr_at(&run->schedule, run->step);
        double start = progress_now_s();
        step_result r;
        status = train_step(run, b, lr, skip_nonfinite, &r);
        if (status != TG_OK) {
            break;
        }
        double step_s = progress_now_s() - start;
        *train_s += step_s;
        progress_record(&prog, run->step, step_s);
        *skipped += r.skipped ? 1 : 0;
        run->step++;

        double tokens_per_s = (double)(s->batch_size * s->block_size) / step_s;
        fprintf(metrics, "%ld,batch,%.6f,%.6g,%.6g,%.3f,%.1f\n", run->step, r.loss, lr,
                r.grad_norm, 1e3 * step_s, tokens_per_s);
        if (run->step % s->log_interval == 0 || run->step == s->steps || run->step == 1) {
            log_step(run, &r, lr, 1e3 * step_s, &prog, log);
            status = metrics_csv_flush(metrics, out_dir);
        }
        if (status == TG_OK && run->step % s->eval_interval == 0 && run->step < s->steps) {
            status = evaluate(run, b, s->eval_iters, out_dir, log, metrics);
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
                        "continue with: charlm train --data %s --out %s --resume %s\n",
                        signal_name(*signal_number), run->step, s->steps, path, s->data, out_dir,
                        path);
                fflush(log);
            }
            break;
        }
    }
    return status;
}

int charlm_train(charlm_run *run, const char *out_dir, bool resuming, bool skip_nonfinite,
                 FILE *log, FILE *err) {
    const charlm_settings *s = &run->settings;
    omp_set_num_threads((int)s->threads);
    step_buffers b = {0};
    FILE *metrics = NULL;
    tg_status status = buffers_init(&b, s->batch_size, s->block_size);
    if (status == TG_OK) {
        status = metrics_csv_open(out_dir, resuming, run->step, &metrics);
    }
    if (status != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        buffers_free(&b);
        return 1;
    }
    print_settings(run, out_dir, log);
    if (stop_signal_install() != 0) {
        fprintf(err, "charlm train: cannot install signal handlers: %s\n", strerror(errno));
    }

    long first_step = run->step;
    double run_start_s = progress_now_s();
    double train_s = 0.0;
    if (!resuming) {
        status = evaluate(run, &b, s->eval_iters, out_dir, log, metrics);
    }
    long skipped = 0;
    int signal_number = 0;
    if (status == TG_OK) {
        status = train_loop(run, &b, out_dir, skip_nonfinite, log, metrics, &skipped, &train_s,
                            &signal_number);
    }
    if (status == TG_OK && signal_number == 0) {
        status = evaluate(run, &b, s->final_eval_iters, out_dir, log, metrics);
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
    if (status == TG_OK) {
        double wall_s = progress_now_s() - run_start_s;
        fprintf(log, "done: steps %ld to %ld in %.1f s (%.1f s in training steps, %.1f s in "
                "evaluation and checkpoints)\n", first_step, run->step, wall_s, train_s,
                wall_s - train_s);
    }
    fflush(log);
    if (fclose(metrics) != 0 && status == TG_OK) {
        status = tg_set_error(TG_ERR_IO, "writing %s/metrics.csv failed: %s", out_dir,
                              strerror(errno));
    }
    buffers_free(&b);
    if (status != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        fprintf(err, "charlm train: stopped at step %ld; earlier checkpoints in %s are intact\n",
                run->step, out_dir);
        return 1;
    }
    return 0;
}
