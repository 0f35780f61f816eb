#include "png_image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTOGRAM_BINS 100

tg_status png_write_gray(const char *path, const uint8_t *pixels, int width, int height) {
    if (width < 1 || height < 1) {
        return tg_set_error(TG_ERR_INVALID, "png: invalid image size %d x %d for '%s'", width,
                            height, path);
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return tg_set_error(TG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return tg_set_error(TG_ERR_NOMEM, "png: out of memory writing '%s'", path);
    }
    /* libpng reports errors by longjmp to here. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return tg_set_error(TG_ERR_IO, "png: writing '%s' failed", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) {
        png_write_row(png, pixels + (size_t)y * (size_t)width);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        return tg_set_error(TG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    return TG_OK;
}

static uint8_t to_byte(double v, double low, double high) {
    double scaled = 255.0 * (v - low) / (high - low);
    if (!(scaled > 0.0)) {
        return 0;
    }
    return scaled >= 255.0 ? 255 : (uint8_t)lround(scaled);
}

tg_status png_write_image_grid(const char *path, const tg_scalar *images, int count, int rows,
                               int cols, int columns, double low, double high) {
    if (count < 1 || rows < 1 || cols < 1 || !(high > low)) {
        return tg_set_error(TG_ERR_INVALID, "png: invalid grid of %d images of %d x %d over "
                            "[%g, %g] for '%s'", count, rows, cols, low, high, path);
    }
    if (columns < 1) {
        columns = (int)ceil(sqrt((double)count));
    }
    int grid_rows = (count + columns - 1) / columns;
    int width = columns * cols;
    int height = grid_rows * rows;
    uint8_t *pixels = calloc((size_t)width * (size_t)height, 1);
    if (pixels == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "png: out of memory for a %d x %d grid", width,
                            height);
    }
    for (int i = 0; i < count; i++) {
        int top = (i / columns) * rows;
        int left = (i % columns) * cols;
        const tg_scalar *image = images + (size_t)i * (size_t)rows * (size_t)cols;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                pixels[(size_t)(top + r) * (size_t)width + (size_t)(left + c)] =
                    to_byte((double)image[r * cols + c], low, high);
            }
        }
    }
    tg_status status = png_write_gray(path, pixels, width, height);
    free(pixels);
    return status;
}

static void draw_scatter(uint8_t *pixels, int size, const tg_scalar *points, int count) {
    double lo = HUGE_VAL;
    double hi = -HUGE_VAL;
    for (int i = 0; i < 2 * count; i++) {
        if (isfinite((double)points[i])) {
            lo = fmin(lo, (double)points[i]);
            hi = fmax(hi, (double)points[i]);
        }
    }
    if (!(hi >= lo)) {
        return;  /* no finite point */
    }
    double margin = 0.05 * (hi - lo) + 1e-9;
    lo -= margin;
    hi += margin;
    for (int i = 0; i < count; i++) {
        if (!isfinite((double)points[2 * i]) || !isfinite((double)points[2 * i + 1])) {
            continue;
        }
        int x = (int)(((double)points[2 * i] - lo) / (hi - lo) * (size - 1));
        int y = (int)((hi - (double)points[2 * i + 1]) / (hi - lo) * (size - 1));
        if (x >= 0 && x < size && y >= 0 && y < size) {
            pixels[(size_t)y * (size_t)size + (size_t)x] = 255;
        }
    }
}

static void draw_histogram(uint8_t *pixels, int size, const tg_scalar *values, int count) {
    double lo = HUGE_VAL;
    double hi = -HUGE_VAL;
    for (int i = 0; i < count; i++) {
        if (isfinite((double)values[i])) {
            lo = fmin(lo, (double)values[i]);
            hi = fmax(hi, (double)values[i]);
        }
    }
    if (!(hi >= lo)) {
        return;  /* no finite value */
    }
    hi += 1e-9;
    int bins[HISTOGRAM_BINS] = {0};
    int max_bin = 1;
    for (int i = 0; i < count; i++) {
        if (!isfinite((double)values[i])) {
            continue;
        }
        int b = (int)(((double)values[i] - lo) / (hi - lo) * HISTOGRAM_BINS);
        b = b < 0 ? 0 : (b >= HISTOGRAM_BINS ? HISTOGRAM_BINS - 1 : b);
        bins[b]++;
        max_bin = bins[b] > max_bin ? bins[b] : max_bin;
    }
    for (int x = 0; x < size; x++) {
        int b = x * HISTOGRAM_BINS / size;
        int bar = (int)((double)bins[b] / max_bin * (size - 1));
        for (int y = size - 1 - bar; y < size; y++) {
            pixels[(size_t)y * (size_t)size + (size_t)x] = 255;
        }
    }
}

tg_status png_write_points(const char *path, const tg_scalar *points, int count, int dim,
                           int size) {
    if ((dim != 1 && dim != 2) || count < 1 || size < 2) {
        return tg_set_error(TG_ERR_INVALID, "png: cannot plot %d points of dimension %d at size "
                            "%d for '%s'; plots take 1-D or 2-D points", count, dim, size, path);
    }
    uint8_t *pixels = calloc((size_t)size * (size_t)size, 1);
    if (pixels == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "png: out of memory for a %d x %d plot", size, size);
    }
    if (dim == 2) {
        draw_scatter(pixels, size, points, count);
    } else {
        draw_histogram(pixels, size, points, count);
    }
    tg_status status = png_write_gray(path, pixels, size, size);
    free(pixels);
    return status;
}
