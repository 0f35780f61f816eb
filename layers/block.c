#include "block.h"

#include <string.h>


tg_status tg_block_init(tg_block *block, const tg_block_config *config, tg_rng *rng) {
    memset(block, 0, sizeof *block);
    const tg_block_config *c = config;
    tg_status status = tg_layernorm_layer_init(&block->ln_1, c->dim, c->layernorm_eps, true, c->bias);
    if (status == TG_OK) {
        status = tg_attention_layer_init(&block->attn, c->dim, c->n_head, c->bias, c->dropout,
                                         rng, c->init_std, c->proj_init_std);
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_init(&block->ln_2, c->dim, c->layernorm_eps, true, c->bias);
    }
    if (status == TG_OK) {
        status = tg_mlp_init(&block->mlp, c->dim, c->mlp_hidden, c->bias, c->gelu, c->dropout,
                             rng, c->init_std, c->proj_init_std);
    }
    if (status != TG_OK) {
        tg_block_free(block);
    }
    return status;
}

tg_tensor *tg_block_forward(tg_tape *tape, const tg_block *block, const tg_tensor *x,
                            bool causal, const uint8_t *key_padding_mask, const tg_mode *mode) {
    /* Each branch adds its input back inside its last op. */
    tg_tensor *h = tg_layernorm_layer_forward(tape, &block->ln_1, x);
    tg_tensor *residual = tg_attention_layer_forward_residual(tape, &block->attn, h, x, causal,
                                                             key_padding_mask, mode);
    h = tg_layernorm_layer_forward(tape, &block->ln_2, residual);
    return tg_mlp_forward_residual(tape, &block->mlp, h, residual, mode);
}

tg_status tg_block_params(const tg_block *block, const char *prefix, tg_param_list *list) {
    char name[TG_PARAM_NAME_MAX];
    tg_status status = tg_param_name_join(name, sizeof name, prefix, "ln_1");
    if (status == TG_OK) {
        status = tg_layernorm_layer_params(&block->ln_1, name, list);
    }
    if (status == TG_OK) {
        status = tg_param_name_join(name, sizeof name, prefix, "attn");
    }
    if (status == TG_OK) {
        status = tg_attention_layer_params(&block->attn, name, list);
    }
    if (status == TG_OK) {
        status = tg_param_name_join(name, sizeof name, prefix, "ln_2");
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_params(&block->ln_2, name, list);
    }
    if (status == TG_OK) {
        status = tg_param_name_join(name, sizeof name, prefix, "mlp");
    }
    if (status == TG_OK) {
        status = tg_mlp_params(&block->mlp, name, list);
    }
    return status;
}

void tg_block_free(tg_block *block) {
    tg_layernorm_layer_free(&block->ln_1);
    tg_attention_layer_free(&block->attn);
    tg_layernorm_layer_free(&block->ln_2);
    tg_mlp_free(&block->mlp);
}
