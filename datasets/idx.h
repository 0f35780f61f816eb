/* IDX files, the format of MNIST and Fashion-MNIST.
 *
 * An IDX file is a 4-byte magic number, then one big-endian uint32 size per
 * dimension, then the elements in row-major order. The magic number's bytes
 * are 0, 0, the element type (0x08 for unsigned bytes) and the number of
 * dimensions, so images (N, rows, cols) of uint8 have magic 0x00000803 and
 * labels (N) of uint8 have 0x00000801. Files may be gzip-compressed; zlib's
 * gzread reads compressed and plain files alike.
 *
 *     tg_idx_dataset train;
 *     tg_idx_load_split("/usr/share/datasets/fashion-mnist", "train", &train);
 *     ... tg_idx_gather(&train, indices, B, images, labels) per batch ...
 *     tg_idx_dataset_free(&train);
 *
 * Debian's dataset-fashion-mnist package installs Fashion-MNIST in the folder
 * above. Every function that can fail returns a tg_status and leaves a message
 * naming the file in tg_last_error().
 */
#ifndef TG_DATASETS_IDX_H
#define TG_DATASETS_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "../autograd/scalar.h"
#include "../autograd/status.h"

#define TG_IDX_MAGIC_IMAGES 0x00000803u  /* uint8, 3 dimensions */
#define TG_IDX_MAGIC_LABELS 0x00000801u  /* uint8, 1 dimension */

/* Images of an IDX file. */
typedef struct tg_idx_images {
    int count;        /* N */
    int rows;
    int cols;
    uint8_t *pixels;  /* (N, rows, cols), 0 to 255 */
} tg_idx_images;

/* Labels of an IDX file. */
typedef struct tg_idx_labels {
    int count;        /* N */
    uint8_t *labels;  /* (N) */
} tg_idx_labels;

/* Images with one label each. */
typedef struct tg_idx_dataset {
    int count;        /* N */
    int rows;
    int cols;
    uint8_t *pixels;  /* (N, rows, cols), 0 to 255 */
    uint8_t *labels;  /* (N) */
} tg_idx_dataset;

/* Reads an images file (magic 0x00000803), plain or gzip-compressed.
 * On success *images owns its pixels, which tg_idx_images_free frees.
 * Returns TG_ERR_IO if the file cannot be opened or read, or TG_ERR_NOMEM.
 * Returns TG_ERR_FORMAT for a wrong magic number (naming both values), element
 * type or dimension count, or a zero size. It does the same for truncated data
 * (naming the expected and actual bytes) and for data past the declared size.
 * On failure *images is zeroed. */
tg_status tg_idx_load_images(const char *path, tg_idx_images *images);

/* Reads a labels file (magic 0x00000801), as tg_idx_load_images. Free the
 * result with tg_idx_labels_free. */
tg_status tg_idx_load_labels(const char *path, tg_idx_labels *labels);

/* Frees the pixels and zeroes the struct. Accepts a zeroed struct. */
void tg_idx_images_free(tg_idx_images *images);

/* Frees the labels and zeroes the struct. Accepts a zeroed struct. */
void tg_idx_labels_free(tg_idx_labels *labels);

/* Reads an images file and its labels file. Returns the errors of the two
 * loaders, or TG_ERR_FORMAT naming both paths and counts if the files contain
 * different numbers of items. Free the result with tg_idx_dataset_free. */
tg_status tg_idx_load_pair(const char *images_path, const char *labels_path,
                           tg_idx_dataset *dataset);

/* Reads the split "train" or "t10k" from `folder`, which contains the files under
 * their standard names: <split>-images-idx3-ubyte and
 * <split>-labels-idx1-ubyte, each tried first with ".gz" appended and then
 * without. Returns TG_ERR_INVALID for another split name, TG_ERR_IO naming
 * both tried paths if neither exists, or the errors of tg_idx_load_pair. */
tg_status tg_idx_load_split(const char *folder, const char *split, tg_idx_dataset *dataset);

/* Frees the pixels and labels and zeroes the struct. Accepts a zeroed struct. */
void tg_idx_dataset_free(tg_idx_dataset *dataset);

/* Converts n pixels to values in [-1, 1] as pixel / 127.5 - 1, so 0 gives -1
 * and 255 gives 1 exactly. */
void tg_idx_pixels_to_scalars(const uint8_t *pixels, size_t n, tg_scalar *values);

/* Copies the items at `indices` into a batch: images (n, rows, cols) scaled
 * to [-1, 1] as tg_idx_pixels_to_scalars, and labels (n) as int32 (labels may
 * be NULL). Returns TG_ERR_INVALID naming the first index outside [0, count). */
tg_status tg_idx_gather(const tg_idx_dataset *dataset, const size_t *indices, int n,
                        tg_scalar *images, int32_t *labels);

#endif
