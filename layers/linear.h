/* Linear layer: y = x weight^T + bias, as PyTorch's nn.Linear.
 *
 * Parameters: "weight" (out, in), kind TG_PARAM_WEIGHT, drawn from
 * N(0, init_std^2); "bias" (out), kind TG_PARAM_BIAS, zeros, absent when the
 * layer has no bias. GPT-2 and nanoGPT use init_std 0.02.
 */
#ifndef TG_LAYERS_LINEAR_H
#define TG_LAYERS_LINEAR_H

#include <stdbool.h>

#include "../autograd/params.h"
#include "../autograd/tape.h"

typedef struct tg_linear_layer {
    int in_features;
    int out_features;
    tg_tensor *weight;  /* (out, in) */
    tg_tensor *bias;    /* (out), or NULL */
} tg_linear_layer;

/* Creates the parameters. Returns TG_OK, or TG_ERR_INVALID for a size below 1
 * or a negative init_std, or TG_ERR_NOMEM; on failure nothing is allocated. */
tg_status tg_linear_layer_init(tg_linear_layer *layer, int in_features, int out_features,
                               bool bias, tg_rng *rng, double init_std);

/* x (..., in) gives (..., out); a tape tensor or NULL after a tape error. */
tg_tensor *tg_linear_layer_forward(tg_tape *tape, const tg_linear_layer *layer,
                                   const tg_tensor *x);

/* Appends "<prefix>.weight" and "<prefix>.bias" to list. */
tg_status tg_linear_layer_params(const tg_linear_layer *layer, const char *prefix,
                                 tg_param_list *list);

/* Frees the parameters. Accepts a zeroed or already freed layer. */
void tg_linear_layer_free(tg_linear_layer *layer);

#endif
