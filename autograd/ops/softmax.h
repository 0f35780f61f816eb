/* Softmax and log-softmax over the last axis.
 *
 * Both subtract each row's maximum before exponentiating, so large logits such
 * as +-1000 give finite values and gradients. Each constructor returns a tape
 * tensor, or NULL after recording an error on the tape.
 */
#ifndef TG_AUTOGRAD_OPS_SOFTMAX_H
#define TG_AUTOGRAD_OPS_SOFTMAX_H

#include "../tape.h"

/* Normalises each row to probabilities: x (..., C) gives y (..., C) with
 * y = exp(x) / sum over C of exp(x). A 0-dimensional x is a TG_ERR_SHAPE. */
tg_tensor *tg_softmax(tg_tape *tape, const tg_tensor *x);

/* Computes the log of tg_softmax directly: x (..., C) gives y (..., C) with
 * y = x - log(sum over C of exp(x)). Unlike tg_log of tg_softmax, it stays
 * finite for classes whose probability underflows to 0. A 0-dimensional x is
 * a TG_ERR_SHAPE. */
tg_tensor *tg_log_softmax(tg_tape *tape, const tg_tensor *x);

#endif
