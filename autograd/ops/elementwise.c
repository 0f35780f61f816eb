/* Elementwise add, sub, mul and div with broadcasting, and scale.
 *
 * Forward:  y = f(a, b) at every output index, with a and b read through
 *           broadcast strides (stride 0 along a repeated dimension).
 * Backward: da += dy * df/da and db += dy * df/db, summed over repeated
 *           dimensions:
 *             add: df/da = 1,     df/db = 1
 *             sub: df/da = 1,     df/db = -1
 *             mul: df/da = b,     df/db = a
 *             div: df/da = 1 / b, df/db = -a / b^2
 * The forward saves nothing beyond its inputs, which live until the reset.
 *
 * Determinism: each gradient element is summed in a fixed order that does not
 * depend on the thread count. Inputs of full output size are updated in
 * parallel, because no two output elements touch the same input element.
 * A broadcast input sums its terms in output order, element by element. The
 * add and sub reductions split the input's elements over the threads, and
 * the other cases run on one thread.
 */
#include "elementwise.h"

#include <omp.h>
#include <string.h>

#include "../op.h"
#include "parallel_internal.h"

typedef enum binary_kind { BINARY_ADD, BINARY_SUB, BINARY_MUL, BINARY_DIV } binary_kind;

/* Output shape and each input's strides in output index order. */
typedef struct broadcast {
    int ndim;
    int shape[TG_MAX_DIMS];
    size_t a_stride[TG_MAX_DIMS];
    size_t b_stride[TG_MAX_DIMS];
    size_t size;
} broadcast;

bool tg_broadcast_shape(int a_ndim, const int *a_shape, int b_ndim, const int *b_shape,
                        int *out_ndim, int *out_shape) {
    int ndim = a_ndim > b_ndim ? a_ndim : b_ndim;
    for (int d = 0; d < ndim; d++) {
        int ad = d - (ndim - a_ndim);
        int bd = d - (ndim - b_ndim);
        int ea = ad >= 0 ? a_shape[ad] : 1;
        int eb = bd >= 0 ? b_shape[bd] : 1;
        if (ea != eb && ea != 1 && eb != 1) {
            return false;
        }
        out_shape[d] = ea > eb ? ea : eb;
    }
    *out_ndim = ndim;
    return true;
}

static void broadcast_strides(size_t *stride, int ndim, const tg_tensor *x) {
    size_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        int xd = d - (ndim - x->ndim);
        int extent = xd >= 0 ? x->shape[xd] : 1;
        stride[d] = extent == 1 ? 0 : s;
        s *= (size_t)extent;
    }
}

static tg_scalar binary_apply(binary_kind kind, tg_scalar a, tg_scalar b) {
    switch (kind) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    }
    return 0;
}

/* Returns the offsets of output element `index` in a and b. */
static void broadcast_offsets(const broadcast *bc, size_t index, size_t *ia, size_t *ib) {
    size_t oa = 0;
    size_t ob = 0;
    for (int d = bc->ndim - 1; d >= 0; d--) {
        size_t coordinate = index % (size_t)bc->shape[d];
        index /= (size_t)bc->shape[d];
        oa += coordinate * bc->a_stride[d];
        ob += coordinate * bc->b_stride[d];
    }
    *ia = oa;
    *ib = ob;
}

/* y = f(a, b) over n elements when neither input is broadcast. One loop per
 * kind, so that each vectorises. */
static void binary_forward_same_shape(binary_kind kind, tg_scalar *y, const tg_scalar *a,
                                      const tg_scalar *b, size_t n) {
    switch (kind) {
    case BINARY_ADD:
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] + b[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] + b[i];
            }
        }
        return;
    case BINARY_SUB:
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] - b[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] - b[i];
            }
        }
        return;
    case BINARY_MUL:
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] * b[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] * b[i];
            }
        }
        return;
    case BINARY_DIV:
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] / b[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                y[i] = a[i] / b[i];
            }
        }
        return;
    }
}

/* y = f(a, b) over one row of n elements, a and b read with strides sa and
 * sb (1, or 0 for an element repeated along the row). The case where both
 * are contiguous, such as a row of x + bias, gets a loop of its own so that it
 * vectorises. */
static void binary_forward_row(binary_kind kind, tg_scalar *restrict y,
                               const tg_scalar *restrict a, size_t sa,
                               const tg_scalar *restrict b, size_t sb, int n) {
    if (sa == 1 && sb == 1) {
        switch (kind) {
        case BINARY_ADD:
            for (int i = 0; i < n; i++) {
                y[i] = a[i] + b[i];
            }
            return;
        case BINARY_SUB:
            for (int i = 0; i < n; i++) {
                y[i] = a[i] - b[i];
            }
            return;
        case BINARY_MUL:
            for (int i = 0; i < n; i++) {
                y[i] = a[i] * b[i];
            }
            return;
        case BINARY_DIV:
            for (int i = 0; i < n; i++) {
                y[i] = a[i] / b[i];
            }
            return;
        }
    }
    for (int i = 0; i < n; i++) {
        y[i] = binary_apply(kind, a[(size_t)i * sa], b[(size_t)i * sb]);
    }
}

static void binary_forward(binary_kind kind, tg_scalar *y, const tg_scalar *a, const tg_scalar *b,
                           const broadcast *bc) {
    /* One row is the innermost output dimension; rows are independent. */
    int inner = bc->ndim > 0 ? bc->shape[bc->ndim - 1] : 1;
    long rows = (long)(bc->size / (size_t)inner);
    size_t sa = bc->ndim > 0 ? bc->a_stride[bc->ndim - 1] : 0;
    size_t sb = bc->ndim > 0 ? bc->b_stride[bc->ndim - 1] : 0;
    if (tg__use_threads(bc->size)) {
#pragma omp parallel for schedule(static)
        for (long r = 0; r < rows; r++) {
            size_t ia;
            size_t ib;
            broadcast_offsets(bc, (size_t)r * (size_t)inner, &ia, &ib);
            binary_forward_row(kind, y + (size_t)r * (size_t)inner, a + ia, sa, b + ib, sb, inner);
        }
    } else {
        for (long r = 0; r < rows; r++) {
            size_t ia;
            size_t ib;
            broadcast_offsets(bc, (size_t)r * (size_t)inner, &ia, &ib);
            binary_forward_row(kind, y + (size_t)r * (size_t)inner, a + ia, sa, b + ib, sb, inner);
        }
    }
}

/* Partial derivatives of f(a, b) with respect to a and to b. */
static void binary_partials(binary_kind kind, tg_scalar a, tg_scalar b, tg_scalar *dfa,
                            tg_scalar *dfb) {
    *dfa = 0;
    *dfb = 0;
    switch (kind) {
    case BINARY_ADD:
        *dfa = 1;
        *dfb = 1;
        return;
    case BINARY_SUB:
        *dfa = 1;
        *dfb = -1;
        return;
    case BINARY_MUL:
        *dfa = b;
        *dfb = a;
        return;
    case BINARY_DIV:
        *dfa = 1 / b;
        *dfb = -a / (b * b);
        return;
    }
}

/* Adds dy * df/dx into gx (n) for one input x (which = 0 for a, 1 for b)
 * when neither input is broadcast, so that a, b, dy and gx share one index.
 * The partials of add and sub are +1 or -1, so those loops skip the
 * multiplication, which changes no bit, and read neither a nor b. */
static void binary_backward_same_shape(binary_kind kind, int which, tg_scalar *gx,
                                       const tg_scalar *dy, const tg_scalar *a,
                                       const tg_scalar *b, size_t n) {
    if (kind == BINARY_ADD || (kind == BINARY_SUB && which == 0)) {
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                gx[i] += dy[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                gx[i] += dy[i];
            }
        }
        return;
    }
    if (kind == BINARY_SUB) {
        if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                gx[i] -= dy[i];
            }
        } else {
            for (long i = 0; i < (long)n; i++) {
                gx[i] -= dy[i];
            }
        }
        return;
    }
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            tg_scalar dfa;
            tg_scalar dfb;
            binary_partials(kind, a[i], b[i], &dfa, &dfb);
            gx[i] += dy[i] * (which == 0 ? dfa : dfb);
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            tg_scalar dfa;
            tg_scalar dfb;
            binary_partials(kind, a[i], b[i], &dfa, &dfb);
            gx[i] += dy[i] * (which == 0 ? dfa : dfb);
        }
    }
}

/* Returns true if the input with these strides repeats one contiguous block
 * along the leading output dimensions (a (T, C) input added to (B, T, C),
 * say): strides 0 on dimensions [0, k) and the output's own contiguous
 * strides on [k, ndim). Sets the repeat count and the block size. */
static bool repeated_suffix(const broadcast *bc, const size_t *stride, size_t *repeats,
                            size_t *block) {
    size_t contiguous = 1;
    int d = bc->ndim - 1;
    for (; d >= 0 && stride[d] == contiguous; d--) {
        contiguous *= (size_t)bc->shape[d];
    }
    for (int lead = d; lead >= 0; lead--) {
        if (stride[lead] != 0) {
            return false;
        }
    }
    *block = contiguous;
    *repeats = bc->size / contiguous;
    return true;
}

/* Adds (or subtracts, with negate) the sum of the repeats blocks of dy, each
 * `block` elements, into gx (block). Each element sums its repeats in
 * order, as the odometer walk below does, so the bits are the same; the
 * elements are split over the threads. */
static void sum_repeats(tg_scalar *gx, const tg_scalar *dy, size_t repeats, size_t block,
                        bool negate) {
    enum { COLUMNS = 256 };
    long column_blocks = (long)((block + COLUMNS - 1) / COLUMNS);
    if (tg__use_threads(repeats * block) && column_blocks > 1) {
#pragma omp parallel for schedule(static)
        for (long c = 0; c < column_blocks; c++) {
            size_t begin = (size_t)c * COLUMNS;
            size_t end = begin + COLUMNS < block ? begin + COLUMNS : block;
            for (size_t r = 0; r < repeats; r++) {
                const tg_scalar *dy_r = dy + r * block;
                if (negate) {
                    for (size_t j = begin; j < end; j++) {
                        gx[j] -= dy_r[j];
                    }
                } else {
                    for (size_t j = begin; j < end; j++) {
                        gx[j] += dy_r[j];
                    }
                }
            }
        }
    } else {
        for (long c = 0; c < column_blocks; c++) {
            size_t begin = (size_t)c * COLUMNS;
            size_t end = begin + COLUMNS < block ? begin + COLUMNS : block;
            for (size_t r = 0; r < repeats; r++) {
                const tg_scalar *dy_r = dy + r * block;
                if (negate) {
                    for (size_t j = begin; j < end; j++) {
                        gx[j] -= dy_r[j];
                    }
                } else {
                    for (size_t j = begin; j < end; j++) {
                        gx[j] += dy_r[j];
                    }
                }
            }
        }
    }
}

/* Adds (or subtracts, with negate) dy into gx for an input x that add or
 * sub repeated along some output dimensions, but not along the innermost
 * one, such as (B, 1, C) added to (B, N, C). Output rows of the innermost
 * dimension are taken in order, so each element of gx sums its terms in
 * the order of the odometer walk below and gets the same bits. The columns
 * are split over the threads in blocks of whole cache lines. */
static void sum_rows_into(tg_scalar *gx, const tg_scalar *dy, const broadcast *bc,
                          const size_t *stride, bool negate) {
    enum { COLUMNS = 64 };
    int inner = bc->shape[bc->ndim - 1];
    size_t rows = bc->size / (size_t)inner;
    long column_blocks = (long)((inner + COLUMNS - 1) / COLUMNS);
    if (tg__use_threads(bc->size) && column_blocks > 1) {
#pragma omp parallel for schedule(static)
        for (long c = 0; c < column_blocks; c++) {
            int begin = (int)c * COLUMNS;
            int end = begin + COLUMNS < inner ? begin + COLUMNS : inner;
            size_t coordinate[TG_MAX_DIMS] = {0};
            size_t offset = 0;
            for (size_t r = 0; r < rows; r++) {
                tg_scalar *restrict gx_r = gx + offset;
                const tg_scalar *restrict dy_r = dy + r * (size_t)inner;
                if (negate) {
                    for (int j = begin; j < end; j++) {
                        gx_r[j] -= dy_r[j];
                    }
                } else {
                    for (int j = begin; j < end; j++) {
                        gx_r[j] += dy_r[j];
                    }
                }
                /* Advance the odometer over the dimensions before the innermost. */
                for (int d = bc->ndim - 2; d >= 0; d--) {
                    coordinate[d]++;
                    offset += stride[d];
                    if (coordinate[d] < (size_t)bc->shape[d]) {
                        break;
                    }
                    offset -= stride[d] * (size_t)bc->shape[d];
                    coordinate[d] = 0;
                }
            }
        }
    } else {
        for (long c = 0; c < column_blocks; c++) {
            int begin = (int)c * COLUMNS;
            int end = begin + COLUMNS < inner ? begin + COLUMNS : inner;
            size_t coordinate[TG_MAX_DIMS] = {0};
            size_t offset = 0;
            for (size_t r = 0; r < rows; r++) {
                tg_scalar *restrict gx_r = gx + offset;
                const tg_scalar *restrict dy_r = dy + r * (size_t)inner;
                if (negate) {
                    for (int j = begin; j < end; j++) {
                        gx_r[j] -= dy_r[j];
                    }
                } else {
                    for (int j = begin; j < end; j++) {
                        gx_r[j] += dy_r[j];
                    }
                }
                /* Advance the odometer over the dimensions before the innermost. */
                for (int d = bc->ndim - 2; d >= 0; d--) {
                    coordinate[d]++;
                    offset += stride[d];
                    if (coordinate[d] < (size_t)bc->shape[d]) {
                        break;
                    }
                    offset -= stride[d] * (size_t)bc->shape[d];
                    coordinate[d] = 0;
                }
            }
        }
    }
}

/* Adds dy * df/dx into gx for one input x (which = 0 for a, 1 for b). */
static void binary_backward_input(binary_kind kind, int which, tg_scalar *gx, const tg_scalar *dy,
                                  const tg_scalar *a, const tg_scalar *b, const broadcast *bc,
                                  bool x_full_size) {
    if (x_full_size && (kind == BINARY_ADD || kind == BINARY_SUB)) {
        /* The partial is +1 or -1 and reads neither input. */
        binary_backward_same_shape(kind, which, gx, dy, a, b, bc->size);
        return;
    }
    if (x_full_size) {
        if (tg__use_threads(bc->size)) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)bc->size; i++) {
                size_t ia;
                size_t ib;
                broadcast_offsets(bc, (size_t)i, &ia, &ib);
                tg_scalar dfa;
                tg_scalar dfb;
                binary_partials(kind, a[ia], b[ib], &dfa, &dfb);
                gx[i] += dy[i] * (which == 0 ? dfa : dfb);
            }
        } else {
            for (long i = 0; i < (long)bc->size; i++) {
                size_t ia;
                size_t ib;
                broadcast_offsets(bc, (size_t)i, &ia, &ib);
                tg_scalar dfa;
                tg_scalar dfb;
                binary_partials(kind, a[ia], b[ib], &dfa, &dfb);
                gx[i] += dy[i] * (which == 0 ? dfa : dfb);
            }
        }
        return;
    }
    size_t repeats;
    size_t x_size;
    if ((kind == BINARY_ADD || kind == BINARY_SUB) &&
        repeated_suffix(bc, which == 0 ? bc->a_stride : bc->b_stride, &repeats, &x_size)) {
        sum_repeats(gx, dy, repeats, x_size, kind == BINARY_SUB && which == 1);
        return;
    }
    const size_t *x_stride = which == 0 ? bc->a_stride : bc->b_stride;
    if ((kind == BINARY_ADD || kind == BINARY_SUB) && bc->ndim > 0 &&
        x_stride[bc->ndim - 1] == 1) {
        sum_rows_into(gx, dy, bc, x_stride, kind == BINARY_SUB && which == 1);
        return;
    }
    /* A repeated input: walk the output in order with an odometer of indices. */
    size_t coordinate[TG_MAX_DIMS] = {0};
    size_t ia = 0;
    size_t ib = 0;
    for (size_t i = 0; i < bc->size; i++) {
        tg_scalar dfa;
        tg_scalar dfb;
        binary_partials(kind, a[ia], b[ib], &dfa, &dfb);
        if (which == 0) {
            gx[ia] += dy[i] * dfa;
        } else {
            gx[ib] += dy[i] * dfb;
        }
        for (int d = bc->ndim - 1; d >= 0; d--) {
            coordinate[d]++;
            ia += bc->a_stride[d];
            ib += bc->b_stride[d];
            if (coordinate[d] < (size_t)bc->shape[d]) {
                break;
            }
            ia -= bc->a_stride[d] * (size_t)bc->shape[d];
            ib -= bc->b_stride[d] * (size_t)bc->shape[d];
            coordinate[d] = 0;
        }
    }
}

static void binary_backward(tg_node *node) {
    binary_kind kind = (binary_kind)node->ints[0];
    const broadcast *bc = node->saved;
    const tg_tensor *a = node->inputs[0];
    const tg_tensor *b = node->inputs[1];
    const tg_scalar *dy = node->output->grad;
    tg_scalar *ga = tg_node_input_grad(node, 0);
    tg_scalar *gb = tg_node_input_grad(node, 1);
    if (a->size == bc->size && b->size == bc->size) {
        if (ga != NULL) {
            binary_backward_same_shape(kind, 0, ga, dy, a->data, b->data, bc->size);
        }
        if (gb != NULL) {
            binary_backward_same_shape(kind, 1, gb, dy, a->data, b->data, bc->size);
        }
        return;
    }
    if (ga != NULL) {
        binary_backward_input(kind, 0, ga, dy, a->data, b->data, bc, a->size == bc->size);
    }
    if (gb != NULL) {
        binary_backward_input(kind, 1, gb, dy, a->data, b->data, bc, b->size == bc->size);
    }
}

static const tg_op add_op = {"add", binary_backward};
static const tg_op sub_op = {"sub", binary_backward};
static const tg_op mul_op = {"mul", binary_backward};
static const tg_op div_op = {"div", binary_backward};

static tg_tensor *binary(tg_tape *tape, const tg_op *op, binary_kind kind, const tg_tensor *a,
                         const tg_tensor *b) {
    const tg_tensor *inputs[2] = {a, b};
    if (!tg_op_inputs_ok(tape, 2, inputs)) {
        return NULL;
    }
    broadcast bc;
    if (!tg_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &bc.ndim, bc.shape)) {
        char as[128];
        char bs[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "%s: shapes %s and %s do not broadcast; each dimension, aligned from "
                          "the right, must be equal or 1",
                          op->name, tg_shape_format(as, sizeof as, a->ndim, a->shape),
                          tg_shape_format(bs, sizeof bs, b->ndim, b->shape));
    }
    bc.size = tg_shape_size(bc.ndim, bc.shape);
    broadcast_strides(bc.a_stride, bc.ndim, a);
    broadcast_strides(bc.b_stride, bc.ndim, b);

    tg_tensor *y = tg_tape_tensor(tape, bc.ndim, bc.shape);
    if (y == NULL) {
        return NULL;
    }
    if (a->size == bc.size && b->size == bc.size) {
        binary_forward_same_shape(kind, y->data, a->data, b->data, bc.size);
    } else {
        binary_forward(kind, y->data, a->data, b->data, &bc);
    }

    tg_node *node = tg_tape_record(tape, op, y, 2, inputs);
    if (node != NULL) {
        broadcast *saved = tg_tape_alloc(tape, sizeof bc);
        if (saved == NULL) {
            return NULL;
        }
        *saved = bc;
        node->saved = saved;
        node->ints[0] = kind;
    }
    return y;
}

tg_tensor *tg_add(tg_tape *tape, const tg_tensor *a, const tg_tensor *b) {
    return binary(tape, &add_op, BINARY_ADD, a, b);
}

tg_tensor *tg_sub(tg_tape *tape, const tg_tensor *a, const tg_tensor *b) {
    return binary(tape, &sub_op, BINARY_SUB, a, b);
}

tg_tensor *tg_mul(tg_tape *tape, const tg_tensor *a, const tg_tensor *b) {
    return binary(tape, &mul_op, BINARY_MUL, a, b);
}

tg_tensor *tg_div(tg_tape *tape, const tg_tensor *a, const tg_tensor *b) {
    return binary(tape, &div_op, BINARY_DIV, a, b);
}

/* ---- scale and add_scalar: y = factor * x + offset --------------------- */

static void affine_forward(tg_scalar *y, const tg_scalar *x, size_t n, tg_scalar factor,
                           tg_scalar offset) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            y[i] = factor * x[i] + offset;
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            y[i] = factor * x[i] + offset;
        }
    }
}

static void affine_backward_kernel(tg_scalar *dx, const tg_scalar *dy, size_t n, tg_scalar factor) {
    if (tg__use_threads(n)) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            dx[i] += factor * dy[i];
        }
    } else {
        for (long i = 0; i < (long)n; i++) {
            dx[i] += factor * dy[i];
        }
    }
}

static void affine_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx != NULL) {
        affine_backward_kernel(dx, node->output->grad, node->output->size, (tg_scalar)node->scalar);
    }
}

static const tg_op scale_op = {"scale", affine_backward};
static const tg_op add_scalar_op = {"add_scalar", affine_backward};

static tg_tensor *affine(tg_tape *tape, const tg_op *op, const tg_tensor *x, double factor,
                         double offset) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    if (y == NULL) {
        return NULL;
    }
    affine_forward(y->data, x->data, x->size, (tg_scalar)factor, (tg_scalar)offset);
    tg_node *node = tg_tape_record(tape, op, y, 1, &x);
    if (node != NULL) {
        node->scalar = factor;
    }
    return y;
}

tg_tensor *tg_scale(tg_tape *tape, const tg_tensor *x, double factor) {
    return affine(tape, &scale_op, x, factor, 0.0);
}

tg_tensor *tg_add_scalar(tg_tape *tape, const tg_tensor *x, double value) {
    return affine(tape, &add_scalar_op, x, 1.0, value);
}

/* ---- broadcast_to: y = 0 + x ------------------------------------------- */

tg_tensor *tg_broadcast_to(tg_tape *tape, const tg_tensor *x, int ndim, const int *shape) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    int out_ndim;
    int out_shape[TG_MAX_DIMS];
    bool fits = ndim <= TG_MAX_DIMS &&
                tg_broadcast_shape(x->ndim, x->shape, ndim, shape, &out_ndim, out_shape) &&
                out_ndim == ndim && memcmp(out_shape, shape, (size_t)ndim * sizeof *shape) == 0;
    if (!fits) {
        char xs[128];
        char ts[128];
        return tg_op_fail(tape, TG_ERR_SHAPE, "broadcast_to: shape %s does not broadcast to %s",
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape),
                          tg_shape_format(ts, sizeof ts, ndim, shape));
    }
    /* Adding x to a constant zero tensor reuses add's broadcasting forward and
     * its summing backward. */
    tg_tensor *zeros = tg_tape_tensor(tape, ndim, shape);
    if (zeros == NULL) {
        return NULL;
    }
    memset(zeros->data, 0, zeros->size * sizeof *zeros->data);
    return tg_add(tape, zeros, x);
}
