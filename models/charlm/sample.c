#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int32_t charlm_pick_token(const tg_scalar *logits, int V, double temperature, long top_k,
                          tg_rng *rng, double *probs) {
    /* Keep the k largest logits: find the k-th largest value as a threshold.
     * Ties at the threshold are all kept, as in nanoGPT's comparison. */
    double threshold = -HUGE_VAL;
    if (top_k > 0 && top_k < V) {
        for (int i = 0; i < V; i++) {
            probs[i] = (double)logits[i];
        }
        for (long k = 0; k < top_k; k++) {
            int best = -1;
            for (int i = 0; i < V; i++) {
                if (probs[i] != -HUGE_VAL && (best < 0 || probs[i] > probs[best])) {
                    best = i;
                }
            }
            threshold = probs[best];
            probs[best] = -HUGE_VAL;
        }
    }
    double max_logit = -HUGE_VAL;
    for (int i = 0; i < V; i++) {
        if ((double)logits[i] >= threshold && (double)logits[i] > max_logit) {
            max_logit = (double)logits[i];
        }
    }
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        double l = (double)logits[i];
        probs[i] = l >= threshold ? exp((l - max_logit) / temperature) : 0.0;
        total += probs[i];
    }
    double u = tg_rng_uniform(rng) * total;
    int32_t last_kept = 0;
    for (int i = 0; i < V; i++) {
        if (probs[i] > 0.0) {
            last_kept = i;
            if (u < probs[i]) {
                return i;
            }
            u -= probs[i];
        }
    }
    return last_kept;  /* rounding left u just above the total */
}

static void write_token(const tg_text_vocab *vocab, int32_t id, FILE *out) {
    char bytes[TG_UTF8_MAX_BYTES + 1];
    size_t n = 0;
    if (tg_text_vocab_decode(vocab, &id, 1, bytes, sizeof bytes, &n) == TG_OK) {
        fwrite(bytes, 1, n, out);
        fflush(out);
    }
}

tg_status charlm_generate(const gpt_model *model, const tg_text_vocab *vocab,
                          const charlm_sample_options *options, FILE *out) {
    int V = model->config.vocab_size;
    int block = model->config.block_size;
    size_t prompt_bytes = strlen(options->prompt);
    size_t capacity = prompt_bytes + (size_t)options->length + 1;
    int32_t *ids = malloc(capacity * sizeof *ids);
    double *probs = malloc((size_t)V * sizeof *probs);
    tg_tape *tape = tg_tape_new();
    if (ids == NULL || probs == NULL || tape == NULL) {
        free(ids);
        free(probs);
        tg_tape_free(tape);
        return tg_set_error(TG_ERR_NOMEM, "out of memory for sampling");
    }
    size_t n = 0;
    tg_status status = tg_text_vocab_encode(vocab, options->prompt, prompt_bytes, ids, capacity,
                                            &n);
    if (status == TG_OK && n == 0) {
        status = tg_set_error(TG_ERR_INVALID, "the prompt is empty; give at least one character "
                              "with --prompt");
    }
    if (status == TG_OK) {
        fwrite(options->prompt, 1, prompt_bytes, out);
        fflush(out);
    }
    tg_rng rng;
    tg_rng_seed(&rng, options->seed);
    tg_tape_set_grad_enabled(tape, false);
    for (long i = 0; i < options->length && status == TG_OK; i++) {
        int T = n < (size_t)block ? (int)n : block;
        const int32_t *context = ids + (n - (size_t)T);
        tg_tensor *logits = gpt_logits(tape, model, context, 1, T, NULL);
        if (logits == NULL) {
            status = tg_set_error(tg_tape_status(tape), "%s", tg_tape_error(tape));
            break;
        }
        const tg_scalar *last = logits->data + (size_t)(T - 1) * (size_t)V;
        int32_t next = charlm_pick_token(last, V, options->temperature, options->top_k, &rng,
                                         probs);
        ids[n++] = next;
        write_token(vocab, next, out);
        tg_tape_reset(tape);
    }
    if (status == TG_OK) {
        fputc('\n', out);
        fflush(out);
    }
    free(ids);
    free(probs);
    tg_tape_free(tape);
    return status;
}
