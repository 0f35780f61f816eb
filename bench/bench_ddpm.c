/* Benchmark of one training step of the diffusion model's patch Transformer.
 *
 * A step is ddpm_train_step, what `ddpm train` runs per iteration. It draws a
 * batch of images from the epoch sampler with their timesteps and noise,
 * noises the images, runs forward and backward, clips the global gradient
 * norm and takes an AdamW step. Then it updates the EMA when --ema is above
 * 0, zeroes the gradients and resets the tape.
 * The defaults are those of `ddpm train`: 4 x 4 patches of 28 x 28 images,
 * width 128, 4 blocks, 4 heads, fixed 2-D sinusoidal positions, tanh GELU, a
 * timestep embedding 128 -> 512 -> 128, 1000 linear betas, batch 64, AdamW
 * with lr 1e-3, betas (0.9, 0.999) and no weight decay, clip 1, no EMA. The
 * data is a folder of IDX image files, e.g. Fashion-MNIST, given with --data.
 *
 * The program times --steps steps after --warmup steps and prints the report
 * of bench_common.h. Unless the environment sets GOMP_SPINCOUNT or
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
#include "run.h"
#include "spin_wait.h"
#include "train.h"

typedef struct bench_options {
    const char *data;
    long threads;
    long steps;
    long warmup;
    long batch_size;
    long width;
    long depth;
    long heads;
    long patch;
    double ema;
    long seed;
    long sgemm_repeats;
} bench_options;

/* The settings `ddpm train` uses by default, with the model, batch and EMA
 * from the options. */
static void fill_settings(ddpm_settings *s, const bench_options *o) {
    memset(s, 0, sizeof *s);
    s->arch = "dit";
    s->patch = o->patch;
    s->width = o->width;
    s->depth = o->depth;
    s->heads = o->heads;
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
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->weight_decay = 0.0;
    s->grad_clip = 1.0;
    s->ema = o->ema;

    s->steps = o->warmup + o->steps;
    s->lr_decay_steps = s->steps;
    s->batch_size = o->batch_size;
    s->data = o->data;
    s->val_count = 1;
    s->seed = o->seed;
    s->threads = o->threads;
}

/* Loads the images and builds the model, optimizer, EMA and samplers. Prints
 * the error and returns 1 on failure. */
static int build_run(ddpm_run *run, const bench_options *o) {
    memset(run, 0, sizeof *run);
    fill_settings(&run->settings, o);
    ddpm_settings *s = &run->settings;
    tg_status status = ddpm_data_load(&run->data, s->data, (int)s->val_count);
    if (status == TG_OK && run->data.image_size == 0) {
        status = tg_set_error(TG_ERR_INVALID, "--data %s is a set of points, not images; "
                              "give a folder of IDX image files", s->data);
    }
    if (status == TG_OK) {
        s->data_dim = run->data.dim;
        s->image_size = run->data.image_size;
        status = ddpm_run_start(run);
    }
    if (status != TG_OK) {
        fprintf(stderr, "bench_ddpm: %s\n", tg_last_error());
        return 1;
    }
    return 0;
}

/* ---- Counted work and memory ---------------------------------------------- */

/* Sizes of the model that the counts below use. */
typedef struct dit_shape {
    double B;      /* images per step */
    double N;      /* tokens per image, (S / P)^2 */
    double C;      /* width */
    double H;      /* attention heads */
    double pixels; /* P * P values per patch */
    double D;      /* values per image */
    double F;      /* timestep sinusoid width */
    double E;      /* timestep embedding hidden width */
    double depth;
} dit_shape;

static dit_shape shape_of(const ddpm_model *m, int B) {
    const ddpm_model_config *c = &m->config;
    int grid = c->image_size / c->patch;
    return (dit_shape){
        .B = B,
        .N = (double)grid * grid,
        .C = c->width,
        .H = c->heads,
        .pixels = (double)c->patch * c->patch,
        .D = c->data_dim,
        .F = c->t_freq_dim,
        .E = c->t_hidden,
        .depth = c->depth,
    };
}

/* Returns the floating-point operations of the matrix products of one step,
 * 2 M N K per product (a multiply and an add per term), with M = B N rows
 * of tokens or B rows of timesteps:
 *   - per block, the four linear layers C -> 3C (q, k, v), C -> C (attention
 *     output), C -> 4C and 4C -> C (MLP), and the two attention products
 *     Q K^T and P V, each B H N^2 (C / H) multiply-adds
 *   - the patch embedding P^2 -> C and the head C -> P^2 on every token
 *   - the timestep embedding F -> E -> C on every image.
 * The backward of a product is two products of its size, one for the input
 * gradient and one for the weight gradient. The patch embedding and the
 * timestep embedding's first layer count one, because their inputs (pixels
 * and the fixed sinusoid) need no gradient. Elementwise work (LayerNorm,
 * softmax, GELU, adds, AdamW) is left out. At an estimated 20 operations per
 * element of each activation, forward and backward, it is about 3 % of the
 * products. */
static double step_flops(const ddpm_model *m, int B) {
    dit_shape s = shape_of(m, B);
    double tokens = s.B * s.N;
    double linear = 2.0 * tokens * s.C * (3 * s.C + s.C + 4 * s.C) +
                    2.0 * tokens * (4 * s.C) * s.C;
    double attention = 2.0 * (2.0 * s.B * s.N * s.N * s.C);
    double blocks = s.depth * (linear + attention);
    double head = 2.0 * tokens * s.C * s.pixels;
    double patch_embed = 2.0 * tokens * s.pixels * s.C;
    double t_fc1 = 2.0 * s.B * s.F * s.E;
    double t_fc2 = 2.0 * s.B * s.E * s.C;
    return 3.0 * (blocks + head + t_fc2) + 2.0 * (patch_embed + t_fc1);
}

/* Returns the bytes of the activations that a backward pass needs and that a
 * straightforward implementation saves, recomputing nothing:
 *   - the patches, which the patch embedding's weight gradient needs
 *   - the timestep sinusoid and the embedding's hidden layer before and
 *     after SiLU
 *   - per block, the LayerNorm inputs and their row mean and rstd, the inputs
 *     of the four linear layers, q, k and v, the attention probabilities
 *     (B, H, N, N) and the GELU input
 *   - ln_f's input and statistics, and the head's input
 *   - the prediction, the noise it is compared with, and the timesteps.
 * Gradients of activations are not counted, because a backward can reuse a
 * few buffers for them. */
static size_t min_activation_bytes(const ddpm_model *m, int B) {
    dit_shape s = shape_of(m, B);
    size_t tokens = (size_t)(s.B * s.N);
    size_t C = (size_t)s.C;
    size_t per_block = tokens * C          /* ln_1 input, the residual stream */
                       + 2 * tokens        /* ln_1 mean and rstd */
                       + tokens * C        /* q, k, v projection input */
                       + 3 * tokens * C    /* q, k, v */
                       + (size_t)(s.B * s.H * s.N * s.N)  /* probabilities */
                       + tokens * C        /* attention output, projection input */
                       + tokens * C        /* ln_2 input */
                       + 2 * tokens        /* ln_2 mean and rstd */
                       + tokens * C        /* MLP input */
                       + 4 * tokens * C    /* GELU input */
                       + 4 * tokens * C;   /* GELU output, second MLP layer input */
    size_t embed = tokens * (size_t)s.pixels + (size_t)(s.B * (s.F + 2 * s.E));
    size_t head = tokens * C + 2 * tokens + tokens * C;
    size_t loss = 2 * (size_t)(s.B * s.D);
    size_t floats = (size_t)s.depth * per_block + embed + head + loss;
    return floats * sizeof(tg_scalar) + (size_t)B * sizeof(int32_t);
}

/* The linear-layer products of one block, as the sgemm calls of a step see
 * them, forward and backward. They are 93 % of the counted work. */
static int step_gemm_shapes(const ddpm_model *m, int B, bench_gemm_shape *shapes) {
    dit_shape s = shape_of(m, B);
    int rows = (int)(s.B * s.N);
    int C = (int)s.C;
    int sizes[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        int in = sizes[i][0];
        int out = sizes[i][1];
        shapes[n++] = (bench_gemm_shape){rows, out, in, 0, 1};  /* y = x W^T */
        shapes[n++] = (bench_gemm_shape){rows, in, out, 0, 0};  /* dx = dy W */
        shapes[n++] = (bench_gemm_shape){out, in, rows, 1, 0};  /* dW = dy^T x */
    }
    return n;
}

/* ---- Main ------------------------------------------------------------------ */

static int parse_options(bench_options *o, int argc, char **argv) {
    *o = (bench_options){
        .threads = 0,
        .steps = 30,
        .warmup = 5,
        .batch_size = 64,
        .width = 128,
        .depth = 4,
        .heads = 4,
        .patch = 4,
        .ema = 0.0,
        .seed = 0,
        .sgemm_repeats = 10,
    };
    cli_flag flags[] = {
        {"data", CLI_STRING, &o->data, "folder of IDX image files "
         "(train-images-idx3-ubyte[.gz] and t10k-*), e.g. Fashion-MNIST", NULL, 0, 0, NULL, true,
         false},
        {"threads", CLI_INT, &o->threads, "OpenMP threads (0: all cores)", "threads", 0, 1024,
         NULL, false, false},
        {"steps", CLI_INT, &o->steps, "timed steps", "steps", 1, 1e6, NULL, false, false},
        {"warmup", CLI_INT, &o->warmup, "untimed steps before the timed ones", "steps", 1, 1e6,
         NULL, false, false},
        {"batch-size", CLI_INT, &o->batch_size, "images per step", "images", 1, 65536, NULL,
         false, false},
        {"width", CLI_INT, &o->width, "model width", NULL, 4, 65536, NULL, false, false},
        {"depth", CLI_INT, &o->depth, "Transformer blocks", NULL, 1, 1024, NULL, false, false},
        {"heads", CLI_INT, &o->heads, "attention heads per block", NULL, 1, 1024, NULL, false,
         false},
        {"patch", CLI_INT, &o->patch, "patch side", "pixels", 1, 1024, NULL, false, false},
        {"ema", CLI_DOUBLE, &o->ema, "decay of the weights' moving average (0: off, as `ddpm "
         "train` by default)", NULL, 0, 0.999999999, NULL, false, false},
        {"seed", CLI_INT, &o->seed, "seed for weights, batch order and noise", NULL, 0, 9e18,
         NULL, false, false},
        {"sgemm-repeats", CLI_INT, &o->sgemm_repeats, "timed passes over the sgemm shapes",
         "passes", 1, 1e6, NULL, false, false},
    };
    return cli_parse(flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, 1, "bench_ddpm",
                     "Time training steps of the diffusion model's patch Transformer (the "
                     "defaults of `ddpm train`).", stdout, stderr);
}

static int run_benchmark(ddpm_run *run, const bench_options *o) {
    int B = (int)o->batch_size;
    int steps = (int)o->steps;
    tg_tape *tape = tg_tape_new();
    double *step_ms = malloc((size_t)steps * sizeof *step_ms);
    if (tape == NULL || step_ms == NULL) {
        fprintf(stderr, "bench_ddpm: out of memory allocating the step buffers\n");
        free(step_ms);
        tg_tape_free(tape);
        return 1;
    }

    tg_status status = TG_OK;
    double loss = NAN;
    double grad_norm = NAN;
    for (long i = 0; i < o->warmup && status == TG_OK; i++) {
        status = ddpm_train_step(run, tape, tg_lr_at(&run->lr_schedule, run->step), &loss,
                                 &grad_norm);
        run->step++;
    }
    tg_tape_stats before = tg_tape_get_stats(tape);
    long heap_before = bench_heap_calls();
    double cpu_before_s = bench_cpu_s();
    for (int i = 0; i < steps && status == TG_OK; i++) {
        double start = bench_now_s();
        status = ddpm_train_step(run, tape, tg_lr_at(&run->lr_schedule, run->step), &loss,
                                 &grad_norm);
        run->step++;
        step_ms[i] = 1e3 * (bench_now_s() - start);
    }
    double cpu_after_s = bench_cpu_s();
    long heap_after = bench_heap_calls();
    tg_tape_stats after = tg_tape_get_stats(tape);
    if (status != TG_OK) {
        fprintf(stderr, "bench_ddpm: step %ld failed: %s\n", run->step, tg_last_error());
        free(step_ms);
        tg_tape_free(tape);
        return 1;
    }

    bench_report r = {
        .name = "ddpm patch Transformer",
        .threads = omp_get_max_threads(),
        .steps = steps,
        .warmup_steps = (int)o->warmup,
        .cpu_ms_per_step = 1e3 * (cpu_after_s - cpu_before_s) / steps,
        .items_per_step = B,
        .item_name = "images",
        .flops_per_step = step_flops(&run->model, B),
        .tape_allocations_per_step = (double)(after.heap_allocations - before.heap_allocations) /
                                     steps,
        .heap_calls_per_step = heap_before < 0 ? -1.0
                                               : (double)(heap_after - heap_before) / steps,
        .arena_peak_bytes = after.arena_peak_bytes,
        .min_activation_bytes = min_activation_bytes(&run->model, B),
    };
    size_t numel = tg_param_list_numel(&run->model.params);
    /* Parameters, gradients, AdamW's two moments, and the EMA copy if any. */
    int copies = run->settings.ema > 0.0 ? 5 : 4;
    r.min_state_bytes = (size_t)copies * numel * sizeof(tg_scalar);
    r.param_state_bytes = r.min_state_bytes;
    r.median_step_ms = bench_median(step_ms, steps);  /* sorts step_ms */
    r.min_step_ms = step_ms[0];
    r.max_step_ms = step_ms[steps - 1];

    bench_gemm_shape shapes[12];
    int n_shapes = step_gemm_shapes(&run->model, B, shapes);
    r.sgemm = bench_measure_sgemm(shapes, n_shapes, (int)o->sgemm_repeats);
    r.peak_rss_bytes = bench_peak_rss_bytes();

    const ddpm_model_config *c = &run->model.config;
    int grid = c->image_size / c->patch;
    printf("model              %d x %d images in %d tokens of %d x %d pixels, width %d, %d "
           "blocks, %d heads, batch %d, EMA %g, %zu parameters\n", c->image_size, c->image_size,
           grid * grid, c->patch, c->patch, c->width, c->depth, c->heads, B, run->settings.ema,
           numel);
    printf("last loss          %.4f (gradient norm %.3f before clipping)\n", loss, grad_norm);
    char spin[128];
    printf("spin-waiting       %s\n", spin_wait_describe(spin, sizeof spin));
    bench_report_print(&r, stdout);
    free(step_ms);
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
    ddpm_run run;
    code = build_run(&run, &o);
    if (code == 0) {
        code = run_benchmark(&run, &o);
    }
    ddpm_run_free(&run);
    return code;
}
