/* The affine map of a linear layer as one fused op, and the same map with a
 * residual added.
 *
 * x (..., in), weight (out, in) and bias (out) or NULL give
 * y (..., out) = x weight^T + bias, with the weight stored as in PyTorch's
 * nn.Linear. Each function returns a tape tensor, or NULL after recording an
 * error that names the shapes.
 */
#ifndef TG_AUTOGRAD_OPS_LINEAR_H
#define TG_AUTOGRAD_OPS_LINEAR_H

#include "../tape.h"

tg_tensor *tg_linear(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                     const tg_tensor *bias);

/* Computes residual + x weight^T + bias, where residual has the shape of the
 * result, (..., out). Equal to tg_add(residual, tg_linear(x, weight, bias))
 * up to rounding, but keeps neither the product nor its gradient in step
 * memory. */
tg_tensor *tg_linear_residual(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                              const tg_tensor *bias, const tg_tensor *residual);

#endif
