/* LayerNorm layer over the last dimension, as PyTorch's nn.LayerNorm.
 *
 * Parameters when elementwise_affine: "weight" (C) ones and, when bias is
 * also set, "bias" (C) zeros, both kind TG_PARAM_NORM. eps is added to the variance (PyTorch's
 * default is 1e-5).
 */
#ifndef TG_LAYERS_LAYERNORM_H
#define TG_LAYERS_LAYERNORM_H

#include <stdbool.h>

#include "../autograd/params.h"
#include "../autograd/tape.h"

typedef struct tg_layernorm_layer {
    int dim;            /* C */
    double eps;
    tg_tensor *weight;  /* (C), or NULL without affine parameters */
    tg_tensor *bias;    /* (C), or NULL */
} tg_layernorm_layer;

/* Returns TG_OK, TG_ERR_INVALID (dim < 1, eps <= 0) or TG_ERR_NOMEM. */
tg_status tg_layernorm_layer_init(tg_layernorm_layer *layer, int dim, double eps,
                                  bool elementwise_affine, bool bias);

/* x (..., C) gives (..., C). */
tg_tensor *tg_layernorm_layer_forward(tg_tape *tape, const tg_layernorm_layer *layer,
                                      const tg_tensor *x);

/* Appends "<prefix>.weight" and "<prefix>.bias" for those the layer has. */
tg_status tg_layernorm_layer_params(const tg_layernorm_layer *layer, const char *prefix,
                                    tg_param_list *list);

void tg_layernorm_layer_free(tg_layernorm_layer *layer);

#endif
