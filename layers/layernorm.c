#include "layernorm.h"

#include <string.h>

#include "../autograd/ops/layernorm.h"

tg_status tg_layernorm_layer_init(tg_layernorm_layer *layer, int dim, double eps,
                                  bool elementwise_affine, bool bias) {
    memset(layer, 0, sizeof *layer);
    if (dim < 1 || !(eps > 0.0)) {
        return tg_set_error(TG_ERR_INVALID, "layernorm layer: invalid dim %d or eps %g; dim must "
                            "be at least 1 and eps positive", dim, eps);
    }
    layer->dim = dim;
    layer->eps = eps;
    if (!elementwise_affine) {
        return TG_OK;
    }
    layer->weight = tg_tensor_ones(1, &dim);
    if (layer->weight == NULL || tg_tensor_set_requires_grad(layer->weight, true) != TG_OK) {
        tg_layernorm_layer_free(layer);
        return TG_ERR_NOMEM;
    }
    if (bias) {
        layer->bias = tg_tensor_zeros(1, &dim);
        if (layer->bias == NULL || tg_tensor_set_requires_grad(layer->bias, true) != TG_OK) {
            tg_layernorm_layer_free(layer);
            return TG_ERR_NOMEM;
        }
    }
    return TG_OK;
}

tg_tensor *tg_layernorm_layer_forward(tg_tape *tape, const tg_layernorm_layer *layer,
                                      const tg_tensor *x) {
    return tg_layernorm(tape, x, layer->weight, layer->bias, layer->eps);
}

tg_status tg_layernorm_layer_params(const tg_layernorm_layer *layer, const char *prefix,
                                    tg_param_list *list) {
    if (layer->weight == NULL) {
        return TG_OK;
    }
    tg_status status = tg_param_list_add(list, prefix, "weight", TG_PARAM_NORM, layer->weight);
    if (status == TG_OK && layer->bias != NULL) {
        status = tg_param_list_add(list, prefix, "bias", TG_PARAM_NORM, layer->bias);
    }
    return status;
}

void tg_layernorm_layer_free(tg_layernorm_layer *layer) {
    tg_tensor_free(layer->weight);
    tg_tensor_free(layer->bias);
    layer->weight = NULL;
    layer->bias = NULL;
}
