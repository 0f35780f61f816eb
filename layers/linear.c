#include "linear.h"

#include <string.h>

#include "../autograd/ops/linear.h"

tg_status tg_linear_layer_init(tg_linear_layer *layer, int in_features, int out_features,
                               bool bias, tg_rng *rng, double init_std) {
    memset(layer, 0, sizeof *layer);
    if (in_features < 1 || out_features < 1) {
        return tg_set_error(TG_ERR_INVALID, "linear layer: invalid size %d -> %d; both must be "
                            "at least 1", in_features, out_features);
    }
    if (!(init_std >= 0.0)) {
        return tg_set_error(TG_ERR_INVALID, "linear layer: invalid init_std %g; it must be >= 0",
                            init_std);
    }
    int weight_shape[2] = {out_features, in_features};
    layer->weight = tg_tensor_normal(2, weight_shape, rng, 0.0, init_std);
    if (layer->weight == NULL || tg_tensor_set_requires_grad(layer->weight, true) != TG_OK) {
        tg_linear_layer_free(layer);
        return TG_ERR_NOMEM;
    }
    if (bias) {
        layer->bias = tg_tensor_zeros(1, &out_features);
        if (layer->bias == NULL || tg_tensor_set_requires_grad(layer->bias, true) != TG_OK) {
            tg_linear_layer_free(layer);
            return TG_ERR_NOMEM;
        }
    }
    layer->in_features = in_features;
    layer->out_features = out_features;
    return TG_OK;
}

tg_tensor *tg_linear_layer_forward(tg_tape *tape, const tg_linear_layer *layer,
                                   const tg_tensor *x) {
    return tg_linear(tape, x, layer->weight, layer->bias);
}

tg_status tg_linear_layer_params(const tg_linear_layer *layer, const char *prefix,
                                 tg_param_list *list) {
    tg_status status = tg_param_list_add(list, prefix, "weight", TG_PARAM_WEIGHT, layer->weight);
    if (status == TG_OK && layer->bias != NULL) {
        status = tg_param_list_add(list, prefix, "bias", TG_PARAM_BIAS, layer->bias);
    }
    return status;
}

void tg_linear_layer_free(tg_linear_layer *layer) {
    tg_tensor_free(layer->weight);
    tg_tensor_free(layer->bias);
    layer->weight = NULL;
    layer->bias = NULL;
}
