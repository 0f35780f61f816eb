/* The Transformer MLP (GPT-2's c_fc, GELU, c_proj) as one fused op, with an
 * optional residual added to its output.
 */
#ifndef TG_AUTOGRAD_OPS_GELU_MLP_H
#define TG_AUTOGRAD_OPS_GELU_MLP_H

#include "../tape.h"
#include "unary.h"

/* Computes residual + gelu(x fc_weight^T + fc_bias) proj_weight^T + proj_bias:
 * x (..., C), fc_weight (H, C), fc_bias (H), proj_weight (C, H),
 * proj_bias (C) and residual (..., C) give y (..., C), a tape tensor. The
 * biases and the residual may be NULL. The result equals the composition of
 * tg_linear, tg_gelu, tg_linear and tg_add up to rounding, but keeps less in
 * step memory: the GELU output and its derivative (..., H), and no
 * gradient of hidden width.
 * Returns NULL if an input op failed, or after recording an error on the
 * tape: TG_ERR_SHAPE naming the offending shape, or TG_ERR_INVALID for an
 * approx other than TG_GELU_TANH and TG_GELU_EXACT. */
tg_tensor *tg_gelu_mlp(tg_tape *tape, const tg_tensor *x, const tg_tensor *fc_weight,
                       const tg_tensor *fc_bias, const tg_tensor *proj_weight,
                       const tg_tensor *proj_bias, const tg_tensor *residual,
                       tg_gelu_approx approx);

#endif
