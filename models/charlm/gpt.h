/* A GPT-style character-level language model (nanoGPT's layout).
 *
 * idx (B, T) token ids
 *   -> wte (V, E) token embedding
 *   -> positional encoding, added (width C = E) or concatenated (C = E + P)
 *   -> dropout -> n_layer pre-LayerNorm blocks with causal self-attention
 *   -> ln_f -> lm_head (V, C), tied to wte when tie_weights
 *   -> logits (B, T, V), and the mean cross-entropy against targets.
 * Parameter names follow nanoGPT: "transformer.wte.weight",
 * "transformer.wpe.weight" (learned positions), "transformer.h.<i>.ln_1.weight",
 * "transformer.h.<i>.attn.c_attn.weight", ..., "transformer.ln_f.weight", and
 * "lm_head.weight" when it is not tied.
 * Initialisation as GPT-2: weights N(0, 0.02), the two residual output
 * projections of each block N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm
 * (1, 0).
 */
#ifndef TG_MODELS_CHARLM_GPT_H
#define TG_MODELS_CHARLM_GPT_H

#include <stdint.h>

#include "tapegrad.h"

typedef struct gpt_config {
    int vocab_size;       /* V */
    int block_size;       /* maximum context T */
    int n_layer;
    int n_head;
    int n_embd;           /* E, token embedding width */
    int pos_dim;          /* P, width of a concatenated positional encoding */
    tg_pos_kind pos_kind;
    tg_pos_combine pos_combine;
    bool bias;            /* biases in linear layers and LayerNorm */
    bool tie_weights;     /* lm_head shares wte's table */
    double dropout;
    tg_gelu_approx gelu;
} gpt_config;

typedef struct gpt_model {
    gpt_config config;
    int width;                    /* C, the width of the blocks */
    tg_embedding_layer wte;
    tg_pos_encoding wpe;
    tg_block *blocks;             /* n_layer */
    tg_layernorm_layer ln_f;
    tg_linear_layer lm_head;      /* unused (no tensors) when tied */
    tg_param_list params;
} gpt_model;

/* Checks a configuration; the message names the field and its value. */
tg_status gpt_config_validate(const gpt_config *config);

/* Creates the model's parameters from rng. Returns TG_OK or an error. */
tg_status gpt_init(gpt_model *model, const gpt_config *config, tg_rng *rng);

/* Returns logits (B, T, V) for idx (B, T). mode may be NULL (evaluation). */
tg_tensor *gpt_logits(tg_tape *tape, const gpt_model *model, const int32_t *idx, int B, int T,
                      const tg_mode *mode);

/* Returns the mean cross-entropy of the next-token predictions for idx
 * against targets (B, T), a one-element tape tensor. */
tg_tensor *gpt_loss(tg_tape *tape, const gpt_model *model, const int32_t *idx,
                    const int32_t *targets, int B, int T, const tg_mode *mode);

void gpt_free(gpt_model *model);

#endif
