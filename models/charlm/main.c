/* charlm: train a character-level GPT on a text file, sample from it,
 * evaluate it and inspect its checkpoints.
 *
 *     charlm train   --data FILE --out DIR [options]
 *     charlm sample  --checkpoint FILE [--prompt TEXT --length N ...]
 *     charlm eval    --checkpoint FILE [--data FILE ...]
 *     charlm inspect --checkpoint FILE
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
#include "run.h"
#include "run_folder.h"
#include "run_lock.h"
#include "sample.h"
#include "spin_wait.h"
#include "train.h"

#define INT_FLAG(name, var, help, unit, lo, hi) {name, CLI_INT, &(var), help, unit, lo, hi, NULL, false, false}
#define DBL_FLAG(name, var, help, unit, lo, hi) {name, CLI_DOUBLE, &(var), help, unit, lo, hi, NULL, false, false}
#define STR_FLAG(name, var, help, required) {name, CLI_STRING, &(var), help, NULL, 0, 0, NULL, required, false}
#define BOOL_FLAG(name, var, help) {name, CLI_BOOL, &(var), help, NULL, 0, 0, NULL, false, false}
#define CHOICE_FLAG(name, var, help, choices) {name, CLI_CHOICE, &(var), help, NULL, 0, 0, choices, false, false}

static void default_settings(charlm_settings *s) {
    memset(s, 0, sizeof *s);
    s->n_layer = 4;
    s->n_head = 4;
    s->n_embd = 128;
    s->block_size = 64;
    s->pos_dim = 32;
    s->pos = charlm_pos_choices[0];
    s->pos_combine = charlm_combine_choices[0];
    s->gelu = charlm_gelu_choices[0];
    s->bias = true;
    s->tie_weights = true;
    s->dropout = 0.0;
    s->optimizer = charlm_optimizer_choices[0];
    s->lr = 1e-3;
    s->min_lr = 1e-4;
    s->beta1 = 0.9;
    s->beta2 = 0.99;
    s->eps = 1e-8;
    s->weight_decay = 0.1;
    s->momentum = 0.9;
    s->grad_clip = 1.0;
    s->decay_embeddings = true;
    s->warmup_steps = 100;
    s->lr_decay_steps = 0;
    s->steps = 2000;
    s->batch_size = 12;
    s->val_fraction = 0.1;
    s->seed = 1337;
    s->threads = 0;
    s->eval_interval = 250;
    s->eval_iters = 20;
    s->final_eval_iters = 200;
    s->log_interval = 10;
    s->ckpt_interval = 0;
    s->keep_last = 3;
}

/* ---- train ---------------------------------------------------------------- */

typedef struct train_flags {
    charlm_settings s;
    const char *data;
    const char *out;
    const char *resume;
    const char *init_from;
    bool skip_nonfinite;
    cli_flag table[48];
    int n;
} train_flags;

static void train_flag_table(train_flags *f) {
    charlm_settings *s = &f->s;
    cli_flag table[] = {
        STR_FLAG("data", f->data, "text file to train on (UTF-8; on --resume, default: the "
                 "checkpoint's)", false),
        STR_FLAG("out", f->out, "folder for checkpoints and metrics.csv (created if missing)", true),
        INT_FLAG("steps", s->steps, "optimizer steps to train to", "steps", 1, 1e9),
        INT_FLAG("batch-size", s->batch_size, "sequences per step", "sequences", 1, 65536),
        INT_FLAG("block-size", s->block_size, "context length", "characters", 1, 65536),
        INT_FLAG("n-layer", s->n_layer, "Transformer blocks", NULL, 1, 1024),
        INT_FLAG("n-head", s->n_head, "attention heads per block", NULL, 1, 1024),
        INT_FLAG("n-embd", s->n_embd, "token embedding width", NULL, 1, 65536),
        CHOICE_FLAG("pos", s->pos, "positional encoding", charlm_pos_choices),
        CHOICE_FLAG("pos-combine", s->pos_combine, "add the encoding or concatenate it",
                    charlm_combine_choices),
        INT_FLAG("pos-dim", s->pos_dim, "width of a concatenated encoding", NULL, 2, 65536),
        CHOICE_FLAG("gelu", s->gelu, "GELU form in the MLP", charlm_gelu_choices),
        BOOL_FLAG("bias", s->bias, "biases in linear and LayerNorm layers"),
        BOOL_FLAG("tie-weights", s->tie_weights, "output head shares the token embedding"),
        DBL_FLAG("dropout", s->dropout, "dropout probability", NULL, 0, 0.99),
        CHOICE_FLAG("optimizer", s->optimizer, "optimizer", charlm_optimizer_choices),
        DBL_FLAG("lr", s->lr, "peak learning rate", NULL, 1e-12, 10),
        DBL_FLAG("min-lr", s->min_lr, "learning rate at the end of the cosine decay", NULL, 0, 10),
        INT_FLAG("warmup-steps", s->warmup_steps, "linear warmup length", "steps", 0, 1e9),
        INT_FLAG("lr-decay-steps", s->lr_decay_steps, "step where the cosine decay ends (0: "
                 "--steps; a resumed run keeps its first value)", "steps", 0, 1e9),
        DBL_FLAG("beta1", s->beta1, "Adam first-moment decay", NULL, 0, 0.999999),
        DBL_FLAG("beta2", s->beta2, "Adam second-moment decay", NULL, 0, 0.999999),
        DBL_FLAG("eps", s->eps, "Adam denominator term", NULL, 0, 1),
        DBL_FLAG("weight-decay", s->weight_decay, "weight decay coefficient", NULL, 0, 10),
        BOOL_FLAG("decay-embeddings", s->decay_embeddings,
                  "apply weight decay to embedding tables too (as nanoGPT)"),
        DBL_FLAG("momentum", s->momentum, "SGD momentum", NULL, 0, 0.999999),
        BOOL_FLAG("nesterov", s->nesterov, "SGD with Nesterov momentum"),
        DBL_FLAG("grad-clip", s->grad_clip, "clip the global gradient norm to this (0: off)", NULL,
                 0, 1e9),
        DBL_FLAG("val-fraction", s->val_fraction, "share of the text kept for validation", NULL,
                 1e-6, 0.999999),
        INT_FLAG("seed", s->seed, "random seed for weights, batches and dropout", NULL, 0, 9e18),
        INT_FLAG("threads", s->threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
        INT_FLAG("eval-interval", s->eval_interval, "evaluate every this many steps", "steps", 1,
                 1e9),
        INT_FLAG("eval-iters", s->eval_iters, "batches per split in an evaluation", "batches", 1,
                 1e6),
        INT_FLAG("final-eval-iters", s->final_eval_iters,
                 "batches per split in the final evaluation", "batches", 1, 1e6),
        INT_FLAG("log-interval", s->log_interval, "log every this many steps", "steps", 1, 1e9),
        INT_FLAG("ckpt-interval", s->ckpt_interval, "checkpoint every this many steps (0: at "
                 "each evaluation)", "steps", 0, 1e9),
        INT_FLAG("keep-last", s->keep_last, "step checkpoints to keep", "files", 1, 1e6),
        STR_FLAG("resume", f->resume, "continue training from this checkpoint", false),
        STR_FLAG("init-from", f->init_from, "start from this checkpoint's weights with a fresh "
                 "optimizer and schedule", false),
        BOOL_FLAG("skip-nonfinite", f->skip_nonfinite,
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

static int load_corpus(charlm_run *run, const char *command, bool data_given, FILE *err) {
    const charlm_settings *s = &run->settings;
    if (tg_text_corpus_load(s->data, &run->corpus) != TG_OK) {
        fprintf(err, "%s: %s\n", command, tg_last_error());
        if (!data_given) {
            fprintf(err, "%s: that path comes from the checkpoint; pass --data with the text "
                    "the model was trained on\n", command);
        }
        return 1;
    }
    if (tg_text_corpus_split(run->corpus, 1.0 - s->val_fraction, (int)s->block_size,
                             &run->train_split, &run->val_split) != TG_OK) {
        fprintf(err, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    return 0;
}

static bool same_vocab(const tg_text_vocab *a, const tg_text_vocab *b) {
    int n = tg_text_vocab_size(a);
    return n == tg_text_vocab_size(b) &&
           memcmp(tg_text_vocab_code_points(a), tg_text_vocab_code_points(b),
                  (size_t)n * sizeof(uint32_t)) == 0;
}

/* Checks that the corpus has the vocabulary the checkpoint's model uses. */
static int check_vocab(const charlm_run *run, tg_checkpoint_reader *r, const char *path,
                       FILE *err) {
    tg_text_vocab *stored = NULL;
    if (charlm_vocab_load(r, path, &stored) != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        return 1;
    }
    const tg_text_vocab *current = tg_text_corpus_vocab(run->corpus);
    bool same = same_vocab(stored, current);
    if (!same) {
        fprintf(err, "charlm train: the vocabulary of '%s' (%d characters) differs from that of "
                "checkpoint '%s' (%d characters); use the text the model was trained on\n",
                run->settings.data, tg_text_vocab_size(current), path,
                tg_text_vocab_size(stored));
    }
    tg_text_vocab_free(stored);
    return same ? 0 : 1;
}

/* Opens a checkpoint for --resume or --init-from and reads its settings.
 * Returns an exit code: 2 when a flag contradicts the checkpoint. */
static int open_for_training(train_flags *f, const char *path, bool model_only,
                             tg_checkpoint_reader **reader, FILE *err) {
    tg_status status;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, CHARLM_KIND, &status);
    if (r == NULL) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        return 1;
    }
    status = charlm_settings_load(r, path, &f->s, model_only, flag_given, f);
    if (status != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        tg_checkpoint_close(r);
        return status == TG_ERR_INVALID ? 2 : 1;
    }
    *reader = r;
    return 0;
}

/* Fills the settings that follow from others and checks them all, before
 * any file is written. r is the checkpoint to resume from, or NULL. */
static int finish_settings(train_flags *f, tg_checkpoint_reader *r, FILE *err) {
    charlm_settings *s = &f->s;
    if (s->data[0] == '\0') {
        fprintf(err, "charlm train: --data is required; give the text file to train on\n");
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
    if (charlm_settings_validate(s) != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        return 2;
    }
    if (f->resume != NULL && tg_checkpoint_step(r) >= s->steps) {
        fprintf(err, "charlm train: checkpoint '%s' is already at step %lld and --steps is %ld; "
                "pass a larger --steps to train further\n", f->resume,
                (long long)tg_checkpoint_step(r), s->steps);
        return 2;
    }
    return 0;
}

static int build_model(charlm_run *run, const char *command, FILE *err) {
    gpt_config config;
    int vocab_size = tg_text_vocab_size(tg_text_corpus_vocab(run->corpus));
    if (charlm_model_config(&run->settings, vocab_size, &config) != TG_OK) {
        fprintf(err, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    tg_rng init_rng;
    tg_rng_seed(&init_rng, (uint64_t)run->settings.seed);
    if (gpt_init(&run->model, &config, &init_rng) != TG_OK) {
        fprintf(err, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    return 0;
}

/* Builds the model and its training state, then loads the weights of r (and
 * for --resume the rest of the run) when r is not NULL. */
/* Stores the text's absolute path in the settings, and so in the
 * checkpoints, so that eval and --resume find it from any folder. Messages
 * before this point show the path as the user typed it. */
static void store_absolute_data_path(charlm_run *run) {
    char absolute[PATH_MAX];
    if (realpath(run->settings.data, absolute) != NULL) {
        charlm_settings_set_data(&run->settings, absolute);
    }
}

static int build_run(charlm_run *run, tg_checkpoint_reader *r, const char *from, bool resume,
                     bool data_given, FILE *err) {
    if (load_corpus(run, "charlm train", data_given, err) != 0) {
        return 1;
    }
    if (r != NULL && check_vocab(run, r, from, err) != 0) {
        return 1;
    }
    if (build_model(run, "charlm train", err) != 0) {
        return 1;
    }
    if (charlm_run_start_training(run) != TG_OK) {
        fprintf(err, "charlm train: %s\n", tg_last_error());
        return 1;
    }
    if (r != NULL) {
        tg_status status = charlm_model_load(r, &run->model);
        if (status == TG_OK && resume) {
            status = charlm_run_restore_training(run, r, from);
        }
        if (status != TG_OK) {
            fprintf(err, "charlm train: %s\n", tg_last_error());
            return 1;
        }
    }
    store_absolute_data_path(run);
    return 0;
}

static int command_train(int argc, char **argv) {
    train_flags f;
    memset(&f, 0, sizeof f);
    default_settings(&f.s);
    train_flag_table(&f);
    int parsed = cli_parse(f.table, f.n, argc, argv, 2, "charlm train",
                           "Train a character-level GPT on a text file.", stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    if (f.resume != NULL && f.init_from != NULL) {
        fprintf(stderr, "charlm train: --resume and --init-from exclude each other; --resume "
                "continues a run, --init-from starts a new one from its weights\n");
        return 2;
    }
    if (f.data != NULL && charlm_settings_set_data(&f.s, f.data) != TG_OK) {
        fprintf(stderr, "charlm train: %s\n", tg_last_error());
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
    charlm_run run;
    memset(&run, 0, sizeof run);
    run.settings = f.s;
    if (code == 0) {
        code = build_run(&run, r, from, f.resume != NULL, f.data != NULL, stderr);
    }
    tg_checkpoint_close(r);
    int lock = -1;
    if (code == 0) {
        code = run_folder_open("charlm train", f.out, f.resume, run.settings.steps, &lock, stderr);
    }
    if (code == 0) {
        code = charlm_train(&run, f.out, f.resume != NULL, f.skip_nonfinite, stdout, stderr);
    }
    run_lock_release(lock);
    charlm_run_free(&run);
    return code;
}

/* ---- Loading a model for sample, eval and inspect ------------------------- */

typedef struct loaded_model {
    charlm_settings settings;
    tg_text_vocab *vocab;
    gpt_model model;
    int64_t step;
} loaded_model;

static bool nothing_given(const char *name, void *ctx) {
    (void)name;
    (void)ctx;
    return false;
}

static int load_model(const char *path, const char *command, loaded_model *m) {
    memset(m, 0, sizeof *m);
    default_settings(&m->settings);
    tg_status status;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, CHARLM_KIND, &status);
    if (r == NULL) {
        fprintf(stderr, "%s: %s\n", command, tg_last_error());
        return 1;
    }
    gpt_config config;
    status = charlm_settings_load(r, path, &m->settings, false, nothing_given, NULL);
    if (status == TG_OK) {
        status = charlm_vocab_load(r, path, &m->vocab);
    }
    if (status == TG_OK) {
        status = charlm_model_config(&m->settings, tg_text_vocab_size(m->vocab), &config);
        if (status != TG_OK) {
            status = tg_set_error(status, "checkpoint '%s' holds an invalid configuration: %s",
                                  path, tg_last_error());
        }
    }
    if (status == TG_OK) {
        tg_rng rng;
        tg_rng_seed(&rng, 0);
        status = gpt_init(&m->model, &config, &rng);
    }
    if (status == TG_OK) {
        status = charlm_model_load(r, &m->model);
    }
    m->step = tg_checkpoint_step(r);
    tg_checkpoint_close(r);
    if (status != TG_OK) {
        fprintf(stderr, "%s: %s\n", command, tg_last_error());
        gpt_free(&m->model);
        tg_text_vocab_free(m->vocab);
        return 1;
    }
    return 0;
}

static void loaded_model_free(loaded_model *m) {
    gpt_free(&m->model);
    tg_text_vocab_free(m->vocab);
}

/* ---- sample --------------------------------------------------------------- */

static int command_sample(int argc, char **argv) {
    const char *checkpoint = NULL;
    const char *prompt = "\n";
    long length = 500;
    double temperature = 0.8;
    long top_k = 0;
    long seed = 1337;
    long threads = 1;
    cli_flag table[] = {
        STR_FLAG("checkpoint", checkpoint, "checkpoint to sample from", true),
        STR_FLAG("prompt", prompt, "text to continue (default: a newline, or the first "
                 "vocabulary character if the text has none); every character must occur in the "
                 "training text", false),
        INT_FLAG("length", length, "characters to generate", "characters", 0, 1e8),
        DBL_FLAG("temperature", temperature, "divide the logits by this; lower is more "
                 "conservative (must be > 0)", NULL, 0, 1e6),
        INT_FLAG("top-k", top_k, "sample among the k most likely characters (0: all)", NULL, 0,
                 1e9),
        INT_FLAG("seed", seed, "random seed", NULL, 0, 9e18),
        INT_FLAG("threads", threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
    };
    int n = (int)(sizeof table / sizeof table[0]);
    int parsed = cli_parse(table, n, argc, argv, 2, "charlm sample",
                           "Generate text from a trained checkpoint; it streams as it is written.",
                           stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    if (!(temperature > 0.0)) {
        fprintf(stderr, "charlm sample: --temperature %g is invalid; it must be greater than 0 "
                "(for the most likely character each time, use --top-k 1)\n", temperature);
        return 2;
    }
    omp_set_num_threads(threads > 0 ? (int)threads : omp_get_num_procs());
    loaded_model m;
    if (load_model(checkpoint, "charlm sample", &m) != 0) {
        return 1;
    }
    int V = tg_text_vocab_size(m.vocab);
    if (top_k > V) {
        fprintf(stderr, "charlm sample: --top-k %ld exceeds the vocabulary of %d characters; "
                "use a value from 1 to %d, or 0 for all\n", top_k, V, V);
        loaded_model_free(&m);
        return 2;
    }
    /* The default prompt is a newline; a text without newlines starts from
     * its first vocabulary character instead. */
    char first_character[8];
    if (!cli_find(table, n, "prompt")->seen && tg_text_vocab_id(m.vocab, '\n') < 0) {
        int32_t first = 0;
        size_t bytes = 0;
        tg_text_vocab_decode(m.vocab, &first, 1, first_character, sizeof first_character, &bytes);
        first_character[bytes] = '\0';
        prompt = first_character;
    }
    charlm_sample_options options = {
        .prompt = prompt,
        .length = length,
        .temperature = temperature,
        .top_k = top_k,
        .seed = (uint64_t)seed,
    };
    int code = 0;
    if (charlm_generate(&m.model, m.vocab, &options, stdout) != TG_OK) {
        fprintf(stderr, "charlm sample: %s\n", tg_last_error());
        code = 2;
    }
    loaded_model_free(&m);
    return code;
}

/* ---- eval ----------------------------------------------------------------- */

static int command_eval(int argc, char **argv) {
    const char *checkpoint = NULL;
    const char *data = NULL;
    long iters = 200;
    long batch_size = 0;
    long seed = 1337;
    long threads = 0;
    cli_flag table[] = {
        STR_FLAG("checkpoint", checkpoint, "checkpoint to evaluate", true),
        STR_FLAG("data", data, "text file (default: the one the checkpoint was trained on)",
                 false),
        INT_FLAG("eval-iters", iters, "batches per split", "batches", 1, 1e7),
        INT_FLAG("batch-size", batch_size, "sequences per batch (0: the training batch size)",
                 "sequences", 0, 65536),
        INT_FLAG("seed", seed, "random seed of the evaluation batches", NULL, 0, 9e18),
        INT_FLAG("threads", threads, "OpenMP threads (0: all cores)", "threads", 0, 1024),
    };
    int n = (int)(sizeof table / sizeof table[0]);
    int parsed = cli_parse(table, n, argc, argv, 2, "charlm eval",
                           "Report a checkpoint's mean loss on the training and validation splits.",
                           stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    omp_set_num_threads(threads > 0 ? (int)threads : omp_get_num_procs());
    charlm_run run;
    memset(&run, 0, sizeof run);
    loaded_model m;
    if (load_model(checkpoint, "charlm eval", &m) != 0) {
        return 1;
    }
    run.settings = m.settings;
    int code = 0;
    if (data != NULL && charlm_settings_set_data(&run.settings, data) != TG_OK) {
        fprintf(stderr, "charlm eval: %s\n", tg_last_error());
        code = 2;
    }
    if (batch_size > 0) {
        run.settings.batch_size = batch_size;
    }
    if (code == 0) {
        code = load_corpus(&run, "charlm eval", data != NULL, stderr);
    }
    if (code == 0 && !same_vocab(tg_text_corpus_vocab(run.corpus), m.vocab)) {
        fprintf(stderr, "charlm eval: the vocabulary of '%s' (%d characters) differs from that "
                "of checkpoint '%s' (%d characters); evaluate on the text the model was "
                "trained on\n", run.settings.data,
                tg_text_vocab_size(tg_text_corpus_vocab(run.corpus)), checkpoint,
                tg_text_vocab_size(m.vocab));
        code = 1;
    }
    if (code == 0) {
        run.model = m.model;
        tg_text_sampler sampler;
        size_t tokens = (size_t)run.settings.batch_size * (size_t)run.settings.block_size;
        int32_t *x = malloc(tokens * sizeof *x);
        int32_t *y = malloc(tokens * sizeof *y);
        tg_tape *tape = tg_tape_new();
        double train_loss = NAN;
        double val_loss = NAN;
        tg_status status = x && y && tape ? TG_OK : TG_ERR_NOMEM;
        if (status == TG_OK) {
            tg_text_sampler_init(&sampler, (uint64_t)seed);
            status = charlm_estimate_loss(&run, tape, &sampler, &run.train_split, iters,
                                          run.settings.batch_size, x, y, &train_loss);
        }
        if (status == TG_OK) {
            tg_text_sampler_init(&sampler, (uint64_t)seed);
            status = charlm_estimate_loss(&run, tape, &sampler, &run.val_split, iters,
                                          run.settings.batch_size, x, y, &val_loss);
        }
        if (status == TG_OK) {
            printf("step %lld: train loss %.4f, val loss %.4f (%ld batches of %ld x %ld per "
                   "split)\n", (long long)m.step, train_loss, val_loss, iters,
                   run.settings.batch_size, run.settings.block_size);
        } else {
            fprintf(stderr, "charlm eval: %s\n", tg_last_error());
            code = 1;
        }
        free(x);
        free(y);
        tg_tape_free(tape);
        memset(&run.model, 0, sizeof run.model);
    }
    tg_text_corpus_free(run.corpus);
    loaded_model_free(&m);
    return code;
}

/* ---- inspect -------------------------------------------------------------- */

static int command_inspect(int argc, char **argv) {
    const char *checkpoint = NULL;
    cli_flag table[] = {
        STR_FLAG("checkpoint", checkpoint, "checkpoint to describe", true),
    };
    int parsed = cli_parse(table, 1, argc, argv, 2, "charlm inspect",
                           "Print a checkpoint's step, configuration and parameter table.",
                           stdout, stderr);
    if (parsed != 0) {
        return parsed == 2 ? 0 : 2;
    }
    loaded_model m;
    if (load_model(checkpoint, "charlm inspect", &m) != 0) {
        return 1;
    }
    const charlm_settings *s = &m.settings;
    printf("checkpoint   %s\n", checkpoint);
    printf("step         %lld of %ld\n", (long long)m.step, s->steps);
    printf("data         %s (vocabulary %d characters)\n", s->data, tg_text_vocab_size(m.vocab));
    printf("model        %ld layers, %ld heads, embedding %ld, width %d, context %ld, %s "
           "positions (%s), %s GELU, bias %s, %s head, dropout %g\n",
           s->n_layer, s->n_head, s->n_embd, m.model.width, s->block_size, s->pos,
           s->pos_combine, s->gelu, s->bias ? "on" : "off", s->tie_weights ? "tied" : "separate",
           s->dropout);
    printf("optimizer    %s, lr %g to %g, warmup %ld, decay to step %ld, weight decay %g, "
           "clip %g, batch %ld, seed %ld\n",
           s->optimizer, s->lr, s->min_lr, s->warmup_steps, s->lr_decay_steps, s->weight_decay,
           s->grad_clip, s->batch_size, s->seed);
    printf("\n%-44s %-14s %10s\n", "parameter", "shape", "count");
    for (int i = 0; i < m.model.params.count; i++) {
        const tg_named_param *p = &m.model.params.items[i];
        char shape[64];
        tg_shape_format(shape, sizeof shape, p->tensor->ndim, p->tensor->shape);
        printf("%-44s %-14s %10zu\n", p->name, shape, p->tensor->size);
    }
    printf("%-44s %-14s %10zu\n", "total", "", tg_param_list_numel(&m.model.params));
    loaded_model_free(&m);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: charlm <command> [options]\n\n"
            "Train and sample a character-level GPT.\n\n"
            "commands:\n"
            "  train     train a model on a text file\n"
            "  sample    generate text from a checkpoint\n"
            "  eval      report a checkpoint's loss on both splits\n"
            "  inspect   print a checkpoint's configuration and parameters\n\n"
            "Run 'charlm <command> --help' for the options of a command.\n");
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
    fprintf(stderr, "charlm: writing to standard output failed: %s\n", strerror(err));
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
        fprintf(stderr, "charlm: unknown command '%s'; expected train, sample, eval or inspect\n",
                command);
    }
    return finish_stdout(code);
}
