/* Inverted dropout: random zeroing of elements during training. */
#ifndef TG_AUTOGRAD_OPS_DROPOUT_H
#define TG_AUTOGRAD_OPS_DROPOUT_H

#include <stdbool.h>

#include "../rng.h"
#include "../tape.h"

/* Zeroes each element of x with probability p and multiplies the others by
 * 1 / (1 - p), so the expected value of every element is unchanged: x (any
 * shape) gives y of the same shape. The mask takes one draw from rng per
 * element in row-major order, and keeps the element when the draw, read as
 * tg_rng_uniform reads it, is at least p. The same rng state gives the same
 * mask. When training is false or p is 0, returns x itself, records
 * nothing and leaves rng untouched (rng may then be NULL). When p is 1, y is
 * all zeros.
 * Returns x, a tape tensor that lives until tg_tape_reset, or NULL after
 * recording TG_ERR_INVALID on the tape if p is outside [0, 1] (checked in
 * evaluation too) or rng is NULL when a mask is needed. */
tg_tensor *tg_dropout(tg_tape *tape, const tg_tensor *x, double p, tg_rng *rng, bool training);

#endif
