/* Gradient clipping over a parameter list, as torch.nn.utils.clip_grad_norm_
 * and clip_grad_value_ (PyTorch 1.13). Call between the backward pass and
 * the optimizer step. Every parameter must have a gradient buffer.
 */
#ifndef TG_OPTIM_CLIP_H
#define TG_OPTIM_CLIP_H

#include "autograd/params.h"

/* Computes the global L2 norm of all gradients and, if it exceeds max_norm,
 * multiplies every gradient by max_norm / (norm + 1e-6). The sum of squares
 * is accumulated in double in a fixed order, so the result does not depend
 * on the thread count. Writes the norm before clipping to *norm_before
 * unless it is NULL, also when the norm is not finite.
 * Returns TG_ERR_INVALID for a max_norm that is not positive and finite or a
 * parameter without a gradient buffer, and TG_ERR_NUMERIC, naming the first
 * parameter with a non-finite gradient, if the norm is inf or NaN. Gradients
 * are unchanged on any error. */
tg_status tg_clip_grad_norm(const tg_param_list *params, double max_norm, double *norm_before);

/* Clamps every gradient element to [-clip_value, clip_value], leaving NaN
 * elements NaN. Returns TG_ERR_INVALID, changing nothing, for a clip_value that
 * is not positive and finite or a parameter without a gradient buffer. */
tg_status tg_clip_grad_value(const tg_param_list *params, double clip_value);

#endif
