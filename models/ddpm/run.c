#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

tg_status ddpm_model_config_from(const ddpm_settings *s, ddpm_model_config *config) {
    memset(config, 0, sizeof *config);
    config->arch = strcmp(s->arch, "mlp") == 0 ? DDPM_ARCH_MLP : DDPM_ARCH_DIT;
    config->data_dim = (int)s->data_dim;
    config->image_size = (int)s->image_size;
    config->patch = (int)s->patch;
    config->width = (int)s->width;
    config->depth = (int)s->depth;
    config->heads = (int)s->heads;
    config->pos = strcmp(s->pos, "learned") == 0 ? TG_POS_LEARNED : TG_POS_SINUSOIDAL;
    config->gelu = strcmp(s->gelu, "erf") == 0 ? TG_GELU_EXACT : TG_GELU_TANH;
    config->hidden = (int)s->hidden;
    config->t_freq_dim = (int)s->t_freq_dim;
    config->t_hidden = (int)s->t_hidden;
    return ddpm_model_config_validate(config);
}

tg_status ddpm_diffusion_from(const ddpm_settings *s, ddpm_schedule *diffusion) {
    ddpm_beta_kind kind = strcmp(s->schedule, "cosine") == 0 ? DDPM_BETAS_COSINE
                                                             : DDPM_BETAS_LINEAR;
    return ddpm_schedule_init(diffusion, kind, (int)s->timesteps, s->beta_start, s->beta_end);
}

/* ---- Training state ------------------------------------------------------ */

static tg_status build_lr_schedule(const ddpm_settings *s, tg_lr_schedule *schedule) {
    memset(schedule, 0, sizeof *schedule);
    schedule->lr = s->lr;
    schedule->warmup_steps = s->warmup_steps;
    if (strcmp(s->lr_decay, "cosine") == 0) {
        schedule->decay = TG_LR_DECAY_COSINE;
        schedule->min_lr = s->min_lr;
        schedule->decay_steps = s->lr_decay_steps;
        if (s->lr_decay_steps <= s->warmup_steps) {
            return tg_set_error(TG_ERR_INVALID, "the cosine decay ends at step %ld "
                                "(--lr-decay-steps, or --steps when it is 0), which must be after "
                                "the warmup of --warmup-steps %ld; lower --warmup-steps or raise "
                                "--lr-decay-steps", s->lr_decay_steps, s->warmup_steps);
        }
        if (s->min_lr > s->lr) {
            return tg_set_error(TG_ERR_INVALID, "--min-lr %g must not exceed --lr %g; lower "
                                "--min-lr", s->min_lr, s->lr);
        }
    }
    return tg_lr_schedule_validate(schedule);
}

tg_status ddpm_settings_validate(const ddpm_settings *s) {
    tg_lr_schedule schedule;
    return build_lr_schedule(s, &schedule);
}

static tg_status build_optimizer(const ddpm_settings *s, const tg_param_list *params,
                                 tg_optimizer **out) {
    tg_adam_options options = tg_adam_default_options();
    options.beta1 = s->beta1;
    options.beta2 = s->beta2;
    options.eps = s->eps;
    options.weight_decay = s->weight_decay;
    *out = tg_adamw_new(params, &options);
    return *out != NULL ? TG_OK : TG_ERR_INVALID;
}

tg_status ddpm_run_start(ddpm_run *run) {
    const ddpm_settings *s = &run->settings;
    ddpm_model_config config;
    tg_status status = ddpm_model_config_from(s, &config);
    if (status != TG_OK) {
        return status;
    }
    tg_rng init_rng;
    tg_rng_seed(&init_rng, (uint64_t)s->seed);
    status = ddpm_model_init(&run->model, &config, &init_rng);
    if (status == TG_OK && s->ema > 0.0) {
        tg_rng unused;
        tg_rng_seed(&unused, 0);
        status = ddpm_model_init(&run->ema_model, &config, &unused);
    }
    if (status == TG_OK) {
        ddpm_run_reset_ema(run);
        status = ddpm_diffusion_from(s, &run->diffusion);
    }
    if (status == TG_OK) {
        status = build_lr_schedule(s, &run->lr_schedule);
    }
    if (status == TG_OK) {
        status = build_optimizer(s, &run->model.params, &run->optimizer);
    }
    /* Independent streams: the batch order and the noise. */
    if (status == TG_OK) {
        status = tg_epoch_sampler_new((size_t)run->data.count, (int)s->batch_size, true,
                                      (uint64_t)s->seed + 1, &run->sampler);
    }
    tg_rng_seed(&run->noise_rng, (uint64_t)s->seed + 2);
    run->step = 0;
    run->best_val_loss = HUGE_VAL;
    return status;
}

void ddpm_run_reset_ema(ddpm_run *run) {
    if (run->settings.ema <= 0.0) {
        return;
    }
    for (int i = 0; i < run->model.params.count; i++) {
        const tg_tensor *w = run->model.params.items[i].tensor;
        tg_tensor *e = run->ema_model.params.items[i].tensor;
        memcpy(e->data, w->data, w->size * sizeof *w->data);
    }
}

void ddpm_run_update_ema(ddpm_run *run) {
    double decay = run->settings.ema;
    if (decay <= 0.0) {
        return;
    }
    /* In tg_scalar, as PyTorch's ema.mul_(d).add_(w, alpha=1 - d). */
    tg_scalar keep = (tg_scalar)decay;
    tg_scalar take = (tg_scalar)(1.0 - decay);
    for (int i = 0; i < run->model.params.count; i++) {
        const tg_tensor *w = run->model.params.items[i].tensor;
        tg_tensor *e = run->ema_model.params.items[i].tensor;
        long n = (long)w->size;
#pragma omp parallel for schedule(static)
        for (long k = 0; k < n; k++) {
            tg_scalar scaled = e->data[k] * keep;
            e->data[k] = scaled + take * w->data[k];
        }
    }
}

void ddpm_run_free(ddpm_run *run) {
    tg_optimizer_free(run->optimizer);
    ddpm_model_free(&run->model);
    ddpm_model_free(&run->ema_model);
    ddpm_schedule_free(&run->diffusion);
    tg_epoch_sampler_free(run->sampler);
    ddpm_data_free(&run->data);
    memset(run, 0, sizeof *run);
}

/* ---- Settings as checkpoint attributes ------------------------------------ */

const char *const ddpm_arch_choices[] = {"dit", "mlp", NULL};
const char *const ddpm_pos_choices[] = {"sinusoidal", "learned", NULL};
const char *const ddpm_gelu_choices[] = {"tanh", "erf", NULL};
const char *const ddpm_schedule_choices[] = {"linear", "cosine", NULL};
const char *const ddpm_decay_choices[] = {"none", "cosine", NULL};

typedef enum field_type {
    FIELD_LONG,
    FIELD_DOUBLE,
    FIELD_CHOICE,  /* one of the field's choices */
    FIELD_STRING,  /* any text, kept for the life of the program */
} field_type;

typedef struct settings_field {
    const char *name;   /* attribute name, which is also the flag name */
    field_type type;
    size_t offset;
    bool must_match;    /* a resumed run may not change it */
    const char *const *choices;  /* FIELD_CHOICE: the accepted values */
} settings_field;

#define FIELD(name, type, member, must_match) \
    {name, type, offsetof(ddpm_settings, member), must_match, NULL}
#define CHOICE_FIELD(name, member, choices) \
    {name, FIELD_CHOICE, offsetof(ddpm_settings, member), true, choices}

static const settings_field settings_fields[] = {
    CHOICE_FIELD("arch", arch, ddpm_arch_choices),
    FIELD("patch", FIELD_LONG, patch, true),
    FIELD("width", FIELD_LONG, width, true),
    FIELD("depth", FIELD_LONG, depth, true),
    FIELD("heads", FIELD_LONG, heads, true),
    CHOICE_FIELD("pos", pos, ddpm_pos_choices),
    CHOICE_FIELD("gelu", gelu, ddpm_gelu_choices),
    FIELD("hidden", FIELD_LONG, hidden, true),
    FIELD("t-freq-dim", FIELD_LONG, t_freq_dim, true),
    FIELD("t-hidden", FIELD_LONG, t_hidden, true),
    FIELD("data-dim", FIELD_LONG, data_dim, true),
    FIELD("image-size", FIELD_LONG, image_size, true),
    CHOICE_FIELD("schedule", schedule, ddpm_schedule_choices),
    FIELD("timesteps", FIELD_LONG, timesteps, true),
    FIELD("beta-start", FIELD_DOUBLE, beta_start, true),
    FIELD("beta-end", FIELD_DOUBLE, beta_end, true),
    FIELD("lr", FIELD_DOUBLE, lr, true),
    FIELD("min-lr", FIELD_DOUBLE, min_lr, true),
    CHOICE_FIELD("lr-decay", lr_decay, ddpm_decay_choices),
    FIELD("warmup-steps", FIELD_LONG, warmup_steps, true),
    FIELD("lr-decay-steps", FIELD_LONG, lr_decay_steps, true),
    FIELD("beta1", FIELD_DOUBLE, beta1, true),
    FIELD("beta2", FIELD_DOUBLE, beta2, true),
    FIELD("eps", FIELD_DOUBLE, eps, true),
    FIELD("weight-decay", FIELD_DOUBLE, weight_decay, true),
    FIELD("grad-clip", FIELD_DOUBLE, grad_clip, true),
    FIELD("ema", FIELD_DOUBLE, ema, true),
    FIELD("batch-size", FIELD_LONG, batch_size, true),
    FIELD("seed", FIELD_LONG, seed, true),
    FIELD("val-count", FIELD_LONG, val_count, true),
    FIELD("steps", FIELD_LONG, steps, false),
    FIELD("data", FIELD_STRING, data, false),
    FIELD("threads", FIELD_LONG, threads, false),
    FIELD("eval-interval", FIELD_LONG, eval_interval, false),
    FIELD("log-interval", FIELD_LONG, log_interval, false),
    FIELD("ckpt-interval", FIELD_LONG, ckpt_interval, false),
    FIELD("keep-last", FIELD_LONG, keep_last, false),
};

#define N_SETTINGS_FIELDS ((int)(sizeof settings_fields / sizeof settings_fields[0]))

/* The first fields of the table describe the model itself. */
#define N_MODEL_FIELDS 12

static tg_status write_settings(tg_checkpoint_writer *w, const ddpm_settings *s) {
    tg_status status = TG_OK;
    for (int i = 0; i < N_SETTINGS_FIELDS && status == TG_OK; i++) {
        const settings_field *f = &settings_fields[i];
        const char *at = (const char *)s + f->offset;
        switch (f->type) {
        case FIELD_LONG:
            status = tg_checkpoint_write_attr_int(w, "config", f->name, *(const long *)at);
            break;
        case FIELD_DOUBLE:
            status = tg_checkpoint_write_attr_double(w, "config", f->name, *(const double *)at);
            break;
        case FIELD_CHOICE:
        case FIELD_STRING:
            status = tg_checkpoint_write_attr_string(w, "config", f->name,
                                                     *(const char *const *)at);
            break;
        }
    }
    return status;
}

/* Strings read from a checkpoint live as long as the program. This list
 * keeps them reachable, so that leak checkers do not report them. */
static char **kept_strings;
static size_t kept_count;

static const char *keep_string(const char *value) {
    char **grown = realloc(kept_strings, (kept_count + 1) * sizeof *grown);
    if (grown == NULL) {
        return "";
    }
    kept_strings = grown;
    char *copy = strdup(value);
    if (copy == NULL) {
        return "";
    }
    kept_strings[kept_count++] = copy;
    return copy;
}

/* Reports a flag that contradicts the checkpoint; both values are written as
 * flags, such as "--width 16". */
static tg_status reject_difference(const char *path, const char *name, const char *stored,
                                   const char *given) {
    return tg_set_error(TG_ERR_INVALID, "checkpoint '%s': configuration field '%s' differs: the "
                        "checkpoint was trained with %s, the command line gives %s; drop the "
                        "flag to keep the checkpoint's value, or start a new run", path, name,
                        stored, given);
}

static tg_status read_long_field(tg_checkpoint_reader *r, const char *path,
                                 const settings_field *f, char *at, bool given) {
    int64_t stored;
    tg_status status = tg_checkpoint_read_attr_int(r, "config", f->name, &stored);
    if (status != TG_OK) {
        return status;
    }
    long current = *(long *)at;
    if (given && f->must_match && stored != (int64_t)current) {
        char stored_text[96];
        char given_text[96];
        snprintf(stored_text, sizeof stored_text, "--%s %lld", f->name, (long long)stored);
        snprintf(given_text, sizeof given_text, "--%s %ld", f->name, current);
        return reject_difference(path, f->name, stored_text, given_text);
    }
    if (!given) {
        *(long *)at = (long)stored;
    }
    return TG_OK;
}

static tg_status read_double_field(tg_checkpoint_reader *r, const char *path,
                                   const settings_field *f, char *at, bool given) {
    double stored;
    tg_status status = tg_checkpoint_read_attr_double(r, "config", f->name, &stored);
    if (status != TG_OK) {
        return status;
    }
    if (given && f->must_match && stored != *(double *)at) {
        char stored_text[96];
        char given_text[96];
        cli_format_double_flag(stored_text, sizeof stored_text, f->name, stored);
        cli_format_double_flag(given_text, sizeof given_text, f->name, *(double *)at);
        return reject_difference(path, f->name, stored_text, given_text);
    }
    if (!given) {
        *(double *)at = stored;
    }
    return TG_OK;
}

static tg_status read_choice_field(tg_checkpoint_reader *r, const char *path,
                                   const settings_field *f, char *at, bool given) {
    char stored[64];
    tg_status status = tg_checkpoint_read_attr_string(r, "config", f->name, stored,
                                                      sizeof stored);
    if (status != TG_OK) {
        return status;
    }
    const char *match = NULL;
    for (const char *const *c = f->choices; *c != NULL; c++) {
        if (strcmp(*c, stored) == 0) {
            match = *c;
        }
    }
    if (match == NULL) {
        char expected[128] = "";
        for (const char *const *c = f->choices; *c != NULL; c++) {
            strncat(expected, " ", sizeof expected - strlen(expected) - 1);
            strncat(expected, *c, sizeof expected - strlen(expected) - 1);
        }
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': configuration field '%s' has the "
                            "unknown value '%s'; expected one of:%s", path, f->name, stored,
                            expected);
    }
    const char *current = *(const char **)at;
    if (given && f->must_match && strcmp(match, current) != 0) {
        char stored_text[96];
        char given_text[96];
        snprintf(stored_text, sizeof stored_text, "--%s %s", f->name, match);
        snprintf(given_text, sizeof given_text, "--%s %s", f->name, current);
        return reject_difference(path, f->name, stored_text, given_text);
    }
    if (!given) {
        *(const char **)at = match;
    }
    return TG_OK;
}

static tg_status read_string_field(tg_checkpoint_reader *r, const settings_field *f, char *at,
                                   bool given) {
    /* No string field is required to match: the same data may have moved. */
    char stored[1024];
    tg_status status = tg_checkpoint_read_attr_string(r, "config", f->name, stored,
                                                      sizeof stored);
    if (status == TG_OK && !given) {
        *(const char **)at = keep_string(stored);
    }
    return status;
}

tg_status ddpm_settings_load(tg_checkpoint_reader *r, const char *path, ddpm_settings *s,
                             bool model_only, bool (*given)(const char *flag, void *ctx),
                             void *ctx) {
    int n_fields = model_only ? N_MODEL_FIELDS : N_SETTINGS_FIELDS;
    for (int i = 0; i < n_fields; i++) {
        const settings_field *f = &settings_fields[i];
        char *at = (char *)s + f->offset;
        bool flag_given = given(f->name, ctx);
        tg_status status = TG_OK;
        switch (f->type) {
        case FIELD_LONG:
            status = read_long_field(r, path, f, at, flag_given);
            break;
        case FIELD_DOUBLE:
            status = read_double_field(r, path, f, at, flag_given);
            break;
        case FIELD_CHOICE:
            status = read_choice_field(r, path, f, at, flag_given);
            break;
        case FIELD_STRING:
            status = read_string_field(r, f, at, flag_given);
            break;
        }
        if (status != TG_OK) {
            return status;
        }
    }
    return TG_OK;
}

/* ---- Saving --------------------------------------------------------------- */

static tg_status write_optimizer(tg_checkpoint_writer *w, const tg_optimizer *opt,
                                 const tg_param_list *params) {
    tg_status status = tg_checkpoint_write_attr_string(
        w, "optimizer", "kind", tg_optimizer_kind_name(tg_optimizer_get_kind(opt)));
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "optimizer", "step", tg_optimizer_get_step(opt));
    }
    int32_t *initialized = calloc((size_t)params->count + 1, sizeof *initialized);
    if (initialized == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "out of memory saving optimizer state");
    }
    int n_states = tg_optimizer_state_count(opt);
    for (int i = 0; i < n_states && status == TG_OK; i++) {
        tg_optimizer_state state;
        status = tg_optimizer_state_get(opt, i, &state);
        if (status != TG_OK) {
            break;
        }
        char group[128];
        snprintf(group, sizeof group, "optimizer/%s", state.slot_name);
        status = tg_checkpoint_write_tensor(w, group, state.param_name, state.tensor);
        for (int p = 0; p < params->count; p++) {
            if (strcmp(params->items[p].name, state.param_name) == 0) {
                initialized[p] = state.initialized ? 1 : 0;
            }
        }
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_i32(w, "optimizer", "initialized", initialized,
                                         (size_t)params->count);
    }
    free(initialized);
    return status;
}

static tg_status write_sampler(tg_checkpoint_writer *w, const tg_epoch_sampler *sampler) {
    tg_epoch_sampler_state state;
    tg_epoch_sampler_get_state(sampler, &state);
    tg_status status = tg_checkpoint_write_u64(w, "rng", "epoch_sampler", state.epoch_rng.s, 4);
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "epoch", (int64_t)state.epoch);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "position", (int64_t)state.position);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "count", (int64_t)state.count);
    }
    return status;
}

tg_status ddpm_run_save(const ddpm_run *run, const char *path) {
    tg_status status;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, DDPM_KIND, &status);
    if (w == NULL) {
        return status;
    }
    status = tg_checkpoint_set_step(w, run->step);
    if (status == TG_OK) {
        status = write_settings(w, &run->settings);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_params(w, "model", &run->model.params);
    }
    if (status == TG_OK && run->settings.ema > 0.0) {
        status = tg_checkpoint_write_params(w, "ema", &run->ema_model.params);
        if (status == TG_OK) {
            status = tg_checkpoint_write_attr_double(w, "ema", "decay", run->settings.ema);
        }
    }
    if (status == TG_OK) {
        status = write_optimizer(w, run->optimizer, &run->model.params);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_u64(w, "rng", "noise", run->noise_rng.s, 4);
    }
    if (status == TG_OK) {
        status = write_sampler(w, run->sampler);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_double(w, "train", "best_val_loss", run->best_val_loss);
    }
    if (status != TG_OK) {
        tg_checkpoint_abort(w);
        return status;
    }
    return tg_checkpoint_commit(w);
}

/* ---- Loading -------------------------------------------------------------- */

tg_status ddpm_weights_load(tg_checkpoint_reader *r, const char *group, ddpm_model *model) {
    return tg_checkpoint_read_params(r, group, &model->params);
}

static tg_status read_optimizer(tg_checkpoint_reader *r, tg_optimizer *opt,
                                const tg_param_list *params) {
    char kind[32];
    tg_status status = tg_checkpoint_read_attr_string(r, "optimizer", "kind", kind, sizeof kind);
    if (status != TG_OK) {
        return status;
    }
    const char *expected = tg_optimizer_kind_name(tg_optimizer_get_kind(opt));
    if (strcmp(kind, expected) != 0) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint optimizer is %s but the run uses %s",
                            kind, expected);
    }
    int64_t step;
    status = tg_checkpoint_read_attr_int(r, "optimizer", "step", &step);
    if (status == TG_OK) {
        status = tg_optimizer_set_step(opt, (long)step);
    }
    int32_t *initialized = calloc((size_t)params->count + 1, sizeof *initialized);
    if (initialized == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "out of memory reading optimizer state");
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_i32(r, "optimizer", "initialized", initialized,
                                        (size_t)params->count);
    }
    int n_states = tg_optimizer_state_count(opt);
    for (int i = 0; i < n_states && status == TG_OK; i++) {
        tg_optimizer_state state;
        status = tg_optimizer_state_get(opt, i, &state);
        if (status == TG_OK) {
            char group[128];
            snprintf(group, sizeof group, "optimizer/%s", state.slot_name);
            status = tg_checkpoint_read_tensor(r, group, state.param_name, state.tensor);
        }
    }
    for (int p = 0; p < params->count && status == TG_OK; p++) {
        status = tg_optimizer_set_initialized(opt, params->items[p].name, initialized[p] != 0);
    }
    free(initialized);
    return status;
}

static tg_status read_sampler(tg_checkpoint_reader *r, const char *data,
                              tg_epoch_sampler *sampler) {
    tg_epoch_sampler_state state;
    int64_t epoch = 0;
    int64_t position = 0;
    int64_t count = 0;
    tg_status status = tg_checkpoint_read_u64(r, "rng", "epoch_sampler", state.epoch_rng.s, 4);
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_int(r, "data", "epoch", &epoch);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_int(r, "data", "position", &position);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_int(r, "data", "count", &count);
    }
    if (status != TG_OK) {
        return status;
    }
    tg_epoch_sampler_state current;
    tg_epoch_sampler_get_state(sampler, &current);
    if ((uint64_t)count != current.count) {
        return tg_set_error(TG_ERR_INVALID, "the run trained on %lld training items, but "
                            "--data '%s' has %llu; pass the --data the run started with",
                            (long long)count, data, (unsigned long long)current.count);
    }
    state.epoch = (uint64_t)epoch;
    state.position = (uint64_t)position;
    state.count = (uint64_t)count;
    return tg_epoch_sampler_set_state(sampler, &state);
}

tg_status ddpm_run_restore(ddpm_run *run, tg_checkpoint_reader *r) {
    tg_status status = ddpm_weights_load(r, "model", &run->model);
    if (status == TG_OK && run->settings.ema > 0.0) {
        status = ddpm_weights_load(r, "ema", &run->ema_model);
    }
    if (status == TG_OK) {
        status = read_optimizer(r, run->optimizer, &run->model.params);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_u64(r, "rng", "noise", run->noise_rng.s, 4);
    }
    if (status == TG_OK) {
        status = read_sampler(r, run->settings.data, run->sampler);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_double(r, "train", "best_val_loss", &run->best_val_loss);
    }
    if (status == TG_OK) {
        run->step = (long)tg_checkpoint_step(r);
    }
    return status;
}
