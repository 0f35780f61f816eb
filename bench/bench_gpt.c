/* Benchmark of one training step of the character-level GPT.
 *
 * A step is what `charlm train` runs per iteration: sample a batch, forward,
 * backward, clip the global gradient norm, AdamW step, zero the gradients and
 * reset the tape. The defaults are nanoGPT's CPU configuration for
 * character-level Shakespeare: 4 layers, 4 heads, width 128, context 64,
 * batch 12, AdamW (0.9, 0.99) with weight decay 0.1 on every matrix, clip 1.
 * The data is any text file, e.g. tiny Shakespeare, given with --data.
 *
 * The program times --steps steps after --warmup steps and prints the report
 * of bench_common.h. With --phases it also prints the median time of each
 * part of the step. Unless the environment sets GOMP_SPINCOUNT or
 * OMP_WAIT_POLICY, it first re-executes itself with GOMP_SPINCOUNT=1000
 * (spin_wait_limit in models/common).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"
#include "optim/clip.h"
#include "run.h"
#include "spin_wait.h"

/* Parts of a step timed separately with --phases. */
enum {
    PHASE_BATCH,
    PHASE_FORWARD,
    PHASE_BACKWARD,
    PHASE_CLIP,
    PHASE_OPTIMIZER,
    PHASE_RESET,
    PHASE_COUNT
};

static const char *const phase_names[PHASE_COUNT] = {
    "batch sampling", "forward", "backward", "gradient clipping", "AdamW step",
    "zero grads and tape reset",
};

typedef struct bench_options {
    const char *data;
    long threads;
    long steps;
    long warmup;
    long batch_size;
    long block_size;
    long n_layer;
    long n_head;
    long n_embd;
    long seed;
    long sgemm_repeats;
    bool phases;
} bench_options;

/* The settings `charlm train` uses by default, with the model and batch from
 * the options. */
static void fill_settings(charlm_settings *s, const bench_options *o) {
    memset(s, 0, sizeof *s);
    s->n_layer = o->n_layer;
    s->n_head = o->n_head;
    s->n_embd = o->n_embd;
    s->block_size = o->block_size;
    s->pos_dim = 32;
    s->pos = "learned";
    s->pos_combine = "add";
    s->gelu = "tanh";
    s->bias = true;
    s->tie_weights = true;
    s->optimizer = "adamw";
    s->lr = 1e-3;
    s->min_lr = 1e-4;
    s->beta1 = 0.9;
    s->beta2 = 0.99;
    s->eps = 1e-8;
    s->weight_decay = 0.1;
    s->grad_clip = 1.0;
    s->decay_embeddings = true;
    s->warmup_steps = 100;
    s->lr_decay_steps = 2000;
    s->steps = 2000;
    s->batch_size = o->batch_size;
    s->val_fraction = 0.1;
    s->seed = o->seed;
    s->threads = o->threads;
    charlm_settings_set_data(s, o->data);
}

/* Loads the corpus and builds the model, optimizer and samplers. Prints the
 * error and returns 1 on failure. */
static int build_run(charlm_run *run, const bench_options *o) {
    memset(run, 0, sizeof *run);
    fill_settings(&run->settings, o);
    const charlm_settings *s = &run->settings;
    tg_status status = tg_text_corpus_load(s->data, &run->corpus);
    if (status == TG_OK) {
        status = tg_text_corpus_split(run->corpus, 1.0 - s->val_fraction, (int)s->block_size,
                                      &run->train_split, &run->val_split);
    }
    gpt_config config;
    if (status == TG_OK) {
        int vocab_size = tg_text_vocab_size(tg_text_corpus_vocab(run->corpus));
        status = charlm_model_config(s, vocab_size, &config);
    }
    if (status == TG_OK) {
        tg_rng init_rng;
        tg_rng_seed(&init_rng, (uint64_t)s->seed);
        status = gpt_init(&run->model, &config, &init_rng);
    }
    if (status == TG_OK) {
        status = charlm_run_start_training(run);
    }
    if (status != TG_OK) {
        fprintf(stderr, "bench_gpt: %s\n", tg_last_error());
        return 1;
    }
    return 0;
}

/* Runs one training step; adds the seconds of each part into phase_s when
 * it is not NULL. Returns TG_OK or the first error. */
static tg_status train_step(charlm_run *run, tg_tape *tape, int32_t *x, int32_t *y,
                            double *phase_s) {
    const charlm_settings *s = &run->settings;
    int B = (int)s->batch_size;
    int T = (int)s->block_size;
    double marks[PHASE_COUNT + 1];
    marks[0] = bench_now_s();

    tg_status status = tg_text_sampler_next(&run->train_sampler, &run->train_split, B, T, x, y);
    marks[1] = bench_now_s();
    tg_tensor *loss = NULL;
    if (status == TG_OK) {
        tg_mode mode = {.training = true, .rng = &run->dropout_rng};
        loss = gpt_loss(tape, &run->model, x, y, B, T, &mode);
    }
    marks[2] = bench_now_s();
    if (status == TG_OK) {
        status = tg_tape_backward(tape, loss);
    }
    marks[3] = bench_now_s();
    double norm = 0.0;
    if (status == TG_OK) {
        status = tg_clip_grad_norm(&run->model.params, s->grad_clip, &norm);
    }
    marks[4] = bench_now_s();
    if (status == TG_OK) {
        status = tg_optimizer_step(run->optimizer, tg_lr_at(&run->schedule, run->step));
        run->step++;
    }
    marks[5] = bench_now_s();
    tg_param_list_zero_grad(&run->model.params);
    tg_tape_reset(tape);
    marks[6] = bench_now_s();

    if (phase_s != NULL) {
        for (int p = 0; p < PHASE_COUNT; p++) {
            phase_s[p] += marks[p + 1] - marks[p];
        }
    }
    return status;
}

/* ---- Counted work and memory ---------------------------------------------- */

/* Returns the floating-point operations of the matrix products of one step,
 * 2 M N K per product: per block the four linear layers (C -> 3C, C -> C,
 * C -> 4C, 4C -> C) and the attention products Q K^T and P V over the whole
 * T x T score matrix; then the output head C -> V. The backward of each
 * product is two products of the same size (input and weight gradients).
 * Elementwise work (LayerNorm, GELU, softmax, AdamW) is left out; it adds
 * about 1 % here. */
static double step_flops(const gpt_model *m, int B, int T) {
    double N = (double)B * T;
    double C = m->width;
    double V = m->config.vocab_size;
    double linear = 2.0 * N * C * (3 * C + C + 4 * C) + 2.0 * N * (4 * C) * C;
    double attention = 2.0 * (2.0 * B * (double)T * T * C);
    double forward = m->config.n_layer * (linear + attention) + 2.0 * N * C * V;
    return 3.0 * forward;
}

/* Returns the bytes of the activations that a backward pass needs and that a
 * straightforward implementation saves, recomputing nothing. Per block these
 * are the LayerNorm inputs and their row mean and rstd, the inputs of the
 * four linear layers, q, k and v, the attention probabilities (B, H, T, T)
 * and the GELU input. Then come ln_f's input and statistics, the head's
 * input, the logits and the token ids. Gradients of activations are not
 * counted, because a backward can reuse a few buffers for them. */
static size_t min_activation_bytes(const gpt_model *m, int B, int T) {
    size_t N = (size_t)B * (size_t)T;
    size_t C = (size_t)m->width;
    size_t H = (size_t)m->config.n_head;
    size_t V = (size_t)m->config.vocab_size;
    size_t per_block = N * C          /* ln_1 input, the residual stream */
                       + 2 * N        /* ln_1 mean and rstd */
                       + N * C        /* c_attn input */
                       + 3 * N * C    /* q, k, v */
                       + (size_t)B * H * (size_t)T * (size_t)T  /* probabilities */
                       + N * C        /* attention output, c_proj input */
                       + N * C        /* ln_2 input */
                       + 2 * N        /* ln_2 mean and rstd */
                       + N * C        /* c_fc input */
                       + 4 * N * C    /* GELU input */
                       + 4 * N * C;   /* GELU output, mlp.c_proj input */
    size_t head = N * C + 2 * N + N * C + N * V;
    return ((size_t)m->config.n_layer * per_block + head) * sizeof(tg_scalar) +
           N * sizeof(int32_t);
}

/* The linear-layer products of one block and the head, forward and backward,
 * as the sgemm calls of a step see them. */
static int step_gemm_shapes(const gpt_model *m, int B, int T, bench_gemm_shape *shapes) {
    int N = B * T;
    int C = m->width;
    int sizes[5][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}, {C, m->config.vocab_size}};
    int n = 0;
    for (int i = 0; i < 5; i++) {
        int in = sizes[i][0];
        int out = sizes[i][1];
        shapes[n++] = (bench_gemm_shape){N, out, in, 0, 1};  /* y = x W^T */
        shapes[n++] = (bench_gemm_shape){N, in, out, 0, 0};  /* dx = dy W */
        shapes[n++] = (bench_gemm_shape){out, in, N, 1, 0};  /* dW = dy^T x */
    }
    return n;
}

/* ---- Main ------------------------------------------------------------------ */

static void print_phases(const double *phase_s, int steps, double median_step_ms, FILE *out) {
    double total = 0.0;
    for (int p = 0; p < PHASE_COUNT; p++) {
        total += phase_s[p];
    }
    fprintf(out, "phases (mean over the timed steps; the median step is %.2f ms):\n",
            median_step_ms);
    for (int p = 0; p < PHASE_COUNT; p++) {
        fprintf(out, "  %-26s %7.2f ms  %5.1f %%\n", phase_names[p], 1e3 * phase_s[p] / steps,
                100.0 * phase_s[p] / total);
    }
}

static int parse_options(bench_options *o, int argc, char **argv) {
    *o = (bench_options){
        .threads = 0,
        .steps = 50,
        .warmup = 10,
        .batch_size = 12,
        .block_size = 64,
        .n_layer = 4,
        .n_head = 4,
        .n_embd = 128,
        .seed = 1337,
        .sgemm_repeats = 20,
    };
    cli_flag flags[] = {
        {"data", CLI_STRING, &o->data, "text file to sample batches from, e.g. tiny Shakespeare",
         NULL, 0, 0, NULL, true, false},
        {"threads", CLI_INT, &o->threads, "OpenMP threads (0: all cores)", "threads", 0, 1024,
         NULL, false, false},
        {"steps", CLI_INT, &o->steps, "timed steps", "steps", 1, 1e6, NULL, false, false},
        {"warmup", CLI_INT, &o->warmup, "untimed steps before the timed ones", "steps", 1, 1e6,
         NULL, false, false},
        {"batch-size", CLI_INT, &o->batch_size, "sequences per step", "sequences", 1, 1e5,
         NULL, false, false},
        {"block-size", CLI_INT, &o->block_size, "context length", "characters", 1, 1e5, NULL,
         false, false},
        {"n-layer", CLI_INT, &o->n_layer, "Transformer blocks", NULL, 1, 1000, NULL, false,
         false},
        {"n-head", CLI_INT, &o->n_head, "attention heads per block", NULL, 1, 1000, NULL, false,
         false},
        {"n-embd", CLI_INT, &o->n_embd, "model width", NULL, 1, 1e5, NULL, false, false},
        {"seed", CLI_INT, &o->seed, "seed for weights and batches", NULL, 0, 1e18, NULL, false,
         false},
        {"sgemm-repeats", CLI_INT, &o->sgemm_repeats, "timed passes over the sgemm shapes",
         "passes", 1, 1e6, NULL, false, false},
        {"phases", CLI_BOOL, &o->phases, "also print the time of each part of the step", NULL,
         0, 0, NULL, false, false},
    };
    return cli_parse(flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, 1, "bench_gpt",
                     "Time training steps of the character-level GPT (nanoGPT's CPU "
                     "configuration by default).", stdout, stderr);
}

static int run_benchmark(charlm_run *run, const bench_options *o) {
    int B = (int)o->batch_size;
    int T = (int)o->block_size;
    int steps = (int)o->steps;
    tg_tape *tape = tg_tape_new();
    int32_t *x = malloc((size_t)B * (size_t)T * sizeof *x);
    int32_t *y = malloc((size_t)B * (size_t)T * sizeof *y);
    double *step_ms = malloc((size_t)steps * sizeof *step_ms);
    double phase_s[PHASE_COUNT] = {0};
    if (tape == NULL || x == NULL || y == NULL || step_ms == NULL) {
        fprintf(stderr, "bench_gpt: out of memory allocating the step buffers\n");
        return 1;
    }

    tg_status status = TG_OK;
    for (long i = 0; i < o->warmup && status == TG_OK; i++) {
        status = train_step(run, tape, x, y, NULL);
    }
    tg_tape_stats before = tg_tape_get_stats(tape);
    long heap_before = bench_heap_calls();
    double cpu_before_s = bench_cpu_s();
    for (int i = 0; i < steps && status == TG_OK; i++) {
        double start = bench_now_s();
        status = train_step(run, tape, x, y, o->phases ? phase_s : NULL);
        step_ms[i] = 1e3 * (bench_now_s() - start);
    }
    double cpu_after_s = bench_cpu_s();
    long heap_after = bench_heap_calls();
    tg_tape_stats after = tg_tape_get_stats(tape);
    if (status != TG_OK) {
        fprintf(stderr, "bench_gpt: step failed: %s\n", tg_last_error());
        return 1;
    }

    bench_report r = {
        .name = "charlm GPT",
        .threads = omp_get_max_threads(),
        .steps = steps,
        .warmup_steps = (int)o->warmup,
        .cpu_ms_per_step = 1e3 * (cpu_after_s - cpu_before_s) / steps,
        .items_per_step = (double)B * T,
        .item_name = "tokens",
        .flops_per_step = step_flops(&run->model, B, T),
        .tape_allocations_per_step = (double)(after.heap_allocations - before.heap_allocations) /
                                     steps,
        .heap_calls_per_step = heap_before < 0 ? -1.0
                                               : (double)(heap_after - heap_before) / steps,
        .arena_peak_bytes = after.arena_peak_bytes,
        .min_activation_bytes = min_activation_bytes(&run->model, B, T),
    };
    size_t numel = tg_param_list_numel(&run->model.params);
    /* Parameters, gradients and AdamW's two moments. */
    r.min_state_bytes = 4 * numel * sizeof(tg_scalar);
    r.param_state_bytes = r.min_state_bytes;
    r.median_step_ms = bench_median(step_ms, steps);  /* sorts step_ms */
    r.min_step_ms = step_ms[0];
    r.max_step_ms = step_ms[steps - 1];

    bench_gemm_shape shapes[15];
    int n_shapes = step_gemm_shapes(&run->model, B, T, shapes);
    r.sgemm = bench_measure_sgemm(shapes, n_shapes, (int)o->sgemm_repeats);
    r.peak_rss_bytes = bench_peak_rss_bytes();

    const gpt_config *c = &run->model.config;
    printf("model              %d layers, %d heads, width %d, context %d, batch %d, vocabulary "
           "%d, %zu parameters\n", c->n_layer, c->n_head, run->model.width, T, B, c->vocab_size,
           numel);
    char spin[128];
    printf("spin-waiting       %s\n", spin_wait_describe(spin, sizeof spin));
    bench_report_print(&r, stdout);
    if (o->phases) {
        print_phases(phase_s, steps, r.median_step_ms, stdout);
    }
    free(step_ms);
    free(x);
    free(y);
    tg_tape_free(tape);
    return 0;
}

int main(int argc, char **argv) {
    spin_wait_limit(argv);
    bench_options o;
    int code = parse_options(&o, argc, argv);
    if (code != 0) {
        return code == 2 ? 0 : 1;
    }
    if (o.threads > 0) {
        omp_set_num_threads((int)o.threads);
    }
    charlm_run run;
    code = build_run(&run, &o);
    if (code == 0) {
        code = run_benchmark(&run, &o);
    }
    charlm_run_free(&run);
    return code;
}
