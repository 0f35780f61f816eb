#include "attention.h"

#include <string.h>

#include "../autograd/op.h"
#include "../autograd/ops/attention.h"
#include "../autograd/ops/dropout.h"
#include "../autograd/ops/elementwise.h"
#include "../autograd/ops/linear.h"

static tg_status check_sizes(int dim, int n_head, double dropout) {
    if (n_head < 1 || dim < 1 || dim % n_head != 0) {
        return tg_set_error(TG_ERR_INVALID, "attention layer: width %d is not divisible by "
                            "n_head %d; choose a head count that divides the width",
                            dim, n_head);
    }
    if (!(dropout >= 0.0 && dropout < 1.0)) {
        return tg_set_error(TG_ERR_INVALID, "attention layer: invalid dropout %g; it must be in "
                            "[0, 1)", dropout);
    }
    return TG_OK;
}

tg_status tg_attention_layer_init(tg_attention_layer *layer, int dim, int n_head, bool bias,
                                  double dropout, tg_rng *rng, double init_std,
                                  double proj_init_std) {
    memset(layer, 0, sizeof *layer);
    tg_status status = check_sizes(dim, n_head, dropout);
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->c_attn, dim, 3 * dim, bias, rng, init_std);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->c_proj, dim, dim, bias, rng, proj_init_std);
    }
    if (status != TG_OK) {
        tg_attention_layer_free(layer);
        return status;
    }
    layer->dim = dim;
    layer->n_head = n_head;
    layer->dropout = dropout;
    return TG_OK;
}

tg_status tg_cross_attention_layer_init(tg_attention_layer *layer, int dim, int context_dim,
                                        int n_head, bool bias, double dropout, tg_rng *rng,
                                        double init_std, double proj_init_std) {
    memset(layer, 0, sizeof *layer);
    tg_status status = check_sizes(dim, n_head, dropout);
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->q_proj, dim, dim, bias, rng, init_std);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->k_proj, context_dim, dim, bias, rng, init_std);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->v_proj, context_dim, dim, bias, rng, init_std);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&layer->c_proj, dim, dim, bias, rng, proj_init_std);
    }
    if (status != TG_OK) {
        tg_attention_layer_free(layer);
        return status;
    }
    layer->dim = dim;
    layer->n_head = n_head;
    layer->dropout = dropout;
    layer->cross = true;
    return TG_OK;
}

static tg_tensor *project_out(tg_tape *tape, const tg_attention_layer *layer, tg_tensor *y,
                              const tg_mode *mode) {
    y = tg_linear_layer_forward(tape, &layer->c_proj, y);
    if (mode != NULL && mode->training && layer->dropout > 0.0) {
        y = tg_dropout(tape, y, layer->dropout, mode->rng, true);
    }
    return y;
}

/* Returns residual + the self-attention of x, or the attention alone when
 * residual is NULL. Without dropout the output projection adds the residual
 * itself. */
static tg_tensor *self_attention_forward(tg_tape *tape, const tg_attention_layer *layer,
                                         const tg_tensor *x, const tg_tensor *residual,
                                         bool causal, const uint8_t *key_padding_mask,
                                         const tg_mode *mode) {
    if (layer->cross) {
        return tg_op_fail(tape, TG_ERR_INVALID, "attention layer: this is a cross-attention "
                          "layer; call tg_cross_attention_layer_forward with a context");
    }
    tg_attention_options options = {.causal = causal, .key_padding_mask = key_padding_mask};
    tg_tensor *qkv = tg_linear_layer_forward(tape, &layer->c_attn, x);
    tg_tensor *y = tg_self_attention_packed(tape, qkv, layer->n_head, &options);
    bool dropout = mode != NULL && mode->training && layer->dropout > 0.0;
    if (residual != NULL && !dropout) {
        return tg_linear_residual(tape, y, layer->c_proj.weight, layer->c_proj.bias, residual);
    }
    y = project_out(tape, layer, y, mode);
    return residual != NULL ? tg_add(tape, residual, y) : y;
}

tg_tensor *tg_attention_layer_forward(tg_tape *tape, const tg_attention_layer *layer,
                                      const tg_tensor *x, bool causal,
                                      const uint8_t *key_padding_mask, const tg_mode *mode) {
    return self_attention_forward(tape, layer, x, NULL, causal, key_padding_mask, mode);
}

tg_tensor *tg_attention_layer_forward_residual(tg_tape *tape, const tg_attention_layer *layer,
                                               const tg_tensor *x, const tg_tensor *residual,
                                               bool causal, const uint8_t *key_padding_mask,
                                               const tg_mode *mode) {
    if (!tg_op_inputs_ok(tape, 1, &residual)) {
        return NULL;
    }
    return self_attention_forward(tape, layer, x, residual, causal, key_padding_mask, mode);
}

tg_tensor *tg_cross_attention_layer_forward(tg_tape *tape, const tg_attention_layer *layer,
                                            const tg_tensor *x, const tg_tensor *context,
                                            const uint8_t *key_padding_mask,
                                            const tg_mode *mode) {
    if (!layer->cross) {
        return tg_op_fail(tape, TG_ERR_INVALID, "attention layer: this is a self-attention "
                          "layer; call tg_attention_layer_forward");
    }
    tg_attention_options options = {.key_padding_mask = key_padding_mask};
    tg_tensor *q = tg_linear_layer_forward(tape, &layer->q_proj, x);
    tg_tensor *k = tg_linear_layer_forward(tape, &layer->k_proj, context);
    tg_tensor *v = tg_linear_layer_forward(tape, &layer->v_proj, context);
    tg_tensor *y = tg_attention(tape, q, k, v, layer->n_head, &options);
    return project_out(tape, layer, y, mode);
}

static tg_status add_sublayer(const tg_linear_layer *sublayer, const char *prefix,
                              const char *name, tg_param_list *list) {
    char full[TG_PARAM_NAME_MAX];
    tg_status status = tg_param_name_join(full, sizeof full, prefix, name);
    if (status == TG_OK) {
        status = tg_linear_layer_params(sublayer, full, list);
    }
    return status;
}

tg_status tg_attention_layer_params(const tg_attention_layer *layer, const char *prefix,
                                    tg_param_list *list) {
    tg_status status;
    if (layer->cross) {
        status = add_sublayer(&layer->q_proj, prefix, "q_proj", list);
        if (status == TG_OK) {
            status = add_sublayer(&layer->k_proj, prefix, "k_proj", list);
        }
        if (status == TG_OK) {
            status = add_sublayer(&layer->v_proj, prefix, "v_proj", list);
        }
    } else {
        status = add_sublayer(&layer->c_attn, prefix, "c_attn", list);
    }
    if (status == TG_OK) {
        status = add_sublayer(&layer->c_proj, prefix, "c_proj", list);
    }
    return status;
}

void tg_attention_layer_free(tg_attention_layer *layer) {
    tg_linear_layer_free(&layer->c_attn);
    tg_linear_layer_free(&layer->q_proj);
    tg_linear_layer_free(&layer->k_proj);
    tg_linear_layer_free(&layer->v_proj);
    tg_linear_layer_free(&layer->c_proj);
}
