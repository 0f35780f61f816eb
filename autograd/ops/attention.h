/* Scaled dot-product multi-head attention as one fused op.
 *
 * Letters: B batch, Tq query positions, Tk key positions, C channels, H heads,
 * D = C / H head size. The heads are the H consecutive chunks of D channels
 * of q, k and v. For each batch entry b and head h, with q_bh (Tq, D),
 * k_bh (Tk, D) and v_bh (Tk, D) the head's channels:
 *
 *     S = scale * q_bh k_bh^T        (Tq, Tk)
 *     P = softmax(S) over each row, masked keys left out
 *     out_bh = P v_bh                (Tq, D)
 *
 * and the heads' outputs sit side by side in out (B, Tq, C), as in
 * torch.nn.functional.scaled_dot_product_attention applied to the heads.
 * Self-attention passes the same sequence for q, k and v (or the packed
 * output of one projection to tg_self_attention_packed); cross attention
 * passes keys and values of another length Tk.
 *
 * Masking: query row i attends to key j unless j is padding or, when causal,
 * j > i + (Tk - Tq). The offset aligns the last query with the last key, so a
 * block of new queries at the end of a longer key sequence sees every earlier
 * key; with Tq = Tk it is the usual j <= i. NOTE: torch's is_causal aligns the
 * first query with the first key instead (j <= i); the two differ only when
 * Tq != Tk. A query row whose keys are all masked gets an output row of zeros
 * and passes no gradient back, never NaN. Such rows arise from a padding mask
 * that covers every key, or from causal with Tq > Tk, where the first
 * Tq - Tk queries precede every key.
 */
#ifndef TG_AUTOGRAD_OPS_ATTENTION_H
#define TG_AUTOGRAD_OPS_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "../tape.h"

typedef struct tg_attention_options {
    /* Query i attends only to keys j <= i + (Tk - Tq). */
    bool causal;
    /* (B, Tk) bytes; nonzero marks key j of batch entry b as padding, which no
     * query attends to. NULL for none. It is read during the call only, so the
     * caller may free or reuse it as soon as the call returns. */
    const uint8_t *key_padding_mask;
    /* Factor applied to the scores q k^T; 0 means 1 / sqrt(D). */
    double scale;
} tg_attention_options;

/* Computes multi-head attention: q (B, Tq, C), k (B, Tk, C) and v (B, Tk, C)
 * with n_head heads give out (B, Tq, C), a tape tensor. options may be NULL
 * for no mask and the default scale.
 * Returns NULL if an input op failed, or after recording an error on the tape:
 * TG_ERR_SHAPE naming the shapes involved if an input is not 3-D, the batch
 * sizes or channels differ, k and v differ, or C is not a multiple of n_head;
 * TG_ERR_INVALID for n_head < 1 or a scale that is not finite. */
tg_tensor *tg_attention(tg_tape *tape, const tg_tensor *q, const tg_tensor *k,
                        const tg_tensor *v, int n_head, const tg_attention_options *options);

/* Computes self-attention from qkv (B, T, 3C), which holds q, k and v side by
 * side along its last axis (the output of one linear layer projecting to 3C,
 * as nanoGPT's c_attn), and returns out (B, T, C), a tape tensor. The heads
 * are read in place, without copying q, k and v apart; the gradient lands in
 * the matching thirds of qkv's gradient. Otherwise as tg_attention with
 * Tq = Tk = T; the error for a last dimension that is not 3C names its shape. */
tg_tensor *tg_self_attention_packed(tg_tape *tape, const tg_tensor *qkv, int n_head,
                                    const tg_attention_options *options);

#endif
