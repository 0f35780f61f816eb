/* Tensors: dense row-major arrays of tg_scalar with up to TG_MAX_DIMS dimensions.
 *
 * A tensor lives in one of two places:
 * - On the heap, created by the tg_tensor_* constructors below and freed by
 *   tg_tensor_free. Parameters and anything else that outlives a step are heap
 *   tensors. A heap tensor that requires grad owns a gradient buffer that
 *   backward passes add into until tg_tensor_zero_grad clears it.
 * - In a tape's arena, created by ops during a forward pass (see tape.h). Such
 *   tensors, and their gradients, are released by tg_tape_reset.
 *
 * Shapes are written outermost first, as in PyTorch: x (B, T, C) has
 * shape[0] = B and C contiguous elements per row.
 */
#ifndef TG_AUTOGRAD_TENSOR_H
#define TG_AUTOGRAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "rng.h"
#include "scalar.h"
#include "status.h"

typedef struct tg_tensor tg_tensor;

struct tg_tensor {
    /* Read-only after creation. */
    int ndim;
    int shape[TG_MAX_DIMS];
    size_t size;          /* number of elements, the product of shape */
    tg_scalar *data;      /* size elements, contiguous */
    /* Gradient of the loss with respect to data, size elements. NULL for a tape
     * tensor until the backward pass first adds into it. */
    tg_scalar *grad;
    bool requires_grad;

    /* Internal. */
    tg_tensor *view_of;   /* tensor whose memory this one shares, or NULL */
    size_t view_offset;   /* element offset into view_of's data and grad */
    bool on_heap;         /* created by a tg_tensor_* constructor */
};

/* Checks that ndim is in [0, TG_MAX_DIMS] and every extent is at least 1.
 * Returns TG_OK, or TG_ERR_SHAPE with a message naming `what`. */
tg_status tg_shape_validate(int ndim, const int *shape, const char *what);

/* Returns the number of elements of a shape (1 for ndim 0). */
size_t tg_shape_size(int ndim, const int *shape);

/* Writes a shape as "(2, 3, 4)" into buf and returns buf. */
char *tg_shape_format(char *buf, size_t buf_size, int ndim, const int *shape);

/* Returns true if both tensors have the same ndim and extents. */
bool tg_tensor_same_shape(const tg_tensor *a, const tg_tensor *b);

/* Heap constructors. Each returns a new tensor that the caller frees with
 * tg_tensor_free, or NULL with tg_last_error() set on a bad shape or when
 * memory runs out. None requires grad until tg_tensor_set_requires_grad. */
tg_tensor *tg_tensor_zeros(int ndim, const int *shape);
tg_tensor *tg_tensor_ones(int ndim, const int *shape);
tg_tensor *tg_tensor_from_values(int ndim, const int *shape, const tg_scalar *values);
/* Elements drawn from N(mean, std^2) in row-major order from rng. */
tg_tensor *tg_tensor_normal(int ndim, const int *shape, tg_rng *rng, double mean, double std);
/* Elements drawn uniformly from [low, high) in row-major order from rng. */
tg_tensor *tg_tensor_uniform(int ndim, const int *shape, tg_rng *rng, double low, double high);

/* Frees a heap tensor, its data and its gradient. Accepts NULL. Tape tensors
 * must not be passed here; tg_tape_reset releases them. */
void tg_tensor_free(tg_tensor *t);

/* Marks a heap tensor as a trainable leaf and allocates its zeroed gradient.
 * Returns TG_ERR_NOMEM or TG_ERR_STATE (a tape tensor) on failure. */
tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool requires_grad);

/* Sets the gradient of a heap tensor to zero. */
void tg_tensor_zero_grad(tg_tensor *t);

/* Sets every element to value. */
void tg_tensor_fill(tg_tensor *t, tg_scalar value);

#endif
