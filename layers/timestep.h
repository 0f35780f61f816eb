/* Diffusion timestep embedding: a sinusoidal encoding of each timestep
 * followed by an MLP.
 *
 * t (B) integers -> sinusoid (B, F), halves layout -> fc1 (F -> hidden) ->
 * SiLU -> fc2 (hidden -> out). Parameters "fc1.*" and "fc2.*", linear
 * weights drawn from N(0, init_std^2), biases zero.
 */
#ifndef TG_LAYERS_TIMESTEP_H
#define TG_LAYERS_TIMESTEP_H

#include <stdint.h>

#include "linear.h"

typedef struct tg_timestep_embedding {
    int freq_dim;  /* F, even */
    tg_linear_layer fc1;
    tg_linear_layer fc2;
} tg_timestep_embedding;

tg_status tg_timestep_embedding_init(tg_timestep_embedding *te, int freq_dim, int hidden,
                                     int out_dim, tg_rng *rng, double init_std);

/* timesteps (B) give (B, out). */
tg_tensor *tg_timestep_embedding_forward(tg_tape *tape, const tg_timestep_embedding *te,
                                         const int32_t *timesteps, int batch);

tg_status tg_timestep_embedding_params(const tg_timestep_embedding *te, const char *prefix,
                                       tg_param_list *list);

void tg_timestep_embedding_free(tg_timestep_embedding *te);

#endif
