/* RMSNorm layer: owns the weight and calls the my_rmsnorm op. A layer
 * composes ops and has no backward of its own. */
#include "rmsnorm_layer.h"

#include <math.h>
#include <string.h>

#include "rmsnorm.h"

tg_status my_rmsnorm_layer_init(my_rmsnorm_layer *layer, int dim, double eps) {
    memset(layer, 0, sizeof *layer);
    if (dim < 1 || !(eps > 0.0 && isfinite(eps))) {
        return tg_set_error(TG_ERR_INVALID,
                            "my_rmsnorm_layer_init: dim %d or eps %g is invalid; dim must be at "
                            "least 1 and eps positive and finite",
                            dim, eps);
    }
    layer->dim = dim;
    layer->eps = eps;
    layer->weight = tg_tensor_ones(1, &dim);
    if (layer->weight == NULL) {
        return TG_ERR_NOMEM;
    }
    return tg_tensor_set_requires_grad(layer->weight, true);
}

tg_tensor *my_rmsnorm_layer_forward(tg_tape *tape, const my_rmsnorm_layer *layer,
                                    const tg_tensor *x) {
    return my_rmsnorm(tape, x, layer->weight, layer->eps);
}

tg_status my_rmsnorm_layer_params(const my_rmsnorm_layer *layer, const char *prefix,
                                  tg_param_list *list) {
    return tg_param_list_add(list, prefix, "weight", TG_PARAM_NORM, layer->weight);
}

void my_rmsnorm_layer_free(my_rmsnorm_layer *layer) {
    tg_tensor_free(layer->weight);
    layer->weight = NULL;
}
