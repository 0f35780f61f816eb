/* A seeded pseudo-random number generator: xoshiro256** seeded by splitmix64.
 *
 * The whole state is the four 64-bit words of tg_rng, so a checkpoint can save
 * and restore it exactly. The same seed gives the same sequence on every
 * platform, because only integer arithmetic decides the bits.
 */
#ifndef TG_AUTOGRAD_RNG_H
#define TG_AUTOGRAD_RNG_H

#include <stdint.h>

typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

/* Seeds the generator. Every seed, including 0, gives a valid state. */
void tg_rng_seed(tg_rng *rng, uint64_t seed);

/* Returns the next 64 random bits. */
uint64_t tg_rng_next(tg_rng *rng);

/* Returns a double uniform in [0, 1) with 53 random bits. */
double tg_rng_uniform(tg_rng *rng);

/* Returns an integer uniform in [0, n), without modulo bias. n must be > 0. */
uint64_t tg_rng_below(tg_rng *rng, uint64_t n);

/* Returns a standard normal sample (Box-Muller, one value per call). */
double tg_rng_normal(tg_rng *rng);

#endif
