/* The diffusion process of DDPM (Ho et al., 2020) and its two samplers.
 *
 * Forward process over T steps t = 0 .. T-1 with variances beta_t:
 *     alpha_t = 1 - beta_t,  abar_t = alpha_0 * ... * alpha_t
 *     q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)
 * so x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with eps ~ N(0, I). The
 * denoiser predicts eps from (x_t, t) and trains on the MSE against it.
 *
 * Beta schedules: linear, beta_t = beta_start + (beta_end - beta_start) t / (T - 1);
 * cosine (Nichol and Dhariwal, 2021), f(u) = cos((u + 0.008) / 1.008 * pi / 2)^2,
 * beta_t = min(1 - f((t + 1) / T) / f(t / T), 0.999). Every table is
 * computed in double; abar is the running product of the alphas.
 * The posterior q(x_{t-1} | x_t, x_0) has variance
 *     beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t),  abar_{-1} = 1,
 * and mean c0_t x_0 + ct_t x_t with c0_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t)
 * and ct_t = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t).
 *
 * Samplers start from x_T ~ N(0, I) in the caller's buffer and overwrite it
 * with the samples. x holds n rows of D values. The noise predictor is a
 * callback, so the samplers run with a network or with a formula (tests).
 */
#ifndef TG_MODELS_DDPM_DIFFUSION_H
#define TG_MODELS_DDPM_DIFFUSION_H

#include <stdbool.h>
#include <stdint.h>

#include "tapegrad.h"

typedef enum ddpm_beta_kind { DDPM_BETAS_LINEAR, DDPM_BETAS_COSINE } ddpm_beta_kind;

/* Per-step tables, each of T doubles. */
typedef struct ddpm_schedule {
    int T;
    double *betas;
    double *alphas;
    double *alphas_cumprod;        /* abar_t */
    double *alphas_cumprod_prev;   /* abar_{t-1}, 1 at t = 0 */
    double *posterior_variance;    /* beta~_t, 0 at t = 0 */
    double *posterior_mean_x0;     /* c0_t */
    double *posterior_mean_xt;     /* ct_t */
} ddpm_schedule;

/* Builds the tables for T steps. beta_start and beta_end are used by the
 * linear schedule only. Returns TG_ERR_INVALID for T < 2 or betas outside
 * (0, 1) or beta_start > beta_end, TG_ERR_NOMEM; on failure *s is zeroed. */
tg_status ddpm_schedule_init(ddpm_schedule *s, ddpm_beta_kind kind, int T, double beta_start,
                             double beta_end);

void ddpm_schedule_free(ddpm_schedule *s);

/* Writes x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise for n rows of D
 * values, row i at step t[i]. The two coefficients are rounded to tg_scalar
 * first, then the sum is formed in tg_scalar, as PyTorch's float32 path. */
void ddpm_q_sample(const ddpm_schedule *s, const tg_scalar *x0, const int32_t *t,
                   const tg_scalar *noise, int n, int D, tg_scalar *x_t);

/* Predicts the noise eps (n, D) in x (n, D), row i being at step t[i].
 * Returns TG_OK or an error with tg_last_error() set. */
typedef tg_status (*ddpm_predict_fn)(void *ctx, const tg_scalar *x, const int32_t *t, int n,
                                     tg_scalar *eps);

/* Called after each denoising step with the steps done and the total. */
typedef void (*ddpm_progress_fn)(void *ctx, int done, int total);

/* Variance of the ancestral DDPM step. */
typedef enum ddpm_variance {
    DDPM_VARIANCE_BETA,       /* sigma_t^2 = beta_t, as Ho et al. and the reference */
    DDPM_VARIANCE_POSTERIOR,  /* sigma_t^2 = beta~_t */
} ddpm_variance;

typedef struct ddpm_sampler {
    ddpm_predict_fn predict;
    void *predict_ctx;
    ddpm_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
    bool clip_x0;               /* clamp the predicted x_0 to [-1, 1] in every step */
} ddpm_sampler;

/* Writes the S timesteps DDIM visits, in increasing order: t_i = i * (T / S)
 * with integer division, so 0, 20, ..., 980 for T = 1000 and S = 50.
 * Returns TG_ERR_INVALID unless 1 <= S <= T. */
tg_status ddpm_ddim_timesteps(int T, int S, int32_t *timesteps);

/* Ancestral sampling over all T steps, from t = T-1 down to 0:
 *     x <- (x - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z
 * with z ~ N(0, I) drawn from rng (n * D values per step, row-major) and no
 * noise at t = 0, where the step returns the predicted x_0. With clip_x0 the
 * mean is the posterior mean of the clamped x_0 prediction instead. */
tg_status ddpm_sample_ddpm(const ddpm_schedule *s, const ddpm_sampler *sampler,
                           ddpm_variance variance, tg_scalar *x, int n, int D, tg_rng *rng);

/* DDIM (Song et al., 2021) over the S timesteps of ddpm_ddim_timesteps, from
 * the largest down: with abar = abar_t, abar' = abar of the next smaller
 * timestep (1 after the last),
 *     x0 = (x - sqrt(1 - abar) eps) / sqrt(abar)      (clamped with clip_x0;
 *                                                      eps then recomputed from it)
 *     sigma = eta sqrt((1 - abar') / (1 - abar)) sqrt(1 - abar / abar')
 *     x <- sqrt(abar') x0 + sqrt(1 - abar' - sigma^2) eps + sigma z
 * The last step returns x0. eta = 0 is deterministic and draws nothing. */
tg_status ddpm_sample_ddim(const ddpm_schedule *s, const ddpm_sampler *sampler, int S,
                           double eta, tg_scalar *x, int n, int D, tg_rng *rng);

#endif
