/* Epoch-based shuffled batching; see epoch_sampler.h for the order of draws. */
#include "epoch_sampler.h"

#include <stdlib.h>

struct tg_epoch_sampler {
    tg_epoch_sampler_state state;
    tg_rng next_epoch_rng;  /* generator state after this epoch's shuffle */
    size_t *perm;           /* (count) this epoch's order */
    int batch_size;
    bool drop_last;
};

/* Rebuilds the permutation of the epoch that state.epoch_rng starts. */
static void shuffle_epoch(tg_epoch_sampler *sampler) {
    size_t count = (size_t)sampler->state.count;
    size_t *perm = sampler->perm;
    for (size_t i = 0; i < count; i++) {
        perm[i] = i;
    }
    tg_rng rng = sampler->state.epoch_rng;
    for (size_t i = count - 1; i > 0; i--) {
        size_t j = (size_t)tg_rng_below(&rng, (uint64_t)i + 1);
        size_t swap = perm[i];
        perm[i] = perm[j];
        perm[j] = swap;
    }
    sampler->next_epoch_rng = rng;
}

tg_status tg_epoch_sampler_new(size_t count, int batch_size, bool drop_last, uint64_t seed,
                               tg_epoch_sampler **sampler) {
    *sampler = NULL;
    if (count < 1 || batch_size < 1) {
        return tg_set_error(TG_ERR_INVALID, "epoch sampler: invalid count %zu or batch size %d; "
                            "both must be at least 1", count, batch_size);
    }
    if (drop_last && count < (size_t)batch_size) {
        return tg_set_error(TG_ERR_INVALID, "epoch sampler: %zu items cannot fill one batch of "
                            "%d with drop_last; use a smaller batch or drop_last = false", count,
                            batch_size);
    }
    tg_epoch_sampler *s = malloc(sizeof *s);
    size_t *perm = malloc(count * sizeof *perm);
    if (s == NULL || perm == NULL) {
        free(s);
        free(perm);
        return tg_set_error(TG_ERR_NOMEM, "epoch sampler: out of memory for a permutation of "
                            "%zu items", count);
    }
    tg_rng_seed(&s->state.epoch_rng, seed);
    s->state.epoch = 0;
    s->state.position = 0;
    s->state.count = (uint64_t)count;
    s->perm = perm;
    s->batch_size = batch_size;
    s->drop_last = drop_last;
    shuffle_epoch(s);
    *sampler = s;
    return TG_OK;
}

void tg_epoch_sampler_free(tg_epoch_sampler *sampler) {
    if (sampler == NULL) {
        return;
    }
    free(sampler->perm);
    free(sampler);
}

void tg_epoch_sampler_next(tg_epoch_sampler *sampler, size_t *indices, int *n) {
    tg_epoch_sampler_state *state = &sampler->state;
    uint64_t remaining = state->count - state->position;
    uint64_t batch = (uint64_t)sampler->batch_size;
    if (remaining == 0 || (sampler->drop_last && remaining < batch)) {
        state->epoch_rng = sampler->next_epoch_rng;
        state->epoch++;
        state->position = 0;
        shuffle_epoch(sampler);
        remaining = state->count;
    }
    uint64_t batch_items = remaining < batch ? remaining : batch;
    for (uint64_t k = 0; k < batch_items; k++) {
        indices[k] = sampler->perm[state->position + k];
    }
    state->position += batch_items;
    *n = (int)batch_items;
}

uint64_t tg_epoch_sampler_epoch(const tg_epoch_sampler *sampler) {
    return sampler->state.epoch;
}

const size_t *tg_epoch_sampler_permutation(const tg_epoch_sampler *sampler) {
    return sampler->perm;
}

void tg_epoch_sampler_get_state(const tg_epoch_sampler *sampler, tg_epoch_sampler_state *state) {
    *state = sampler->state;
}

tg_status tg_epoch_sampler_set_state(tg_epoch_sampler *sampler,
                                     const tg_epoch_sampler_state *state) {
    if (state->count != sampler->state.count) {
        return tg_set_error(TG_ERR_INVALID, "epoch sampler: the saved state is for %llu items but "
                            "this sampler has %llu; restore it into a sampler over the same "
                            "dataset", (unsigned long long)state->count,
                            (unsigned long long)sampler->state.count);
    }
    if (state->position > state->count) {
        return tg_set_error(TG_ERR_INVALID, "epoch sampler: the saved position %llu lies past the "
                            "%llu items; the state is corrupt", (unsigned long long)state->position,
                            (unsigned long long)state->count);
    }
    sampler->state = *state;
    shuffle_epoch(sampler);
    return TG_OK;
}
