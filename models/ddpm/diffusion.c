#include "diffusion.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Offset of the cosine schedule, which keeps beta_0 from being tiny. */
#define COSINE_OFFSET 0.008
/* Cap on a cosine-schedule beta, avoiding the singularity at t = T. */
#define COSINE_MAX_BETA 0.999

static const double pi = 3.141592653589793238462643;

static double cosine_f(double u) {
    double c = cos((u + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * pi / 2.0);
    return c * c;
}

void ddpm_schedule_free(ddpm_schedule *s) {
    free(s->betas);
    free(s->alphas);
    free(s->alphas_cumprod);
    free(s->alphas_cumprod_prev);
    free(s->posterior_variance);
    free(s->posterior_mean_x0);
    free(s->posterior_mean_xt);
    memset(s, 0, sizeof *s);
}

tg_status ddpm_schedule_init(ddpm_schedule *s, ddpm_beta_kind kind, int T, double beta_start,
                             double beta_end) {
    memset(s, 0, sizeof *s);
    if (T < 2) {
        return tg_set_error(TG_ERR_INVALID, "diffusion schedule: invalid number of steps %d; "
                            "it must be at least 2", T);
    }
    if (kind == DDPM_BETAS_LINEAR &&
        !(beta_start > 0.0 && beta_end < 1.0 && beta_start <= beta_end)) {
        return tg_set_error(TG_ERR_INVALID, "diffusion schedule: invalid betas %g to %g; they "
                            "must satisfy 0 < beta_start <= beta_end < 1", beta_start, beta_end);
    }
    size_t bytes = (size_t)T * sizeof(double);
    s->T = T;
    s->betas = malloc(bytes);
    s->alphas = malloc(bytes);
    s->alphas_cumprod = malloc(bytes);
    s->alphas_cumprod_prev = malloc(bytes);
    s->posterior_variance = malloc(bytes);
    s->posterior_mean_x0 = malloc(bytes);
    s->posterior_mean_xt = malloc(bytes);
    if (!s->betas || !s->alphas || !s->alphas_cumprod || !s->alphas_cumprod_prev ||
        !s->posterior_variance || !s->posterior_mean_x0 || !s->posterior_mean_xt) {
        ddpm_schedule_free(s);
        return tg_set_error(TG_ERR_NOMEM, "diffusion schedule: out of memory for %d steps", T);
    }

    for (int t = 0; t < T; t++) {
        if (kind == DDPM_BETAS_LINEAR) {
            s->betas[t] = beta_start + (beta_end - beta_start) * t / (T - 1);
        } else {
            double beta = 1.0 - cosine_f((double)(t + 1) / T) / cosine_f((double)t / T);
            s->betas[t] = fmin(beta, COSINE_MAX_BETA);
        }
    }
    double abar = 1.0;
    for (int t = 0; t < T; t++) {
        double beta = s->betas[t];
        double abar_prev = abar;
        s->alphas[t] = 1.0 - beta;
        abar *= s->alphas[t];
        s->alphas_cumprod[t] = abar;
        s->alphas_cumprod_prev[t] = abar_prev;
        s->posterior_variance[t] = beta * (1.0 - abar_prev) / (1.0 - abar);
        s->posterior_mean_x0[t] = beta * sqrt(abar_prev) / (1.0 - abar);
        s->posterior_mean_xt[t] = (1.0 - abar_prev) * sqrt(s->alphas[t]) / (1.0 - abar);
    }
    return TG_OK;
}

/* Noises row i of x0 into x_t, as ddpm_q_sample does for every row. */
static void q_sample_row(const ddpm_schedule *s, const tg_scalar *x0, const int32_t *t,
                         const tg_scalar *noise, int i, int D, tg_scalar *x_t) {
    double abar = s->alphas_cumprod[t[i]];
    tg_scalar a = (tg_scalar)sqrt(abar);
    tg_scalar b = (tg_scalar)sqrt(1.0 - abar);
    size_t row = (size_t)i * (size_t)D;
    for (int j = 0; j < D; j++) {
        x_t[row + j] = a * x0[row + j] + b * noise[row + j];
    }
}

void ddpm_q_sample(const ddpm_schedule *s, const tg_scalar *x0, const int32_t *t,
                   const tg_scalar *noise, int n, int D, tg_scalar *x_t) {
    /* No one-thread region: libgomp allocates the team of every one-thread
     * region from the heap, and training calls this every step. */
    if (omp_get_max_threads() < 2) {
        for (int i = 0; i < n; i++) {
            q_sample_row(s, x0, t, noise, i, D, x_t);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        q_sample_row(s, x0, t, noise, i, D, x_t);
    }
}

tg_status ddpm_ddim_timesteps(int T, int S, int32_t *timesteps) {
    if (S < 1 || S > T) {
        return tg_set_error(TG_ERR_INVALID, "DDIM: invalid number of steps %d; it must be "
                            "from 1 to the %d diffusion steps", S, T);
    }
    int stride = T / S;
    for (int i = 0; i < S; i++) {
        timesteps[i] = i * stride;
    }
    return TG_OK;
}

/* ---- Shared sampler plumbing ---------------------------------------------- */

typedef struct sampler_buffers {
    tg_scalar *eps;  /* (n, D) */
    int32_t *t;      /* (n) */
} sampler_buffers;

static tg_status buffers_alloc(sampler_buffers *b, int n, int D) {
    b->eps = malloc((size_t)n * (size_t)D * sizeof *b->eps);
    b->t = malloc((size_t)n * sizeof *b->t);
    if (b->eps == NULL || b->t == NULL) {
        free(b->eps);
        free(b->t);
        b->eps = NULL;
        b->t = NULL;
        return tg_set_error(TG_ERR_NOMEM, "sampler: out of memory for %d samples of %d values",
                            n, D);
    }
    return TG_OK;
}

static void buffers_free(sampler_buffers *b) {
    free(b->eps);
    free(b->t);
}

static tg_status predict_at(const ddpm_sampler *sampler, sampler_buffers *b, const tg_scalar *x,
                            int n, int t) {
    for (int i = 0; i < n; i++) {
        b->t[i] = t;
    }
    return sampler->predict(sampler->predict_ctx, x, b->t, n, b->eps);
}

static double clamp_unit(double v) {
    return v < -1.0 ? -1.0 : (v > 1.0 ? 1.0 : v);
}

/* Adds sigma * z to x with z drawn in row-major order; serial, so the draws
 * do not depend on the thread count. */
static void add_noise(tg_scalar *x, size_t count, double sigma, tg_rng *rng) {
    for (size_t k = 0; k < count; k++) {
        x[k] = (tg_scalar)((double)x[k] + sigma * tg_rng_normal(rng));
    }
}

/* ---- DDPM ----------------------------------------------------------------- */

/* One ancestral step's mean, written over x. */
static void ddpm_mean(const ddpm_schedule *s, int t, bool clip_x0, tg_scalar *x,
                      const tg_scalar *eps, size_t count) {
    double beta = s->betas[t];
    double abar = s->alphas_cumprod[t];
    double eps_coef = beta / sqrt(1.0 - abar);
    double inv_sqrt_alpha = 1.0 / sqrt(s->alphas[t]);
    double sqrt_abar = sqrt(abar);
    double sqrt_one_minus = sqrt(1.0 - abar);
    double c0 = s->posterior_mean_x0[t];
    double ct = s->posterior_mean_xt[t];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < count; k++) {
        double xk = (double)x[k];
        double ek = (double)eps[k];
        if (clip_x0) {
            double x0 = clamp_unit((xk - sqrt_one_minus * ek) / sqrt_abar);
            x[k] = (tg_scalar)(c0 * x0 + ct * xk);
        } else {
            x[k] = (tg_scalar)((xk - eps_coef * ek) * inv_sqrt_alpha);
        }
    }
}

tg_status ddpm_sample_ddpm(const ddpm_schedule *s, const ddpm_sampler *sampler,
                           ddpm_variance variance, tg_scalar *x, int n, int D, tg_rng *rng) {
    sampler_buffers b = {0};
    tg_status status = buffers_alloc(&b, n, D);
    size_t count = (size_t)n * (size_t)D;
    for (int t = s->T - 1; t >= 0 && status == TG_OK; t--) {
        status = predict_at(sampler, &b, x, n, t);
        if (status != TG_OK) {
            break;
        }
        ddpm_mean(s, t, sampler->clip_x0, x, b.eps, count);
        if (t > 0) {
            double var = variance == DDPM_VARIANCE_BETA ? s->betas[t] : s->posterior_variance[t];
            add_noise(x, count, sqrt(var), rng);
        }
        if (sampler->progress != NULL) {
            sampler->progress(sampler->progress_ctx, s->T - t, s->T);
        }
    }
    buffers_free(&b);
    return status;
}

/* ---- DDIM ----------------------------------------------------------------- */

static void ddim_update(double abar, double abar_prev, double sigma, bool clip_x0, tg_scalar *x,
                        const tg_scalar *eps, size_t count) {
    double sqrt_abar = sqrt(abar);
    double sqrt_one_minus = sqrt(1.0 - abar);
    double sqrt_abar_prev = sqrt(abar_prev);
    double dir_coef = sqrt(fmax(1.0 - abar_prev - sigma * sigma, 0.0));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < count; k++) {
        double xk = (double)x[k];
        double ek = (double)eps[k];
        double x0 = (xk - sqrt_one_minus * ek) / sqrt_abar;
        if (clip_x0) {
            x0 = clamp_unit(x0);
            ek = (xk - sqrt_abar * x0) / sqrt_one_minus;
        }
        x[k] = (tg_scalar)(sqrt_abar_prev * x0 + dir_coef * ek);
    }
}

tg_status ddpm_sample_ddim(const ddpm_schedule *s, const ddpm_sampler *sampler, int S,
                           double eta, tg_scalar *x, int n, int D, tg_rng *rng) {
    if (!(eta >= 0.0 && isfinite(eta))) {
        return tg_set_error(TG_ERR_INVALID, "DDIM: invalid eta %g; it must be finite and >= 0",
                            eta);
    }
    int32_t *timesteps = malloc((size_t)(S > 0 ? S : 1) * sizeof *timesteps);
    if (timesteps == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "DDIM: out of memory for %d timesteps", S);
    }
    tg_status status = ddpm_ddim_timesteps(s->T, S, timesteps);
    sampler_buffers b = {0};
    if (status == TG_OK) {
        status = buffers_alloc(&b, n, D);
    }
    size_t count = (size_t)n * (size_t)D;
    for (int i = S - 1; i >= 0 && status == TG_OK; i--) {
        int t = timesteps[i];
        double abar = s->alphas_cumprod[t];
        double abar_prev = i > 0 ? s->alphas_cumprod[timesteps[i - 1]] : 1.0;
        double sigma = eta * sqrt((1.0 - abar_prev) / (1.0 - abar)) * sqrt(1.0 - abar / abar_prev);
        status = predict_at(sampler, &b, x, n, t);
        if (status != TG_OK) {
            break;
        }
        ddim_update(abar, abar_prev, sigma, sampler->clip_x0, x, b.eps, count);
        if (sigma > 0.0) {
            add_noise(x, count, sigma, rng);
        }
        if (sampler->progress != NULL) {
            sampler->progress(sampler->progress_ctx, S - i, S);
        }
    }
    buffers_free(&b);
    free(timesteps);
    return status;
}
