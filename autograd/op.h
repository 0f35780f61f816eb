/* What an op needs from the tape: the node type, the op descriptor and the
 * calls that allocate outputs and record nodes.
 *
 * An op is one file with its forward and backward side by side. Its public
 * constructor:
 *   1. returns NULL at once if tg_op_inputs_ok() is false (an earlier op failed
 *      or an input is NULL);
 *   2. checks shapes, calling tg_op_fail() with both shapes on a mismatch;
 *   3. allocates its output with tg_tape_tensor() and computes it;
 *   4. calls tg_tape_record(); if that returns a node, saves what the backward
 *      needs in node->saved (allocated with tg_tape_alloc) and node->ints.
 * The backward reads node->output->grad and adds into the gradient buffers
 * returned by tg_node_input_grad(). It never overwrites them, because several
 * ops may feed the same input, unless tg_node_input_grad_first() reports that
 * this node is the first to reach the buffer.
 *
 * Nothing central lists the ops: each node points at its op's static
 * descriptor, so a new op, in the library or in user code, touches only its
 * own file.
 */
#ifndef TG_AUTOGRAD_OP_H
#define TG_AUTOGRAD_OP_H

#include <stdint.h>

#include "tape.h"

typedef struct tg_node tg_node;

typedef struct tg_op {
    const char *name;                 /* e.g. "matmul"; used in messages */
    void (*backward)(tg_node *node);  /* adds into the inputs' gradients */
} tg_op;

/* Number of small integer attributes a node stores inline (axes, flags). */
#define TG_NODE_INTS 8

struct tg_node {
    const tg_op *op;
    tg_tape *tape;
    tg_tensor *output;
    int n_inputs;
    tg_tensor **inputs;         /* n_inputs tensors */
    void *saved;                /* op-specific values saved by the forward */
    int64_t ints[TG_NODE_INTS]; /* op-specific integer attributes */
    double scalar;              /* op-specific scalar attribute */
    tg_node *prev;              /* node recorded before this one */
};

/* Returns a new uninitialised tensor in the tape's arena, or NULL after
 * recording an error on the tape (bad shape, out of memory). */
tg_tensor *tg_tape_tensor(tg_tape *tape, int ndim, const int *shape);

/* Returns a tape tensor that shares the memory of `base` with another shape of
 * the same size, starting `offset` elements in. Gradients written to the view
 * land in base's gradient. Returns NULL after recording an error. */
tg_tensor *tg_tape_view(tg_tape *tape, const tg_tensor *base, size_t offset, int ndim,
                        const int *shape);

/* Returns `bytes` of uninitialised arena memory aligned to 64 bytes, or NULL
 * after recording an out-of-memory error on the tape. */
void *tg_tape_alloc(tg_tape *tape, size_t bytes);

/* Returns false if the tape already holds an error or an input is NULL, in
 * which case the op must return NULL without recording a new error. */
bool tg_op_inputs_ok(const tg_tape *tape, int n_inputs, const tg_tensor *const *inputs);

/* Records the first error on the tape (later ones are ignored), stores it as
 * tg_last_error() too, and returns NULL for the op to return. The message
 * should start with the op's name. */
tg_tensor *tg_op_fail(tg_tape *tape, tg_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends a node for `op` if recording is on and some input requires grad,
 * and marks the output as requiring grad. Otherwise records nothing, marks the
 * output as not requiring grad and returns NULL. Also returns NULL, after
 * recording an error, if memory runs out. */
tg_node *tg_tape_record(tg_tape *tape, const tg_op *op, tg_tensor *output, int n_inputs,
                        const tg_tensor *const *inputs);

/* Returns the gradient buffer of input i, allocating it zeroed on first use,
 * or NULL if that input does not require grad. Call only from a backward. */
tg_scalar *tg_node_input_grad(tg_node *node, int i);

/* As tg_node_input_grad, but when input i, not a view, has no gradient buffer
 * yet, allocates one without zeroing it and sets *first to true: the caller
 * must then write every element instead of adding. Otherwise sets *first to
 * false. This spares a pass of zeroes over a gradient that one op writes
 * whole anyway. */
tg_scalar *tg_node_input_grad_first(tg_node *node, int i, bool *first);

#endif
