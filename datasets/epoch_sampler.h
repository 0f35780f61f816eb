/* Epoch-based shuffled batching over a dataset of `count` items.
 *
 * Each epoch visits every item once, in a fresh random order: at the start of
 * an epoch the sampler sets perm = (0, 1, ..., count - 1) and shuffles it with
 * Fisher-Yates, for i = count - 1 down to 1 swapping perm[i] and
 * perm[tg_rng_below(rng, i + 1)]. Batches are then taken from perm in order.
 * The generator carries on from one epoch's shuffle to the next, so the whole
 * sequence of batches follows from the seed.
 *
 *     tg_epoch_sampler *sampler;
 *     tg_epoch_sampler_new(60000, 128, true, seed, &sampler);
 *     size_t indices[128];
 *     int n;
 *     tg_epoch_sampler_next(sampler, indices, &n);      // n == 128
 *     tg_idx_gather(&mnist, indices, n, images, labels);
 *
 * For checkpoints, tg_epoch_sampler_get_state copies out a plain struct, and
 * tg_epoch_sampler_set_state puts it back and regenerates the permutation, so
 * the batches after a restore are bitwise the ones after the save.
 */
#ifndef TG_DATASETS_EPOCH_SAMPLER_H
#define TG_DATASETS_EPOCH_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../autograd/rng.h"
#include "../autograd/status.h"

/* The sampler's whole state. It contains no pointers, because the
 * permutation of the current epoch is regenerated from epoch_rng. */
typedef struct tg_epoch_sampler_state {
    tg_rng epoch_rng;   /* generator state just before this epoch's shuffle */
    uint64_t epoch;     /* index of the current epoch, 0 for the first */
    uint64_t position;  /* index into this epoch's permutation of the next item */
    uint64_t count;     /* number of items, checked when the state is restored */
} tg_epoch_sampler_state;

/* A sampler with its current permutation. Opaque. */
typedef struct tg_epoch_sampler tg_epoch_sampler;

/* Creates a sampler of batches of batch_size indices into [0, count), seeded
 * with `seed`, and shuffles the first epoch. With drop_last, an epoch ends
 * when fewer than batch_size items remain and skips them, so every batch is
 * full. Without it, the last batch of an epoch contains the remainder.
 * On success *sampler is a new sampler that the caller frees with
 * tg_epoch_sampler_free. Returns TG_ERR_INVALID if count or batch_size is
 * below 1 or, with drop_last, count < batch_size. Returns TG_ERR_NOMEM if
 * memory runs out. */
tg_status tg_epoch_sampler_new(size_t count, int batch_size, bool drop_last, uint64_t seed,
                               tg_epoch_sampler **sampler);

/* Frees a sampler. Accepts NULL. */
void tg_epoch_sampler_free(tg_epoch_sampler *sampler);

/* Writes the next batch's item indices to `indices` (room for batch_size) and
 * their number to *n, which is batch_size except for the last batch of an
 * epoch without drop_last. Starts and shuffles a new epoch first when the
 * current one has no batch left. */
void tg_epoch_sampler_next(tg_epoch_sampler *sampler, size_t *indices, int *n);

/* Returns the current epoch, 0 for the first. */
uint64_t tg_epoch_sampler_epoch(const tg_epoch_sampler *sampler);

/* Returns this epoch's permutation of [0, count), owned by the sampler and
 * valid until the next call that starts an epoch or restores a state. */
const size_t *tg_epoch_sampler_permutation(const tg_epoch_sampler *sampler);

/* Copies the sampler's state out, for saving. */
void tg_epoch_sampler_get_state(const tg_epoch_sampler *sampler, tg_epoch_sampler_state *state);

/* Restores a state saved by tg_epoch_sampler_get_state from a sampler over the
 * same number of items, and regenerates that epoch's permutation. Returns
 * TG_ERR_INVALID if the counts differ or the position lies past the count,
 * in which case the sampler is unchanged. */
tg_status tg_epoch_sampler_set_state(tg_epoch_sampler *sampler,
                                     const tg_epoch_sampler_state *state);

#endif
