#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Seeds of the synthetic sets, fixed so that the data does not move with
 * --seed. */
#define SYNTHETIC_TRAIN_SEED 20240601u
#define SYNTHETIC_VAL_SEED 20240602u

#define MOONS_NOISE_STD 0.05
#define MIXTURE_COMPONENTS 8
#define MIXTURE_RADIUS 0.8
#define MIXTURE_STD 0.05

bool ddpm_data_is_synthetic(const char *spec) {
    return strcmp(spec, "moons") == 0 || strcmp(spec, "mixture") == 0 ||
           strcmp(spec, "gaussian") == 0;
}

static tg_status draw_synthetic(const char *spec, uint64_t seed, int n, tg_scalar *out) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    if (strcmp(spec, "moons") == 0) {
        return tg_synthetic_moons(&rng, (size_t)n, MOONS_NOISE_STD, out, NULL);
    }
    if (strcmp(spec, "mixture") == 0) {
        return tg_synthetic_gaussian_mixture(&rng, (size_t)n, MIXTURE_COMPONENTS, MIXTURE_RADIUS,
                                             MIXTURE_STD, out, NULL);
    }
    return tg_synthetic_gaussian_1d(&rng, (size_t)n, DDPM_GAUSSIAN_MEAN, DDPM_GAUSSIAN_STD, out);
}

static tg_status load_synthetic(ddpm_data *d, const char *spec, int val_count) {
    d->dim = strcmp(spec, "gaussian") == 0 ? 1 : 2;
    d->count = DDPM_SYNTHETIC_COUNT;
    d->val_count = val_count;
    d->points = malloc((size_t)d->count * (size_t)d->dim * sizeof *d->points);
    d->val = malloc((size_t)val_count * (size_t)d->dim * sizeof *d->val);
    if (d->points == NULL || d->val == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "out of memory for the '%s' data", spec);
    }
    tg_status status = draw_synthetic(spec, SYNTHETIC_TRAIN_SEED, d->count, d->points);
    if (status == TG_OK) {
        status = draw_synthetic(spec, SYNTHETIC_VAL_SEED, val_count, d->val);
    }
    return status;
}

static tg_status load_images(ddpm_data *d, const char *folder, int val_count) {
    struct stat st;
    if (stat(folder, &st) != 0) {
        return tg_set_error(TG_ERR_IO, "cannot open --data folder '%s': %s; pass a folder of "
                            "IDX files or a synthetic set (moons, mixture, gaussian)", folder,
                            strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return tg_set_error(TG_ERR_INVALID, "--data '%s' is not a folder; pass a folder of IDX "
                            "files or a synthetic set (moons, mixture, gaussian)", folder);
    }
    tg_status status = tg_idx_load_split(folder, "train", &d->images);
    if (status != TG_OK) {
        return status;
    }
    if (d->images.rows != d->images.cols) {
        return tg_set_error(TG_ERR_INVALID, "'%s': the images are %d x %d; the patch Transformer "
                            "and the sample grid need square images", folder, d->images.rows,
                            d->images.cols);
    }
    d->count = d->images.count;
    d->image_size = d->images.rows;
    d->dim = d->images.rows * d->images.cols;

    tg_idx_dataset test;
    status = tg_idx_load_split(folder, "t10k", &test);
    if (status != TG_OK) {
        return status;
    }
    if (test.rows != d->images.rows || test.cols != d->images.cols || test.count < val_count) {
        status = tg_set_error(TG_ERR_INVALID, "'%s': the test split has %d images of %d x %d; "
                              "validation needs %d of %d x %d (lower --val-count)", folder,
                              test.count, test.rows, test.cols, val_count, d->images.rows,
                              d->images.cols);
    } else {
        d->val_count = val_count;
        d->val = malloc((size_t)val_count * (size_t)d->dim * sizeof *d->val);
        if (d->val == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "out of memory for %d validation images",
                                  val_count);
        } else {
            tg_idx_pixels_to_scalars(test.pixels, (size_t)val_count * (size_t)d->dim, d->val);
        }
    }
    tg_idx_dataset_free(&test);
    return status;
}

tg_status ddpm_data_load(ddpm_data *data, const char *spec, int val_count) {
    memset(data, 0, sizeof *data);
    if (val_count < 1) {
        return tg_set_error(TG_ERR_INVALID, "invalid validation count %d; it must be at least 1",
                            val_count);
    }
    tg_status status = ddpm_data_is_synthetic(spec) ? load_synthetic(data, spec, val_count)
                                                    : load_images(data, spec, val_count);
    if (status != TG_OK) {
        ddpm_data_free(data);
    }
    return status;
}

void ddpm_data_gather(const ddpm_data *data, const size_t *indices, int n, tg_scalar *out) {
    size_t D = (size_t)data->dim;
    if (data->points != NULL) {
        for (int i = 0; i < n; i++) {
            memcpy(out + (size_t)i * D, data->points + indices[i] * D, D * sizeof *out);
        }
        return;
    }
    tg_idx_gather(&data->images, indices, n, out, NULL);
}

void ddpm_data_free(ddpm_data *data) {
    tg_idx_dataset_free(&data->images);
    free(data->points);
    free(data->val);
    memset(data, 0, sizeof *data);
}
