/* Pre-LayerNorm Transformer block, as in GPT-2:
 *
 *     x = x + attn(ln_1(x))
 *     x = x + mlp(ln_2(x))
 *
 * x (B, T, C) gives (B, T, C). Parameters under "ln_1", "attn", "ln_2" and
 * "mlp" (see layernorm.h, attention.h and mlp.h).
 */
#ifndef TG_LAYERS_BLOCK_H
#define TG_LAYERS_BLOCK_H

#include "attention.h"
#include "layernorm.h"
#include "mlp.h"

typedef struct tg_block_config {
    int dim;               /* C */
    int n_head;            /* H */
    int mlp_hidden;        /* usually 4 C */
    bool bias;             /* biases in linear and LayerNorm layers */
    double dropout;        /* residual dropout probability */
    double layernorm_eps;  /* 1e-5 in PyTorch */
    tg_gelu_approx gelu;
    double init_std;       /* linear weights, 0.02 in GPT-2 */
    double proj_init_std;  /* output projections of both residual branches */
} tg_block_config;

typedef struct tg_block {
    tg_layernorm_layer ln_1;
    tg_attention_layer attn;
    tg_layernorm_layer ln_2;
    tg_mlp mlp;
} tg_block;

tg_status tg_block_init(tg_block *block, const tg_block_config *config, tg_rng *rng);

/* x (B, T, C) gives (B, T, C). key_padding_mask (B, T) or NULL. */
tg_tensor *tg_block_forward(tg_tape *tape, const tg_block *block, const tg_tensor *x,
                            bool causal, const uint8_t *key_padding_mask, const tg_mode *mode);

tg_status tg_block_params(const tg_block *block, const char *prefix, tg_param_list *list);

void tg_block_free(tg_block *block);

#endif
