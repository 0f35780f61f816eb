/* Shape ops: reshape, permute and transpose, concat, split and slice.
 *
 * Letters: B batch, T sequence length, C channels, H heads, D head size.
 *
 * reshape  y is x read with another shape. It is a view, so it needs no node:
 *          a gradient added to y lands in x's gradient buffer.
 * permute  y[i_0, ..., i_{n-1}] = x[j] with j_{axes[k]} = i_k.
 *          Backward: dx += dy permuted back by the inverse permutation.
 * concat   y = [x_0 | x_1 | ... | x_{n-1}] along axis.
 *          Backward: dx_k += the block of dy that x_k filled.
 * slice    y = x[..., start:end, ...] along axis.
 *          Backward: dx[..., start:end, ...] += dy, and the rest of dx is unchanged.
 * split    n slices that tile the axis, each recorded as its own node.
 * The forwards save nothing: axes and offsets go in the node's integers, and
 * the backwards read extents from the node's inputs and output.
 *
 * Data movement: along an axis, x is a matrix (outer, extent * inner), where
 * outer is the product of the extents before the axis and inner the product
 * after it. The part of each row that concat, slice or split moves is one
 * contiguous block, copied with memcpy. permute first drops extent-1 axes and
 * merges axes that stay adjacent. It then copies whole contiguous rows when
 * x's innermost axis stays innermost, and otherwise transposes in square tiles
 * so that reads and writes both stay in cache.
 *
 * Determinism: every destination element is written by exactly one loop
 * iteration, so the split of work over threads changes no result.
 */
#include "shape.h"

#include <limits.h>
#include <omp.h>
#include <string.h>

#include "../op.h"
#include "parallel_internal.h"

/* Elements per task when a block copy is split over threads. */
#define COPY_CHUNK 4096
/* Side of the square tiles of a transposing permute. */
#define TRANSPOSE_TILE 32

/* Stores axis in [0, ndim) in *out and returns true, or returns false if axis
 * lies outside [-ndim, ndim). */
static bool normalize_axis(int axis, int ndim, int *out) {
    if (axis < -ndim || axis >= ndim) {
        return false;
    }
    *out = axis < 0 ? axis + ndim : axis;
    return true;
}

/* Returns the product of shape[begin..end). */
static size_t extent_product(const int *shape, int begin, int end) {
    size_t product = 1;
    for (int d = begin; d < end; d++) {
        product *= (size_t)shape[d];
    }
    return product;
}

/* Copies `rows` blocks of `len` elements from src to dst, or adds them into
 * dst when `accumulate` is set. Consecutive blocks start src_stride elements
 * apart in src and dst_stride apart in dst. Work is split into chunks of at
 * most COPY_CHUNK elements, so one long row is spread over threads too. */
static void copy_rows(tg_scalar *dst, size_t dst_stride, const tg_scalar *src, size_t src_stride,
                      size_t rows, size_t len, bool accumulate) {
    size_t chunks_per_row = (len + COPY_CHUNK - 1) / COPY_CHUNK;
    long tasks = (long)(rows * chunks_per_row);
    if (tg__use_threads(rows * len)) {
#pragma omp parallel for schedule(static)
        for (long t = 0; t < tasks; t++) {
            size_t row = (size_t)t / chunks_per_row;
            size_t begin = ((size_t)t % chunks_per_row) * COPY_CHUNK;
            size_t count = len - begin < COPY_CHUNK ? len - begin : COPY_CHUNK;
            tg_scalar *d = dst + row * dst_stride + begin;
            const tg_scalar *s = src + row * src_stride + begin;
            if (accumulate) {
                for (size_t i = 0; i < count; i++) {
                    d[i] += s[i];
                }
            } else {
                memcpy(d, s, count * sizeof *d);
            }
        }
    } else {
        for (long t = 0; t < tasks; t++) {
            size_t row = (size_t)t / chunks_per_row;
            size_t begin = ((size_t)t % chunks_per_row) * COPY_CHUNK;
            size_t count = len - begin < COPY_CHUNK ? len - begin : COPY_CHUNK;
            tg_scalar *d = dst + row * dst_stride + begin;
            const tg_scalar *s = src + row * src_stride + begin;
            if (accumulate) {
                for (size_t i = 0; i < count; i++) {
                    d[i] += s[i];
                }
            } else {
                memcpy(d, s, count * sizeof *d);
            }
        }
    }
}

/* ---- reshape ------------------------------------------------------------- */

tg_tensor *tg_reshape(tg_tape *tape, const tg_tensor *x, int ndim, const int *shape) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    char xs[128];
    tg_shape_format(xs, sizeof xs, x->ndim, x->shape);
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && shape == NULL)) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "reshape: invalid target of %d dimensions for x %s; give 0 to %d "
                          "extents",
                          ndim, xs, TG_MAX_DIMS);
    }
    char ts[128];
    tg_shape_format(ts, sizeof ts, ndim, shape);

    /* Check the extents and find the one to infer, if any. */
    int inferred = -1;
    size_t known = 1;
    bool too_large = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && inferred < 0) {
            inferred = d;
        } else if (shape[d] == -1) {
            return tg_op_fail(tape, TG_ERR_SHAPE,
                              "reshape: target shape %s for x %s has more than one -1; only "
                              "one extent can be inferred",
                              ts, xs);
        } else if (shape[d] < 1) {
            return tg_op_fail(tape, TG_ERR_SHAPE,
                              "reshape: target shape %s for x %s has extent %d; every extent "
                              "must be at least 1, or -1 to infer it",
                              ts, xs, shape[d]);
        } else if ((size_t)shape[d] > x->size / known) {
            too_large = true;  /* more elements than x, and known might overflow */
        } else {
            known *= (size_t)shape[d];
        }
    }

    int resolved[TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        resolved[d] = shape[d];
    }
    if (inferred >= 0 && !too_large && x->size % known == 0 && x->size / known <= INT_MAX) {
        resolved[inferred] = (int)(x->size / known);
        known = x->size;
    }
    if (too_large || known != x->size) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "reshape: cannot view x %s of %zu elements as %s; the target must "
                          "have the same number of elements",
                          xs, x->size, ts);
    }
    return tg_tape_view(tape, x, 0, ndim, resolved);
}

/* ---- permute and transpose ----------------------------------------------- */

/* A permuted copy reduced to its simplest form: extent-1 axes dropped, and
 * destination axes merged where they are also adjacent in the source. */
typedef struct permute_plan {
    int ndim;
    size_t extent[TG_MAX_DIMS];      /* extent of each destination axis */
    size_t src_stride[TG_MAX_DIMS];  /* source stride of each destination axis */
    size_t dst_stride[TG_MAX_DIMS];  /* destination stride (row-major) */
    size_t size;
} permute_plan;

/* Plans dst = src permuted, where destination axis i is source axis axes[i]. */
static void permute_plan_make(permute_plan *plan, int ndim, const int *src_shape,
                              const int *axes) {
    size_t stride[TG_MAX_DIMS];
    size_t size = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = size;
        size *= (size_t)src_shape[d];
    }
    plan->size = size;

    int n = 0;
    for (int i = 0; i < ndim; i++) {
        size_t extent = (size_t)src_shape[axes[i]];
        size_t s = stride[axes[i]];
        if (extent == 1) {
            continue;
        }
        if (n > 0 && plan->src_stride[n - 1] == extent * s) {
            /* The previous axis steps over exactly this one: merge them. */
            plan->extent[n - 1] *= extent;
            plan->src_stride[n - 1] = s;
        } else {
            plan->extent[n] = extent;
            plan->src_stride[n] = s;
            n++;
        }
    }
    plan->ndim = n;
    size_t dst_size = 1;
    for (int d = n - 1; d >= 0; d--) {
        plan->dst_stride[d] = dst_size;
        dst_size *= plan->extent[d];
    }
}

/* Converts `index` over the plan's axes listed in `axes` (outermost first) to
 * a destination and a source offset. */
static void plan_offsets(const permute_plan *plan, const int *axes, int n_axes, size_t index,
                         size_t *dst_offset, size_t *src_offset) {
    size_t d_off = 0;
    size_t s_off = 0;
    for (int k = n_axes - 1; k >= 0; k--) {
        int a = axes[k];
        size_t coordinate = index % plan->extent[a];
        index /= plan->extent[a];
        d_off += coordinate * plan->dst_stride[a];
        s_off += coordinate * plan->src_stride[a];
    }
    *dst_offset = d_off;
    *src_offset = s_off;
}

/* The innermost destination axis is also innermost in the source, so each
 * destination row is one contiguous block of the source. */
static void permute_rows(tg_scalar *dst, const tg_scalar *src, const permute_plan *plan,
                         bool accumulate) {
    int outer_axes[TG_MAX_DIMS];
    for (int k = 0; k < plan->ndim - 1; k++) {
        outer_axes[k] = k;
    }
    size_t len = plan->extent[plan->ndim - 1];
    long rows = (long)(plan->size / len);
    if (tg__use_threads(plan->size)) {
#pragma omp parallel for schedule(static)
        for (long r = 0; r < rows; r++) {
            size_t d_off;
            size_t s_off;
            plan_offsets(plan, outer_axes, plan->ndim - 1, (size_t)r, &d_off, &s_off);
            if (accumulate) {
                for (size_t i = 0; i < len; i++) {
                    dst[d_off + i] += src[s_off + i];
                }
            } else {
                memcpy(dst + d_off, src + s_off, len * sizeof *dst);
            }
        }
    } else {
        for (long r = 0; r < rows; r++) {
            size_t d_off;
            size_t s_off;
            plan_offsets(plan, outer_axes, plan->ndim - 1, (size_t)r, &d_off, &s_off);
            if (accumulate) {
                for (size_t i = 0; i < len; i++) {
                    dst[d_off + i] += src[s_off + i];
                }
            } else {
                memcpy(dst + d_off, src + s_off, len * sizeof *dst);
            }
        }
    }
}

/* The source's innermost axis (stride 1) is destination axis `a`, and the
 * destination's innermost axis `b` is strided in the source: a transpose of
 * (a, b) blocks for each index of the remaining axes, done in tiles. */
static void permute_tiles(tg_scalar *dst, const tg_scalar *src, const permute_plan *plan, int a,
                          bool accumulate) {
    int b = plan->ndim - 1;
    int batch_axes[TG_MAX_DIMS];
    int n_batch = 0;
    for (int k = 0; k < plan->ndim; k++) {
        if (k != a && k != b) {
            batch_axes[n_batch++] = k;
        }
    }
    size_t extent_a = plan->extent[a];
    size_t extent_b = plan->extent[b];
    size_t dst_stride_a = plan->dst_stride[a];
    size_t src_stride_b = plan->src_stride[b];
    size_t tiles_a = (extent_a + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
    size_t tiles_b = (extent_b + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
    size_t batches = plan->size / (extent_a * extent_b);
    long tasks = (long)(batches * tiles_a * tiles_b);
    if (tg__use_threads(plan->size)) {
#pragma omp parallel for schedule(static)
        for (long t = 0; t < tasks; t++) {
            size_t tile_b = (size_t)t % tiles_b;
            size_t tile_a = (size_t)t / tiles_b % tiles_a;
            size_t batch = (size_t)t / tiles_b / tiles_a;
            size_t d_off;
            size_t s_off;
            plan_offsets(plan, batch_axes, n_batch, batch, &d_off, &s_off);
            size_t a0 = tile_a * TRANSPOSE_TILE;
            size_t a1 = a0 + TRANSPOSE_TILE < extent_a ? a0 + TRANSPOSE_TILE : extent_a;
            size_t b0 = tile_b * TRANSPOSE_TILE;
            size_t b1 = b0 + TRANSPOSE_TILE < extent_b ? b0 + TRANSPOSE_TILE : extent_b;
            for (size_t i = a0; i < a1; i++) {
                tg_scalar *dst_row = dst + d_off + i * dst_stride_a;
                const tg_scalar *src_col = src + s_off + i;
                for (size_t j = b0; j < b1; j++) {
                    if (accumulate) {
                        dst_row[j] += src_col[j * src_stride_b];
                    } else {
                        dst_row[j] = src_col[j * src_stride_b];
                    }
                }
            }
        }
    } else {
        for (long t = 0; t < tasks; t++) {
            size_t tile_b = (size_t)t % tiles_b;
            size_t tile_a = (size_t)t / tiles_b % tiles_a;
            size_t batch = (size_t)t / tiles_b / tiles_a;
            size_t d_off;
            size_t s_off;
            plan_offsets(plan, batch_axes, n_batch, batch, &d_off, &s_off);
            size_t a0 = tile_a * TRANSPOSE_TILE;
            size_t a1 = a0 + TRANSPOSE_TILE < extent_a ? a0 + TRANSPOSE_TILE : extent_a;
            size_t b0 = tile_b * TRANSPOSE_TILE;
            size_t b1 = b0 + TRANSPOSE_TILE < extent_b ? b0 + TRANSPOSE_TILE : extent_b;
            for (size_t i = a0; i < a1; i++) {
                tg_scalar *dst_row = dst + d_off + i * dst_stride_a;
                const tg_scalar *src_col = src + s_off + i;
                for (size_t j = b0; j < b1; j++) {
                    if (accumulate) {
                        dst_row[j] += src_col[j * src_stride_b];
                    } else {
                        dst_row[j] = src_col[j * src_stride_b];
                    }
                }
            }
        }
    }
}

/* Writes (or adds into) dst the source src of shape src_shape with its axes
 * reordered so that destination axis i is source axis axes[i]. */
static void permute_copy(tg_scalar *dst, const tg_scalar *src, int ndim, const int *src_shape,
                         const int *axes, bool accumulate) {
    permute_plan plan;
    permute_plan_make(&plan, ndim, src_shape, axes);
    if (plan.ndim == 0) {
        /* One element. */
        dst[0] = accumulate ? dst[0] + src[0] : src[0];
        return;
    }
    if (plan.src_stride[plan.ndim - 1] == 1) {
        permute_rows(dst, src, &plan, accumulate);
        return;
    }
    /* The source's last axis of extent above 1 has stride 1 and survives the
     * merging, so some destination axis has source stride 1. */
    int a = 0;
    for (int k = 0; k < plan.ndim; k++) {
        if (plan.src_stride[k] == 1) {
            a = k;
        }
    }
    permute_tiles(dst, src, &plan, a, accumulate);
}

static void permute_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx == NULL) {
        return;
    }
    const tg_tensor *y = node->output;
    int inverse[TG_MAX_DIMS];
    for (int i = 0; i < y->ndim; i++) {
        inverse[node->ints[i]] = i;
    }
    permute_copy(dx, y->grad, y->ndim, y->shape, inverse, true);
}

static const tg_op permute_op = {"permute", permute_backward};
static const tg_op transpose_op = {"transpose", permute_backward};

/* Permutes x by axes, already checked and in [0, ndim). */
static tg_tensor *permute_checked(tg_tape *tape, const tg_op *op, const tg_tensor *x,
                                  const int *axes) {
    int shape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = x->shape[axes[i]];
    }
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, shape);
    if (y == NULL) {
        return NULL;
    }
    permute_copy(y->data, x->data, x->ndim, x->shape, axes, false);
    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        for (int i = 0; i < x->ndim; i++) {
            node->ints[i] = axes[i];
        }
    }
    return y;
}

tg_tensor *tg_permute(tg_tape *tape, const tg_tensor *x, const int *axes) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    int ndim = x->ndim;
    int normalized[TG_MAX_DIMS];
    bool seen[TG_MAX_DIMS] = {false};
    bool valid = axes != NULL || ndim == 0;
    for (int i = 0; valid && i < ndim; i++) {
        valid = normalize_axis(axes[i], ndim, &normalized[i]) && !seen[normalized[i]];
        if (valid) {
            seen[normalized[i]] = true;
        }
    }
    if (!valid) {
        char xs[128];
        char as[128] = "NULL";
        if (axes != NULL) {
            tg_shape_format(as, sizeof as, ndim, axes);
        }
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "permute: axes %s are not a permutation of the %d axes of x %s; give "
                          "each axis in [%d, %d) exactly once",
                          as, ndim, tg_shape_format(xs, sizeof xs, ndim, x->shape), -ndim, ndim);
    }
    return permute_checked(tape, &permute_op, x, normalized);
}

tg_tensor *tg_transpose(tg_tape *tape, const tg_tensor *x, int axis0, int axis1) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    int a0;
    int a1;
    bool valid0 = normalize_axis(axis0, x->ndim, &a0);
    bool valid1 = normalize_axis(axis1, x->ndim, &a1);
    if (!valid0 || !valid1) {
        char xs[128];
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "transpose: axis %d is out of range for x %s; each axis must be in "
                          "[%d, %d)",
                          valid0 ? axis1 : axis0,
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape), -x->ndim, x->ndim);
    }
    int axes[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        axes[i] = i;
    }
    axes[a0] = a1;
    axes[a1] = a0;
    return permute_checked(tape, &transpose_op, x, axes);
}

/* ---- concat -------------------------------------------------------------- */

/* Copies x (outer, block) into columns [offset, offset + block) of
 * y (outer, y_row). */
static void concat_forward(tg_scalar *y, const tg_scalar *x, size_t outer, size_t block,
                           size_t y_row, size_t offset) {
    copy_rows(y + offset, y_row, x, block, outer, block, false);
}

/* Adds those columns of dy (outer, y_row) into dx (outer, block). */
static void concat_backward_kernel(tg_scalar *dx, const tg_scalar *dy, size_t outer,
                                   size_t block, size_t y_row, size_t offset) {
    copy_rows(dx, block, dy + offset, y_row, outer, block, true);
}

static void concat_backward(tg_node *node) {
    const tg_tensor *y = node->output;
    int axis = (int)node->ints[0];
    size_t outer = extent_product(y->shape, 0, axis);
    size_t inner = extent_product(y->shape, axis + 1, y->ndim);
    size_t y_row = (size_t)y->shape[axis] * inner;
    size_t offset = 0;
    for (int k = 0; k < node->n_inputs; k++) {
        size_t block = (size_t)node->inputs[k]->shape[axis] * inner;
        tg_scalar *dx = tg_node_input_grad(node, k);
        if (dx != NULL) {
            concat_backward_kernel(dx, y->grad, outer, block, y_row, offset);
        }
        offset += block;
    }
}

static const tg_op concat_op = {"concat", concat_backward};

/* Records the concat error for inputs i and j of differing shapes. */
static tg_tensor *concat_mismatch(tg_tape *tape, const tg_tensor *const *xs, int i, int j,
                                  int axis) {
    char is[128];
    char js[128];
    return tg_op_fail(tape, TG_ERR_SHAPE,
                      "concat: input %d has shape %s and input %d has shape %s; all inputs "
                      "need the same number of dimensions and the same extents except on "
                      "axis %d",
                      i, tg_shape_format(is, sizeof is, xs[i]->ndim, xs[i]->shape), j,
                      tg_shape_format(js, sizeof js, xs[j]->ndim, xs[j]->shape), axis);
}

tg_tensor *tg_concat(tg_tape *tape, int n, const tg_tensor *const *xs, int axis) {
    if (xs == NULL || n < 1) {
        if (!tg_op_inputs_ok(tape, 0, NULL)) {
            return NULL;
        }
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "concat: got %d inputs%s; pass at least one tensor", n,
                          xs == NULL ? " and a NULL array" : "");
    }
    if (!tg_op_inputs_ok(tape, n, xs)) {
        return NULL;
    }
    const tg_tensor *first = xs[0];
    int a;
    if (!normalize_axis(axis, first->ndim, &a)) {
        char fs[128];
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "concat: axis %d is out of range for input 0 of shape %s; the axis "
                          "must be in [%d, %d)",
                          axis, tg_shape_format(fs, sizeof fs, first->ndim, first->shape),
                          -first->ndim, first->ndim);
    }

    /* Every input must match input 0 outside the axis. */
    long total = 0;
    for (int k = 0; k < n; k++) {
        const tg_tensor *x = xs[k];
        if (x->ndim != first->ndim) {
            return concat_mismatch(tape, xs, 0, k, a);
        }
        for (int d = 0; d < x->ndim; d++) {
            if (d != a && x->shape[d] != first->shape[d]) {
                return concat_mismatch(tape, xs, 0, k, a);
            }
        }
        total += x->shape[a];
    }
    if (total > INT_MAX) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "concat: the extents of the %d inputs on axis %d sum to %ld, above "
                          "the maximum extent %d; concat fewer or smaller tensors",
                          n, axis, total, INT_MAX);
    }
    int shape[TG_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[a] = (int)total;

    tg_tensor *y = tg_tape_tensor(tape, first->ndim, shape);
    if (y == NULL) {
        return NULL;
    }
    size_t outer = extent_product(shape, 0, a);
    size_t inner = extent_product(shape, a + 1, first->ndim);
    size_t y_row = (size_t)shape[a] * inner;
    size_t offset = 0;
    for (int k = 0; k < n; k++) {
        size_t block = (size_t)xs[k]->shape[a] * inner;
        concat_forward(y->data, xs[k]->data, outer, block, y_row, offset);
        offset += block;
    }
    tg_node *node = tg_tape_record(tape, &concat_op, y, n, xs);
    if (node != NULL) {
        node->ints[0] = a;
    }
    return y;
}

/* ---- slice and split ----------------------------------------------------- */

/* y (outer, len * inner) = the columns [start * inner, (start + len) * inner)
 * of x (outer, extent * inner). */
static void slice_forward(tg_scalar *y, const tg_scalar *x, size_t outer, size_t inner,
                          size_t extent, size_t start, size_t len) {
    copy_rows(y, len * inner, x + start * inner, extent * inner, outer, len * inner, false);
}

/* Adds dy (outer, len * inner) into those columns of dx, leaving the other
 * columns unchanged. */
static void slice_backward_kernel(tg_scalar *dx, const tg_scalar *dy, size_t outer, size_t inner,
                                  size_t extent, size_t start, size_t len) {
    copy_rows(dx + start * inner, extent * inner, dy, len * inner, outer, len * inner, true);
}

static void slice_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx == NULL) {
        return;
    }
    const tg_tensor *x = node->inputs[0];
    const tg_tensor *y = node->output;
    int axis = (int)node->ints[0];
    slice_backward_kernel(dx, y->grad, extent_product(x->shape, 0, axis),
                          extent_product(x->shape, axis + 1, x->ndim), (size_t)x->shape[axis],
                          (size_t)node->ints[1], (size_t)y->shape[axis]);
}

static const tg_op slice_op = {"slice", slice_backward};
static const tg_op split_op = {"split", slice_backward};

/* Slices x along axis (in [0, ndim)) with 0 <= start < end <= extent checked. */
static tg_tensor *slice_checked(tg_tape *tape, const tg_op *op, const tg_tensor *x, int axis,
                                int start, int end) {
    int shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = end - start;
    size_t outer = extent_product(x->shape, 0, axis);
    size_t inner = extent_product(x->shape, axis + 1, x->ndim);
    size_t extent = (size_t)x->shape[axis];
    if (outer == 1 || (start == 0 && (size_t)end == extent)) {
        /* The selection is one contiguous block of x: share its memory. */
        return tg_tape_view(tape, x, (size_t)start * inner, x->ndim, shape);
    }

    tg_tensor *y = tg_tape_tensor(tape, x->ndim, shape);
    if (y == NULL) {
        return NULL;
    }
    slice_forward(y->data, x->data, outer, inner, extent, (size_t)start, (size_t)(end - start));
    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        node->ints[0] = axis;
        node->ints[1] = start;
    }
    return y;
}

tg_tensor *tg_slice(tg_tape *tape, const tg_tensor *x, int axis, int start, int end) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    char xs[128];
    int a;
    if (!normalize_axis(axis, x->ndim, &a)) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "slice: axis %d is out of range for x %s; the axis must be in "
                          "[%d, %d)",
                          axis, tg_shape_format(xs, sizeof xs, x->ndim, x->shape), -x->ndim,
                          x->ndim);
    }
    int extent = x->shape[a];
    if (start < 0 || start >= end || end > extent) {
        return tg_op_fail(tape, TG_ERR_INVALID,
                          "slice: range [%d, %d) is invalid for axis %d of extent %d in x %s; "
                          "need 0 <= start < end <= %d",
                          start, end, axis, extent,
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape), extent);
    }
    return slice_checked(tape, &slice_op, x, a, start, end);
}

/* Returns the tape's status for a failed split, or TG_ERR_INVALID if there is
 * no tape or the tape has no error (x was NULL). */
static tg_status split_status(const tg_tape *tape) {
    if (tape == NULL || tg_tape_status(tape) == TG_OK) {
        return TG_ERR_INVALID;
    }
    return tg_tape_status(tape);
}

/* Checks the arguments of tg_split and stores the normalized axis, or records
 * an error on the tape and returns false. */
static bool split_args_ok(tg_tape *tape, const tg_tensor *x, int axis, int n, const int *sizes,
                          const tg_tensor *const *outs, int *normalized) {
    char xs[128];
    tg_shape_format(xs, sizeof xs, x->ndim, x->shape);
    if (n < 1 || sizes == NULL || outs == NULL) {
        tg_op_fail(tape, TG_ERR_INVALID,
                   "split: got %d parts%s%s for x %s; pass n >= 1 with n sizes and n outputs", n,
                   sizes == NULL ? ", a NULL sizes array" : "",
                   outs == NULL ? ", a NULL outs array" : "", xs);
        return false;
    }
    if (!normalize_axis(axis, x->ndim, normalized)) {
        tg_op_fail(tape, TG_ERR_INVALID,
                   "split: axis %d is out of range for x %s; the axis must be in [%d, %d)", axis,
                   xs, -x->ndim, x->ndim);
        return false;
    }
    long total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 1) {
            tg_op_fail(tape, TG_ERR_INVALID,
                       "split: part %d has size %d for x %s; every size must be at least 1", i,
                       sizes[i], xs);
            return false;
        }
        total += sizes[i];
    }
    int extent = x->shape[*normalized];
    if (total != extent) {
        tg_op_fail(tape, TG_ERR_SHAPE,
                   "split: the %d sizes sum to %ld but axis %d of x %s has extent %d; the sizes "
                   "must sum to the extent",
                   n, total, axis, xs, extent);
        return false;
    }
    return true;
}

tg_status tg_split(tg_tape *tape, const tg_tensor *x, int axis, int n, const int *sizes,
                   tg_tensor **outs) {
    for (int i = 0; outs != NULL && i < n; i++) {
        outs[i] = NULL;
    }
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return split_status(tape);
    }
    int a;
    if (!split_args_ok(tape, x, axis, n, sizes, (const tg_tensor *const *)outs, &a)) {
        return tg_tape_status(tape);
    }

    int start = 0;
    for (int i = 0; i < n; i++) {
        outs[i] = slice_checked(tape, &split_op, x, a, start, start + sizes[i]);
        if (outs[i] == NULL) {
            for (int j = 0; j < i; j++) {
                outs[j] = NULL;
            }
            return tg_tape_status(tape);
        }
        start += sizes[i];
    }
    return TG_OK;
}
