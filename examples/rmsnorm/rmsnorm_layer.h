/* RMSNorm layer over the last dimension, as PyTorch's nn.RMSNorm.
 *
 * Parameter: "weight" (C), initialised to ones, kind TG_PARAM_NORM, so that
 * optimizers leave it out of weight decay by default.
 */
#ifndef MY_RMSNORM_LAYER_H
#define MY_RMSNORM_LAYER_H

#include "tapegrad.h"

typedef struct my_rmsnorm_layer {
    int dim;            /* C */
    double eps;         /* added to mean(x^2), e.g. 1e-6 */
    tg_tensor *weight;  /* (C), heap tensor that requires grad */
} my_rmsnorm_layer;

/* Creates the layer with a weight of ones. Returns TG_OK, TG_ERR_INVALID if
 * dim < 1 or eps is not positive and finite, or TG_ERR_NOMEM. Free the layer
 * with my_rmsnorm_layer_free, also after a failure. */
tg_status my_rmsnorm_layer_init(my_rmsnorm_layer *layer, int dim, double eps);

/* x (..., C) gives (..., C). Errors are those of my_rmsnorm. */
tg_tensor *my_rmsnorm_layer_forward(tg_tape *tape, const my_rmsnorm_layer *layer,
                                    const tg_tensor *x);

/* Appends "<prefix>.weight" to list. */
tg_status my_rmsnorm_layer_params(const my_rmsnorm_layer *layer, const char *prefix,
                                  tg_param_list *list);

/* Frees the weight. Accepts a layer whose init failed. */
void my_rmsnorm_layer_free(my_rmsnorm_layer *layer);

#endif
