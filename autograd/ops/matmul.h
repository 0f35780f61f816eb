/* Matrix products through CBLAS gemm.
 *
 * The last two dimensions of each operand are the matrix; any leading ones
 * are a batch. Supported batch layouts:
 * - b is 2-D: a (..., M, K) @ b (K, N) gives (..., M, N), one product per
 *   batch entry with the same b (a linear layer's weight);
 * - a is 2-D: a (M, K) @ b (..., K, N) gives (..., M, N);
 * - equal batch shapes: a (..., M, K) @ b (..., K, N) gives (..., M, N).
 * trans_a and trans_b transpose the matrix part of an operand without copying
 * it, as gemm does: with trans_b, b is stored as (N, K).
 *
 * Returns a tape tensor, or NULL after recording an error that names both
 * shapes.
 */
#ifndef TG_AUTOGRAD_OPS_MATMUL_H
#define TG_AUTOGRAD_OPS_MATMUL_H

#include <stdbool.h>

#include "../tape.h"

/* a (..., M, K) @ b (..., K, N) gives (..., M, N). */
tg_tensor *tg_matmul(tg_tape *tape, const tg_tensor *a, const tg_tensor *b);

/* op(a) @ op(b), where op transposes the last two dimensions when its flag is set. */
tg_tensor *tg_matmul_t(tg_tape *tape, const tg_tensor *a, const tg_tensor *b, bool trans_a,
                       bool trans_b);

#endif
