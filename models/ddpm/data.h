/* Training data of `ddpm`: Fashion-MNIST style IDX images, or a synthetic
 * set of points for fast runs with the MLP.
 *
 * A data spec is either a folder holding train-images-idx3-ubyte[.gz] and
 * t10k-images-idx3-ubyte[.gz] (with their label files), or the name of a
 * synthetic set:
 *   moons     2-D, two interleaved half circles, noise std 0.05
 *   mixture   2-D, 8 Gaussians of std 0.05 on a circle of radius 0.8
 *   gaussian  1-D, N(DDPM_GAUSSIAN_MEAN, DDPM_GAUSSIAN_STD^2)
 * Synthetic sets have DDPM_SYNTHETIC_COUNT training points drawn from a fixed
 * seed, so every run sees the same set. Images are scaled to [-1, 1].
 * The validation items are the first val_count test images, or val_count
 * points of the synthetic set drawn from another fixed seed.
 */
#ifndef TG_MODELS_DDPM_DATA_H
#define TG_MODELS_DDPM_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "tapegrad.h"

#define DDPM_SYNTHETIC_COUNT 8192
#define DDPM_GAUSSIAN_MEAN 0.5
#define DDPM_GAUSSIAN_STD 0.25

typedef struct ddpm_data {
    int count;                /* training items */
    int dim;                  /* D: values per item */
    int image_size;           /* side of a square image; 0 for points */
    tg_idx_dataset images;    /* image data; zeroed for synthetic sets */
    tg_scalar *points;        /* synthetic sets: (count, D) */
    tg_scalar *val;           /* (val_count, D) */
    int val_count;
} ddpm_data;

/* Returns true if spec names a synthetic set. */
bool ddpm_data_is_synthetic(const char *spec);

/* Loads the training items and val_count validation items of spec. Returns
 * TG_OK, TG_ERR_INVALID (non-square images, val_count larger than the test
 * split), or the errors of tg_idx_load_split. On failure *data is zeroed. */
tg_status ddpm_data_load(ddpm_data *data, const char *spec, int val_count);

/* Copies the items at indices into out (n, D). Every index must be below
 * data->count. */
void ddpm_data_gather(const ddpm_data *data, const size_t *indices, int n, tg_scalar *out);

void ddpm_data_free(ddpm_data *data);

#endif
