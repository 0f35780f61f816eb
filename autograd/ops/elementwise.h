/* Elementwise binary ops with NumPy broadcasting, and scaling.
 *
 * Broadcasting aligns the shapes from the right; two extents match when they
 * are equal or one of them is 1, and the output takes the larger. A missing
 * leading dimension counts as 1. For example a (B, T, C) and b (C) give
 * (B, T, C); a (4, 1) and b (3) give (4, 3). The gradient of a broadcast input
 * is the output gradient summed over the dimensions it was repeated along.
 *
 * Each constructor returns a tape tensor, or NULL after recording an error on
 * the tape that names the op and both shapes.
 */
#ifndef TG_AUTOGRAD_OPS_ELEMENTWISE_H
#define TG_AUTOGRAD_OPS_ELEMENTWISE_H

#include "../tape.h"

/* a + b, broadcast. */
tg_tensor *tg_add(tg_tape *tape, const tg_tensor *a, const tg_tensor *b);
/* a - b, broadcast. */
tg_tensor *tg_sub(tg_tape *tape, const tg_tensor *a, const tg_tensor *b);
/* a * b, broadcast. */
tg_tensor *tg_mul(tg_tape *tape, const tg_tensor *a, const tg_tensor *b);
/* a / b, broadcast. A zero in b gives inf or NaN, as in IEEE arithmetic. */
tg_tensor *tg_div(tg_tape *tape, const tg_tensor *a, const tg_tensor *b);
/* factor * x, same shape as x. */
tg_tensor *tg_scale(tg_tape *tape, const tg_tensor *x, double factor);
/* x + value, same shape as x. */
tg_tensor *tg_add_scalar(tg_tape *tape, const tg_tensor *x, double value);

/* x broadcast to `shape` (x's shape must broadcast to it unchanged). The
 * gradient sums over the repeated dimensions. */
tg_tensor *tg_broadcast_to(tg_tape *tape, const tg_tensor *x, int ndim, const int *shape);

/* Computes the broadcast shape of two shapes into out_shape (TG_MAX_DIMS
 * entries) and *out_ndim. Returns false if they do not broadcast. */
bool tg_broadcast_shape(int a_ndim, const int *a_shape, int b_ndim, const int *b_shape,
                        int *out_ndim, int *out_shape);

#endif
