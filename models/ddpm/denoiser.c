#include "denoiser.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scale of the reference's weight initialisation. */
#define DDPM_INIT_STD 0.02

tg_status ddpm_model_config_validate(const ddpm_model_config *c) {
    if (c->data_dim < 1) {
        return tg_set_error(TG_ERR_INVALID, "denoiser: invalid data width %d", c->data_dim);
    }
    if (c->t_freq_dim < 2 || c->t_freq_dim % 2 != 0 || c->t_hidden < 1) {
        return tg_set_error(TG_ERR_INVALID, "denoiser: invalid timestep embedding widths %d "
                            "and %d; the sinusoid width must be even and both positive",
                            c->t_freq_dim, c->t_hidden);
    }
    if (c->arch == DDPM_ARCH_MLP) {
        if (c->hidden < 1) {
            return tg_set_error(TG_ERR_INVALID, "denoiser: invalid MLP width %d", c->hidden);
        }
        return TG_OK;
    }
    if (c->image_size < 1 || c->image_size * c->image_size != c->data_dim) {
        return tg_set_error(TG_ERR_INVALID, "denoiser: the patch Transformer needs square "
                            "images, but the data has %d values per item (image side %d); "
                            "use --arch mlp for point data", c->data_dim, c->image_size);
    }
    if (c->patch < 1 || c->image_size % c->patch != 0) {
        return tg_set_error(TG_ERR_INVALID, "denoiser: patch size %d does not divide the image "
                            "side %d; pass a --patch that divides it", c->patch, c->image_size);
    }
    if (c->depth < 1 || c->heads < 1 || c->width < 4 || c->width % c->heads != 0 ||
        c->width % 4 != 0) {
        return tg_set_error(TG_ERR_INVALID, "denoiser: invalid width %d, heads %d or depth %d; "
                            "the width must be a multiple of 4 and of the heads", c->width,
                            c->heads, c->depth);
    }
    return TG_OK;
}

static tg_status add_linear(tg_param_list *list, const char *name, const tg_linear_layer *l) {
    return tg_linear_layer_params(l, name, list);
}

static tg_status collect_params(ddpm_model *m) {
    tg_param_list *list = &m->params;
    const ddpm_model_config *c = &m->config;
    if (c->arch == DDPM_ARCH_MLP) {
        tg_status status = add_linear(list, "fc1", &m->fc1);
        if (status == TG_OK) {
            status = add_linear(list, "fc2", &m->fc2);
        }
        if (status == TG_OK) {
            status = add_linear(list, "fc3", &m->fc3);
        }
        if (status == TG_OK) {
            status = add_linear(list, "out", &m->out);
        }
        if (status == TG_OK) {
            status = tg_timestep_embedding_params(&m->t_embed, "t_embed", list);
        }
        return status;
    }
    tg_status status = add_linear(list, "patch_embed", &m->patch_embed);
    if (status == TG_OK) {
        status = tg_pos_encoding_params(&m->pos_embed, "pos_embed", list);
    }
    if (status == TG_OK) {
        status = tg_timestep_embedding_params(&m->t_embed, "t_embed", list);
    }
    for (int i = 0; i < c->depth && status == TG_OK; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "blocks.%d", i);
        status = tg_block_params(&m->blocks[i], prefix, list);
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_params(&m->ln_f, "ln_f", list);
    }
    if (status == TG_OK) {
        status = add_linear(list, "head", &m->head);
    }
    return status;
}

static tg_status init_mlp(ddpm_model *m, tg_rng *rng) {
    const ddpm_model_config *c = &m->config;
    tg_status status = tg_linear_layer_init(&m->fc1, c->data_dim, c->hidden, true, rng,
                                            DDPM_INIT_STD);
    if (status == TG_OK) {
        status = tg_linear_layer_init(&m->fc2, c->hidden, c->hidden, true, rng, DDPM_INIT_STD);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&m->fc3, c->hidden, c->hidden, true, rng, DDPM_INIT_STD);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&m->out, c->hidden, c->data_dim, true, rng, DDPM_INIT_STD);
    }
    if (status == TG_OK) {
        status = tg_timestep_embedding_init(&m->t_embed, c->t_freq_dim, c->t_hidden, c->hidden,
                                            rng, DDPM_INIT_STD);
    }
    return status;
}

static tg_status init_dit(ddpm_model *m, tg_rng *rng) {
    const ddpm_model_config *c = &m->config;
    int grid = c->image_size / c->patch;
    int patch_values = c->patch * c->patch;
    tg_status status = tg_linear_layer_init(&m->patch_embed, patch_values, c->width, true, rng,
                                            DDPM_INIT_STD);
    if (status == TG_OK) {
        tg_pos_encoding_config pos = {
            .kind = c->pos,
            .combine = TG_POS_ADD,
            .layout = TG_SINUSOID_HALVES,
            .grid_rows = grid,
            .grid_cols = grid,
            .dim = c->width,
            .init_std = DDPM_INIT_STD,
        };
        status = tg_pos_encoding_init(&m->pos_embed, &pos, rng);
    }
    if (status == TG_OK) {
        status = tg_timestep_embedding_init(&m->t_embed, c->t_freq_dim, c->t_hidden, c->width,
                                            rng, DDPM_INIT_STD);
    }
    if (status == TG_OK) {
        m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
        if (m->blocks == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "denoiser: out of memory for %d blocks",
                                  c->depth);
        }
    }
    tg_block_config block = {
        .dim = c->width,
        .n_head = c->heads,
        .mlp_hidden = 4 * c->width,
        .bias = true,
        .dropout = 0.0,
        .layernorm_eps = 1e-5,
        .gelu = c->gelu,
        .init_std = DDPM_INIT_STD,
        .proj_init_std = DDPM_INIT_STD / sqrt(2.0 * c->depth),
    };
    for (int i = 0; i < c->depth && status == TG_OK; i++) {
        status = tg_block_init(&m->blocks[i], &block, rng);
    }
    if (status == TG_OK) {
        status = tg_layernorm_layer_init(&m->ln_f, c->width, 1e-5, true, true);
    }
    if (status == TG_OK) {
        status = tg_linear_layer_init(&m->head, c->width, patch_values, true, rng, DDPM_INIT_STD);
    }
    return status;
}

tg_status ddpm_model_init(ddpm_model *model, const ddpm_model_config *config, tg_rng *rng) {
    memset(model, 0, sizeof *model);
    tg_status status = ddpm_model_config_validate(config);
    if (status != TG_OK) {
        return status;
    }
    model->config = *config;
    tg_param_list_init(&model->params);
    status = config->arch == DDPM_ARCH_MLP ? init_mlp(model, rng) : init_dit(model, rng);
    if (status == TG_OK) {
        status = collect_params(model);
    }
    if (status != TG_OK) {
        ddpm_model_free(model);
    }
    return status;
}

/* Copies image b of x (B, S, S) into its patches (N, P * P) in patches. */
static void patchify_image(tg_scalar *patches, const tg_scalar *x, int b, int S, int P) {
    int G = S / P;
    size_t D = (size_t)S * (size_t)S;
    tg_scalar *dst = patches + (size_t)b * D;
    const tg_scalar *src = x + (size_t)b * D;
    for (int gr = 0; gr < G; gr++) {
        for (int gc = 0; gc < G; gc++) {
            for (int r = 0; r < P; r++) {
                const tg_scalar *row = src + (size_t)(gr * P + r) * (size_t)S + (size_t)gc * P;
                memcpy(dst, row, (size_t)P * sizeof *dst);
                dst += P;
            }
        }
    }
}

/* Copies images x (B, S, S) into patches (B, N, P * P). */
static void patchify(tg_scalar *patches, const tg_scalar *x, int B, int S, int P) {
    /* No one-thread region: libgomp allocates the team of every one-thread
     * region from the heap, and training calls this every step. */
    if (omp_get_max_threads() < 2) {
        for (int b = 0; b < B; b++) {
            patchify_image(patches, x, b, S, P);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        patchify_image(patches, x, b, S, P);
    }
}

static tg_tensor *forward_dit(tg_tape *tape, const ddpm_model *m, const tg_scalar *x_t,
                              const int32_t *t, int B) {
    const ddpm_model_config *c = &m->config;
    int P = c->patch;
    int G = c->image_size / P;
    int patch_shape[3] = {B, G * G, P * P};
    tg_tensor *patches = tg_tape_tensor(tape, 3, patch_shape);
    if (patches == NULL) {
        return NULL;
    }
    patchify(patches->data, x_t, B, c->image_size, P);

    tg_tensor *h = tg_linear_layer_forward(tape, &m->patch_embed, patches);
    h = tg_pos_encoding_forward(tape, &m->pos_embed, h);
    tg_tensor *temb = tg_timestep_embedding_forward(tape, &m->t_embed, t, B);
    int temb_shape[3] = {B, 1, c->width};
    h = tg_add(tape, h, tg_reshape(tape, temb, 3, temb_shape));
    for (int i = 0; i < c->depth; i++) {
        h = tg_block_forward(tape, &m->blocks[i], h, false, NULL, NULL);
    }
    h = tg_layernorm_layer_forward(tape, &m->ln_f, h);
    h = tg_linear_layer_forward(tape, &m->head, h);

    /* Unpatchify: (B, G, G, P, P) -> (B, G, P, G, P) = (B, S, S). */
    int grid_shape[5] = {B, G, G, P, P};
    int axes[5] = {0, 1, 3, 2, 4};
    int out_shape[2] = {B, c->data_dim};
    h = tg_permute(tape, tg_reshape(tape, h, 5, grid_shape), axes);
    return tg_reshape(tape, h, 2, out_shape);
}

static tg_tensor *forward_mlp(tg_tape *tape, const ddpm_model *m, const tg_scalar *x_t,
                              const int32_t *t, int B) {
    int shape[2] = {B, m->config.data_dim};
    tg_tensor *x = tg_tape_tensor(tape, 2, shape);
    if (x == NULL) {
        return NULL;
    }
    memcpy(x->data, x_t, x->size * sizeof *x->data);
    tg_tensor *h = tg_silu(tape, tg_linear_layer_forward(tape, &m->fc1, x));
    h = tg_add(tape, h, tg_timestep_embedding_forward(tape, &m->t_embed, t, B));
    h = tg_silu(tape, tg_linear_layer_forward(tape, &m->fc2, h));
    h = tg_silu(tape, tg_linear_layer_forward(tape, &m->fc3, h));
    return tg_linear_layer_forward(tape, &m->out, h);
}

tg_tensor *ddpm_model_forward(tg_tape *tape, const ddpm_model *model, const tg_scalar *x_t,
                              const int32_t *t, int B) {
    if (tg_tape_status(tape) != TG_OK) {
        return NULL;
    }
    if (B < 1) {
        return tg_op_fail(tape, TG_ERR_SHAPE, "denoiser: invalid batch size %d", B);
    }
    if (model->config.arch == DDPM_ARCH_MLP) {
        return forward_mlp(tape, model, x_t, t, B);
    }
    return forward_dit(tape, model, x_t, t, B);
}

tg_tensor *ddpm_model_loss(tg_tape *tape, const ddpm_model *model, const tg_scalar *x_t,
                           const int32_t *t, const tg_scalar *noise, int B) {
    tg_tensor *prediction = ddpm_model_forward(tape, model, x_t, t, B);
    if (prediction == NULL) {
        return NULL;
    }
    tg_tensor *target = tg_tape_tensor(tape, prediction->ndim, prediction->shape);
    if (target == NULL) {
        return NULL;
    }
    memcpy(target->data, noise, target->size * sizeof *target->data);
    return tg_mse(tape, prediction, target);
}

void ddpm_model_free(ddpm_model *model) {
    tg_linear_layer_free(&model->patch_embed);
    tg_pos_encoding_free(&model->pos_embed);
    if (model->blocks != NULL) {
        for (int i = 0; i < model->config.depth; i++) {
            tg_block_free(&model->blocks[i]);
        }
        free(model->blocks);
        model->blocks = NULL;
    }
    tg_layernorm_layer_free(&model->ln_f);
    tg_linear_layer_free(&model->head);
    tg_linear_layer_free(&model->fc1);
    tg_linear_layer_free(&model->fc2);
    tg_linear_layer_free(&model->fc3);
    tg_linear_layer_free(&model->out);
    tg_timestep_embedding_free(&model->t_embed);
    tg_param_list_free(&model->params);
}
