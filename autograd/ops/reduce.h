/* Sums and means, over all elements or along one axis.
 *
 * Every reduction accumulates in double and rounds to tg_scalar once at the
 * end, which keeps long float32 sums accurate. Results are bitwise identical
 * for any number of OpenMP threads.
 *
 * Each constructor returns a tape tensor, or NULL after recording an error on
 * the tape that names the op, the axis and the shape.
 */
#ifndef TG_AUTOGRAD_OPS_REDUCE_H
#define TG_AUTOGRAD_OPS_REDUCE_H

#include <stdbool.h>

#include "../tape.h"

/* Sums every element: x (any shape) gives a 0-dimensional, one-element tensor. */
tg_tensor *tg_sum(tg_tape *tape, const tg_tensor *x);

/* Averages every element: x (any shape) gives a 0-dimensional, one-element
 * tensor. */
tg_tensor *tg_mean(tg_tape *tape, const tg_tensor *x);

/* Sums along one axis: x (B, T, C) with axis 1 gives (B, C), or (B, 1, C) with
 * keepdim. A negative axis counts from the end, as in PyTorch: -1 is the last
 * axis. An axis outside [-ndim, ndim) is a TG_ERR_SHAPE naming the axis and
 * the shape. */
tg_tensor *tg_sum_axis(tg_tape *tape, const tg_tensor *x, int axis, bool keepdim);

/* Averages along one axis. Shapes, axes and errors are as in tg_sum_axis. */
tg_tensor *tg_mean_axis(tg_tape *tape, const tg_tensor *x, int axis, bool keepdim);

#endif
