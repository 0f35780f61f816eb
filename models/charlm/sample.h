/* Text generation from a trained model. */
#ifndef TG_MODELS_CHARLM_SAMPLE_H
#define TG_MODELS_CHARLM_SAMPLE_H

#include <stdio.h>

#include "datasets/text.h"
#include "gpt.h"

typedef struct charlm_sample_options {
    const char *prompt;   /* UTF-8; every character must be in the vocabulary */
    long length;          /* characters to generate after the prompt */
    double temperature;   /* > 0; logits are divided by it */
    long top_k;           /* 0 for all; else 1 to vocab_size */
    uint64_t seed;
} charlm_sample_options;

/* Writes the prompt and then `length` generated characters to out, flushing
 * after each one so the text streams as it is generated. The context is the
 * last block_size tokens. Returns TG_OK, or an error with tg_last_error()
 * set (a prompt character outside the vocabulary, an invalid option). */
tg_status charlm_generate(const gpt_model *model, const tg_text_vocab *vocab,
                          const charlm_sample_options *options, FILE *out);

/* Picks a token from logits (V) with temperature and top-k, drawing from
 * rng. probs is scratch space of V doubles. Exposed for tests. */
int32_t charlm_pick_token(const tg_scalar *logits, int V, double temperature, long top_k,
                          tg_rng *rng, double *probs);

#endif
