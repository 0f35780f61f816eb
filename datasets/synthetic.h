/* Small synthetic data sets in one and two dimensions, for testing models
 * such as diffusion models on distributions whose shape is known.
 *
 * Each generator draws from the caller's seeded tg_rng in a fixed order, point
 * by point, so the same seed gives the same points on every platform up to
 * the last bits of sin, cos and log. Points are written as tg_scalar
 * (float32 in the main build). Arguments are checked first; on an error
 * nothing is drawn and nothing is written.
 */
#ifndef TG_DATASETS_SYNTHETIC_H
#define TG_DATASETS_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "../autograd/rng.h"
#include "../autograd/scalar.h"
#include "../autograd/status.h"

/* Draws n points of two interleaved half circles of radius 1 (the "two moons"
 * of scikit-learn's make_moons). For each point: the moon is
 * tg_rng_below(rng, 2), the angle t is pi * tg_rng_uniform(rng), and then
 * Gaussian noise of standard deviation noise_std is added to x and then y.
 * Moon 0 is (cos t, sin t), the upper arc around (0, 0). Moon 1 is
 * (1 - cos t, 0.5 - sin t), the lower arc around (1, 0.5).
 * points (n, 2) receives (x, y) pairs; labels (n) receives the moons and may
 * be NULL. Returns TG_ERR_INVALID unless noise_std is finite and >= 0. */
tg_status tg_synthetic_moons(tg_rng *rng, size_t n, double noise_std, tg_scalar *points,
                             int32_t *labels);

/* Draws n points from an equal-weight mixture of k isotropic 2-D Gaussians of
 * standard deviation `std`, whose means lie evenly on a circle:
 * mean_j = radius * (cos(2 pi j / k), sin(2 pi j / k)) for j in [0, k).
 * For each point: the component is tg_rng_below(rng, k), then x and y get
 * std * tg_rng_normal(rng) each. points (n, 2) receives the points; labels (n)
 * receives the components and may be NULL. Returns TG_ERR_INVALID unless
 * k >= 1, radius is finite, and std is finite and >= 0. */
tg_status tg_synthetic_gaussian_mixture(tg_rng *rng, size_t n, int k, double radius,
                                        double std, tg_scalar *points, int32_t *labels);

/* Draws n values mean + std * tg_rng_normal(rng) into values (n).
 * Returns TG_ERR_INVALID unless mean is finite, and std is finite and >= 0. */
tg_status tg_synthetic_gaussian_1d(tg_rng *rng, size_t n, double mean, double std,
                                   tg_scalar *values);

#endif
