/* Sample generation from a trained denoiser, with progress lines. */
#ifndef TG_MODELS_DDPM_SAMPLE_H
#define TG_MODELS_DDPM_SAMPLE_H

#include <stdio.h>

#include "denoiser.h"
#include "diffusion.h"

typedef struct ddpm_sample_options {
    bool ddim;              /* DDIM over ddim_steps, or ancestral DDPM over all T */
    int ddim_steps;
    double eta;             /* DDIM noise scale; 0 is deterministic */
    ddpm_variance variance; /* DDPM step variance */
    bool clip_x0;
    int count;              /* samples to draw */
    int batch;              /* samples per forward pass */
    uint64_t seed;
} ddpm_sample_options;

/* Draws options->count samples into out (count, D): for each batch, x_T from
 * N(0, I) and then the sampler, all from one generator seeded with seed.
 * Writes a progress line to log (NULL for none) every few seconds and at the
 * end of each batch. */
tg_status ddpm_generate(const ddpm_model *model, const ddpm_schedule *diffusion,
                        const ddpm_sample_options *options, tg_scalar *out, FILE *log);

#endif
