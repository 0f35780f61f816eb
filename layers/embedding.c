#include "embedding.h"

#include <string.h>

#include "../autograd/ops/embedding.h"

tg_status tg_embedding_layer_init(tg_embedding_layer *layer, int num_embeddings,
                                  int embedding_dim, tg_rng *rng, double init_std) {
    memset(layer, 0, sizeof *layer);
    if (num_embeddings < 1 || embedding_dim < 1) {
        return tg_set_error(TG_ERR_INVALID, "embedding layer: invalid table size (%d, %d); both "
                            "must be at least 1", num_embeddings, embedding_dim);
    }
    if (!(init_std >= 0.0)) {
        return tg_set_error(TG_ERR_INVALID, "embedding layer: invalid init_std %g; it must be "
                            ">= 0", init_std);
    }
    int shape[2] = {num_embeddings, embedding_dim};
    layer->weight = tg_tensor_normal(2, shape, rng, 0.0, init_std);
    if (layer->weight == NULL || tg_tensor_set_requires_grad(layer->weight, true) != TG_OK) {
        tg_embedding_layer_free(layer);
        return TG_ERR_NOMEM;
    }
    layer->num_embeddings = num_embeddings;
    layer->embedding_dim = embedding_dim;
    return TG_OK;
}

tg_tensor *tg_embedding_layer_forward(tg_tape *tape, const tg_embedding_layer *layer,
                                      const int32_t *indices, int ndim, const int *index_shape) {
    return tg_embedding(tape, layer->weight, indices, ndim, index_shape);
}

tg_status tg_embedding_layer_params(const tg_embedding_layer *layer, const char *prefix,
                                    tg_param_list *list) {
    return tg_param_list_add(list, prefix, "weight", TG_PARAM_EMBEDDING, layer->weight);
}

void tg_embedding_layer_free(tg_embedding_layer *layer) {
    tg_tensor_free(layer->weight);
    layer->weight = NULL;
}
