/* The affine map of a linear layer as one fused op.
 *
 * x (..., in), weight (out, in) and bias (out) or NULL give
 * y (..., out) = x weight^T + bias, with the weight stored as in PyTorch's
 * nn.Linear. Returns a tape tensor, or NULL after recording an error that
 * names the shapes.
 */
#ifndef TG_AUTOGRAD_OPS_LINEAR_H
#define TG_AUTOGRAD_OPS_LINEAR_H

#include "../tape.h"

tg_tensor *tg_linear(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight,
                     const tg_tensor *bias);

#endif
