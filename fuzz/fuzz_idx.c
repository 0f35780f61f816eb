/* Fuzz target for the IDX reader (datasets/idx.h).
 *
 * Each input is loaded with tg_idx_load_images and tg_idx_load_labels, first
 * as given (read as gzip if it starts with the gzip magic bytes 1f 8b, else
 * as a plain file), then compressed with gzip by the driver. It checks that
 *   - a failure is a known status with a message and leaves the struct
 *     zeroed;
 *   - a plain input loads exactly when this file's own reading of the header
 *     says it is valid, and then with the header's sizes and the bytes after
 *     the header;
 *   - the gzip-compressed copy of a plain input gives the same status and
 *     the same elements.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "datasets/idx.h"
#include "fuzz_util.h"

/* The result of one load, images or labels, for comparison. */
typedef struct idx_result {
    tg_status status;
    int dims[3];
    uint8_t *elements;  /* owned, NULL on failure */
    size_t bytes;
} idx_result;

static uint32_t read_be32(const uint8_t *b) {
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Decides independently of idx.c whether `data` is a valid uint8 IDX file of
 * ndim dimensions (magic 0x0000080<ndim>), and stores its sizes in dims. */
static bool idx_is_valid(const uint8_t *data, size_t size, int ndim, int dims[3]) {
    size_t header = 4 + 4 * (size_t)ndim;
    if (size < header || read_be32(data) != (0x0800u | (uint32_t)ndim)) {
        return false;
    }
    size_t elements = 1;
    for (int d = 0; d < ndim; d++) {
        uint32_t extent = read_be32(data + 4 + 4 * d);
        if (extent < 1 || extent > INT_MAX) {
            return false;
        }
        dims[d] = (int)extent;
        /* Anything beyond the input's own size cannot be complete. */
        if (elements > size / extent) {
            return false;
        }
        elements *= extent;
    }
    return size - header == elements;
}

static idx_result load(const char *path, bool images) {
    idx_result result = {0};
    if (images) {
        tg_idx_images loaded;
        result.status = tg_idx_load_images(path, &loaded);
        if (result.status == TG_OK) {
            result.dims[0] = loaded.count;
            result.dims[1] = loaded.rows;
            result.dims[2] = loaded.cols;
            result.elements = loaded.pixels;
            result.bytes = (size_t)loaded.count * (size_t)loaded.rows * (size_t)loaded.cols;
        } else {
            FUZZ_CHECK(loaded.count == 0 && loaded.rows == 0 && loaded.cols == 0 &&
                           loaded.pixels == NULL,
                       "failed tg_idx_load_images left count %d, rows %d, cols %d, pixels %p",
                       loaded.count, loaded.rows, loaded.cols, (void *)loaded.pixels);
        }
    } else {
        tg_idx_labels loaded;
        result.status = tg_idx_load_labels(path, &loaded);
        if (result.status == TG_OK) {
            result.dims[0] = loaded.count;
            result.elements = loaded.labels;
            result.bytes = (size_t)loaded.count;
        } else {
            FUZZ_CHECK(loaded.count == 0 && loaded.labels == NULL,
                       "failed tg_idx_load_labels left count %d, labels %p", loaded.count,
                       (void *)loaded.labels);
        }
    }
    if (result.status != TG_OK) {
        fuzz_check_error(result.status, images ? "tg_idx_load_images" : "tg_idx_load_labels");
        FUZZ_CHECK(strstr(tg_last_error(), path) != NULL, "the message does not name '%s': %s",
                   path, tg_last_error());
    } else {
        FUZZ_CHECK(result.elements != NULL, "a successful load returned no elements");
    }
    return result;
}

/* Checks a load of the plain input against idx_is_valid. */
static void check_plain(const idx_result *result, const uint8_t *data, size_t size, int ndim) {
    int dims[3] = {0};
    bool valid = idx_is_valid(data, size, ndim, dims);
    FUZZ_CHECK(valid == (result->status == TG_OK),
               "a %zu-byte plain input with %d dimensions is %s but loading returned %s: %s",
               size, ndim, valid ? "valid" : "invalid", tg_status_name(result->status),
               result->status == TG_OK ? "" : tg_last_error());
    if (!valid) {
        return;
    }
    for (int d = 0; d < ndim; d++) {
        FUZZ_CHECK(result->dims[d] == dims[d], "dimension %d is %d, the header says %d", d,
                   result->dims[d], dims[d]);
    }
    size_t header = 4 + 4 * (size_t)ndim;
    FUZZ_CHECK(result->bytes == size - header && memcmp(result->elements, data + header,
                                                        result->bytes) == 0,
               "the %zu loaded elements differ from the file's %zu", result->bytes,
               size - header);
}

static void check_same(const idx_result *plain, const idx_result *gzipped) {
    FUZZ_CHECK(plain->status == gzipped->status, "plain input gives %s, its gzip copy %s",
               tg_status_name(plain->status), tg_status_name(gzipped->status));
    if (plain->status != TG_OK) {
        return;
    }
    FUZZ_CHECK(memcmp(plain->dims, gzipped->dims, sizeof plain->dims) == 0 &&
                   plain->bytes == gzipped->bytes &&
                   memcmp(plain->elements, gzipped->elements, plain->bytes) == 0,
               "the gzip copy loads different sizes or elements");
}

/* Compresses data into a new gzip stream; *out_size receives its length. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *out_size) {
    z_stream stream = {0};
    FUZZ_CHECK(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               "deflateInit2 failed");
    size_t capacity = deflateBound(&stream, (uLong)size);
    uint8_t *out = malloc(capacity);
    FUZZ_CHECK(out != NULL, "out of memory for %zu bytes", capacity);
    stream.next_in = (Bytef *)(uintptr_t)data;
    stream.avail_in = (uInt)size;
    stream.next_out = out;
    stream.avail_out = (uInt)capacity;
    FUZZ_CHECK(deflate(&stream, Z_FINISH) == Z_STREAM_END, "deflate did not finish");
    *out_size = capacity - stream.avail_out;
    deflateEnd(&stream);
    return out;
}

tg_status fuzz_idx_input(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_scratch("idx", data, size);
    idx_result images = load(path, true);
    idx_result labels = load(path, false);
    bool is_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!is_gzip) {
        check_plain(&images, data, size, 3);
        check_plain(&labels, data, size, 1);

        size_t gz_size = 0;
        uint8_t *gz = gzip_bytes(data, size, &gz_size);
        const char *gz_path = fuzz_write_scratch("idx-gz", gz, gz_size);
        free(gz);
        idx_result gz_images = load(gz_path, true);
        idx_result gz_labels = load(gz_path, false);
        check_same(&images, &gz_images);
        check_same(&labels, &gz_labels);
        free(gz_images.elements);
        free(gz_labels.elements);
    }
    free(images.elements);
    free(labels.elements);
    return images.status != TG_OK ? images.status : labels.status;
}

#ifdef TG_FUZZ_ENTRY_POINT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_idx_input(data, size);
    return 0;
}
#endif
