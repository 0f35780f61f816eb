/* IDX reading through zlib's gz* calls, which pass plain files through
 * unchanged. The element buffer grows while it fills instead of taking the
 * header's size on trust, so a corrupt header that declares a huge size costs
 * at most twice the bytes the file really contains before it is reported.
 */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08u
#define IDX_MAX_DIMS 3
#define FIRST_CHUNK_BYTES ((size_t)1 << 24)
#define GZ_BUFFER_BYTES (1u << 17)

/* What a loader expects of a file. */
typedef struct idx_expect {
    uint32_t magic;
    int ndim;
    const char *what;  /* "images" or "labels", for messages */
} idx_expect;

static const idx_expect expect_images = {TG_IDX_MAGIC_IMAGES, 3, "images"};
static const idx_expect expect_labels = {TG_IDX_MAGIC_LABELS, 1, "labels"};

static const char *type_name(unsigned type) {
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return "not an IDX type";
}

static uint32_t read_be32(const unsigned char *b) {
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Reads until `bytes` bytes arrived or the data ended; *got counts them. */
static tg_status read_bytes(gzFile file, const char *path, void *buf, size_t bytes, size_t *got) {
    unsigned char *out = buf;
    size_t total = 0;
    while (total < bytes) {
        size_t want = bytes - total;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int n = gzread(file, out + total, chunk);
        if (n < 0) {
            int errnum;
            const char *message = gzerror(file, &errnum);
            if (errnum == Z_ERRNO) {
                return tg_set_error(TG_ERR_IO, "idx '%s': reading failed: %s", path,
                                    strerror(errno));
            }
            /* zlib starts its message with the path; the message has it already. */
            size_t path_bytes = strlen(path);
            if (strncmp(message, path, path_bytes) == 0 && message[path_bytes] == ':') {
                message += path_bytes + 1 + (message[path_bytes + 1] == ' ');
            }
            return tg_set_error(TG_ERR_FORMAT, "idx '%s': corrupt gzip data (%s); the file is "
                                "damaged, fetch it again", path, message);
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
    }
    *got = total;
    return TG_OK;
}

/* Says why data ended early: a gzip stream cut off, or a plain short file. */
static const char *early_end_note(gzFile file) {
    int errnum;
    gzerror(file, &errnum);
    return errnum == Z_BUF_ERROR ? " (the gzip stream ends early)" : "";
}

/* Reads and checks the magic number and the sizes. */
static tg_status read_header(gzFile file, const char *path, const idx_expect *expect,
                             int dims[IDX_MAX_DIMS]) {
    unsigned char header[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    tg_status status = read_bytes(file, path, header, 4, &got);
    if (status != TG_OK) {
        return status;
    }
    if (got < 4) {
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': the file ends after %zu bytes, before the "
                            "4-byte magic number; the file is truncated or not an IDX file",
                            path, got);
    }
    uint32_t magic = read_be32(header);
    unsigned type = (magic >> 8) & 0xFFu;
    int ndim = (int)(magic & 0xFFu);
    if ((magic >> 16) != 0) {
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': magic number 0x%08x, expected 0x%08x "
                            "(%s); the file is not an IDX file, or is compressed with something "
                            "other than gzip", path, (unsigned)magic, (unsigned)expect->magic,
                            expect->what);
    }
    if (type != IDX_TYPE_UBYTE) {
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': magic number 0x%08x, expected 0x%08x "
                            "(%s): element type 0x%02x (%s) is not 0x08 (unsigned byte)", path,
                            (unsigned)magic, (unsigned)expect->magic, expect->what, type,
                            type_name(type));
    }
    if (ndim != expect->ndim) {
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': magic number 0x%08x, expected 0x%08x "
                            "(%s): the file has %d dimension%s instead of %d; check that the "
                            "images and labels files are not swapped", path, (unsigned)magic,
                            (unsigned)expect->magic, expect->what, ndim, ndim == 1 ? "" : "s",
                            expect->ndim);
    }

    size_t size_bytes = 4 * (size_t)ndim;
    status = read_bytes(file, path, header + 4, size_bytes, &got);
    if (status != TG_OK) {
        return status;
    }
    if (got < size_bytes) {
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': the file ends %zu bytes into the %zu bytes "
                            "of sizes after the magic number%s; the file is truncated", path, got,
                            size_bytes, early_end_note(file));
    }
    for (int d = 0; d < ndim; d++) {
        uint32_t size = read_be32(header + 4 + 4 * d);
        if (size < 1 || size > INT_MAX) {
            return tg_set_error(TG_ERR_FORMAT, "idx '%s': dimension %d has size %u; expected 1 "
                                "to %d", path, d, (unsigned)size, INT_MAX);
        }
        dims[d] = (int)size;
    }
    return TG_OK;
}

/* Formats dims as "3 x 28 x 28" for messages. */
static void format_dims(char *buf, size_t buf_size, int ndim, const int *dims) {
    size_t length = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && length < buf_size; d++) {
        length += (size_t)snprintf(buf + length, buf_size - length, "%s%d", d > 0 ? " x " : "",
                                   dims[d]);
    }
}

/* Reads the elements that the header declares, and checks that nothing
 * follows them. */
static tg_status read_elements(gzFile file, const char *path, int ndim, const int *dims,
                               uint8_t **data) {
    char shape[64];
    format_dims(shape, sizeof shape, ndim, dims);
    size_t expected = 1;
    for (int d = 0; d < ndim; d++) {
        if (expected > SIZE_MAX / (size_t)dims[d]) {
            return tg_set_error(TG_ERR_FORMAT, "idx '%s': the sizes %s overflow a byte count; the "
                                "header is corrupt", path, shape);
        }
        expected *= (size_t)dims[d];
    }

    size_t capacity = expected < FIRST_CHUNK_BYTES ? expected : FIRST_CHUNK_BYTES;
    uint8_t *buffer = malloc(capacity);
    size_t total = 0;
    while (buffer != NULL) {
        size_t got;
        tg_status status = read_bytes(file, path, buffer + total, capacity - total, &got);
        if (status != TG_OK) {
            free(buffer);
            return status;
        }
        total += got;
        if (total < capacity || total == expected) {
            break;
        }
        size_t grown_capacity = capacity > expected / 2 ? expected : capacity * 2;
        uint8_t *grown = realloc(buffer, grown_capacity);
        if (grown == NULL) {
            free(buffer);
            buffer = NULL;
        } else {
            buffer = grown;
            capacity = grown_capacity;
        }
    }
    if (buffer == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "idx '%s': out of memory reading %s = %zu bytes", path,
                            shape, expected);
    }
    if (total < expected) {
        const char *note = early_end_note(file);
        free(buffer);
        return tg_set_error(TG_ERR_FORMAT, "idx '%s': truncated data: the header declares %s = "
                            "%zu bytes of elements but only %zu follow%s; the file is "
                            "incomplete, fetch it again", path, shape, expected, total, note);
    }

    unsigned char extra;
    size_t got;
    tg_status status = read_bytes(file, path, &extra, 1, &got);
    if (status == TG_OK && got > 0) {
        status = tg_set_error(TG_ERR_FORMAT, "idx '%s': more data follows the %s = %zu bytes of "
                              "elements that the header declares; the file is corrupt", path,
                              shape, expected);
    }
    if (status != TG_OK) {
        free(buffer);
        return status;
    }
    *data = buffer;
    return TG_OK;
}

static tg_status read_idx(const char *path, const idx_expect *expect, int dims[IDX_MAX_DIMS],
                          uint8_t **data) {
    errno = 0;
    gzFile file = gzopen(path, "rb");
    if (file == NULL) {
        if (errno == 0) {
            return tg_set_error(TG_ERR_NOMEM, "idx '%s': out of memory opening the file", path);
        }
        return tg_set_error(TG_ERR_IO, "idx: cannot open %s file '%s': %s; check the path",
                            expect->what, path, strerror(errno));
    }
    gzbuffer(file, GZ_BUFFER_BYTES);
    tg_status status = read_header(file, path, expect, dims);
    if (status == TG_OK) {
        status = read_elements(file, path, expect->ndim, dims, data);
    }
    gzclose(file);
    return status;
}

tg_status tg_idx_load_images(const char *path, tg_idx_images *images) {
    memset(images, 0, sizeof *images);
    int dims[IDX_MAX_DIMS];
    uint8_t *pixels;
    tg_status status = read_idx(path, &expect_images, dims, &pixels);
    if (status != TG_OK) {
        return status;
    }
    *images = (tg_idx_images){dims[0], dims[1], dims[2], pixels};
    return TG_OK;
}

tg_status tg_idx_load_labels(const char *path, tg_idx_labels *labels) {
    memset(labels, 0, sizeof *labels);
    int dims[IDX_MAX_DIMS];
    uint8_t *values;
    tg_status status = read_idx(path, &expect_labels, dims, &values);
    if (status != TG_OK) {
        return status;
    }
    *labels = (tg_idx_labels){dims[0], values};
    return TG_OK;
}

void tg_idx_images_free(tg_idx_images *images) {
    free(images->pixels);
    memset(images, 0, sizeof *images);
}

void tg_idx_labels_free(tg_idx_labels *labels) {
    free(labels->labels);
    memset(labels, 0, sizeof *labels);
}

tg_status tg_idx_load_pair(const char *images_path, const char *labels_path,
                           tg_idx_dataset *dataset) {
    memset(dataset, 0, sizeof *dataset);
    tg_idx_images images;
    tg_idx_labels labels;
    tg_status status = tg_idx_load_images(images_path, &images);
    if (status != TG_OK) {
        return status;
    }
    status = tg_idx_load_labels(labels_path, &labels);
    if (status != TG_OK) {
        tg_idx_images_free(&images);
        return status;
    }
    if (images.count != labels.count) {
        status = tg_set_error(TG_ERR_FORMAT, "idx: '%s' contains %d images but '%s' contains %d labels; "
                              "pass the images and labels files of the same split", images_path,
                              images.count, labels_path, labels.count);
        tg_idx_images_free(&images);
        tg_idx_labels_free(&labels);
        return status;
    }
    *dataset = (tg_idx_dataset){images.count, images.rows, images.cols, images.pixels,
                                labels.labels};
    return TG_OK;
}

/* Finds "<folder>/<name>.gz" or else "<folder>/<name>"; on success *path is a
 * new string the caller frees. */
static tg_status find_split_file(const char *folder, const char *name, char **path) {
    /* An empty folder means the working directory. */
    size_t folder_bytes = strlen(folder);
    const char *separator = folder_bytes == 0 || folder[folder_bytes - 1] == '/' ? "" : "/";
    size_t bytes = folder_bytes + strlen(separator) + strlen(name) + sizeof ".gz";
    char *gz_path = malloc(bytes);
    char *plain_path = malloc(bytes);
    if (gz_path == NULL || plain_path == NULL) {
        free(gz_path);
        free(plain_path);
        return tg_set_error(TG_ERR_NOMEM, "idx split: out of memory");
    }
    snprintf(gz_path, bytes, "%s%s%s.gz", folder, separator, name);
    snprintf(plain_path, bytes, "%s%s%s", folder, separator, name);

    const char *candidates[2] = {gz_path, plain_path};
    for (int i = 0; i < 2; i++) {
        FILE *file = fopen(candidates[i], "rb");
        if (file != NULL) {
            fclose(file);
            *path = i == 0 ? gz_path : plain_path;
            free(i == 0 ? plain_path : gz_path);
            return TG_OK;
        }
        if (errno != ENOENT) {
            tg_status status = tg_set_error(TG_ERR_IO, "idx split: cannot open '%s': %s",
                                            candidates[i], strerror(errno));
            free(gz_path);
            free(plain_path);
            return status;
        }
    }
    tg_status status = tg_set_error(TG_ERR_IO, "idx split: neither '%s' nor '%s' exists; pass "
                                    "the folder that contains the MNIST or Fashion-MNIST files "
                                    "(Debian's dataset-fashion-mnist installs them in "
                                    "/usr/share/datasets/fashion-mnist)", gz_path, plain_path);
    free(gz_path);
    free(plain_path);
    return status;
}

tg_status tg_idx_load_split(const char *folder, const char *split, tg_idx_dataset *dataset) {
    memset(dataset, 0, sizeof *dataset);
    if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0) {
        return tg_set_error(TG_ERR_INVALID, "idx split: unknown split '%s'; use \"train\" or "
                            "\"t10k\"", split);
    }
    char images_name[32];
    char labels_name[32];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", split);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", split);

    char *images_path = NULL;
    char *labels_path = NULL;
    tg_status status = find_split_file(folder, images_name, &images_path);
    if (status == TG_OK) {
        status = find_split_file(folder, labels_name, &labels_path);
    }
    if (status == TG_OK) {
        status = tg_idx_load_pair(images_path, labels_path, dataset);
    }
    free(images_path);
    free(labels_path);
    return status;
}

void tg_idx_dataset_free(tg_idx_dataset *dataset) {
    free(dataset->pixels);
    free(dataset->labels);
    memset(dataset, 0, sizeof *dataset);
}

void tg_idx_pixels_to_scalars(const uint8_t *pixels, size_t n, tg_scalar *values) {
    for (size_t i = 0; i < n; i++) {
        values[i] = (tg_scalar)(pixels[i] / 127.5 - 1.0);
    }
}

tg_status tg_idx_gather(const tg_idx_dataset *dataset, const size_t *indices, int n,
                        tg_scalar *images, int32_t *labels) {
    size_t image_size = (size_t)dataset->rows * (size_t)dataset->cols;
    for (int b = 0; b < n; b++) {
        if (indices[b] >= (size_t)dataset->count) {
            return tg_set_error(TG_ERR_INVALID, "idx gather: index %zu at batch position %d is "
                                "outside [0, %d)", indices[b], b, dataset->count);
        }
    }
    for (int b = 0; b < n; b++) {
        tg_idx_pixels_to_scalars(dataset->pixels + indices[b] * image_size, image_size,
                                 images + (size_t)b * image_size);
        if (labels != NULL) {
            labels[b] = dataset->labels[indices[b]];
        }
    }
    return TG_OK;
}
