/* RMSNorm, an op written outside tapegrad against its public op API.
 *
 * The my_ prefix marks this as user code: tg_ belongs to the library, and a
 * user symbol with that prefix could clash with a later library function.
 */
#ifndef MY_RMSNORM_H
#define MY_RMSNORM_H

#include "tapegrad.h"

/* Normalises x by the root mean square of its last dimension and scales by
 * weight: y = x / sqrt(mean(x^2) + eps) * weight.
 * x (..., C) and weight (C) give y (..., C). eps must be positive and finite.
 * Returns a tape tensor that lives until tg_tape_reset. Returns NULL without
 * a new message if an input is NULL or the tape already contains an error.
 * Returns NULL after recording an error on the tape: TG_ERR_SHAPE, naming
 * both shapes, if weight is not (C), or TG_ERR_INVALID if eps is invalid. */
tg_tensor *my_rmsnorm(tg_tape *tape, const tg_tensor *x, const tg_tensor *weight, double eps);

#endif
