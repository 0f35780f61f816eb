/* Synthetic 1-D and 2-D distributions; see synthetic.h for the draw order. */
#include "synthetic.h"

#include <math.h>
#include <stdbool.h>

static const double pi = 3.141592653589793238462643;

static bool is_valid_std(double std) {
    return isfinite(std) && std >= 0.0;
}

tg_status tg_synthetic_moons(tg_rng *rng, size_t n, double noise_std, tg_scalar *points,
                             int32_t *labels) {
    if (!is_valid_std(noise_std)) {
        return tg_set_error(TG_ERR_INVALID, "synthetic moons: invalid noise std %g; it must be "
                            "finite and >= 0", noise_std);
    }
    for (size_t i = 0; i < n; i++) {
        int moon = (int)tg_rng_below(rng, 2);
        double t = pi * tg_rng_uniform(rng);
        double x = moon == 0 ? cos(t) : 1.0 - cos(t);
        double y = moon == 0 ? sin(t) : 0.5 - sin(t);
        x += noise_std * tg_rng_normal(rng);
        y += noise_std * tg_rng_normal(rng);
        points[2 * i] = (tg_scalar)x;
        points[2 * i + 1] = (tg_scalar)y;
        if (labels != NULL) {
            labels[i] = moon;
        }
    }
    return TG_OK;
}

tg_status tg_synthetic_gaussian_mixture(tg_rng *rng, size_t n, int k, double radius,
                                        double std, tg_scalar *points, int32_t *labels) {
    if (k < 1) {
        return tg_set_error(TG_ERR_INVALID, "synthetic gaussian mixture: invalid number of "
                            "components %d; it must be at least 1", k);
    }
    if (!isfinite(radius) || !is_valid_std(std)) {
        return tg_set_error(TG_ERR_INVALID, "synthetic gaussian mixture: invalid radius %g or "
                            "std %g; both must be finite and std >= 0", radius, std);
    }
    for (size_t i = 0; i < n; i++) {
        int j = (int)tg_rng_below(rng, (uint64_t)k);
        double angle = 2.0 * pi * j / k;
        double x = radius * cos(angle) + std * tg_rng_normal(rng);
        double y = radius * sin(angle) + std * tg_rng_normal(rng);
        points[2 * i] = (tg_scalar)x;
        points[2 * i + 1] = (tg_scalar)y;
        if (labels != NULL) {
            labels[i] = j;
        }
    }
    return TG_OK;
}

tg_status tg_synthetic_gaussian_1d(tg_rng *rng, size_t n, double mean, double std,
                                   tg_scalar *values) {
    if (!isfinite(mean) || !is_valid_std(std)) {
        return tg_set_error(TG_ERR_INVALID, "synthetic gaussian 1d: invalid mean %g or std %g; "
                            "both must be finite and std >= 0", mean, std);
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = (tg_scalar)(mean + std * tg_rng_normal(rng));
    }
    return TG_OK;
}
