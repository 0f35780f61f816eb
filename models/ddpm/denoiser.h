/* Noise predictors for DDPM: a patch Transformer (DiT-style) for square
 * images and an MLP for images or low-dimensional points.
 *
 * Both map x_t (B, D) and integer timesteps t (B) to a prediction of the
 * noise, (B, D). The timestep embedding is tg_timestep_embedding: a
 * halves-layout sinusoid of width t_freq_dim -> Linear(t_freq_dim, t_hidden)
 * -> SiLU -> Linear(t_hidden, out).
 *
 * DiT, for images of S x S pixels (D = S * S) and patches of P x P:
 *   patchify: G = S / P, N = G * G tokens in row-major order over the patch
 *     grid, each of P * P pixels in row-major order inside the patch
 *   -> patch_embed Linear(P * P, C) -> + pos_embed (N, C): a fixed 2-D
 *     sinusoid (row in the first C / 2 channels, column in the last, halves
 *     layout) or a learned table -> + t_embed(t) (B, C), added to every token
 *   -> depth pre-LayerNorm blocks with non-causal self-attention
 *   -> ln_f -> head Linear(C, P * P) -> unpatchify to (B, D).
 * MLP: fc1 (D -> H) -> SiLU -> + t_embed(t) (B, H) -> fc2 (H -> H) -> SiLU
 *   -> fc3 (H -> H) -> SiLU -> out (H -> D).
 *
 * Parameter names: "patch_embed.*", "pos_embed.weight" (learned only),
 * "t_embed.fc1.*", "t_embed.fc2.*", "blocks.<i>.ln_1.*", "blocks.<i>.attn.c_attn.*",
 * "blocks.<i>.attn.c_proj.*", "blocks.<i>.ln_2.*", "blocks.<i>.mlp.c_fc.*",
 * "blocks.<i>.mlp.c_proj.*", "ln_f.*", "head.*"; MLP: "fc1.*", "fc2.*",
 * "fc3.*", "out.*", "t_embed.*". In the PyTorch reference the block layers are
 * ln1, attn.qkv, attn.proj, ln2, fc1, fc2 and the embedder's t_embed.mlp.0
 * and t_embed.mlp.2.
 * Initialisation as the reference: every linear weight N(0, 0.02), biases 0,
 * LayerNorm (1, 0), a learned position table N(0, 0.02), and the two residual
 * output projections of each block N(0, 0.02 / sqrt(2 depth)).
 */
#ifndef TG_MODELS_DDPM_DENOISER_H
#define TG_MODELS_DDPM_DENOISER_H

#include <stdint.h>

#include "tapegrad.h"

typedef enum ddpm_arch { DDPM_ARCH_DIT, DDPM_ARCH_MLP } ddpm_arch;

typedef struct ddpm_model_config {
    ddpm_arch arch;
    int data_dim;       /* D: pixels of an image, or coordinates of a point */
    int image_size;     /* S: side of a square image (DiT); 0 for points */
    int patch;          /* DiT: P, must divide S */
    int width;          /* DiT: C */
    int depth;          /* DiT: blocks */
    int heads;          /* DiT: H, must divide C */
    tg_pos_kind pos;    /* DiT: sinusoidal or learned positions */
    tg_gelu_approx gelu;
    int hidden;         /* MLP: H */
    int t_freq_dim;     /* sinusoid width of the timestep embedding, even */
    int t_hidden;       /* hidden width of the timestep embedding */
} ddpm_model_config;

typedef struct ddpm_model {
    ddpm_model_config config;
    /* DiT */
    tg_linear_layer patch_embed;   /* (C, P * P) */
    tg_pos_encoding pos_embed;     /* (N, C) */
    tg_block *blocks;              /* depth */
    tg_layernorm_layer ln_f;       /* (C) */
    tg_linear_layer head;          /* (P * P, C) */
    /* MLP */
    tg_linear_layer fc1;           /* (H, D) */
    tg_linear_layer fc2;           /* (H, H) */
    tg_linear_layer fc3;           /* (H, H) */
    tg_linear_layer out;           /* (D, H) */
    /* Both */
    tg_timestep_embedding t_embed;
    tg_param_list params;          /* in the reference's order */
} ddpm_model;

/* Checks a configuration; the message names the field and its value. */
tg_status ddpm_model_config_validate(const ddpm_model_config *config);

/* Creates the parameters, drawing weights from rng. Returns TG_OK or an
 * error; on failure nothing stays allocated. */
tg_status ddpm_model_init(ddpm_model *model, const ddpm_model_config *config, tg_rng *rng);

/* Returns the noise prediction (B, D) for x_t (B, D) at timesteps t (B),
 * each in [0, T). x_t is copied onto the tape. */
tg_tensor *ddpm_model_forward(tg_tape *tape, const ddpm_model *model, const tg_scalar *x_t,
                              const int32_t *t, int B);

/* Returns the mean squared error of the prediction against noise (B, D), a
 * one-element tape tensor. */
tg_tensor *ddpm_model_loss(tg_tape *tape, const ddpm_model *model, const tg_scalar *x_t,
                           const int32_t *t, const tg_scalar *noise, int B);

void ddpm_model_free(ddpm_model *model);

#endif
