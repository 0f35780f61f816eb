/* Synthetic data sets: shapes, reproducibility from the seed, and sample
 * statistics. Each statistical bound is stated next to its check in units of
 * the estimator's standard deviation, and all are over 5 sigma. The seeds are
 * fixed, so the tests are deterministic. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

static void expect_message_contains(const char *needle) {
    const char *message = tg_last_error();
    cr_assert(strstr(message, needle) != NULL, "expected \"%s\" in the message: %s", needle,
              message);
}

/* Distance of (x, y) from the circle of radius 1 around (cx, cy). */
static double circle_deviation(double x, double y, double cx, double cy) {
    return hypot(x - cx, y - cy) - 1.0;
}

Test(synthetic, moons_without_noise_lie_on_arcs) {
    enum { N = 2000 };
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_scalar *points = malloc(2 * N * sizeof *points);
    int32_t labels[N];
    cr_assert_eq(tg_synthetic_moons(&rng, N, 0.0, points, labels), TG_OK, "%s",
                 tg_last_error());
    int per_moon[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        double x = points[2 * i];
        double y = points[2 * i + 1];
        cr_assert(labels[i] == 0 || labels[i] == 1, "label %d is %d", i, labels[i]);
        per_moon[labels[i]]++;
        /* float32 rounding of cos and sin moves a point by at most ~1e-7. */
        if (labels[i] == 0) {
            cr_assert_lt(fabs(circle_deviation(x, y, 0.0, 0.0)), 1e-6, "point %d (%g, %g)", i, x,
                         y);
            cr_assert_geq(y, 0.0, "upper moon point %d has y %g", i, y);
        } else {
            cr_assert_lt(fabs(circle_deviation(x, y, 1.0, 0.5)), 1e-6, "point %d (%g, %g)", i, x,
                         y);
            cr_assert_leq(y, 0.5, "lower moon point %d has y %g", i, y);
        }
    }
    /* Each moon: 1000 +- 22 expected; 850 is over 6 sigma away. */
    cr_assert_gt(per_moon[0], 850, "%d points on moon 0", per_moon[0]);
    cr_assert_gt(per_moon[1], 850, "%d points on moon 1", per_moon[1]);
    free(points);
}

Test(synthetic, noisy_moons_stay_near_arcs) {
    enum { N = 20000 };
    const double noise = 0.1;
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    tg_scalar *points = malloc(2 * N * sizeof *points);
    int32_t *labels = malloc(N * sizeof *labels);
    cr_assert_eq(tg_synthetic_moons(&rng, N, noise, points, labels), TG_OK);
    double sum_abs_deviation = 0.0;
    for (int i = 0; i < N; i++) {
        double cx = labels[i] == 0 ? 0.0 : 1.0;
        double cy = labels[i] == 0 ? 0.0 : 0.5;
        sum_abs_deviation += fabs(circle_deviation(points[2 * i], points[2 * i + 1], cx, cy));
    }
    /* The radial part of isotropic noise is N(0, noise^2) to first order, so
     * the mean |deviation| is about noise * sqrt(2 / pi) = 0.0798, with a
     * standard error of 0.0004 at this N; the band is wider for the
     * second-order curvature terms. */
    double mean_abs_deviation = sum_abs_deviation / N;
    cr_assert(mean_abs_deviation > 0.070 && mean_abs_deviation < 0.090,
              "mean distance from the arcs %g, expected about 0.0798", mean_abs_deviation);
    free(points);
    free(labels);
}

Test(synthetic, same_seed_gives_same_points) {
    enum { N = 300 };
    tg_scalar a[2 * N];
    tg_scalar b[2 * N];
    int32_t labels_a[N];
    int32_t labels_b[N];
    tg_rng rng_a;
    tg_rng rng_b;
    tg_rng_seed(&rng_a, 42);
    tg_rng_seed(&rng_b, 42);
    cr_assert_eq(tg_synthetic_moons(&rng_a, N, 0.05, a, labels_a), TG_OK);
    cr_assert_eq(tg_synthetic_moons(&rng_b, N, 0.05, b, labels_b), TG_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0, "moons differ for the same seed");
    cr_assert(memcmp(labels_a, labels_b, sizeof labels_a) == 0, "labels differ");

    /* The generator moves on, so a second call draws new points. */
    cr_assert_eq(tg_synthetic_moons(&rng_a, N, 0.05, a, NULL), TG_OK);
    cr_assert(memcmp(a, b, sizeof a) != 0, "a second draw repeated the first");

    tg_rng_seed(&rng_a, 7);
    tg_rng_seed(&rng_b, 7);
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng_a, N, 5, 3.0, 0.2, a, labels_a), TG_OK);
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng_b, N, 5, 3.0, 0.2, b, labels_b), TG_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0, "mixtures differ for the same seed");
    cr_assert(memcmp(labels_a, labels_b, sizeof labels_a) == 0, "components differ");

    tg_rng_seed(&rng_a, 8);
    tg_rng_seed(&rng_b, 8);
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng_a, N, 1.0, 2.0, a), TG_OK);
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng_b, N, 1.0, 2.0, b), TG_OK);
    cr_assert(memcmp(a, b, N * sizeof *a) == 0, "1-D values differ for the same seed");
    tg_rng_seed(&rng_b, 9);
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng_b, N, 1.0, 2.0, b), TG_OK);
    cr_assert(memcmp(a, b, N * sizeof *a) != 0, "seeds 8 and 9 gave the same values");
}

Test(synthetic, mixture_components_center_on_circle) {
    enum { N = 40000, K = 8 };
    const double radius = 2.0;
    const double std = 0.1;
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_scalar *points = malloc(2 * N * sizeof *points);
    int32_t *labels = malloc(N * sizeof *labels);
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng, N, K, radius, std, points, labels), TG_OK,
                 "%s", tg_last_error());

    double sum[K][2] = {{0}};
    double sum_sq[K] = {0};
    int count[K] = {0};
    for (int i = 0; i < N; i++) {
        int j = labels[i];
        cr_assert(j >= 0 && j < K, "component %d of point %d", j, i);
        sum[j][0] += (double)points[2 * i];
        sum[j][1] += (double)points[2 * i + 1];
        count[j]++;
    }
    for (int i = 0; i < N; i++) {
        int j = labels[i];
        double angle = 2.0 * 3.141592653589793 * j / K;
        double dx = (double)points[2 * i] - radius * cos(angle);
        double dy = (double)points[2 * i + 1] - radius * sin(angle);
        sum_sq[j] += dx * dx + dy * dy;
    }
    for (int j = 0; j < K; j++) {
        /* Count: 5000 +- 66; the band is 6 sigma. */
        cr_assert(abs(count[j] - N / K) < 400, "component %d has %d points", j, count[j]);
        /* Mean: standard error std / sqrt(5000) = 0.0014 per axis; 0.01 is 7 sigma. */
        double angle = 2.0 * 3.141592653589793 * j / K;
        double mean_x = sum[j][0] / count[j];
        double mean_y = sum[j][1] / count[j];
        cr_assert_lt(fabs(mean_x - radius * cos(angle)), 0.01, "component %d mean x %g, "
                     "expected %g", j, mean_x, radius * cos(angle));
        cr_assert_lt(fabs(mean_y - radius * sin(angle)), 0.01, "component %d mean y %g, "
                     "expected %g", j, mean_y, radius * sin(angle));
        /* Std about the true center: standard error 0.1 / sqrt(2 * 10000) =
         * 0.0007; 0.005 is 7 sigma. */
        double std_estimate = sqrt(sum_sq[j] / (2.0 * count[j]));
        cr_assert_lt(fabs(std_estimate - std), 0.005, "component %d std %g, expected %g", j,
                     std_estimate, std);
    }
    free(points);
    free(labels);
}

Test(synthetic, gaussian_1d_matches_mean_and_std) {
    enum { N = 100000 };
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_scalar *values = malloc(N * sizeof *values);
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng, N, 3.0, 0.5, values), TG_OK, "%s",
                 tg_last_error());
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        sum += (double)values[i];
    }
    double mean = sum / N;
    double sum_sq = 0.0;
    for (int i = 0; i < N; i++) {
        double deviation = (double)values[i] - mean;
        sum_sq += deviation * deviation;
    }
    double std = sqrt(sum_sq / (N - 1));
    /* Standard errors: 0.5 / sqrt(N) = 0.0016 for the mean and
     * 0.5 / sqrt(2N) = 0.0011 for the std; the bands are over 5 sigma. */
    cr_assert_lt(fabs(mean - 3.0), 0.01, "mean %g, expected 3", mean);
    cr_assert_lt(fabs(std - 0.5), 0.006, "std %g, expected 0.5", std);

    tg_synthetic_gaussian_1d(&rng, 10, -1.25, 0.0, values);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(values[i], (tg_scalar)-1.25, "std 0 gave %g", (double)values[i]);
    }
    free(values);
}

Test(synthetic, invalid_arguments_draw_nothing) {
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_rng before = rng;
    tg_scalar points[8] = {0};
    int32_t labels[4] = {0};

    cr_assert_eq(tg_synthetic_moons(&rng, 4, -0.1, points, labels), TG_ERR_INVALID);
    expect_message_contains("invalid noise std -0.1");
    cr_assert_eq(tg_synthetic_moons(&rng, 4, NAN, points, labels), TG_ERR_INVALID);
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng, 4, 0, 1.0, 0.1, points, labels),
                 TG_ERR_INVALID);
    expect_message_contains("invalid number of components 0");
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng, 4, 3, INFINITY, 0.1, points, labels),
                 TG_ERR_INVALID);
    expect_message_contains("invalid radius inf");
    cr_assert_eq(tg_synthetic_gaussian_mixture(&rng, 4, 3, 1.0, -1.0, points, labels),
                 TG_ERR_INVALID);
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng, 4, 0.0, -2.0, points), TG_ERR_INVALID);
    expect_message_contains("std -2");
    cr_assert_eq(tg_synthetic_gaussian_1d(&rng, 4, NAN, 1.0, points), TG_ERR_INVALID);
    expect_message_contains("invalid mean nan");

    cr_assert(memcmp(&rng, &before, sizeof rng) == 0, "a rejected call advanced the generator");
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(points[i], 0, "a rejected call wrote point element %d", i);
    }
    cr_assert_eq(tg_synthetic_moons(&rng, 0, 0.1, points, labels), TG_OK);
    cr_assert(memcmp(&rng, &before, sizeof rng) == 0, "zero points advanced the generator");
}
