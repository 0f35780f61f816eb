#include "gpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's initialisation scale for weights. */
#define GPT_INIT_STD 0.02

tg_status gpt_config_validate(const gpt_config *c) {
    if (c->vocab_size < 1) {
        return tg_set_error(TG_ERR_INVALID, "invalid vocab_size %d; it must be at least 1",
                            c->vocab_size);
    }
    if (c->block_size < 1) {
        return tg_set_error(TG_ERR_INVALID, "invalid block_size %d; it must be at least 1",
                            c->block_size);
    }
    if (c->n_layer < 1) {
        return tg_set_error(TG_ERR_INVALID, "invalid n_layer %d; it must be at least 1",
                            c->n_layer);
    }
    if (c->n_head < 1 || c->n_embd < 1) {
        return tg_set_error(TG_ERR_INVALID, "invalid n_head %d or n_embd %d; both must be at "
                            "least 1", c->n_head, c->n_embd);
    }
    int width = c->n_embd + (c->pos_combine == TG_POS_CONCAT ? c->pos_dim : 0);
    if (c->pos_combine == TG_POS_CONCAT && c->pos_dim < 2) {
        return tg_set_error(TG_ERR_INVALID, "invalid pos_dim %d; a concatenated positional "
                            "encoding needs a width of at least 2", c->pos_dim);
    }
    if (c->pos_kind == TG_POS_SINUSOIDAL) {
        int pos_width = c->pos_combine == TG_POS_CONCAT ? c->pos_dim : c->n_embd;
        if (pos_width % 2 != 0) {
            return tg_set_error(TG_ERR_INVALID, "invalid sinusoidal encoding width %d; it must "
                                "be even", pos_width);
        }
    }
    if (width % c->n_head != 0) {
        return tg_set_error(TG_ERR_INVALID, "model width %d is not divisible by n_head %d; "
                            "choose n_embd (plus pos_dim when concatenating) as a multiple of "
                            "n_head", width, c->n_head);
    }
    if (c->tie_weights && c->pos_combine == TG_POS_CONCAT) {
        return tg_set_error(TG_ERR_INVALID, "tied output weights need an added positional "
                            "encoding: with concatenation the block width %d differs from the "
                            "token embedding width %d", width, c->n_embd);
    }
    if (!(c->dropout >= 0.0 && c->dropout < 1.0)) {
        return tg_set_error(TG_ERR_INVALID, "invalid dropout %g; it must be in [0, 1)",
                            c->dropout);
    }
    return TG_OK;
}

static tg_status collect_params(gpt_model *m) {
    tg_param_list *list = &m->params;
    tg_status status = tg_embedding_layer_params(&m->wte, "transformer.wte", list);
    if (status == TG_OK) {
        status = tg_pos_encoding_params(&m->wpe, "transformer.wpe", list);
    }
    for (int i = 0; i < m->config.n_layer && status == TG_OK; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "transformer.h.%d", i);
        status = tg_block_params(&m->blocks[i], prefix, list);
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_params(&m->ln_f, "transformer.ln_f", list);
    }
    if (status == TG_OK && !m->config.tie_weights) {
        status = tg_linear_layer_params(&m->lm_head, "lm_head", list);
    }
    return status;
}

tg_status gpt_init(gpt_model *model, const gpt_config *config, tg_rng *rng) {
    memset(model, 0, sizeof *model);
    tg_status status = gpt_config_validate(config);
    if (status != TG_OK) {
        return status;
    }
    const gpt_config *c = config;
    model->config = *c;
    bool concat = c->pos_combine == TG_POS_CONCAT;
    model->width = c->n_embd + (concat ? c->pos_dim : 0);
    tg_param_list_init(&model->params);

    status = tg_embedding_layer_init(&model->wte, c->vocab_size, c->n_embd, rng, GPT_INIT_STD);
    if (status == TG_OK) {
        tg_pos_encoding_config pos = {
            .kind = c->pos_kind,
            .combine = c->pos_combine,
            .layout = TG_SINUSOID_INTERLEAVED,
            .max_len = c->block_size,
            .dim = concat ? c->pos_dim : c->n_embd,
            .init_std = GPT_INIT_STD,
        };
        status = tg_pos_encoding_init(&model->wpe, &pos, rng);
    }
    if (status == TG_OK) {
        model->blocks = calloc((size_t)c->n_layer, sizeof *model->blocks);
        if (model->blocks == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "out of memory allocating %d blocks", c->n_layer);
        }
    }
    tg_block_config block = {
        .dim = model->width,
        .n_head = c->n_head,
        .mlp_hidden = 4 * model->width,
        .bias = c->bias,
        .dropout = c->dropout,
        .layernorm_eps = 1e-5,
        .gelu = c->gelu,
        .init_std = GPT_INIT_STD,
        .proj_init_std = GPT_INIT_STD / sqrt(2.0 * c->n_layer),
    };
    for (int i = 0; i < c->n_layer && status == TG_OK; i++) {
        status = tg_block_init(&model->blocks[i], &block, rng);
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_init(&model->ln_f, model->width, 1e-5, true, c->bias);
    }
    if (status == TG_OK && !c->tie_weights) {
        status = tg_linear_layer_init(&model->lm_head, model->width, c->vocab_size, false, rng,
                                      GPT_INIT_STD);
    }
    if (status == TG_OK) {
        status = collect_params(model);
    }
    if (status != TG_OK) {
        gpt_free(model);
    }
    return status;
}

tg_tensor *gpt_logits(tg_tape *tape, const gpt_model *model, const int32_t *idx, int B, int T,
                      const tg_mode *mode) {
    const gpt_config *c = &model->config;
    if (T > c->block_size) {
        return tg_op_fail(tape, TG_ERR_SHAPE, "gpt: sequence length %d exceeds the block size "
                          "%d", T, c->block_size);
    }
    int idx_shape[2] = {B, T};
    tg_tensor *x = tg_embedding_layer_forward(tape, &model->wte, idx, 2, idx_shape);
    x = tg_pos_encoding_forward(tape, &model->wpe, x);
    if (mode != NULL && mode->training && c->dropout > 0.0) {
        x = tg_dropout(tape, x, c->dropout, mode->rng, true);
    }
    for (int i = 0; i < c->n_layer; i++) {
        x = tg_block_forward(tape, &model->blocks[i], x, true, NULL, mode);
    }
    x = tg_layernorm_layer_forward(tape, &model->ln_f, x);
    if (c->tie_weights) {
        return tg_linear(tape, x, model->wte.weight, NULL);
    }
    return tg_linear_layer_forward(tape, &model->lm_head, x);
}

tg_tensor *gpt_loss(tg_tape *tape, const gpt_model *model, const int32_t *idx,
                    const int32_t *targets, int B, int T, const tg_mode *mode) {
    tg_tensor *logits = gpt_logits(tape, model, idx, B, T, mode);
    return tg_cross_entropy(tape, logits, targets, TG_IGNORE_INDEX_NONE);
}

void gpt_free(gpt_model *model) {
    tg_embedding_layer_free(&model->wte);
    tg_pos_encoding_free(&model->wpe);
    if (model->blocks != NULL) {
        for (int i = 0; i < model->config.n_layer; i++) {
            tg_block_free(&model->blocks[i]);
        }
        free(model->blocks);
        model->blocks = NULL;
    }
    tg_layernorm_layer_free(&model->ln_f);
    tg_linear_layer_free(&model->lm_head);
    tg_param_list_free(&model->params);
}
