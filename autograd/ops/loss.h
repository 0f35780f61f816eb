/* Losses: cross-entropy over class logits and mean squared error.
 *
 * Both return a 0-dimensional, one-element tape tensor to pass to
 * tg_tape_backward, or NULL after recording an error on the tape. Their sums
 * accumulate in double and are bitwise identical for any number of OpenMP
 * threads.
 */
#ifndef TG_AUTOGRAD_OPS_LOSS_H
#define TG_AUTOGRAD_OPS_LOSS_H

#include <stdint.h>

#include "../tape.h"

/* The ignore_index of tg_cross_entropy that ignores no target. */
#define TG_IGNORE_INDEX_NONE INT32_MIN

/* Computes the mean cross-entropy of class logits against target classes:
 * logits (..., V), viewed as N = size / V rows, and targets, N class indices
 * in row order, give the loss
 *     (1 / count) * sum over kept rows r of -log softmax(logits_r)[targets[r]],
 * where a row is kept unless its target equals ignore_index, and count is the
 * number of kept rows. Pass TG_IGNORE_INDEX_NONE to keep every row.
 * The log-softmax is fused in and subtracts each row's maximum, so logits of
 * +-1000 give a finite loss and gradients. When recording, targets is copied
 * into step memory, so the caller may change or free it after the call.
 * If every target is ignored, the loss is 0 and the gradients are 0, whereas
 * PyTorch's cross_entropy with reduction 'mean' returns NaN (0 / 0).
 * Errors: 0-dimensional logits are a TG_ERR_SHAPE. NULL targets are a
 * TG_ERR_INVALID, and so is a target outside [0, V) that is not ignore_index,
 * with a message naming its position and value. */
tg_tensor *tg_cross_entropy(tg_tape *tape, const tg_tensor *logits, const int32_t *targets,
                            int32_t ignore_index);

/* Computes the mean squared error: prediction (any shape) and target of the
 * same shape give (1 / n) * sum over the n elements of (prediction - target)^2.
 * The gradient flows to both inputs, to each one that requires grad.
 * Differing shapes are a TG_ERR_SHAPE naming both. */
tg_tensor *tg_mse(tg_tape *tape, const tg_tensor *prediction, const tg_tensor *target);

#endif
