/* The tape: a record of the ops of one forward pass, replayed in reverse by
 * the backward pass.
 *
 * A training step reads:
 *
 *     tg_tensor *loss = my_model_forward(tape, params, batch);   // ops record
 *     tg_status st = tg_tape_backward(tape, loss);               // grads added
 *     ... optimizer step on the parameters ...
 *     tg_tape_reset(tape);                                       // step memory freed
 *
 * Ops run eagerly: each op constructor computes its output at once, and, when
 * gradients are needed, appends a node that knows how to push the output's
 * gradient back to its inputs. Every tensor an op creates lives in the tape's
 * arena until tg_tape_reset.
 *
 * Errors: an op given a bad shape records the first error on the tape and
 * returns NULL. Ops given a NULL input return NULL without a new message, so
 * a forward pass can be written as a chain of calls and checked once, through
 * tg_tape_status or the status tg_tape_backward returns.
 */
#ifndef TG_AUTOGRAD_TAPE_H
#define TG_AUTOGRAD_TAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"

typedef struct tg_tape tg_tape;

typedef struct tg_tape_stats {
    size_t arena_used_bytes;      /* bytes handed out since the last reset */
    size_t arena_peak_bytes;      /* maximum over the tape's life */
    size_t arena_capacity_bytes;  /* bytes the arena holds from the heap */
    long heap_allocations;        /* arena chunk allocations so far */
    long node_count;              /* nodes recorded since the last reset */
} tg_tape_stats;

/* Creates an empty tape with gradient recording on. Returns NULL with
 * tg_last_error() set if memory runs out. Free it with tg_tape_free. */
tg_tape *tg_tape_new(void);

/* Frees the tape and every tensor it created. Accepts NULL. */
void tg_tape_free(tg_tape *tape);

/* Releases every tensor and node recorded since the last reset and clears the
 * tape's error. Gradients of heap tensors are kept. */
void tg_tape_reset(tg_tape *tape);

/* Turns gradient recording on or off and returns the previous setting. With
 * recording off, ops compute their outputs, record no node and save nothing,
 * and outputs do not require grad (inference and sampling). */
bool tg_tape_set_grad_enabled(tg_tape *tape, bool enabled);
bool tg_tape_grad_enabled(const tg_tape *tape);

/* Returns TG_OK, or the status of the first op that failed since the last reset. */
tg_status tg_tape_status(const tg_tape *tape);

/* Returns the message of the first failure since the last reset, or "". */
const char *tg_tape_error(const tg_tape *tape);

/* Runs the backward pass from a one-element loss: the loss's gradient is 1,
 * and every tensor that requires grad and contributed to it receives the
 * gradient of the loss, added to what its grad already holds. A tape runs
 * backward at most once between resets.
 * Returns TG_OK; the tape's first error if a forward op failed; TG_ERR_SHAPE
 * if loss has more than one element; TG_ERR_STATE if backward already ran. */
tg_status tg_tape_backward(tg_tape *tape, tg_tensor *loss);

/* Runs the backward pass from any output with the given gradient of the loss
 * with respect to it (output->size values). Otherwise as tg_tape_backward. */
tg_status tg_tape_backward_from(tg_tape *tape, tg_tensor *output, const tg_scalar *output_grad);

/* Returns the tape's memory figures. */
tg_tape_stats tg_tape_get_stats(const tg_tape *tape);

#endif
