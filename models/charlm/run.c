#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "optim/param_groups.h"

const char *const charlm_pos_choices[] = {"learned", "sinusoidal", NULL};
const char *const charlm_combine_choices[] = {"add", "concat", NULL};
const char *const charlm_gelu_choices[] = {"tanh", "erf", NULL};
const char *const charlm_optimizer_choices[] = {"adamw", "adam", "sgd", NULL};

tg_status charlm_model_config(const charlm_settings *s, int vocab_size, gpt_config *config) {
    memset(config, 0, sizeof *config);
    config->vocab_size = vocab_size;
    config->block_size = (int)s->block_size;
    config->n_layer = (int)s->n_layer;
    config->n_head = (int)s->n_head;
    config->n_embd = (int)s->n_embd;
    config->pos_dim = (int)s->pos_dim;
    config->pos_kind = strcmp(s->pos, "learned") == 0 ? TG_POS_LEARNED : TG_POS_SINUSOIDAL;
    config->pos_combine = strcmp(s->pos_combine, "concat") == 0 ? TG_POS_CONCAT : TG_POS_ADD;
    config->bias = s->bias;
    config->tie_weights = s->tie_weights;
    config->dropout = s->dropout;
    config->gelu = strcmp(s->gelu, "erf") == 0 ? TG_GELU_EXACT : TG_GELU_TANH;
    return gpt_config_validate(config);
}

/* ---- Training state ------------------------------------------------------ */

static tg_status build_schedule(const charlm_settings *s, tg_lr_schedule *schedule) {
    memset(schedule, 0, sizeof *schedule);
    schedule->lr = s->lr;
    schedule->warmup_steps = s->warmup_steps;
    schedule->decay = TG_LR_DECAY_COSINE;
    schedule->min_lr = s->min_lr;
    schedule->decay_steps = s->lr_decay_steps;
    if (s->lr_decay_steps <= s->warmup_steps) {
        return tg_set_error(TG_ERR_INVALID, "the cosine decay ends at step %ld (--lr-decay-steps, "
                            "or --steps when it is 0), which must be after the warmup of "
                            "--warmup-steps %ld; lower --warmup-steps or raise --lr-decay-steps",
                            s->lr_decay_steps, s->warmup_steps);
    }
    if (s->min_lr > s->lr) {
        return tg_set_error(TG_ERR_INVALID, "--min-lr %g must not exceed --lr %g; lower "
                            "--min-lr", s->min_lr, s->lr);
    }
    return tg_lr_schedule_validate(schedule);
}

static tg_status build_optimizer(const charlm_settings *s, const tg_param_list *params,
                                 tg_optimizer **out) {
    /* Weight decay on linear weights only, or, as nanoGPT does, on every
     * tensor with two or more dimensions (the embedding tables too). */
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    if (s->decay_embeddings) {
        groups.decay_kind[TG_PARAM_EMBEDDING] = true;
    }
    tg_optimizer *opt = NULL;
    if (strcmp(s->optimizer, "sgd") == 0) {
        tg_sgd_options options = {
            .momentum = s->momentum,
            .nesterov = s->nesterov,
            .weight_decay = s->weight_decay,
            .groups = &groups,
        };
        opt = tg_sgd_new(params, &options);
    } else {
        tg_adam_options options = tg_adam_default_options();
        options.beta1 = s->beta1;
        options.beta2 = s->beta2;
        options.eps = s->eps;
        options.weight_decay = s->weight_decay;
        options.groups = &groups;
        opt = strcmp(s->optimizer, "adam") == 0 ? tg_adam_new(params, &options)
                                                : tg_adamw_new(params, &options);
    }
    if (opt == NULL) {
        return TG_ERR_INVALID;
    }
    *out = opt;
    return TG_OK;
}

tg_status charlm_settings_validate(const charlm_settings *s) {
    /* The vocabulary is not known yet; every check but its size runs. */
    gpt_config config;
    tg_status status = charlm_model_config(s, 1, &config);
    if (status != TG_OK) {
        return status;
    }
    tg_lr_schedule schedule;
    return build_schedule(s, &schedule);
}

/* FNV-1a over the token ids: a fingerprint that tells two texts of the same
 * length and vocabulary apart when a run is resumed. */
static int64_t corpus_fingerprint(const tg_text_corpus *corpus) {
    const int32_t *tokens = tg_text_corpus_tokens(corpus);
    size_t n = tg_text_corpus_size(corpus);
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t t = (uint32_t)tokens[i];
        for (int byte = 0; byte < 4; byte++) {
            hash ^= (t >> (8 * byte)) & 0xffu;
            hash *= 0x100000001b3ULL;
        }
    }
    return (int64_t)hash;
}

tg_status charlm_settings_set_data(charlm_settings *s, const char *path) {
    size_t length = strlen(path);
    if (length >= sizeof s->data) {
        return tg_set_error(TG_ERR_INVALID, "the --data path has %zu characters, more than the "
                            "%zu this program accepts; use a shorter path", length,
                            sizeof s->data - 1);
    }
    memcpy(s->data, path, length + 1);
    return TG_OK;
}

tg_status charlm_run_start_training(charlm_run *run) {
    const charlm_settings *s = &run->settings;
    tg_status status = build_schedule(s, &run->schedule);
    if (status == TG_OK) {
        status = build_optimizer(s, &run->model.params, &run->optimizer);
    }
    if (status != TG_OK) {
        return status;
    }
    /* Independent streams; evaluations seed their own from seed + 1. */
    tg_text_sampler_init(&run->train_sampler, (uint64_t)s->seed);
    tg_rng_seed(&run->dropout_rng, (uint64_t)s->seed + 2);
    run->step = 0;
    run->best_val_loss = HUGE_VAL;
    return TG_OK;
}

void charlm_run_free(charlm_run *run) {
    tg_optimizer_free(run->optimizer);
    gpt_free(&run->model);
    tg_text_corpus_free(run->corpus);
    memset(run, 0, sizeof *run);
}

/* ---- Settings as checkpoint attributes ------------------------------------ */

typedef enum field_type {
    FIELD_LONG,
    FIELD_DOUBLE,
    FIELD_BOOL,
    FIELD_CHOICE,  /* one of the field's choices */
    FIELD_PATH,    /* a char array of CHARLM_PATH_MAX */
} field_type;

typedef struct settings_field {
    const char *name;   /* attribute name, which is also the flag name */
    field_type type;
    size_t offset;
    bool must_match;    /* a resumed run may not change it */
    const char *const *choices;  /* FIELD_CHOICE: the accepted values */
} settings_field;

#define FIELD(name, type, member, must_match) \
    {name, type, offsetof(charlm_settings, member), must_match, NULL}
#define CHOICE_FIELD(name, member, choices) \
    {name, FIELD_CHOICE, offsetof(charlm_settings, member), true, choices}

static const settings_field settings_fields[] = {
    FIELD("n-layer", FIELD_LONG, n_layer, true),
    FIELD("n-head", FIELD_LONG, n_head, true),
    FIELD("n-embd", FIELD_LONG, n_embd, true),
    FIELD("block-size", FIELD_LONG, block_size, true),
    FIELD("pos-dim", FIELD_LONG, pos_dim, true),
    CHOICE_FIELD("pos", pos, charlm_pos_choices),
    CHOICE_FIELD("pos-combine", pos_combine, charlm_combine_choices),
    CHOICE_FIELD("gelu", gelu, charlm_gelu_choices),
    FIELD("bias", FIELD_BOOL, bias, true),
    FIELD("tie-weights", FIELD_BOOL, tie_weights, true),
    FIELD("dropout", FIELD_DOUBLE, dropout, true),
    CHOICE_FIELD("optimizer", optimizer, charlm_optimizer_choices),
    FIELD("lr", FIELD_DOUBLE, lr, true),
    FIELD("min-lr", FIELD_DOUBLE, min_lr, true),
    FIELD("beta1", FIELD_DOUBLE, beta1, true),
    FIELD("beta2", FIELD_DOUBLE, beta2, true),
    FIELD("eps", FIELD_DOUBLE, eps, true),
    FIELD("weight-decay", FIELD_DOUBLE, weight_decay, true),
    FIELD("momentum", FIELD_DOUBLE, momentum, true),
    FIELD("nesterov", FIELD_BOOL, nesterov, true),
    FIELD("decay-embeddings", FIELD_BOOL, decay_embeddings, true),
    FIELD("grad-clip", FIELD_DOUBLE, grad_clip, true),
    FIELD("warmup-steps", FIELD_LONG, warmup_steps, true),
    FIELD("lr-decay-steps", FIELD_LONG, lr_decay_steps, true),
    FIELD("batch-size", FIELD_LONG, batch_size, true),
    FIELD("val-fraction", FIELD_DOUBLE, val_fraction, true),
    FIELD("seed", FIELD_LONG, seed, true),
    FIELD("steps", FIELD_LONG, steps, false),
    FIELD("data", FIELD_PATH, data, false),
    FIELD("eval-interval", FIELD_LONG, eval_interval, false),
    FIELD("eval-iters", FIELD_LONG, eval_iters, false),
    FIELD("final-eval-iters", FIELD_LONG, final_eval_iters, false),
    FIELD("log-interval", FIELD_LONG, log_interval, false),
    FIELD("ckpt-interval", FIELD_LONG, ckpt_interval, false),
    FIELD("keep-last", FIELD_LONG, keep_last, false),
};

#define N_SETTINGS_FIELDS ((int)(sizeof settings_fields / sizeof settings_fields[0]))

/* The first fields of the table describe the model itself. */
#define N_MODEL_FIELDS 11

static tg_status write_settings(tg_checkpoint_writer *w, const charlm_settings *s) {
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
        case FIELD_BOOL:
            status = tg_checkpoint_write_attr_int(w, "config", f->name, *(const bool *)at ? 1 : 0);
            break;
        case FIELD_CHOICE:
            status = tg_checkpoint_write_attr_string(w, "config", f->name,
                                                     *(const char *const *)at);
            break;
        case FIELD_PATH:
            status = tg_checkpoint_write_attr_string(w, "config", f->name, at);
            break;
        }
    }
    return status;
}

/* Returns the flag as the user would write it for a boolean value. */
static const char *bool_flag_text(const char *name, bool value, char *buf, size_t size) {
    snprintf(buf, size, "--%s%s", value ? "" : "no-", name);
    return buf;
}

/* Reports a flag that contradicts the checkpoint; both values are written as
 * flags, such as "--n-embd 16". */
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
    if (f->type == FIELD_BOOL) {
        bool current = *(bool *)at;
        if (given && f->must_match && (stored != 0) != current) {
            char stored_text[64];
            char given_text[64];
            return reject_difference(path, f->name,
                                     bool_flag_text(f->name, stored != 0, stored_text, 64),
                                     bool_flag_text(f->name, current, given_text, 64));
        }
        if (!given) {
            *(bool *)at = stored != 0;
        }
        return TG_OK;
    }
    long current = *(long *)at;
    if (given && f->must_match && stored != (int64_t)current) {
        char stored_text[64];
        char given_text[64];
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
    const char *match = NULL;
    for (const char *const *c = f->choices; status == TG_OK && *c != NULL; c++) {
        if (strcmp(*c, stored) == 0) {
            match = *c;
        }
    }
    if (status == TG_OK && match == NULL) {
        char expected[128] = "";
        for (const char *const *c = f->choices; *c != NULL; c++) {
            strncat(expected, " ", sizeof expected - strlen(expected) - 1);
            strncat(expected, *c, sizeof expected - strlen(expected) - 1);
        }
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': configuration field '%s' has the "
                            "unknown value '%s'; expected one of:%s", path, f->name, stored,
                            expected);
    }
    if (status != TG_OK) {
        return status;
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

static tg_status read_path_field(tg_checkpoint_reader *r, const settings_field *f, char *at,
                                 bool given) {
    /* A path is never required to match: the same text may have moved. */
    char stored[CHARLM_PATH_MAX];
    tg_status status = tg_checkpoint_read_attr_string(r, "config", f->name, stored,
                                                      sizeof stored);
    if (status == TG_OK && !given) {
        memcpy(at, stored, strlen(stored) + 1);
    }
    return status;
}

tg_status charlm_settings_load(tg_checkpoint_reader *r, const char *path, charlm_settings *s,
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
        case FIELD_BOOL:
            status = read_long_field(r, path, f, at, flag_given);
            break;
        case FIELD_DOUBLE:
            status = read_double_field(r, path, f, at, flag_given);
            break;
        case FIELD_CHOICE:
            status = read_choice_field(r, path, f, at, flag_given);
            break;
        case FIELD_PATH:
            status = read_path_field(r, f, at, flag_given);
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

static tg_status write_vocab(tg_checkpoint_writer *w, const tg_text_vocab *vocab) {
    int n = tg_text_vocab_size(vocab);
    const uint32_t *code_points = tg_text_vocab_code_points(vocab);
    int32_t *values = malloc((size_t)n * sizeof *values);
    if (values == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "out of memory saving the vocabulary");
    }
    for (int i = 0; i < n; i++) {
        values[i] = (int32_t)code_points[i];
    }
    tg_status status = tg_checkpoint_write_i32(w, "vocab", "code_points", values, (size_t)n);
    free(values);
    return status;
}

tg_status charlm_run_save(const charlm_run *run, const char *path) {
    tg_status status;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, CHARLM_KIND, &status);
    if (w == NULL) {
        return status;
    }
    status = tg_checkpoint_set_step(w, run->step);
    if (status == TG_OK) {
        status = write_settings(w, &run->settings);
    }
    if (status == TG_OK) {
        status = write_vocab(w, tg_text_corpus_vocab(run->corpus));
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_params(w, "model", &run->model.params);
    }
    if (status == TG_OK) {
        status = write_optimizer(w, run->optimizer, &run->model.params);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_u64(w, "rng", "train_sampler", run->train_sampler.rng.s, 4);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_u64(w, "rng", "dropout", run->dropout_rng.s, 4);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "train_batches",
                                              (int64_t)run->train_sampler.batches);
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "corpus_tokens",
                                              (int64_t)tg_text_corpus_size(run->corpus));
    }
    if (status == TG_OK) {
        status = tg_checkpoint_write_attr_int(w, "data", "corpus_fingerprint",
                                              corpus_fingerprint(run->corpus));
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

tg_status charlm_vocab_load(tg_checkpoint_reader *r, const char *path, tg_text_vocab **vocab) {
    size_t n = 0;
    tg_status status = tg_checkpoint_dataset_length(r, "vocab", "code_points", &n);
    if (status != TG_OK) {
        return status;
    }
    int32_t *values = malloc((n > 0 ? n : 1) * sizeof *values);
    uint32_t *code_points = malloc((n > 0 ? n : 1) * sizeof *code_points);
    if (values == NULL || code_points == NULL) {
        free(values);
        free(code_points);
        return tg_set_error(TG_ERR_NOMEM, "out of memory reading the vocabulary");
    }
    status = tg_checkpoint_read_i32(r, "vocab", "code_points", values, n);
    for (size_t i = 0; status == TG_OK && i < n; i++) {
        code_points[i] = (uint32_t)values[i];
    }
    if (status == TG_OK) {
        status = tg_text_vocab_from_code_points(code_points, (int)n, vocab);
        if (status != TG_OK) {
            status = tg_set_error(status, "checkpoint '%s': dataset 'vocab/code_points' is "
                                  "invalid: %s", path, tg_last_error());
        }
    }
    free(values);
    free(code_points);
    return status;
}

tg_status charlm_model_load(tg_checkpoint_reader *r, gpt_model *model) {
    tg_status status = tg_checkpoint_read_params(r, "model", &model->params);
    for (int i = 0; status == TG_OK && i < model->params.count; i++) {
        const tg_tensor *t = model->params.items[i].tensor;
        for (size_t j = 0; j < t->size; j++) {
            if (!isfinite(t->data[j])) {
                return tg_set_error(TG_ERR_NUMERIC, "parameter '%s' holds a non-finite value "
                                    "(%g at element %zu); the checkpoint is damaged or comes "
                                    "from a diverged run", model->params.items[i].name,
                                    (double)t->data[j], j);
            }
        }
    }
    return status;
}

static tg_status read_optimizer(tg_checkpoint_reader *r, const char *path, tg_optimizer *opt,
                                const tg_param_list *params) {
    char kind[32];
    tg_status status = tg_checkpoint_read_attr_string(r, "optimizer", "kind", kind, sizeof kind);
    if (status != TG_OK) {
        return status;
    }
    const char *expected = tg_optimizer_kind_name(tg_optimizer_get_kind(opt));
    if (strcmp(kind, expected) != 0) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': attribute 'optimizer/kind' is '%s' "
                            "but configuration field 'optimizer' is '%s'; the file is damaged, "
                            "so resume from another checkpoint", path, kind, expected);
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

static tg_status read_rng(tg_checkpoint_reader *r, const char *name, tg_rng *rng) {
    return tg_checkpoint_read_u64(r, "rng", name, rng->s, 4);
}

tg_status charlm_run_restore_training(charlm_run *run, tg_checkpoint_reader *r, const char *path) {
    int64_t corpus_tokens;
    tg_status status = tg_checkpoint_read_attr_int(r, "data", "corpus_tokens", &corpus_tokens);
    if (status == TG_OK && (size_t)corpus_tokens != tg_text_corpus_size(run->corpus)) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' was trained on a text of %lld "
                            "characters but '%s' has %zu; resume with the same --data file",
                            path, (long long)corpus_tokens, tg_text_corpus_path(run->corpus),
                            tg_text_corpus_size(run->corpus));
    }
    /* Checkpoints written before the fingerprint existed skip this check. */
    int64_t fingerprint;
    if (status == TG_OK && tg_checkpoint_has(r, "data") &&
        tg_checkpoint_read_attr_int(r, "data", "corpus_fingerprint", &fingerprint) == TG_OK &&
        fingerprint != corpus_fingerprint(run->corpus)) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' was trained on a different text than "
                            "'%s' (same length, different content); resume with the same --data "
                            "file", path, tg_text_corpus_path(run->corpus));
    }
    if (status == TG_OK) {
        status = read_optimizer(r, path, run->optimizer, &run->model.params);
    }
    if (status == TG_OK) {
        status = read_rng(r, "train_sampler", &run->train_sampler.rng);
    }
    if (status == TG_OK) {
        status = read_rng(r, "dropout", &run->dropout_rng);
    }
    int64_t batches = 0;
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_int(r, "data", "train_batches", &batches);
        run->train_sampler.batches = (uint64_t)batches;
    }
    if (status == TG_OK) {
        status = tg_checkpoint_read_attr_double(r, "train", "best_val_loss", &run->best_val_loss);
    }
    if (status == TG_OK) {
        run->step = (long)tg_checkpoint_step(r);
    }
    return status;
}
