#include "tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_status tg_shape_validate(int ndim, const int *shape, const char *what) {
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        return tg_set_error(TG_ERR_SHAPE, "%s: invalid number of dimensions %d; expected 0 to %d",
                            what, ndim, TG_MAX_DIMS);
    }
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) {
            char buf[128];
            return tg_set_error(TG_ERR_SHAPE,
                                "%s: invalid shape %s; every dimension must be at least 1", what,
                                tg_shape_format(buf, sizeof buf, ndim, shape));
        }
        if (size > SIZE_MAX / sizeof(tg_scalar) / (size_t)shape[i]) {
            char buf[128];
            return tg_set_error(TG_ERR_SHAPE, "%s: shape %s is too large to address", what,
                                tg_shape_format(buf, sizeof buf, ndim, shape));
        }
        size *= (size_t)shape[i];
    }
    return TG_OK;
}

size_t tg_shape_size(int ndim, const int *shape) {
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        size *= (size_t)shape[i];
    }
    return size;
}

char *tg_shape_format(char *buf, size_t buf_size, int ndim, const int *shape) {
    size_t len = 0;
    len += (size_t)snprintf(buf, buf_size, "(");
    for (int i = 0; i < ndim && len < buf_size; i++) {
        len += (size_t)snprintf(buf + len, buf_size - len, "%s%d", i > 0 ? ", " : "", shape[i]);
    }
    if (len < buf_size) {
        snprintf(buf + len, buf_size - len, ")");
    }
    return buf;
}

bool tg_tensor_same_shape(const tg_tensor *a, const tg_tensor *b) {
    if (a->ndim != b->ndim) {
        return false;
    }
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] != b->shape[i]) {
            return false;
        }
    }
    return true;
}

static tg_tensor *heap_tensor_new(int ndim, const int *shape) {
    if (tg_shape_validate(ndim, shape, "tensor") != TG_OK) {
        return NULL;
    }
    tg_tensor *t = calloc(1, sizeof *t);
    if (t == NULL) {
        tg_set_error(TG_ERR_NOMEM, "tensor: out of memory allocating a tensor header");
        return NULL;
    }
    t->ndim = ndim;
    if (ndim > 0) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    }
    t->size = tg_shape_size(ndim, shape);
    t->data = calloc(t->size, sizeof *t->data);
    if (t->data == NULL) {
        tg_set_error(TG_ERR_NOMEM, "tensor: out of memory allocating %zu elements", t->size);
        free(t);
        return NULL;
    }
    t->on_heap = true;
    return t;
}

tg_tensor *tg_tensor_zeros(int ndim, const int *shape) {
    return heap_tensor_new(ndim, shape);
}

tg_tensor *tg_tensor_ones(int ndim, const int *shape) {
    tg_tensor *t = heap_tensor_new(ndim, shape);
    if (t != NULL) {
        tg_tensor_fill(t, 1);
    }
    return t;
}

tg_tensor *tg_tensor_from_values(int ndim, const int *shape, const tg_scalar *values) {
    tg_tensor *t = heap_tensor_new(ndim, shape);
    if (t != NULL) {
        memcpy(t->data, values, t->size * sizeof *values);
    }
    return t;
}

tg_tensor *tg_tensor_normal(int ndim, const int *shape, tg_rng *rng, double mean, double std) {
    tg_tensor *t = heap_tensor_new(ndim, shape);
    if (t != NULL) {
        for (size_t i = 0; i < t->size; i++) {
            t->data[i] = (tg_scalar)(mean + std * tg_rng_normal(rng));
        }
    }
    return t;
}

tg_tensor *tg_tensor_uniform(int ndim, const int *shape, tg_rng *rng, double low, double high) {
    tg_tensor *t = heap_tensor_new(ndim, shape);
    if (t != NULL) {
        for (size_t i = 0; i < t->size; i++) {
            t->data[i] = (tg_scalar)(low + (high - low) * tg_rng_uniform(rng));
        }
    }
    return t;
}

void tg_tensor_free(tg_tensor *t) {
    if (t == NULL || !t->on_heap) {
        return;
    }
    free(t->data);
    free(t->grad);
    free(t);
}

tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool requires_grad) {
    if (!t->on_heap) {
        return tg_set_error(TG_ERR_STATE,
                            "tensor: requires_grad can only be set on heap tensors; tape "
                            "tensors get it from their inputs");
    }
    if (requires_grad && t->grad == NULL) {
        t->grad = calloc(t->size, sizeof *t->grad);
        if (t->grad == NULL) {
            return tg_set_error(TG_ERR_NOMEM, "tensor: out of memory allocating a gradient of %zu elements",
                                t->size);
        }
    }
    t->requires_grad = requires_grad;
    return TG_OK;
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (t->grad != NULL) {
        memset(t->grad, 0, t->size * sizeof *t->grad);
    }
}

void tg_tensor_fill(tg_tensor *t, tg_scalar value) {
    for (size_t i = 0; i < t->size; i++) {
        t->data[i] = value;
    }
}
