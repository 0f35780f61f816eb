/* Layer normalisation over the last dimension, as one fused op.
 *
 * x (..., C), gamma (C) and beta (C) give y (..., C), where each row of C
 * values is normalised on its own:
 *
 *     y = (x - mean) * rstd * gamma + beta,   rstd = 1 / sqrt(var + eps)
 *
 * with mean and the biased variance var (the sum of squares divided by C, not
 * C - 1) taken over the row, as in torch.nn.LayerNorm.
 */
#ifndef TG_AUTOGRAD_OPS_LAYERNORM_H
#define TG_AUTOGRAD_OPS_LAYERNORM_H

#include "../tape.h"

/* Normalises x (..., C) over its last dimension and returns y (..., C), a tape
 * tensor. gamma (C) scales and beta (C) shifts the normalised values; either
 * may be NULL, which means a gain of 1 or a shift of 0 (no affine parameters).
 * eps (usually 1e-5) must be finite and at least 0; it keeps rstd finite for
 * constant rows.
 * Returns NULL if an input op failed, or after recording an error on the tape:
 * TG_ERR_SHAPE naming both shapes if gamma or beta does not match the last
 * dimension of x, TG_ERR_INVALID for a bad eps. */
tg_tensor *tg_layernorm(tg_tape *tape, const tg_tensor *x, const tg_tensor *gamma,
                        const tg_tensor *beta, double eps);

#endif
