/* Shape ops: reshape, permute and transpose, concat, split and slice.
 *
 * These ops move elements and compute nothing. reshape never copies, because
 * it returns a view that shares x's memory, so its gradient lands in x's
 * gradient without a node. slice and split return views as well when the
 * selected part is one contiguous block of x: every dimension before `axis`
 * has extent 1, or the part spans the whole axis. Every other result is a new
 * tape tensor with its own node.
 *
 * Axes may be negative and then count from the end: -1 is the last axis.
 * Each constructor returns a tape tensor that lives until tg_tape_reset, or
 * NULL after recording an error on the tape (see each function for its
 * status). Given a NULL input or a tape that already failed, it returns NULL
 * without a new error.
 */
#ifndef TG_AUTOGRAD_OPS_SHAPE_H
#define TG_AUTOGRAD_OPS_SHAPE_H

#include "../tape.h"

/* Reinterprets x with another shape of the same size, without copying:
 * x (2, 3, 4) with shape {6, -1} gives y (6, 4). One extent may be -1 and is
 * inferred from the size of x. The result is a view of x's memory.
 * Errors (TG_ERR_SHAPE, naming both shapes): ndim outside [0, TG_MAX_DIMS],
 * an extent below 1 other than one -1, or a size that differs from x's. */
tg_tensor *tg_reshape(tg_tape *tape, const tg_tensor *x, int ndim, const int *shape);

/* Reorders the axes of x into a new tensor: y's axis i is x's axis axes[i],
 * so x (B, T, H, D) with axes {0, 2, 1, 3} gives y (B, H, T, D). axes has
 * x->ndim entries. Errors: TG_ERR_INVALID, naming the axes, if they are not a
 * permutation of x's axes. */
tg_tensor *tg_permute(tg_tape *tape, const tg_tensor *x, const int *axes);

/* Swaps two axes of x into a new tensor: x (B, T, C) with axes 1 and 2 gives
 * y (B, C, T). Errors: TG_ERR_INVALID if an axis is outside [-ndim, ndim). */
tg_tensor *tg_transpose(tg_tape *tape, const tg_tensor *x, int axis0, int axis1);

/* Joins n tensors along `axis`: xs[0] (B, T1, C) and xs[1] (B, T2, C) with
 * axis 1 give y (B, T1 + T2, C). Every other extent must be the same in all
 * inputs. Errors: TG_ERR_INVALID if n < 1, xs is NULL or the axis is out of
 * range; TG_ERR_SHAPE, naming the two shapes that differ, if the inputs do not
 * fit together. */
tg_tensor *tg_concat(tg_tape *tape, int n, const tg_tensor *const *xs, int axis);

/* Cuts x along `axis` into n consecutive parts of sizes[0], ..., sizes[n-1]
 * and stores them in outs[0..n-1]: x (B, T, 3C) with axis 2 and sizes
 * {C, C, C} gives three (B, T, C) tensors. Each part is a separate tensor with
 * its own node (or a view, as above), so the gradient of a part that does not
 * reach the loss stays zero.
 * Returns TG_OK; otherwise every outs[i] is NULL and the return value is:
 * the tape's status if x is NULL or the tape already failed (TG_ERR_INVALID if
 * x is NULL on a tape without an error); TG_ERR_INVALID if n < 1, sizes or outs
 * is NULL, the axis is out of range or a size is below 1; TG_ERR_SHAPE if the
 * sizes do not sum to the extent of the axis. */
tg_status tg_split(tg_tape *tape, const tg_tensor *x, int axis, int n, const int *sizes,
                   tg_tensor **outs);

/* Selects indices [start, end) of `axis`: x (B, T, C) with axis 1, start 2
 * and end 5 gives y (B, 3, C). Errors: TG_ERR_INVALID, naming the range and
 * the extent, unless 0 <= start < end <= extent; TG_ERR_INVALID if the axis is
 * out of range. */
tg_tensor *tg_slice(tg_tape *tape, const tg_tensor *x, int axis, int start, int end);

#endif
