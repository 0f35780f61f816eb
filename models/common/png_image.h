/* PNG output for the programs under models/: a grid of grayscale images, and
 * a plot of 2-D points or of a 1-D histogram, written with libpng.
 *
 * Every function returns TG_OK, or an error with tg_last_error() naming the
 * path and the cause (TG_ERR_IO, TG_ERR_INVALID, TG_ERR_NOMEM). Each PNG is
 * written to "<path>.tmp.<pid>" in the same folder, flushed, synced and then
 * renamed over path, so a failed write leaves an earlier file at path
 * unchanged and removes the temporary file.
 */
#ifndef TG_MODELS_COMMON_PNG_IMAGE_H
#define TG_MODELS_COMMON_PNG_IMAGE_H

#include <stdint.h>

#include "tapegrad.h"

/* Writes an 8-bit grayscale PNG of width x height pixels, row-major. */
tg_status png_write_gray(const char *path, const uint8_t *pixels, int width, int height);

/* Writes `count` images of rows x cols values, row-major one after another,
 * as a grid with `columns` images per row (0: the ceiling of the square root
 * of count), without padding; unused cells are black. A value v maps to
 * 255 (v - low) / (high - low), clamped to [0, 255] and rounded. */
tg_status png_write_image_grid(const char *path, const tg_scalar *images, int count, int rows,
                               int cols, int columns, double low, double high);

/* Writes a size x size plot of points (count, dim): for dim 2 a white dot per
 * point on black, over the square bounding box of the points with a 5 %
 * margin; for dim 1 a histogram of 100 bins over the range of the values.
 * Non-finite values are left out. Returns TG_ERR_INVALID for another dim. */
tg_status png_write_points(const char *path, const tg_scalar *points, int count, int dim,
                           int size);

#endif
