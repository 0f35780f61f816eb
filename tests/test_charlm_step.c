/* A steady-state training step of the character-level GPT allocates no heap
 * memory.
 *
 * The test drives the steps of `charlm train` directly: a batch, gpt_loss,
 * the backward pass, gradient clipping, the optimizer step, zeroing the
 * gradients and resetting the tape, with a no-grad evaluation forward on the
 * same tape every third step. After two warm-up steps (the arena grows, the
 * gradient buffers and the optimizer state appear) two measures must stay
 * still:
 * - the tape's statistics: arena chunk allocations (heap_allocations), peak
 *   bytes and capacity;
 * - every call to malloc, calloc, realloc and aligned_alloc made by the
 *   library and the model code, which the linker routes through the
 *   counters below (--wrap, see tests/CMakeLists.txt). Calls made inside
 *   shared libraries such as libgomp and OpenBLAS are not counted.
 * The test larger_batch_shows_in_both_measures shows that each measure
 * detects a step that needs more memory.
 */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "gpt.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"

/* ---- Counting allocations -------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);

/* Calls since the program started; atomic because kernels may allocate on
 * OpenMP threads. */
static atomic_long allocation_calls;

void *__wrap_malloc(size_t size) {
    atomic_fetch_add(&allocation_calls, 1);
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size) {
    atomic_fetch_add(&allocation_calls, 1);
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *p, size_t size) {
    atomic_fetch_add(&allocation_calls, 1);
    return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t alignment, size_t size) {
    atomic_fetch_add(&allocation_calls, 1);
    return __real_aligned_alloc(alignment, size);
}

/* ---- A training loop ------------------------------------------------------- */

/* Sizes large enough that a step needs several 1 MiB arena chunks, so that
 * the arena's growth and merging are part of what is measured. */
#define BATCH 8
#define BATCH_MAX 32
#define CONTEXT 32

typedef struct trainer {
    gpt_model model;
    tg_optimizer *optimizer;
    tg_tape *tape;
    tg_rng data_rng;
    tg_rng dropout_rng;
    int32_t x[BATCH_MAX * CONTEXT];
    int32_t y[BATCH_MAX * CONTEXT];
} trainer;

/* What one step left behind. */
typedef struct step_figures {
    tg_tape_stats stats;
    long allocation_calls;  /* during the step */
} step_figures;

static gpt_config small_config(void) {
    gpt_config c = {
        .vocab_size = 40,
        .block_size = CONTEXT,
        .n_layer = 1,
        .n_head = 2,
        .n_embd = 32,
        .pos_dim = 8,
        .pos_kind = TG_POS_LEARNED,
        .pos_combine = TG_POS_ADD,
        .bias = true,
        .tie_weights = true,
        .dropout = 0.1,
        .gelu = TG_GELU_TANH,
    };
    return c;
}

static void trainer_init(trainer *t, const gpt_config *config, bool sgd) {
    tg_rng init_rng;
    tg_rng_seed(&init_rng, 7);
    cr_assert_eq(gpt_init(&t->model, config, &init_rng), TG_OK, "gpt_init: %s", tg_last_error());
    if (sgd) {
        tg_sgd_options options = {.momentum = 0.9, .nesterov = true, .weight_decay = 0.01};
        t->optimizer = tg_sgd_new(&t->model.params, &options);
    } else {
        tg_adam_options options = tg_adamw_default_options();
        t->optimizer = tg_adamw_new(&t->model.params, &options);
    }
    cr_assert_not_null(t->optimizer, "optimizer: %s", tg_last_error());
    t->tape = tg_tape_new();
    cr_assert_not_null(t->tape, "tg_tape_new: %s", tg_last_error());
    tg_rng_seed(&t->data_rng, 11);
    tg_rng_seed(&t->dropout_rng, 13);
}

static void trainer_free(trainer *t) {
    tg_tape_free(t->tape);
    tg_optimizer_free(t->optimizer);
    gpt_free(&t->model);
}

/* Runs training step `step` (1-based) on B sequences, and before it, on
 * every third step, an evaluation forward without gradients. */
static step_figures trainer_step(trainer *t, int step, int B) {
    int V = t->model.config.vocab_size;
    for (int i = 0; i < B * CONTEXT; i++) {
        t->x[i] = (int32_t)tg_rng_below(&t->data_rng, (uint64_t)V);
        t->y[i] = (int32_t)tg_rng_below(&t->data_rng, (uint64_t)V);
    }
    long calls_before = atomic_load(&allocation_calls);

    if (step % 3 == 0) {
        bool previous = tg_tape_set_grad_enabled(t->tape, false);
        tg_tensor *eval_loss = gpt_loss(t->tape, &t->model, t->x, t->y, B, CONTEXT, NULL);
        cr_assert_not_null(eval_loss, "step %d: evaluation: %s", step, tg_tape_error(t->tape));
        tg_tape_reset(t->tape);
        tg_tape_set_grad_enabled(t->tape, previous);
    }
    tg_mode mode = {.training = true, .rng = &t->dropout_rng};
    tg_tensor *loss = gpt_loss(t->tape, &t->model, t->x, t->y, B, CONTEXT, &mode);
    cr_assert_not_null(loss, "step %d: gpt_loss: %s", step, tg_tape_error(t->tape));
    tg_status status = tg_tape_backward(t->tape, loss);
    cr_assert_eq(status, TG_OK, "step %d: backward: %s", step, tg_last_error());
    double norm = 0.0;
    status = tg_clip_grad_norm(&t->model.params, 1.0, &norm);
    cr_assert_eq(status, TG_OK, "step %d: clip: %s", step, tg_last_error());
    status = tg_optimizer_step(t->optimizer, 1e-3);
    cr_assert_eq(status, TG_OK, "step %d: optimizer: %s", step, tg_last_error());
    tg_param_list_zero_grad(&t->model.params);
    tg_tape_reset(t->tape);

    step_figures figures = {
        .stats = tg_tape_get_stats(t->tape),
        .allocation_calls = atomic_load(&allocation_calls) - calls_before,
    };
    return figures;
}

/* Trains 8 steps and checks that steps 4 to 8 leave both measures as step
 * 3 left them. The tape's reusable scratch buffer takes the largest size
 * requested in earlier steps, so its place in the arena, and with it the
 * arena's peak, settles only in step 3. */
static void expect_steady_state(const gpt_config *config, bool sgd) {
    omp_set_num_threads(2);
    trainer t;
    trainer_init(&t, config, sgd);
    step_figures first = trainer_step(&t, 1, BATCH);
    cr_assert_gt(first.allocation_calls, 0, "the first step made no counted allocation, so the "
                 "--wrap counters do not see the library; is it a shared library?");
    cr_assert_gt(first.stats.arena_peak_bytes, (size_t)1 << 20, "a step uses only %zu arena "
                 "bytes, within the first chunk; make the model larger",
                 first.stats.arena_peak_bytes);
    trainer_step(&t, 2, BATCH);
    step_figures warm = trainer_step(&t, 3, BATCH);
    for (int step = 4; step <= 8; step++) {
        step_figures now = trainer_step(&t, step, BATCH);
        cr_expect_eq(now.stats.heap_allocations, warm.stats.heap_allocations,
                     "step %d: arena chunk allocations went from %ld after step 3 to %ld", step,
                     warm.stats.heap_allocations, now.stats.heap_allocations);
        cr_expect_eq(now.stats.arena_peak_bytes, warm.stats.arena_peak_bytes,
                     "step %d: arena peak went from %zu bytes after step 3 to %zu", step,
                     warm.stats.arena_peak_bytes, now.stats.arena_peak_bytes);
        cr_expect_eq(now.stats.arena_capacity_bytes, warm.stats.arena_capacity_bytes,
                     "step %d: arena capacity went from %zu bytes after step 3 to %zu", step,
                     warm.stats.arena_capacity_bytes, now.stats.arena_capacity_bytes);
        cr_expect_eq(now.allocation_calls, 0, "step %d called the allocator %ld times", step,
                     now.allocation_calls);
    }
    trainer_free(&t);
}

Test(charlm_step, adamw_steady_state_allocates_nothing) {
    gpt_config config = small_config();
    expect_steady_state(&config, false);
}

Test(charlm_step, sgd_untied_concat_allocates_nothing) {
    /* The other branches of the model: sinusoidal positions concatenated,
     * a separate output head, no biases, exact GELU, no dropout. */
    gpt_config config = small_config();
    config.pos_kind = TG_POS_SINUSOIDAL;
    config.pos_combine = TG_POS_CONCAT;
    config.tie_weights = false;
    config.bias = false;
    config.gelu = TG_GELU_EXACT;
    config.dropout = 0.0;
    expect_steady_state(&config, true);
}

Test(charlm_step, larger_batch_shows_in_both_measures) {
    omp_set_num_threads(2);
    gpt_config config = small_config();
    trainer t;
    trainer_init(&t, &config, false);
    trainer_step(&t, 1, BATCH);
    step_figures warm = trainer_step(&t, 2, BATCH);
    step_figures larger = trainer_step(&t, 4, BATCH_MAX);
    cr_expect_gt(larger.stats.arena_peak_bytes, warm.stats.arena_peak_bytes,
                 "a batch of %d after batches of %d left the arena peak at %zu bytes", BATCH_MAX,
                 BATCH, larger.stats.arena_peak_bytes);
    cr_expect_gt(larger.stats.heap_allocations, warm.stats.heap_allocations,
                 "a batch of %d after batches of %d left the chunk allocations at %ld", BATCH_MAX,
                 BATCH, larger.stats.heap_allocations);
    cr_expect_gt(larger.allocation_calls, 0, "a batch of %d after batches of %d made no counted "
                 "allocation", BATCH_MAX, BATCH);
    trainer_free(&t);
}
