/* ddpm: train a denoising diffusion model on images or 2-D/1-D points,
 * sample from it, evaluate it and inspect its checkpoints.
 *
 *     ddpm train   --data DIR|moons|mixture|gaussian --out DIR [options]
 *     ddpm sample  --checkpoint FILE [--sampler ddpm|ddim --count N --out FILE.png ...]
 *     ddpm eval    --checkpoint FILE [--data DIR ...]
 *     ddpm inspect --checkpoint FILE
 *
 * Every flag is validated before any work starts; `--help` after a
 * subcommand lists its flags with defaults and units.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "png_image.h"
#include "progress.h"
#include "run.h"
#include "run_folder.h"
#include "run_lock.h"
#include "sample.h"
#include "spin_wait.h"
#include "stop_signal.h"
#include "train.h"

static const char *const sampler_choices[] = {"ddim", "ddpm", NULL};
static const char *const variance_choices[] = {"beta", "posterior", NULL};

#define INT_FLAG(name, var, help, unit, lo, hi) {name, CLI_INT, &(var), help, unit, lo, hi, NULL, false, false}
#define DBL_FLAG(name, var, help, unit, lo, hi) {name, CLI_DOUBLE, &(var), help, unit, lo, hi, NULL, false, false}
#define STR_FLAG(name, var, help, required) {name, CLI_STRING, &(var), help, NULL, 0, 0, NULL, required, false}
#define BOOL_FLAG(name, var, help) {name, CLI_BOOL, &(var), help, NULL, 0, 0, NULL, false, false}
#define CHOICE_FLAG(name, var, help, choices) {name, CLI_CHOICE, &(var), help, NULL, 0, 0, choices, false, false}

/* Fashion-MNIST from Debian's dataset-fashion-mnist package. */
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static void default_settings(ddpm_settings *s) {
    memset(s, 0, sizeof *s);
    s->arch = "dit";
    s->patch = 4;
    s->width = 128;
    s->depth = 4;
    s->heads = 4;
    s->pos = "sinusoidal";
    s->gelu = "tanh";
    s->hidden = 512;
    s->t_freq_dim = 128;
    s->t_hidden = 512;
    s->schedule = "linear";
    s->timesteps = 1000;
    s->beta_start = 1e-4;
    s->beta_end = 0.02;
    s->lr = 1e-3;
    s->min_lr = 1e-4;
    s->lr_decay = "none";
    s->warmup_steps = 0;
    s->lr_decay_steps = 0;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->weight_decay = 0.0;
    s->grad_clip = 1.0;
    s->ema = 0.0;
    s->steps = 2000;
    s->batch_size = 64;
    s->data = DEFAULT_DATA;
    s->val_count = 1024;
    s->seed = 0;
    s->threads = 0;
    s->eval_interval = 500;
    s->log_interval = 50;
    s->ckpt_interval = 0;
    s->keep_last = 3;
}

/* ---- train ---------------------------------------------------------------- */

typedef struct train_flags {
    ddpm_settings s;
    const char *out;
    const char *resume;
    const char *init_from;
    cli_flag table[48];
    int n;
} train_flags;

static void train_flag_table(train_flags *f) {
    ddpm_settings *s = &f->s;
    cli_flag table[] = {
        STR_FLAG("data", s->data, "folder of IDX image files (train-images-idx3-ubyte[.gz] and "
                 "t10k-*), or a synthetic set: moons (2-D), mixture (2-D), gaussian (1-D)",
                 false),
        STR_FLAG("out", f->out, "folder for checkpoints and metrics.csv (created if missing)", true),
        INT_FLAG("steps", s->steps, "optimizer steps to train to", "steps", 1, 1e9),
        INT_FLAG("batch-size", s->batch_size, "items per step", "items", 1, 65536),
        CHOICE_FLAG("arch", s->arch, "denoiser: patch Transformer or MLP", ddpm_arch_choices),
        INT_FLAG("patch", s->patch, "DiT patch side", "pixels", 1, 1024),
        INT_FLAG("width", s->width, "DiT model width", NULL, 4, 65536),
        INT_FLAG("depth", s->depth, "DiT Transformer blocks", NULL, 1, 1024),
        INT_FLAG("heads", s->heads, "DiT attention heads per block", NULL, 1, 1024),
        CHOICE_FLAG("pos", s->pos, "DiT 2-D positions: fixed sinusoids or a learned table",
                    ddpm_pos_choices),
        CHOICE_FLAG("gelu", s->gelu, "GELU form in the DiT blocks", ddpm_gelu_choices),
        INT_FLAG("hidden", s->hidden, "MLP width", NULL, 1, 65536),
        INT_FLAG("t-freq-dim", s->t_freq_dim, "timestep sinusoid width (even)", NULL, 2, 65536),
        INT_FLAG("t-hidden", s->t_hidden, "timestep embedding hidden width", NULL, 1, 65536),
        CHOICE_FLAG("schedule", s->schedule, "beta schedule", ddpm_schedule_choices),
        INT_FLAG("timesteps", s->timesteps, "diffusion steps T", "steps", 2, 100000),
        DBL_FLAG("beta-start", s->beta_start, "first beta of the linear schedule", NULL, 1e-12,
                 0.999),
        DBL_FLAG("beta-end", s->beta_end, "last beta of the linear schedule", NULL, 1e-12,
                 0.999),
        DBL_FLAG("lr", s->lr, "peak learning rate", NULL, 1e-12, 10),
        CHOICE_FLAG("lr-decay", s->lr_decay, "learning-rate decay after warmup",
                    ddpm_decay_choices),
        DBL_FLAG("min-lr", s->min_lr, "learning rate at the end of the cosine decay", NULL, 0, 10),
        INT_FLAG("warmup-steps", s->warmup_steps, "linear warmup length", "steps", 0, 1e9),
        INT_FLAG("lr-decay-steps", s->lr_decay_steps, "step where the cosine decay ends (0: "
                 "--steps)", "steps", 0, 1e9),
        DBL_FLAG("beta1", s->beta1, "AdamW first-moment decay", NULL, 0, 0.999999),
        DBL_FLAG("beta2", s->beta2, "AdamW second-moment decay", NULL, 0, 0.999999),
        DBL_FLAG("eps", s->eps, "AdamW denominator term", NULL, 0, 1),
        DBL_FLAG("weight-decay", s->weight_decay, "AdamW weight decay", NULL, 0, 10),
        DBL_FLAG("grad-clip", s->grad_clip, "clip the global gradient norm to this (0: off)", NULL,
                 0, 1e9),
        DBL_FLAG("ema", s->ema, "decay of the weights' moving average, below 1 (0: off)", NULL,
                 0, 1),
        INT_FLAG("val-count", s->val_count, "validation items (first test images)", "items", 1,
                 1e7),
        INT_FLAG("seed", s->seed, "random seed for weights, batch order and noise", NULL, 0, 9e18),
        INT_FLAG("threads", s->threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
        INT_FLAG("eval-interval", s->eval_interval, "validate every this many steps", "steps", 1,
                 1e9),
        INT_FLAG("log-interval", s->log_interval, "log every this many steps", "steps", 1, 1e9),
        INT_FLAG("ckpt-interval", s->ckpt_interval, "checkpoint every this many steps (0: at "
                 "each validation)", "steps", 0, 1e9),
        INT_FLAG("keep-last", s->keep_last, "step checkpoints to keep", "files", 1, 1e6),
        STR_FLAG("resume", f->resume, "continue training from this checkpoint", false),
        STR_FLAG("init-from", f->init_from, "start from this checkpoint's weights with a fresh "
                 "optimizer, EMA and schedule", false),
        BOOL_FLAG("skip-nonfinite", s->skip_nonfinite,
                  "skip steps whose loss or gradient is not finite instead of stopping"),
    };
    f->n = (int)(sizeof table / sizeof table[0]);
    memcpy(f->table, table, sizeof table);
}

static bool flag_given(const char *name, void *ctx) {
    train_flags *f = ctx;
    cli_flag *flag = cli_find(f->table, f->n, name);
    return flag != NULL && flag->seen;
}

static bool nothing_given(const char *name, void *ctx) {
    (void)name;
    (void)ctx;
    return false;
}

/* Prints the last error of reading the checkpoint at path, naming the file
 * unless the message already does. */
static void print_checkpoint_error(const char *command, const char *path, FILE *err) {
    const char *message = tg_last_error();
    if (strstr(message, path) != NULL) {
        fprintf(err, "%s: %s\n", command, message);
    } else {
        fprintf(err, "%s: checkpoint '%s': %s\n", command, path, message);
    }
}

/* Loads the data and checks it against the model's data width. stored_dim
 * is the width a checkpoint was trained on, or 0. */
static int load_data(ddpm_run *run, long stored_dim, long stored_image_size, const char *command,
                     FILE *err) {
    ddpm_settings *s = &run->settings;
    if (ddpm_data_load(&run->data, s->data, (int)s->val_count) != TG_OK) {
        fprintf(err, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    if (stored_dim > 0 && (stored_dim != run->data.dim ||
                           stored_image_size != run->data.image_size)) {
        fprintf(err, "%s: '%s' has %d values per item (image side %d) but the checkpoint's "
                "model takes %ld (image side %ld); use the data it was trained on\n", command,
                s->data, run->data.dim, run->data.image_size, stored_dim, stored_image_size);
        return 1;
    }
    s->data_dim = run->data.dim;
    s->image_size = run->data.image_size;
    if (strcmp(s->arch, "dit") == 0 && run->data.image_size == 0) {
        fprintf(err, "%s: --data %s contains points; the patch Transformer needs images, so "
                "pass --arch mlp\n", command, s->data);
        return 1;
    }
    if (s->batch_size > run->data.count) {
        fprintf(err, "%s: --batch-size %ld exceeds the %d training items of '%s'; lower "
                "--batch-size\n", command, s->batch_size, run->data.count, s->data);
        return 1;
    }
    return 0;
}

/* Opens a checkpoint for --resume or --init-from and reads its settings.
 * Returns an exit code: 2 when a flag contradicts the checkpoint. */
static int open_for_training(train_flags *f, const char *path, bool model_only,
                             tg_checkpoint_reader **reader, FILE *err) {
    tg_status status;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, DDPM_KIND, &status);
    if (r == NULL) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        return 1;
    }
    status = ddpm_settings_load(r, path, &f->s, model_only, flag_given, f);
    if (status != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        tg_checkpoint_close(r);
        return status == TG_ERR_INVALID ? 2 : 1;
    }
    *reader = r;
    return 0;
}

/* Fills the settings that follow from others and checks those that need no
 * data, before any file is written. r is the checkpoint to resume from, or
 * NULL. */
static int finish_settings(train_flags *f, tg_checkpoint_reader *r, FILE *err) {
    ddpm_settings *s = &f->s;
    if (s->ema >= 1.0) {
        fprintf(err, "ddpm train: --ema %g is out of range; the decay must be below 1, such as "
                "0.999 (0 turns the EMA off)\n", s->ema);
        return 2;
    }
    if (s->beta_start > s->beta_end) {
        fprintf(err, "ddpm train: --beta-start %g exceeds --beta-end %g; the linear schedule "
                "needs --beta-start at most --beta-end\n", s->beta_start, s->beta_end);
        return 2;
    }
    if (strcmp(s->arch, "dit") == 0 && ddpm_data_is_synthetic(s->data)) {
        fprintf(err, "ddpm train: --data %s contains points; the patch Transformer needs "
                "images, so pass --arch mlp\n", s->data);
        return 2;
    }
    if (s->lr_decay_steps == 0) {
        s->lr_decay_steps = s->steps;
    }
    if (s->ckpt_interval == 0) {
        s->ckpt_interval = s->eval_interval;
    }
    if (s->threads == 0) {
        s->threads = omp_get_num_procs();
    }
    if (ddpm_settings_validate(s) != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        return 2;
    }
    if (f->resume != NULL && tg_checkpoint_step(r) >= s->steps) {
        fprintf(err, "ddpm train: checkpoint '%s' is already at step %lld and --steps is %ld; "
                "pass a larger --steps to train further\n", f->resume,
                (long long)tg_checkpoint_step(r), s->steps);
        return 2;
    }
    return 0;
}

/* Loads the data, builds the model and its training state, then loads the
 * weights of r (and for --resume the rest of the run) when r is not NULL. */
static int build_run(ddpm_run *run, tg_checkpoint_reader *r, const char *from, bool resume,
                     FILE *err) {
    long stored_dim = r != NULL ? run->settings.data_dim : 0;
    long stored_image_size = run->settings.image_size;
    if (load_data(run, stored_dim, stored_image_size, "ddpm train", err) != 0) {
        return 1;
    }
    ddpm_model_config config;
    if (ddpm_model_config_from(&run->settings, &config) != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        return 2;
    }
    if (ddpm_run_start(run) != TG_OK) {
        fprintf(err, "ddpm train: %s\n", tg_last_error());
        return 1;
    }
    if (r == NULL) {
        return 0;
    }
    tg_status status;
    if (resume) {
        status = ddpm_run_restore(run, r);
    } else {
        status = ddpm_weights_load(r, "model", &run->model);
        ddpm_run_reset_ema(run);
    }
    if (status != TG_OK) {
        print_checkpoint_error("ddpm train", from, err);
        return 1;
    }
    return 0;
}

/* Stores the data folder's absolute path in the settings, and so in the
 * checkpoints, so that eval and --resume find it from any folder. Messages
 * before this point show the path as the user typed it. */
static void store_absolute_data_path(ddpm_settings *s) {
    static char absolute[PATH_MAX];
    if (!ddpm_data_is_synthetic(s->data) && realpath(s->data, absolute) != NULL) {
        s->data = absolute;
    }
}

static int command_train(int argc, char **argv) {
    train_flags f;
    memset(&f, 0, sizeof f);
    default_settings(&f.s);
    train_flag_table(&f);
    int parsed = cli_parse(f.table, f.n, argc, argv, 2, "ddpm train",
                           "Train a diffusion model to turn noise into images or points.",
                           stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    if (f.resume != NULL && f.init_from != NULL) {
        fprintf(stderr, "ddpm train: --resume and --init-from exclude each other; --resume "
                "continues a run, --init-from starts a new one from its weights\n");
        return 2;
    }

    /* Everything is read and checked before the first file is written. */
    tg_checkpoint_reader *r = NULL;
    const char *from = f.resume != NULL ? f.resume : f.init_from;
    int code = 0;
    if (from != NULL) {
        code = open_for_training(&f, from, f.init_from != NULL, &r, stderr);
    }
    if (code == 0) {
        code = finish_settings(&f, r, stderr);
    }
    ddpm_run run;
    memset(&run, 0, sizeof run);
    run.settings = f.s;
    if (code == 0) {
        code = build_run(&run, r, from, f.resume != NULL, stderr);
    }
    if (code == 0) {
        store_absolute_data_path(&run.settings);
    }
    tg_checkpoint_close(r);
    int lock = -1;
    if (code == 0) {
        code = run_folder_open("ddpm train", f.out, f.resume, run.settings.steps, &lock, stderr);
    }
    if (code == 0) {
        code = ddpm_train(&run, f.out, f.resume != NULL, stdout, stderr);
    }
    run_lock_release(lock);
    ddpm_run_free(&run);
    return code;
}

/* ---- Loading a model for sample, eval and inspect ------------------------- */

typedef struct loaded_model {
    ddpm_settings settings;
    ddpm_model model;
    ddpm_model ema_model;   /* initialised only when has_ema */
    bool has_ema;
    ddpm_schedule diffusion;
    int64_t step;
} loaded_model;

static void loaded_model_free(loaded_model *m) {
    ddpm_model_free(&m->model);
    ddpm_model_free(&m->ema_model);
    ddpm_schedule_free(&m->diffusion);
}

static int load_model(const char *path, const char *command, loaded_model *m) {
    memset(m, 0, sizeof *m);
    default_settings(&m->settings);
    tg_status status;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, DDPM_KIND, &status);
    if (r == NULL) {
        fprintf(stderr, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    ddpm_model_config config;
    status = ddpm_settings_load(r, path, &m->settings, false, nothing_given, NULL);
    if (status == TG_OK) {
        status = ddpm_model_config_from(&m->settings, &config);
        if (status != TG_OK) {
            status = tg_set_error(status, "checkpoint '%s' holds an invalid configuration: %s",
                                  path, tg_last_error());
        }
    }
    tg_rng rng;
    tg_rng_seed(&rng, 0);
    if (status == TG_OK) {
        status = ddpm_model_init(&m->model, &config, &rng);
    }
    if (status == TG_OK) {
        status = ddpm_weights_load(r, "model", &m->model);
    }
    m->has_ema = status == TG_OK && tg_checkpoint_has(r, "ema");
    if (m->has_ema) {
        status = ddpm_model_init(&m->ema_model, &config, &rng);
        if (status == TG_OK) {
            status = ddpm_weights_load(r, "ema", &m->ema_model);
        }
    }
    if (status == TG_OK) {
        status = ddpm_diffusion_from(&m->settings, &m->diffusion);
    }
    m->step = tg_checkpoint_step(r);
    tg_checkpoint_close(r);
    if (status != TG_OK) {
        print_checkpoint_error(command, path, stderr);
        loaded_model_free(m);
        return 1;
    }
    return 0;
}

/* ---- sample --------------------------------------------------------------- */

typedef struct sample_flags {
    const char *checkpoint;
    const char *sampler;
    const char *variance;
    const char *out;
    long steps, count, batch, seed, threads, columns;
    double eta;
    bool clip_x0, ema;
} sample_flags;

/* Writes "<out without .png>.h5" into buf. */
static void samples_h5_path(const char *png_path, char *buf, size_t size) {
    size_t len = strlen(png_path);
    if (len > 4 && strcmp(png_path + len - 4, ".png") == 0) {
        len -= 4;
    }
    snprintf(buf, size, "%.*s.h5", (int)len, png_path);
}

static tg_status write_samples_h5(const char *path, const loaded_model *m, const sample_flags *f,
                                  const tg_scalar *samples, bool used_ema) {
    int S = (int)m->settings.image_size;
    int shape_image[3] = {(int)f->count, S, S};
    int shape_points[2] = {(int)f->count, (int)m->settings.data_dim};
    tg_tensor *t = S > 0 ? tg_tensor_from_values(3, shape_image, samples)
                         : tg_tensor_from_values(2, shape_points, samples);
    if (t == NULL) {
        return TG_ERR_NOMEM;
    }
    tg_status status;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, "ddpm-samples", &status);
    if (w == NULL) {
        tg_tensor_free(t);
        return status;
    }
    tg_checkpoint_set_step(w, m->step);
    tg_checkpoint_write_tensor(w, NULL, "samples", t);
    tg_checkpoint_write_attr_string(w, "sampling", "checkpoint", f->checkpoint);
    tg_checkpoint_write_attr_string(w, "sampling", "sampler", f->sampler);
    tg_checkpoint_write_attr_int(w, "sampling", "steps",
                                 strcmp(f->sampler, "ddim") == 0 ? f->steps
                                                                 : m->diffusion.T);
    tg_checkpoint_write_attr_double(w, "sampling", "eta", f->eta);
    tg_checkpoint_write_attr_string(w, "sampling", "variance", f->variance);
    tg_checkpoint_write_attr_int(w, "sampling", "seed", f->seed);
    tg_checkpoint_write_attr_int(w, "sampling", "clip_x0", f->clip_x0 ? 1 : 0);
    tg_checkpoint_write_attr_string(w, "sampling", "weights", used_ema ? "ema" : "model");
    status = tg_checkpoint_commit(w);
    tg_tensor_free(t);
    return status;
}

static int run_sampling(const sample_flags *f, loaded_model *m) {
    bool use_ema = f->ema && m->has_ema;
    if (f->ema && !m->has_ema) {
        printf("note: the checkpoint has no EMA weights (trained with --ema 0); sampling with "
               "the raw weights\n");
    }
    ddpm_sample_options options = {
        .ddim = strcmp(f->sampler, "ddim") == 0,
        .ddim_steps = (int)f->steps,
        .eta = f->eta,
        .variance = strcmp(f->variance, "posterior") == 0 ? DDPM_VARIANCE_POSTERIOR
                                                          : DDPM_VARIANCE_BETA,
        .clip_x0 = f->clip_x0,
        .count = (int)f->count,
        .batch = (int)f->batch,
        .seed = (uint64_t)f->seed,
    };
    int steps = options.ddim ? options.ddim_steps : m->diffusion.T;
    printf("ddpm sample: %ld samples, %s over %d steps%s, %s weights of step %lld, seed %ld, "
           "%d thread%s\n", f->count, options.ddim ? "DDIM" : "DDPM", steps,
           options.clip_x0 ? ", x_0 clipped to [-1, 1]" : "", use_ema ? "EMA" : "raw",
           (long long)m->step, f->seed, omp_get_max_threads(),
           omp_get_max_threads() == 1 ? "" : "s");
    fflush(stdout);
    size_t values = (size_t)f->count * (size_t)m->settings.data_dim;
    tg_scalar *samples = malloc(values * sizeof *samples);
    if (samples == NULL) {
        fprintf(stderr, "ddpm sample: out of memory for %ld samples\n", f->count);
        return 1;
    }
    double start = progress_now_s();
    tg_status status = ddpm_generate(use_ema ? &m->ema_model : &m->model, &m->diffusion,
                                     &options, samples, stdout);
    double elapsed = progress_now_s() - start;
    char h5_path[1024];
    samples_h5_path(f->out, h5_path, sizeof h5_path);
    /* The PNG goes to a staged name first and replaces --out only once the
     * HDF5 file is in place too, so a failed write changes neither file. */
    char staged_png[1100];
    snprintf(staged_png, sizeof staged_png, "%s.new.%ld", f->out, (long)getpid());
    bool staged = false;
    bool png_failed = false;
    if (status == TG_OK) {
        printf("sampled %ld in %.1f s (%.1f ms per model evaluation)\n", f->count, elapsed,
               1e3 * elapsed / ((double)steps * (double)((f->count + f->batch - 1) / f->batch)));
        int S = (int)m->settings.image_size;
        status = S > 0 ? png_write_image_grid(staged_png, samples, (int)f->count, S, S,
                                              (int)f->columns, -1.0, 1.0)
                       : png_write_points(staged_png, samples, (int)f->count,
                                          (int)m->settings.data_dim, 512);
        staged = status == TG_OK;
        png_failed = !staged;
    }
    bool h5_written = false;
    if (status == TG_OK) {
        status = write_samples_h5(h5_path, m, f, samples, use_ema);
        h5_written = status == TG_OK;
    }
    if (status == TG_OK && rename(staged_png, f->out) != 0) {
        status = tg_set_error(TG_ERR_IO, "cannot write '%s': renaming '%s' over it failed: %s; "
                              "'%s' already holds the new samples", f->out, staged_png,
                              strerror(errno), h5_path);
    }
    if (status != TG_OK && staged) {
        remove(staged_png);
    }
    free(samples);
    if (status != TG_OK) {
        if (png_failed) {
            fprintf(stderr, "ddpm sample: writing the PNG of --out '%s' failed: %s\n", f->out,
                    tg_last_error());
        } else {
            fprintf(stderr, "ddpm sample: %s\n", tg_last_error());
        }
        if (!h5_written) {
            fprintf(stderr, "ddpm sample: wrote no samples; '%s' and '%s' are as they were\n",
                    f->out, h5_path);
        }
        return 1;
    }
    printf("wrote %s and %s\n", f->out, h5_path);
    return 0;
}

/* Checks, before sampling, that the folder of the PNG path exists and is
 * writable, by creating and removing a probe file in it. */
static int check_output_folder(const char *png_path) {
    char folder[1024];
    const char *slash = strrchr(png_path, '/');
    if (slash == NULL) {
        snprintf(folder, sizeof folder, ".");
    } else if (slash == png_path) {
        snprintf(folder, sizeof folder, "/");
    } else {
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - png_path), png_path);
    }
    struct stat st;
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ddpm sample: cannot write --out '%s': '%s' is not an existing folder; "
                "create it or choose another path\n", png_path, folder);
        return 1;
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.write-test.%ld", folder, (long)getpid());
    FILE *f = fopen(probe, "w");
    if (f == NULL) {
        fprintf(stderr, "ddpm sample: cannot write --out '%s': folder '%s' is not writable: %s; "
                "choose a writable folder\n", png_path, folder, strerror(errno));
        return 1;
    }
    fclose(f);
    remove(probe);
    return 0;
}

/* Returns whether path starts with the 8-byte PNG signature. */
static bool is_png_file(const char *path) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return got == sizeof head && memcmp(head, signature, sizeof head) == 0;
}

/* Checks, before sampling, that sample may replace what is at its two output
 * paths. It replaces only a PNG file at the PNG path, and only a samples file
 * of ddpm sample (model kind 'ddpm-samples') at the HDF5 path, so that it
 * never overwrites a checkpoint or another file. */
static int check_replaceable_outputs(const char *png_path, const char *h5_path) {
    struct stat st;
    if (stat(png_path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "ddpm sample: --out '%s' is a folder; pass a PNG file path such as "
                    "'%s/samples.png'\n", png_path, png_path);
            return 1;
        }
        if (!S_ISREG(st.st_mode) || !is_png_file(png_path)) {
            fprintf(stderr, "ddpm sample: will not replace '%s': it is not a PNG file; move it "
                    "away or choose another --out\n", png_path);
            return 1;
        }
    }
    if (stat(h5_path, &st) != 0) {
        return 0;
    }
    char kind[64] = "";
    if (S_ISREG(st.st_mode)) {
        tg_status status;
        tg_checkpoint_reader *r = tg_checkpoint_open(h5_path, NULL, &status);
        if (r != NULL) {
            snprintf(kind, sizeof kind, "%s", tg_checkpoint_model_kind(r));
            tg_checkpoint_close(r);
        }
    }
    if (strcmp(kind, "ddpm-samples") == 0) {
        return 0;
    }
    if (kind[0] != '\0') {
        fprintf(stderr, "ddpm sample: will not replace '%s', the HDF5 file of --out '%s': it "
                "is a '%s' checkpoint, not a samples file; choose another --out or move the "
                "file away\n", h5_path, png_path, kind);
    } else {
        fprintf(stderr, "ddpm sample: will not replace '%s', the HDF5 file of --out '%s': it is "
                "not a samples file of ddpm sample; choose another --out or move the file "
                "away\n", h5_path, png_path);
    }
    return 1;
}

static int command_sample(int argc, char **argv) {
    sample_flags f = {
        .sampler = "ddim",
        .variance = "beta",
        .out = "samples.png",
        .steps = 50,
        .count = 64,
        .batch = 256,
        .seed = 0,
        .threads = 0,
        .columns = 0,
        .eta = 0.0,
        .clip_x0 = false,
        .ema = true,
    };
    cli_flag table[] = {
        STR_FLAG("checkpoint", f.checkpoint, "checkpoint to sample from", true),
        CHOICE_FLAG("sampler", f.sampler, "DDIM over --steps, or ancestral DDPM over all "
                    "diffusion steps", sampler_choices),
        INT_FLAG("steps", f.steps, "DDIM steps (at most the diffusion steps)", "steps", 1, 1e6),
        DBL_FLAG("eta", f.eta, "DDIM noise scale (0: deterministic, 1: DDPM-like)", NULL, 0, 10),
        CHOICE_FLAG("variance", f.variance, "DDPM step variance: beta_t or the posterior's",
                    variance_choices),
        BOOL_FLAG("clip-x0", f.clip_x0, "clamp the predicted x_0 to [-1, 1] in every step"),
        BOOL_FLAG("ema", f.ema, "use the EMA weights when the checkpoint has them"),
        INT_FLAG("count", f.count, "samples to draw", "samples", 1, 1e7),
        INT_FLAG("batch", f.batch, "samples per forward pass", "samples", 1, 65536),
        INT_FLAG("columns", f.columns, "images per row of the grid (0: square grid)", NULL, 0,
                 1e4),
        INT_FLAG("seed", f.seed, "random seed of x_T and the sampler noise", NULL, 0, 9e18),
        STR_FLAG("out", f.out, "PNG to write; the raw samples go to the same path with .h5",
                 false),
        INT_FLAG("threads", f.threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
    };
    int n = (int)(sizeof table / sizeof table[0]);
    int parsed = cli_parse(table, n, argc, argv, 2, "ddpm sample",
                           "Draw samples from a trained checkpoint and write a PNG and an HDF5 "
                           "file of them.", stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    size_t out_len = strlen(f.out);
    const char *out_name = strrchr(f.out, '/');
    out_name = out_name != NULL ? out_name + 1 : f.out;
    if (strcmp(out_name, ".png") == 0) {
        fprintf(stderr, "ddpm sample: --out '%s' needs a file name before .png, such as "
                "samples.png\n", f.out);
        return 2;
    }
    if (out_len < 5 || strcmp(f.out + out_len - 4, ".png") != 0) {
        fprintf(stderr, "ddpm sample: --out '%s' must end in .png\n", f.out);
        return 2;
    }
    char h5_path[1024];
    samples_h5_path(f.out, h5_path, sizeof h5_path);
    if (check_output_folder(f.out) != 0 || check_replaceable_outputs(f.out, h5_path) != 0) {
        return 1;
    }
    /* A write past the file size limit (ulimit -f) then fails with EFBIG and
     * is reported, where SIGXFSZ would kill the process. */
    if (stop_signal_ignore_file_size() != 0) {
        fprintf(stderr, "ddpm sample: cannot ignore SIGXFSZ: %s\n", strerror(errno));
        return 1;
    }
    omp_set_num_threads(f.threads > 0 ? (int)f.threads : omp_get_num_procs());
    loaded_model m;
    if (load_model(f.checkpoint, "ddpm sample", &m) != 0) {
        return 1;
    }
    int code = 0;
    if (strcmp(f.sampler, "ddim") == 0 && f.steps > m.diffusion.T) {
        fprintf(stderr, "ddpm sample: --steps %ld exceeds the %d diffusion steps of the "
                "checkpoint; pass at most %d\n", f.steps, m.diffusion.T, m.diffusion.T);
        code = 2;
    }
    if (code == 0 && m.settings.image_size == 0 && m.settings.data_dim > 2) {
        fprintf(stderr, "ddpm sample: cannot plot points of dimension %ld\n",
                m.settings.data_dim);
        code = 2;
    }
    if (code == 0) {
        code = run_sampling(&f, &m);
    }
    loaded_model_free(&m);
    return code;
}

/* ---- eval ----------------------------------------------------------------- */

static int command_eval(int argc, char **argv) {
    const char *checkpoint = NULL;
    const char *data = NULL;
    long val_count = 0;
    long batch = 256;
    long threads = 0;
    long noise_seed = DDPM_VAL_NOISE_SEED;
    cli_flag table[] = {
        STR_FLAG("checkpoint", checkpoint, "checkpoint to evaluate", true),
        STR_FLAG("data", data, "data to evaluate on (none: the data of the checkpoint)", false),
        INT_FLAG("val-count", val_count, "validation items (0: the checkpoint's)", "items", 0,
                 1e7),
        INT_FLAG("batch", batch, "items per forward pass", "items", 1, 65536),
        INT_FLAG("noise-seed", noise_seed, "seed of the validation timesteps and noise (the "
                 "default is the set training reports)", NULL, 0, 9e18),
        INT_FLAG("threads", threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
    };
    int n = (int)(sizeof table / sizeof table[0]);
    int parsed = cli_parse(table, n, argc, argv, 2, "ddpm eval",
                           "Report a checkpoint's noise-prediction MSE on the fixed noised "
                           "validation set.", stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    omp_set_num_threads(threads > 0 ? (int)threads : omp_get_num_procs());
    loaded_model m;
    if (load_model(checkpoint, "ddpm eval", &m) != 0) {
        return 1;
    }
    ddpm_run run;
    memset(&run, 0, sizeof run);
    run.settings = m.settings;
    if (data != NULL) {
        run.settings.data = data;
    }
    if (val_count > 0) {
        run.settings.val_count = val_count;
    }
    run.settings.batch_size = 1;
    int code = load_data(&run, m.settings.data_dim, m.settings.image_size, "ddpm eval", stderr);
    ddpm_val_set val = {0};
    tg_tape *tape = tg_tape_new();
    if (code == 0 &&
        (tape == NULL ||
         ddpm_val_set_init(&val, &run.data, &m.diffusion, (uint64_t)noise_seed) != TG_OK)) {
        fprintf(stderr, "ddpm eval: %s\n", tg_last_error());
        code = 1;
    }
    double mse = NAN;
    double ema_mse = NAN;
    if (code == 0 && ddpm_validation_mse(&m.model, &val, (int)batch, tape, &mse) != TG_OK) {
        code = 1;
    }
    if (code == 0 && m.has_ema &&
        ddpm_validation_mse(&m.ema_model, &val, (int)batch, tape, &ema_mse) != TG_OK) {
        code = 1;
    }
    if (code == 0) {
        printf("step %lld: val MSE %.5f", (long long)m.step, mse);
        if (m.has_ema) {
            printf(", EMA %.5f", ema_mse);
        }
        printf(" (%d items of %s, timesteps and noise from seed %ld)\n", val.count,
               run.settings.data, noise_seed);
    } else if (val.count > 0) {
        fprintf(stderr, "ddpm eval: %s\n", tg_last_error());
    }
    tg_tape_free(tape);
    ddpm_val_set_free(&val);
    ddpm_data_free(&run.data);
    loaded_model_free(&m);
    return code;
}

/* ---- inspect -------------------------------------------------------------- */

static int command_inspect(int argc, char **argv) {
    const char *checkpoint = NULL;
    cli_flag table[] = {
        STR_FLAG("checkpoint", checkpoint, "checkpoint to describe", true),
    };
    int parsed = cli_parse(table, 1, argc, argv, 2, "ddpm inspect",
                           "Print a checkpoint's step, configuration and parameter table.",
                           stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    loaded_model m;
    if (load_model(checkpoint, "ddpm inspect", &m) != 0) {
        return 1;
    }
    const ddpm_settings *s = &m.settings;
    printf("checkpoint   %s\n", checkpoint);
    printf("step         %lld of %ld\n", (long long)m.step, s->steps);
    printf("data         %s (%ld values per item", s->data, s->data_dim);
    if (s->image_size > 0) {
        printf(", images of %ld x %ld", s->image_size, s->image_size);
    }
    printf(")\n");
    if (strcmp(s->arch, "dit") == 0) {
        printf("model        patch Transformer: %ld x %ld patches, width %ld, %ld blocks, %ld "
               "heads, %s positions, %s GELU\n", s->patch, s->patch, s->width, s->depth,
               s->heads, s->pos, s->gelu);
    } else {
        printf("model        MLP: width %ld\n", s->hidden);
    }
    printf("t embedding  sinusoid %ld -> %ld -> model width\n", s->t_freq_dim, s->t_hidden);
    printf("diffusion    %ld steps, %s betas (%g to %g for linear)\n", s->timesteps,
           s->schedule, s->beta_start, s->beta_end);
    printf("optimizer    adamw, lr %g (decay %s), betas (%g, %g), weight decay %g, clip %g, "
           "batch %ld, seed %ld\n", s->lr, s->lr_decay, s->beta1, s->beta2, s->weight_decay,
           s->grad_clip, s->batch_size, s->seed);
    printf("ema          %s\n", m.has_ema ? "yes" : "no");
    if (m.has_ema) {
        printf("ema decay    %g\n", s->ema);
    }
    printf("\n%-36s %-14s %10s\n", "parameter", "shape", "count");
    for (int i = 0; i < m.model.params.count; i++) {
        const tg_named_param *p = &m.model.params.items[i];
        char shape[64];
        tg_shape_format(shape, sizeof shape, p->tensor->ndim, p->tensor->shape);
        printf("%-36s %-14s %10zu\n", p->name, shape, p->tensor->size);
    }
    printf("%-36s %-14s %10zu\n", "total", "", tg_param_list_numel(&m.model.params));
    loaded_model_free(&m);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: ddpm <command> [options]\n\n"
            "Train and sample a denoising diffusion model (DDPM) on images or points.\n\n"
            "commands:\n"
            "  train     train a denoiser on IDX images or a synthetic set\n"
            "  sample    draw samples from a checkpoint (DDPM or DDIM) into a PNG and HDF5\n"
            "  eval      report a checkpoint's validation MSE\n"
            "  inspect   print a checkpoint's configuration and parameters\n\n"
            "Run 'ddpm <command> --help' for the options of a command.\n");
}

/* Flushes stdout and returns code, or 1 after a message when this or an
 * earlier write to stdout failed (a full disk, a closed pipe), so that lost
 * output never passes for success. */
static int finish_stdout(int code) {
    int saved_errno = errno;
    int err = 0;
    if (fflush(stdout) != 0) {
        err = errno;
    } else if (ferror(stdout)) {
        /* An earlier flush failed. NOTE: errno names its cause unless a later
         * call failed for another reason. EIO is used when errno is 0. */
        err = saved_errno != 0 ? saved_errno : EIO;
    }
    if (err == 0) {
        return code;
    }
    fprintf(stderr, "ddpm: writing to standard output failed: %s\n", strerror(err));
    return 1;
}

int main(int argc, char **argv) {
    spin_wait_limit(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *command = argv[1];
    int code = 2;
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        print_usage(stdout);
        code = 0;
    } else if (strcmp(command, "train") == 0) {
        code = command_train(argc, argv);
    } else if (strcmp(command, "sample") == 0) {
        code = command_sample(argc, argv);
    } else if (strcmp(command, "eval") == 0) {
        code = command_eval(argc, argv);
    } else if (strcmp(command, "inspect") == 0) {
        code = command_inspect(argc, argv);
    } else {
        fprintf(stderr, "ddpm: unknown command '%s'; expected train, sample, eval or inspect\n",
                command);
    }
    return finish_stdout(code);
}
