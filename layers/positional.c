#include "positional.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/op.h"
#include "../autograd/ops/elementwise.h"
#include "../autograd/ops/shape.h"

tg_status tg_sinusoid_encode(tg_scalar *out, const double *positions, int n, int dim,
                             tg_sinusoid_layout layout) {
    if (dim < 2 || dim % 2 != 0) {
        return tg_set_error(TG_ERR_INVALID, "sinusoidal encoding: invalid width %d; it must be "
                            "a positive even number", dim);
    }
    int half = dim / 2;
    for (int p = 0; p < n; p++) {
        tg_scalar *row = out + (size_t)p * (size_t)dim;
        for (int i = 0; i < half; i++) {
            double frequency = pow(10000.0, -2.0 * i / dim);
            double angle = positions[p] * frequency;
            int sin_at = layout == TG_SINUSOID_INTERLEAVED ? 2 * i : i;
            int cos_at = layout == TG_SINUSOID_INTERLEAVED ? 2 * i + 1 : half + i;
            row[sin_at] = (tg_scalar)sin(angle);
            row[cos_at] = (tg_scalar)cos(angle);
        }
    }
    return TG_OK;
}

tg_status tg_sinusoid_encode_2d(tg_scalar *out, int rows, int cols, int dim,
                                tg_sinusoid_layout layout) {
    if (dim < 4 || dim % 4 != 0) {
        return tg_set_error(TG_ERR_INVALID, "2-D sinusoidal encoding: invalid width %d; it must "
                            "be a positive multiple of 4", dim);
    }
    int half = dim / 2;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            tg_scalar *dst = out + ((size_t)r * (size_t)cols + (size_t)c) * (size_t)dim;
            double row_position = r;
            double col_position = c;
            tg_sinusoid_encode(dst, &row_position, 1, half, layout);
            tg_sinusoid_encode(dst + half, &col_position, 1, half, layout);
        }
    }
    return TG_OK;
}

static tg_status validate_config(const tg_pos_encoding_config *c) {
    bool grid = c->grid_rows > 0 || c->grid_cols > 0;
    if (grid && (c->grid_rows < 1 || c->grid_cols < 1)) {
        return tg_set_error(TG_ERR_INVALID, "positional encoding: invalid grid %d x %d; both "
                            "sides must be at least 1", c->grid_rows, c->grid_cols);
    }
    if (!grid && c->max_len < 1) {
        return tg_set_error(TG_ERR_INVALID, "positional encoding: invalid max_len %d; it must "
                            "be at least 1", c->max_len);
    }
    if (c->dim < 1) {
        return tg_set_error(TG_ERR_INVALID, "positional encoding: invalid width %d", c->dim);
    }
    if (c->kind == TG_POS_LEARNED && !(c->init_std >= 0.0)) {
        return tg_set_error(TG_ERR_INVALID, "positional encoding: invalid init_std %g",
                            c->init_std);
    }
    return TG_OK;
}

tg_status tg_pos_encoding_init(tg_pos_encoding *pe, const tg_pos_encoding_config *config,
                               tg_rng *rng) {
    memset(pe, 0, sizeof *pe);
    tg_status status = validate_config(config);
    if (status != TG_OK) {
        return status;
    }
    pe->config = *config;
    bool grid = config->grid_rows > 0;
    pe->n_positions = grid ? config->grid_rows * config->grid_cols : config->max_len;
    int shape[2] = {pe->n_positions, config->dim};

    if (config->kind == TG_POS_LEARNED) {
        pe->table = tg_tensor_normal(2, shape, rng, 0.0, config->init_std);
        if (pe->table == NULL || tg_tensor_set_requires_grad(pe->table, true) != TG_OK) {
            tg_pos_encoding_free(pe);
            return TG_ERR_NOMEM;
        }
        return TG_OK;
    }

    pe->table = tg_tensor_zeros(2, shape);
    if (pe->table == NULL) {
        return TG_ERR_NOMEM;
    }
    if (grid) {
        status = tg_sinusoid_encode_2d(pe->table->data, config->grid_rows, config->grid_cols,
                                       config->dim, config->layout);
    } else {
        double *positions = malloc((size_t)pe->n_positions * sizeof *positions);
        if (positions == NULL) {
            tg_pos_encoding_free(pe);
            return tg_set_error(TG_ERR_NOMEM, "positional encoding: out of memory");
        }
        for (int p = 0; p < pe->n_positions; p++) {
            positions[p] = p;
        }
        status = tg_sinusoid_encode(pe->table->data, positions, pe->n_positions, config->dim,
                                    config->layout);
        free(positions);
    }
    if (status != TG_OK) {
        tg_pos_encoding_free(pe);
    }
    return status;
}

tg_tensor *tg_pos_encoding_forward(tg_tape *tape, const tg_pos_encoding *pe, const tg_tensor *x) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    int D = pe->config.dim;
    char xs[128];
    if (x->ndim != 3 || x->shape[1] > pe->n_positions ||
        (pe->config.combine == TG_POS_ADD && x->shape[2] != D)) {
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "positional encoding: x %s does not fit a table of %d positions of "
                          "width %d; x must be (B, T, C) with T <= %d%s",
                          tg_shape_format(xs, sizeof xs, x->ndim, x->shape), pe->n_positions, D,
                          pe->n_positions,
                          pe->config.combine == TG_POS_ADD ? " and C equal to the width" : "");
    }
    int B = x->shape[0];
    int T = x->shape[1];
    int rows_shape[2] = {T, D};
    /* The first T rows of the table, as a view, so a learned table's gradient
     * lands in its own gradient buffer. */
    tg_tensor *rows = tg_tape_view(tape, pe->table, 0, 2, rows_shape);
    if (pe->config.combine == TG_POS_ADD) {
        return tg_add(tape, x, rows);
    }
    int expanded_shape[3] = {B, T, D};
    tg_tensor *expanded = tg_broadcast_to(tape, rows, 3, expanded_shape);
    const tg_tensor *parts[2] = {x, expanded};
    return tg_concat(tape, 2, parts, 2);
}

tg_status tg_pos_encoding_params(const tg_pos_encoding *pe, const char *prefix,
                                 tg_param_list *list) {
    if (pe->config.kind != TG_POS_LEARNED) {
        return TG_OK;
    }
    return tg_param_list_add(list, prefix, "weight", TG_PARAM_EMBEDDING, pe->table);
}

void tg_pos_encoding_free(tg_pos_encoding *pe) {
    tg_tensor_free(pe->table);
    pe->table = NULL;
}
