#include "timestep.h"

#include <string.h>

#include "../autograd/op.h"
#include "../autograd/ops/unary.h"
#include "positional.h"

tg_status tg_timestep_embedding_init(tg_timestep_embedding *te, int freq_dim, int hidden,
                                     int out_dim, tg_rng *rng, double init_std) {
    memset(te, 0, sizeof *te);
    if (freq_dim < 2 || freq_dim % 2 != 0) {
        return tg_set_error(TG_ERR_INVALID, "timestep embedding: invalid frequency width %d; it "
                            "must be a positive even number", freq_dim);
    }
    tg_status status = tg_linear_layer_init(&te->fc1, freq_dim, hidden, true, rng, init_std);
    if (status == TG_OK) {
        status = tg_linear_layer_init(&te->fc2, hidden, out_dim, true, rng, init_std);
    }
    if (status != TG_OK) {
        tg_timestep_embedding_free(te);
        return status;
    }
    te->freq_dim = freq_dim;
    return TG_OK;
}

tg_tensor *tg_timestep_embedding_forward(tg_tape *tape, const tg_timestep_embedding *te,
                                         const int32_t *timesteps, int batch) {
    if (tg_tape_status(tape) != TG_OK) {
        return NULL;
    }
    int shape[2] = {batch, te->freq_dim};
    tg_tensor *encoding = tg_tape_tensor(tape, 2, shape);
    double *positions = tg_tape_alloc(tape, (size_t)(batch > 0 ? batch : 1) * sizeof *positions);
    if (encoding == NULL || positions == NULL) {
        return NULL;
    }
    for (int b = 0; b < batch; b++) {
        positions[b] = timesteps[b];
    }
    tg_sinusoid_encode(encoding->data, positions, batch, te->freq_dim, TG_SINUSOID_HALVES);
    tg_tensor *h = tg_linear_layer_forward(tape, &te->fc1, encoding);
    h = tg_silu(tape, h);
    return tg_linear_layer_forward(tape, &te->fc2, h);
}

tg_status tg_timestep_embedding_params(const tg_timestep_embedding *te, const char *prefix,
                                       tg_param_list *list) {
    char name[TG_PARAM_NAME_MAX];
    tg_status status = tg_param_name_join(name, sizeof name, prefix, "fc1");
    if (status == TG_OK) {
        status = tg_linear_layer_params(&te->fc1, name, list);
    }
    if (status == TG_OK) {
        status = tg_param_name_join(name, sizeof name, prefix, "fc2");
    }
    if (status == TG_OK) {
        status = tg_linear_layer_params(&te->fc2, name, list);
    }
    return status;
}

void tg_timestep_embedding_free(tg_timestep_embedding *te) {
    tg_linear_layer_free(&te->fc1);
    tg_linear_layer_free(&te->fc2);
}
