/* Multi-head attention layer: self-attention (one packed q, k, v projection,
 * as GPT-2's c_attn) or cross-attention (queries from x, keys and values from
 * a context sequence), followed by an output projection and dropout.
 *
 * Self:  x (B, T, C) -> c_attn (C -> 3C) -> attention over H heads -> c_proj
 * Cross: x (B, Tq, C), context (B, Tk, Ck) -> q_proj (C -> C), k_proj and
 *        v_proj (Ck -> C) -> attention -> c_proj
 * Scores are scaled by 1/sqrt(C / H). The causal mask and the key padding
 * mask are those of tg_attention (autograd/ops/attention.h); a query whose
 * keys are all masked gets a zero row.
 * Parameters (self): "c_attn.weight" (3C, C), "c_attn.bias", "c_proj.weight"
 * (C, C), "c_proj.bias"; (cross): "q_proj.*", "k_proj.*", "v_proj.*",
 * "c_proj.*". c_proj's weight uses proj_init_std.
 * NOTE: dropout applies to the projected output (residual dropout); dropout
 * on the attention probabilities is not implemented.
 */
#ifndef TG_LAYERS_ATTENTION_H
#define TG_LAYERS_ATTENTION_H

#include <stdint.h>

#include "linear.h"
#include "mode.h"

typedef struct tg_attention_layer {
    int dim;       /* C */
    int n_head;    /* H; C must be divisible by H */
    bool cross;
    double dropout;
    tg_linear_layer c_attn;  /* self only: (3C, C) */
    tg_linear_layer q_proj;  /* cross only: (C, C) */
    tg_linear_layer k_proj;  /* cross only: (C, Ck) */
    tg_linear_layer v_proj;  /* cross only: (C, Ck) */
    tg_linear_layer c_proj;  /* (C, C) */
} tg_attention_layer;

/* Creates a self-attention layer. Returns TG_ERR_INVALID when dim is not a
 * multiple of n_head (both named) or dropout is outside [0, 1). */
tg_status tg_attention_layer_init(tg_attention_layer *layer, int dim, int n_head, bool bias,
                                  double dropout, tg_rng *rng, double init_std,
                                  double proj_init_std);

/* Creates a cross-attention layer whose keys and values come from a context
 * of width context_dim. */
tg_status tg_cross_attention_layer_init(tg_attention_layer *layer, int dim, int context_dim,
                                        int n_head, bool bias, double dropout, tg_rng *rng,
                                        double init_std, double proj_init_std);

/* Self-attention: x (B, T, C) gives (B, T, C). key_padding_mask (B, T) or
 * NULL, nonzero marking padding. mode may be NULL (evaluation). */
tg_tensor *tg_attention_layer_forward(tg_tape *tape, const tg_attention_layer *layer,
                                      const tg_tensor *x, bool causal,
                                      const uint8_t *key_padding_mask, const tg_mode *mode);

/* Returns residual + the self-attention of x, residual and x (B, T, C).
 * Without active dropout the output projection adds the residual itself
 * (tg_linear_residual), which keeps less in step memory than a separate
 * tg_add. */
tg_tensor *tg_attention_layer_forward_residual(tg_tape *tape, const tg_attention_layer *layer,
                                               const tg_tensor *x, const tg_tensor *residual,
                                               bool causal, const uint8_t *key_padding_mask,
                                               const tg_mode *mode);

/* Cross-attention: x (B, Tq, C) and context (B, Tk, Ck) give (B, Tq, C).
 * key_padding_mask (B, Tk) or NULL. */
tg_tensor *tg_cross_attention_layer_forward(tg_tape *tape, const tg_attention_layer *layer,
                                            const tg_tensor *x, const tg_tensor *context,
                                            const uint8_t *key_padding_mask,
                                            const tg_mode *mode);

tg_status tg_attention_layer_params(const tg_attention_layer *layer, const char *prefix,
                                    tg_param_list *list);

void tg_attention_layer_free(tg_attention_layer *layer);

#endif
