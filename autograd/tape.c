#include "tape.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "op.h"
#include "tape_internal.h"

/* Elements per block when zeroing a new gradient buffer. */
#define ZERO_BLOCK 16384

struct tg_tape {
    tg_arena arena;
    tg_node *last_node;      /* most recent node; nodes link backwards */
    long node_count;
    bool grad_enabled;
    bool backward_done;
    tg_status status;
    char error[512];
    void *scratch;              /* arena memory handed out by tg__tape_scratch, or NULL */
    size_t scratch_bytes;       /* size of scratch */
    size_t scratch_max_bytes;   /* largest scratch request so far, kept across resets */
};

tg_tape *tg_tape_new(void) {
    tg_tape *tape = calloc(1, sizeof *tape);
    if (tape == NULL) {
        tg_set_error(TG_ERR_NOMEM, "tape: out of memory allocating a tape");
        return NULL;
    }
    tg_arena_init(&tape->arena);
    tape->grad_enabled = true;
    return tape;
}

void tg_tape_free(tg_tape *tape) {
    if (tape == NULL) {
        return;
    }
    tg_arena_free(&tape->arena);
    free(tape);
}

void tg_tape_reset(tg_tape *tape) {
    tg_arena_reset(&tape->arena);
    tape->last_node = NULL;
    tape->node_count = 0;
    tape->scratch = NULL;
    tape->scratch_bytes = 0;
    tape->backward_done = false;
    tape->status = TG_OK;
    tape->error[0] = '\0';
}

bool tg_tape_set_grad_enabled(tg_tape *tape, bool enabled) {
    bool previous = tape->grad_enabled;
    tape->grad_enabled = enabled;
    return previous;
}

bool tg_tape_grad_enabled(const tg_tape *tape) {
    return tape->grad_enabled;
}

tg_status tg_tape_status(const tg_tape *tape) {
    return tape->status;
}

const char *tg_tape_error(const tg_tape *tape) {
    return tape->error;
}

tg_tape_stats tg_tape_get_stats(const tg_tape *tape) {
    tg_tape_stats stats = {
        .arena_used_bytes = tape->arena.used_bytes,
        .arena_peak_bytes = tape->arena.peak_bytes,
        .arena_capacity_bytes = tape->arena.capacity_bytes,
        .heap_allocations = tape->arena.heap_allocations,
        .node_count = tape->node_count,
    };
    return stats;
}

/* ---- Recording (op.h) ---------------------------------------------------- */

tg_tensor *tg_op_fail(tg_tape *tape, tg_status status, const char *format, ...) {
    if (tape->status != TG_OK) {
        return NULL;
    }
    va_list args;
    va_start(args, format);
    vsnprintf(tape->error, sizeof tape->error, format, args);
    va_end(args);
    tape->status = status;
    tg_set_error(status, "%s", tape->error);
    return NULL;
}

bool tg_op_inputs_ok(const tg_tape *tape, int n_inputs, const tg_tensor *const *inputs) {
    if (tape == NULL || tape->status != TG_OK) {
        return false;
    }
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i] == NULL) {
            return false;
        }
    }
    return true;
}

void *tg_tape_alloc(tg_tape *tape, size_t bytes) {
    void *p = tg_arena_alloc(&tape->arena, bytes);
    if (p == NULL) {
        tg_op_fail(tape, TG_ERR_NOMEM, "tape: out of memory allocating %zu bytes of step memory",
                   bytes);
    }
    return p;
}

void *tg__tape_scratch(tg_tape *tape, size_t bytes) {
    if (bytes > tape->scratch_max_bytes) {
        tape->scratch_max_bytes = bytes;
    }
    if (tape->scratch == NULL || tape->scratch_bytes < bytes) {
        /* Take the largest size any op has asked for, so that from the second
         * step on one allocation per step serves every request. */
        tape->scratch = tg_tape_alloc(tape, tape->scratch_max_bytes);
        tape->scratch_bytes = tape->scratch != NULL ? tape->scratch_max_bytes : 0;
    }
    return tape->scratch;
}

tg_tensor *tg_tape_tensor(tg_tape *tape, int ndim, const int *shape) {
    if (tg_shape_validate(ndim, shape, "tape tensor") != TG_OK) {
        return tg_op_fail(tape, TG_ERR_SHAPE, "%s", tg_last_error());
    }
    tg_tensor *t = tg_tape_alloc(tape, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    if (ndim > 0) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    }
    t->size = tg_shape_size(ndim, shape);
    t->data = tg_tape_alloc(tape, t->size * sizeof *t->data);
    if (t->data == NULL) {
        return NULL;
    }
    return t;
}

tg_tensor *tg_tape_view(tg_tape *tape, const tg_tensor *base, size_t offset, int ndim,
                        const int *shape) {
    if (tg_shape_validate(ndim, shape, "view") != TG_OK) {
        return tg_op_fail(tape, TG_ERR_SHAPE, "%s", tg_last_error());
    }
    size_t size = tg_shape_size(ndim, shape);
    if (offset > base->size || size > base->size - offset) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "view: %zu elements at offset %zu do not fit in a tensor of %zu",
                          size, offset, base->size);
    }
    tg_tensor *t = tg_tape_alloc(tape, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    if (ndim > 0) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    }
    t->size = size;
    t->data = base->data + offset;
    /* Chain views to the memory's owner, so gradients land in one buffer. */
    if (base->view_of != NULL) {
        t->view_of = base->view_of;
        t->view_offset = base->view_offset + offset;
    } else {
        t->view_of = (tg_tensor *)base;
        t->view_offset = offset;
    }
    t->requires_grad = base->requires_grad && tape->grad_enabled;
    return t;
}

tg_node *tg_tape_record(tg_tape *tape, const tg_op *op, tg_tensor *output, int n_inputs,
                        const tg_tensor *const *inputs) {
    output->requires_grad = false;
    if (!tape->grad_enabled) {
        return NULL;
    }
    bool any_requires_grad = false;
    for (int i = 0; i < n_inputs; i++) {
        any_requires_grad = any_requires_grad || inputs[i]->requires_grad;
    }
    if (!any_requires_grad) {
        return NULL;
    }
    tg_node *node = tg_tape_alloc(tape, sizeof *node);
    tg_tensor **node_inputs = tg_tape_alloc(tape, (size_t)n_inputs * sizeof *node_inputs);
    if (node == NULL || node_inputs == NULL) {
        return NULL;
    }
    memset(node, 0, sizeof *node);
    for (int i = 0; i < n_inputs; i++) {
        /* Inputs are const to the forward; only their gradients change. */
        node_inputs[i] = (tg_tensor *)inputs[i];
    }
    node->op = op;
    node->tape = tape;
    node->output = output;
    node->n_inputs = n_inputs;
    node->inputs = node_inputs;
    node->prev = tape->last_node;
    tape->last_node = node;
    tape->node_count++;
    output->requires_grad = true;
    return node;
}

/* Sets x[0, n) to zero, in parallel blocks when n is large: the gradients of
 * a step's activations add up to megabytes. */
static void zero_scalars(tg_scalar *x, size_t n) {
    if (n <= 4 * ZERO_BLOCK || omp_get_max_threads() < 2) {
        /* Not through a region with a false if clause or one thread: libgomp
         * allocates the team of each one-thread region from the heap. */
        memset(x, 0, n * sizeof *x);
        return;
    }
    long blocks = (long)((n + ZERO_BLOCK - 1) / ZERO_BLOCK);
#pragma omp parallel for schedule(static)
    for (long k = 0; k < blocks; k++) {
        size_t begin = (size_t)k * ZERO_BLOCK;
        size_t count = n - begin < ZERO_BLOCK ? n - begin : ZERO_BLOCK;
        memset(x + begin, 0, count * sizeof *x);
    }
}

/* Returns t's gradient buffer, allocating it zeroed in the arena on first use.
 * A view's gradient is the matching slice of its owner's gradient. */
static tg_scalar *tensor_grad(tg_tape *tape, tg_tensor *t) {
    if (t->grad != NULL) {
        return t->grad;
    }
    if (t->view_of != NULL) {
        tg_scalar *base_grad = tensor_grad(tape, t->view_of);
        if (base_grad == NULL) {
            return NULL;
        }
        t->grad = base_grad + t->view_offset;
        return t->grad;
    }
    t->grad = tg_arena_alloc(&tape->arena, t->size * sizeof *t->grad);
    if (t->grad == NULL) {
        tg_op_fail(tape, TG_ERR_NOMEM, "backward: out of memory allocating a gradient of %zu "
                   "elements", t->size);
        return NULL;
    }
    zero_scalars(t->grad, t->size);
    return t->grad;
}

tg_scalar *tg_node_input_grad(tg_node *node, int i) {
    tg_tensor *input = node->inputs[i];
    if (!input->requires_grad) {
        return NULL;
    }
    return tensor_grad(node->tape, input);
}

tg_scalar *tg_node_input_grad_first(tg_node *node, int i, bool *first) {
    tg_tensor *input = node->inputs[i];
    *first = false;
    if (!input->requires_grad) {
        return NULL;
    }
    if (input->grad != NULL || input->view_of != NULL) {
        return tensor_grad(node->tape, input);
    }
    input->grad = tg_arena_alloc(&node->tape->arena, input->size * sizeof *input->grad);
    if (input->grad == NULL) {
        tg_op_fail(node->tape, TG_ERR_NOMEM, "backward: out of memory allocating a gradient "
                   "of %zu elements", input->size);
        return NULL;
    }
    *first = true;
    return input->grad;
}

/* ---- Backward ------------------------------------------------------------ */

tg_status tg_tape_backward_from(tg_tape *tape, tg_tensor *output, const tg_scalar *output_grad) {
    if (tape->status != TG_OK) {
        tg_set_error(tape->status, "%s", tape->error);
        return tape->status;
    }
    if (output == NULL) {
        return tg_set_error(TG_ERR_INVALID, "backward: the output is NULL");
    }
    if (tape->backward_done) {
        return tg_set_error(TG_ERR_STATE, "backward: this tape already ran backward; call "
                            "tg_tape_reset and record a new forward pass first");
    }
    tape->backward_done = true;
    if (!output->requires_grad) {
        /* Nothing that requires grad contributed to the output. */
        return TG_OK;
    }

    tg_scalar *seed = tensor_grad(tape, output);
    if (seed == NULL) {
        return tape->status;
    }
    for (size_t i = 0; i < output->size; i++) {
        seed[i] += output_grad[i];
    }

    /* Nodes were recorded in forward order, so walking back from the last one
     * visits every node after all the nodes that consume its output. */
    for (tg_node *node = tape->last_node; node != NULL; node = node->prev) {
        if (node->output->grad == NULL) {
            continue;  /* the output did not reach the loss */
        }
        node->op->backward(node);
        if (tape->status != TG_OK) {
            tg_set_error(tape->status, "%s", tape->error);
            return tape->status;
        }
    }
    return TG_OK;
}

tg_status tg_tape_backward(tg_tape *tape, tg_tensor *loss) {
    if (loss != NULL && loss->size != 1) {
        char buf[128];
        return tg_set_error(TG_ERR_SHAPE,
                            "backward: the loss has shape %s but must have one element; reduce "
                            "it with tg_sum or tg_mean, or use tg_tape_backward_from",
                            tg_shape_format(buf, sizeof buf, loss->ndim, loss->shape));
    }
    const tg_scalar one = 1;
    return tg_tape_backward_from(tape, loss, &one);
}
