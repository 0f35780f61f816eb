/* The diffusion schedule and the samplers of the ddpm program: the tables
 * against the formulas in double, DDIM with a perfect noise predictor, and
 * DDPM on a 1-D Gaussian with its optimal denoiser. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "diffusion.h"

static const double pi = 3.141592653589793238462643;

static void expect_near(const char *what, int t, double actual, double expected, double rtol) {
    cr_assert(fabs(actual - expected) <= rtol * fabs(expected) + 1e-300,
              "%s at t = %d is %.17g, expected %.17g", what, t, actual, expected);
}

Test(ddpm_schedule, linear_tables_match_formulas) {
    ddpm_schedule s;
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 1000, 1e-4, 0.02), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(s.betas[0], 1e-4, "beta_0 is %.17g", s.betas[0]);
    expect_near("beta", 999, s.betas[999], 0.02, 1e-15);
    double abar = 1.0;
    for (int t = 0; t < 1000; t++) {
        double beta = 1e-4 + (0.02 - 1e-4) * t / 999.0;
        double abar_prev = abar;
        abar *= 1.0 - beta;
        expect_near("beta", t, s.betas[t], beta, 1e-14);
        expect_near("abar", t, s.alphas_cumprod[t], abar, 1e-12);
        expect_near("abar_prev", t, s.alphas_cumprod_prev[t], abar_prev, 1e-12);
        expect_near("posterior variance", t, s.posterior_variance[t],
                    beta * (1.0 - abar_prev) / (1.0 - abar), 1e-12);
    }
    cr_assert_eq(s.posterior_variance[0], 0.0, "posterior variance at t = 0 is %g",
                 s.posterior_variance[0]);
    /* abar_999 for this schedule is about 4.04e-5 (Ho et al.'s setting). */
    cr_assert(s.alphas_cumprod[999] > 4.0e-5 && s.alphas_cumprod[999] < 4.1e-5,
              "abar_999 is %g", s.alphas_cumprod[999]);
    ddpm_schedule_free(&s);
}

Test(ddpm_schedule, cosine_tables_match_formulas) {
    ddpm_schedule s;
    int T = 200;
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_COSINE, T, 0.0, 0.0), TG_OK, "%s",
                 tg_last_error());
    double f0 = pow(cos(0.008 / 1.008 * pi / 2), 2);
    double abar = 1.0;
    for (int t = 0; t < T; t++) {
        double ft = pow(cos(((double)t / T + 0.008) / 1.008 * pi / 2), 2);
        double ft1 = pow(cos(((double)(t + 1) / T + 0.008) / 1.008 * pi / 2), 2);
        double beta = fmin(1.0 - ft1 / ft, 0.999);
        double abar_prev = abar;
        abar *= 1.0 - beta;
        expect_near("beta", t, s.betas[t], beta, 1e-13);
        expect_near("abar", t, s.alphas_cumprod[t], abar, 1e-12);
        expect_near("posterior variance", t, s.posterior_variance[t],
                    beta * (1.0 - abar_prev) / (1.0 - abar), 1e-12);
        if (t < T - 1) {
            /* Unclipped, the product telescopes to f(t + 1) / f(0). */
            expect_near("abar as f(t + 1) / f(0)", t, s.alphas_cumprod[t], ft1 / f0, 1e-9);
        }
    }
    ddpm_schedule_free(&s);
}

Test(ddpm_schedule, rejects_invalid_settings) {
    ddpm_schedule s;
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 1, 1e-4, 0.02), TG_ERR_INVALID);
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 100, 0.0, 0.02), TG_ERR_INVALID);
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 100, 0.02, 0.01), TG_ERR_INVALID);
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 100, 1e-4, 1.0), TG_ERR_INVALID);
}

Test(ddpm_ddim, timesteps_are_evenly_spaced) {
    int32_t t[50];
    cr_assert_eq(ddpm_ddim_timesteps(1000, 50, t), TG_OK);
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(t[i], 20 * i, "timestep %d is %d, expected %d", i, t[i], 20 * i);
    }
    int32_t u[3];
    cr_assert_eq(ddpm_ddim_timesteps(10, 3, u), TG_OK);
    cr_assert(u[0] == 0 && u[1] == 3 && u[2] == 6, "timesteps %d %d %d", u[0], u[1], u[2]);
    cr_assert_eq(ddpm_ddim_timesteps(10, 11, u), TG_ERR_INVALID);
    cr_assert_eq(ddpm_ddim_timesteps(10, 0, u), TG_ERR_INVALID);
}

/* ---- A perfect noise predictor -------------------------------------------- */

typedef struct oracle {
    const ddpm_schedule *s;
    const tg_scalar *x0;  /* (n, D) the samples the predictor steers to */
    int D;
} oracle;

/* eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t), exact for the known x0. */
static tg_status predict_known_x0(void *ctx, const tg_scalar *x, const int32_t *t, int n,
                                  tg_scalar *eps) {
    const oracle *o = ctx;
    for (int i = 0; i < n; i++) {
        double abar = o->s->alphas_cumprod[t[i]];
        for (int j = 0; j < o->D; j++) {
            size_t k = (size_t)i * (size_t)o->D + (size_t)j;
            eps[k] = (tg_scalar)(((double)x[k] - sqrt(abar) * (double)o->x0[k]) /
                                 sqrt(1.0 - abar));
        }
    }
    return TG_OK;
}

Test(ddpm_ddim, perfect_predictor_recovers_x0) {
    ddpm_schedule s;
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 1000, 1e-4, 0.02), TG_OK);
    enum { N = 16, D = 8 };
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_scalar x0[N * D];
    double expected[N * D];
    for (int k = 0; k < N * D; k++) {
        x0[k] = (tg_scalar)(2.0 * tg_rng_uniform(&rng) - 1.0);
        expected[k] = (double)x0[k];
    }
    oracle o = {.s = &s, .x0 = x0, .D = D};
    ddpm_sampler sampler = {.predict = predict_known_x0, .predict_ctx = &o};
    const int step_counts[] = {1, 7, 50, 333, 1000};
    for (size_t c = 0; c < sizeof step_counts / sizeof step_counts[0]; c++) {
        tg_scalar x[N * D];
        for (int k = 0; k < N * D; k++) {
            x[k] = (tg_scalar)tg_rng_normal(&rng);
        }
        cr_assert_eq(ddpm_sample_ddim(&s, &sampler, step_counts[c], 0.0, x, N, D, &rng), TG_OK);
        char what[64];
        snprintf(what, sizeof what, "DDIM with %d steps", step_counts[c]);
        /* Float rounding: a few ulps of values in [-1, 1] per step, and the
         * division by sqrt(abar_T) ~ 0.006 amplifies the first step's. */
        expect_close(what, x, expected, N * D, 1e-5, 0.0);
    }
    ddpm_schedule_free(&s);
}

/* ---- DDPM on a 1-D Gaussian ------------------------------------------------ */

typedef struct gaussian {
    const ddpm_schedule *s;
    double mean;
    double var;
} gaussian;

/* The optimal predictor for x0 ~ N(m, v): x_t ~ N(a m, a^2 v + b^2) with
 * a = sqrt(abar), b = sqrt(1 - abar), and E[eps | x_t] = b (x_t - a m) / (a^2 v + b^2). */
static tg_status predict_gaussian(void *ctx, const tg_scalar *x, const int32_t *t, int n,
                                  tg_scalar *eps) {
    const gaussian *g = ctx;
    for (int i = 0; i < n; i++) {
        double abar = g->s->alphas_cumprod[t[i]];
        double a = sqrt(abar);
        double b = sqrt(1.0 - abar);
        eps[i] = (tg_scalar)(b * ((double)x[i] - a * g->mean) / (abar * g->var + b * b));
    }
    return TG_OK;
}

static void check_gaussian_moments(ddpm_variance variance) {
    ddpm_schedule s;
    cr_assert_eq(ddpm_schedule_init(&s, DDPM_BETAS_LINEAR, 1000, 1e-4, 0.02), TG_OK);
    enum { N = 20000 };
    gaussian g = {.s = &s, .mean = 0.5, .var = 0.0625};
    ddpm_sampler sampler = {.predict = predict_gaussian, .predict_ctx = &g};
    tg_scalar *x = malloc(N * sizeof *x);
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        x[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(ddpm_sample_ddpm(&s, &sampler, variance, x, N, 1, &rng), TG_OK);
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        sum += (double)x[i];
    }
    double mean = sum / N;
    double sq = 0.0;
    for (int i = 0; i < N; i++) {
        sq += ((double)x[i] - mean) * ((double)x[i] - mean);
    }
    double var = sq / (N - 1);
    /* Sampling error alone: the mean's standard error is 0.25 / sqrt(N) =
     * 0.0018 and the variance's relative error sqrt(2 / N) = 1 %; the bounds
     * allow about 3 standard errors plus the discretisation of the chain. */
    cr_assert(fabs(mean - g.mean) < 0.006, "sample mean %.5f, expected %.5f", mean, g.mean);
    cr_assert(fabs(var / g.var - 1.0) < 0.05, "sample variance %.5f, expected %.5f", var, g.var);
    free(x);
    ddpm_schedule_free(&s);
}

Test(ddpm_ddpm, gaussian_moments_with_beta_variance) {
    check_gaussian_moments(DDPM_VARIANCE_BETA);
}

Test(ddpm_ddpm, gaussian_moments_with_posterior_variance) {
    check_gaussian_moments(DDPM_VARIANCE_POSTERIOR);
}
