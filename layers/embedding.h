/* Embedding layer: a (V, C) lookup table, as PyTorch's nn.Embedding.
 *
 * Parameter: "weight" (V, C), kind TG_PARAM_EMBEDDING, drawn from
 * N(0, init_std^2). PyTorch draws N(0, 1); GPT-2 and nanoGPT use 0.02.
 */
#ifndef TG_LAYERS_EMBEDDING_H
#define TG_LAYERS_EMBEDDING_H

#include <stdint.h>

#include "../autograd/params.h"
#include "../autograd/tape.h"

typedef struct tg_embedding_layer {
    int num_embeddings;  /* V */
    int embedding_dim;   /* C */
    tg_tensor *weight;   /* (V, C) */
} tg_embedding_layer;

/* Creates the table. Returns TG_OK, TG_ERR_INVALID or TG_ERR_NOMEM. */
tg_status tg_embedding_layer_init(tg_embedding_layer *layer, int num_embeddings,
                                  int embedding_dim, tg_rng *rng, double init_std);

/* indices shaped index_shape (ndim dimensions) give (index_shape..., C). */
tg_tensor *tg_embedding_layer_forward(tg_tape *tape, const tg_embedding_layer *layer,
                                      const int32_t *indices, int ndim, const int *index_shape);

/* Appends "<prefix>.weight" to list. */
tg_status tg_embedding_layer_params(const tg_embedding_layer *layer, const char *prefix,
                                    tg_param_list *list);

void tg_embedding_layer_free(tg_embedding_layer *layer);

#endif
