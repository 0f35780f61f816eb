#define _POSIX_C_SOURCE 200809L
#include "png_image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HISTOGRAM_BINS 100

/* Destination of the libpng write callbacks: the temporary file and the errno
 * of its first failed write. */
typedef struct png_sink {
    FILE *file;
    int error;
} png_sink;

static void sink_write(png_structp png, png_bytep data, size_t length) {
    png_sink *sink = png_get_io_ptr(png);
    if (fwrite(data, 1, length, sink->file) != length) {
        sink->error = errno != 0 ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void sink_flush(png_structp png) {
    png_sink *sink = png_get_io_ptr(png);
    if (fflush(sink->file) != 0) {
        sink->error = errno != 0 ? errno : EIO;
        png_error(png, "flush failed");
    }
}

/* Encodes the image into sink->file. Returns 0, or -1 with sink->error set
 * when a write failed, -2 when libpng ran out of memory, or -3 on another
 * libpng error. */
static int encode_gray(png_sink *sink, const uint8_t *pixels, int width, int height) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        return -2;
    }
    /* libpng reports errors by longjmp to here. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return sink->error != 0 ? -1 : -3;
    }
    png_set_write_fn(png, sink, sink_write, sink_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) {
        png_write_row(png, pixels + (size_t)y * (size_t)width);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* Syncs the folder that contains path, so that a rename in it survives a power
 * loss. File systems that cannot sync folders (EINVAL) count as success. */
static int sync_folder(const char *path) {
    char folder[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(folder, sizeof folder, ".");
    } else if (slash == path) {
        snprintf(folder, sizeof folder, "/");
    } else {
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - path), path);
    }
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int synced = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return synced != 0 && err != EINVAL ? -1 : 0;
}

tg_status png_write_gray(const char *path, const uint8_t *pixels, int width, int height) {
    if (width < 1 || height < 1) {
        return tg_set_error(TG_ERR_INVALID, "png: invalid image size %d x %d for '%s'", width,
                            height, path);
    }
    size_t temp_size = strlen(path) + 32;
    char *temp_path = malloc(temp_size);
    if (temp_path == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "png: out of memory writing '%s'", path);
    }
    snprintf(temp_path, temp_size, "%s.tmp.%ld", path, (long)getpid());

    png_sink sink = {.file = fopen(temp_path, "wb"), .error = 0};
    if (sink.file == NULL) {
        tg_status status = tg_set_error(TG_ERR_IO, "cannot write '%s': creating temporary file "
                                        "'%s' failed: %s", path, temp_path, strerror(errno));
        free(temp_path);
        return status;
    }

    int encoded = encode_gray(&sink, pixels, width, height);
    const char *step = "writing";
    if (encoded == 0 && fflush(sink.file) != 0) {
        encoded = -1;
        sink.error = errno;
    }
    if (encoded == 0 && fsync(fileno(sink.file)) != 0) {
        encoded = -1;
        sink.error = errno;
        step = "syncing";
    }
    if (fclose(sink.file) != 0 && encoded == 0) {
        encoded = -1;
        sink.error = errno;
        step = "closing";
    }

    tg_status status = TG_OK;
    if (encoded == -2) {
        status = tg_set_error(TG_ERR_NOMEM, "png: out of memory writing '%s'", path);
    } else if (encoded == -3) {
        status = tg_set_error(TG_ERR_IO, "png: libpng failed to encode '%s'", path);
    } else if (encoded != 0) {
        status = tg_set_error(TG_ERR_IO, "cannot write '%s': %s temporary file '%s' failed: %s",
                              path, step, temp_path, strerror(sink.error));
    } else if (rename(temp_path, path) != 0) {
        status = tg_set_error(TG_ERR_IO, "cannot write '%s': renaming temporary file '%s' over "
                              "it failed: %s", path, temp_path, strerror(errno));
    } else if (sync_folder(path) != 0) {
        status = tg_set_error(TG_ERR_IO, "'%s' is in place, but syncing its folder failed: %s; "
                              "it may not survive a power loss", path, strerror(errno));
    }
    if (status != TG_OK) {
        remove(temp_path);  /* after a successful rename, there is nothing to remove */
    }

    free(temp_path);
    return status;
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
