/* Checkpoint reader: opens a checkpoint, checks that it is one of ours and
 * for this model, and reads values back with type and shape checks.
 *
 * Every message starts with "checkpoint '<path>'" and names the group,
 * dataset or attribute and the values that differ.
 */
#define _POSIX_C_SOURCE 200809L

#include "checkpoint.h"
#include "checkpoint_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TG_SCALAR_DOUBLE
#define SCALAR_MEMORY_TYPE H5T_NATIVE_DOUBLE
#else
#define SCALAR_MEMORY_TYPE H5T_NATIVE_FLOAT
#endif

struct tg_checkpoint_reader {
    char *path;
    hid_t file;
    int format_version;
    int64_t step;
    char model_kind[TG_CHECKPOINT_KIND_MAX];
};

/* ---- Opening ------------------------------------------------------------ */

/* The first 8 bytes of an HDF5 file (without a user block). */
static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* Checks that path is a readable regular file that starts like HDF5, with
 * the messages a user needs when it is not. */
static tg_status check_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return tg_set_error(TG_ERR_IO, "cannot open checkpoint '%s': %s; check the path",
                            path, strerror(errno));
    }

    struct stat info;
    if (fstat(fd, &info) != 0) {
        int err = errno;
        close(fd);
        return tg_set_error(TG_ERR_IO, "cannot open checkpoint '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return tg_set_error(TG_ERR_IO, "cannot open checkpoint '%s': it is %s, not a regular "
                            "file; pass the path of a checkpoint file such as ckpt-best.h5",
                            path, S_ISDIR(info.st_mode) ? "a folder" : "a special file");
    }

    unsigned char head[sizeof hdf5_signature];
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n == (ssize_t)sizeof head && memcmp(head, hdf5_signature, sizeof head) == 0) {
        return TG_OK;
    }
    /* HDF5 also looks for its signature after a user block at 512, 1024, ...
     * bytes; tapegrad never writes one, but a file edited by other tools may
     * have one. */
    if (n >= 0 && H5Fis_hdf5(path) > 0) {
        return TG_OK;
    }
    H5Eclear2(H5E_DEFAULT);

    if (info.st_size == 0) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' is empty (0 bytes), not an HDF5 "
                            "file; the save that created it did not finish", path);
    }
    return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' is not an HDF5 file (%lld bytes without "
                        "the HDF5 signature); pass a checkpoint written by tapegrad (charlm train or ddpm train)", path,
                        (long long)info.st_size);
}

static hid_t open_hdf5(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
    /* Saves rename whole files into place and never write to an open one,
     * so the reader needs no lock, and file systems without locks still
     * work. */
    H5Pset_file_locking(fapl, 0, 1);
#endif
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    H5Pclose(fapl);
    if (file < 0) {
        if (strstr(detail, "truncated") != NULL) {
            tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' is truncated (HDF5: %s); the save that "
                         "wrote it did not finish, so use an earlier checkpoint", path, detail);
        } else {
            tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' is damaged or truncated: HDF5 cannot "
                         "open it (%s)", path, detail);
        }
    }
    return file;
}

/* Reads a root string attribute that open needs, such as "format". */
static tg_status read_root_string(tg_checkpoint_reader *r, const char *name, char *buf,
                                  size_t buf_size) {
    if (H5Aexists(r->file, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' is an HDF5 file but not a tapegrad "
                            "checkpoint: it has no root attribute '%s'", r->path, name);
    }
    return tg_checkpoint_read_attr_string(r, NULL, name, buf, buf_size);
}

static tg_status check_root(tg_checkpoint_reader *r, const char *expected_model_kind) {
    char format[64];
    tg_status status = read_root_string(r, "format", format, sizeof format);
    if (status != TG_OK) {
        return status;
    }
    if (strcmp(format, TG_CHECKPOINT_FORMAT) != 0) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has format '%s', expected '%s'; it "
                            "was not written by tapegrad", r->path, format,
                            TG_CHECKPOINT_FORMAT);
    }
    int64_t version;
    status = tg_checkpoint_read_attr_int(r, NULL, "format_version", &version);
    if (status != TG_OK) {
        return status;
    }
    if (version > TG_CHECKPOINT_FORMAT_VERSION) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has format version %" PRId64
                            ", newer than version %d that this build reads; update tapegrad",
                            r->path, version, TG_CHECKPOINT_FORMAT_VERSION);
    }
    if (version < 1) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has invalid format version %" PRId64
                            "; versions start at 1", r->path, version);
    }
    r->format_version = (int)version;

    status = read_root_string(r, "model_kind", r->model_kind, sizeof r->model_kind);
    if (status != TG_OK) {
        return status;
    }
    if (expected_model_kind != NULL && strcmp(r->model_kind, expected_model_kind) != 0) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' holds a '%s' model, expected '%s'; "
                            "pass a checkpoint saved by the same program", r->path,
                            r->model_kind, expected_model_kind);
    }
    return tg_checkpoint_read_attr_int(r, NULL, "step", &r->step);
}

tg_checkpoint_reader *tg_checkpoint_open(const char *path, const char *expected_model_kind,
                                         tg_status *status) {
    tg__hdf5_quiet();
    tg_status dummy;
    if (status == NULL) {
        status = &dummy;
    }
    if (path == NULL || path[0] == '\0') {
        *status = tg_set_error(TG_ERR_INVALID, "tg_checkpoint_open: the path is empty");
        return NULL;
    }
    *status = check_file(path);
    if (*status != TG_OK) {
        return NULL;
    }
    tg_checkpoint_reader *r = calloc(1, sizeof *r);
    char *path_copy = strdup(path);
    if (r == NULL || path_copy == NULL) {
        free(r);
        free(path_copy);
        *status = tg_set_error(TG_ERR_NOMEM, "cannot open checkpoint '%s': out of memory", path);
        return NULL;
    }
    r->path = path_copy;
    r->file = open_hdf5(path);
    if (r->file < 0) {
        *status = TG_ERR_FORMAT;
        free(r->path);
        free(r);
        return NULL;
    }
    *status = check_root(r, expected_model_kind);
    if (*status != TG_OK) {
        tg_checkpoint_close(r);
        return NULL;
    }
    return r;
}

void tg_checkpoint_close(tg_checkpoint_reader *r) {
    if (r == NULL) {
        return;
    }
    tg__hdf5_quiet();
    H5Fclose(r->file);
    free(r->path);
    free(r);
}

int64_t tg_checkpoint_step(const tg_checkpoint_reader *r) {
    return r->step;
}

int tg_checkpoint_format_version(const tg_checkpoint_reader *r) {
    return r->format_version;
}

const char *tg_checkpoint_model_kind(const tg_checkpoint_reader *r) {
    return r->model_kind;
}

/* Names an HDF5 link type for messages, with its article. */
static const char *link_type_name(H5L_type_t type) {
    switch (type) {
    case H5L_TYPE_HARD:
        return "a hard";
    case H5L_TYPE_SOFT:
        return "a soft";
    case H5L_TYPE_EXTERNAL:
        return "an external";
    default:
        return "a user-defined";
    }
}

/* Returns TG_OK if every component of `path` that exists is a hard link.
 * HDF5 follows soft and external links when it opens a path, and an external
 * link can name any file on the system, including a FIFO whose open() blocks
 * forever. tapegrad writes neither kind, so the reader refuses both. A
 * missing component is left for the caller to report. */
static tg_status check_hard_links(const tg_checkpoint_reader *r, const char *path) {
    size_t len = path != NULL ? strlen(path) : 0;
    char prefix[TG__CHECKPOINT_PATH_MAX];
    if (len >= sizeof prefix || strcmp(tg__group_label(path), "/") == 0) {
        return TG_OK;
    }
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') {
            continue;
        }
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        /* The components before this one are hard links, so these calls
         * follow no soft or external link. */
        H5L_info_t info;
        if (H5Lexists(r->file, prefix, H5P_DEFAULT) <= 0 ||
            H5Lget_info(r->file, prefix, &info, H5P_DEFAULT) < 0) {
            H5Eclear2(H5E_DEFAULT);
            return TG_OK;
        }
        if (info.type != H5L_TYPE_HARD) {
            return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': '%s' is %s link; tapegrad "
                                "checkpoints store every object in the file itself, so the "
                                "reader follows no soft or external links", r->path, prefix,
                                link_type_name(info.type));
        }
    }
    return TG_OK;
}

bool tg_checkpoint_has(const tg_checkpoint_reader *r, const char *path) {
    tg__hdf5_quiet();
    if (check_hard_links(r, path) != TG_OK) {
        return false;
    }
    return tg__hdf5_path_exists(r->file, path);
}

/* ---- Attributes ---------------------------------------------------------- */

/* Opens attribute `name` of `group` into *attr and checks its type class
 * and that it is a single value. */
static tg_status open_attr(const tg_checkpoint_reader *r, const char *group, const char *name,
                           H5T_class_t expected_class, const char *expected_what, hid_t *attr) {
    tg__hdf5_quiet();
    const char *label = tg__group_label(group);
    char object[TG__CHECKPOINT_PATH_MAX];
    tg_status status = tg__object_path(object, sizeof object, group, name);
    if (status == TG_OK) {
        status = check_hard_links(r, label);
    }
    if (status != TG_OK) {
        return status;
    }
    if (!tg__hdf5_path_exists(r->file, label) ||
        H5Aexists_by_name(r->file, label, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has no attribute '%s' in group '%s'",
                            r->path, name, label);
    }
    *attr = H5Aopen_by_name(r->file, label, name, H5P_DEFAULT, H5P_DEFAULT);
    if (*attr < 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': opening attribute '%s' failed "
                            "(HDF5: %s)", r->path, object, detail);
    }
    hid_t type = H5Aget_type(*attr);
    hid_t space = H5Aget_space(*attr);
    H5T_class_t type_class = H5Tget_class(type);
    hssize_t points = H5Sget_simple_extent_npoints(space);
    char type_name[32];
    tg__hdf5_type_name(type, type_name, sizeof type_name);
    H5Tclose(type);
    H5Sclose(space);
    if (type_class != expected_class) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': attribute '%s' is %s, expected %s",
                              r->path, object, type_name, expected_what);
    } else if (points != 1) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': attribute '%s' holds %lld values, "
                              "expected one", r->path, object, (long long)points);
    }
    if (status != TG_OK) {
        H5Aclose(*attr);
    }
    return status;
}

static tg_status attr_read_failed(const tg_checkpoint_reader *r, const char *group,
                                  const char *name, const char *detail) {
    return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': reading attribute '%s' of group '%s' "
                        "failed (HDF5: %s)", r->path, name, tg__group_label(group), detail);
}

tg_status tg_checkpoint_read_attr_string(const tg_checkpoint_reader *r, const char *group,
                                         const char *name, char *buf, size_t buf_size) {
    hid_t attr = H5I_INVALID_HID;
    tg_status status = open_attr(r, group, name, H5T_STRING, "a string", &attr);
    if (status != TG_OK) {
        return status;
    }
    hid_t file_type = H5Aget_type(attr);
    htri_t variable = H5Tis_variable_str(file_type);
    size_t fixed_size = H5Tget_size(file_type);
    /* HDF5 converts no strings between character sets, so read in the
     * stored one (tapegrad writes UTF-8; other tools may write ASCII). */
    H5T_cset_t cset = H5Tget_cset(file_type);
    H5Tclose(file_type);

    hid_t memory_type = H5Tcopy(H5T_C_S1);
    H5Tset_size(memory_type, H5T_VARIABLE);
    H5Tset_cset(memory_type, cset);
    char *value = NULL;
    herr_t read_status = -1;
    char detail[512] = "out of memory";
    if (variable > 0) {
        read_status = H5Aread(attr, memory_type, &value);
        tg__hdf5_error_detail(detail, sizeof detail);
    } else {
        /* Fixed-length: read into a buffer of the stored size plus a NUL. */
        hid_t fixed_type = H5Tcopy(H5T_C_S1);
        H5Tset_size(fixed_type, fixed_size + 1);
        H5Tset_cset(fixed_type, cset);
        value = calloc(1, fixed_size + 1);
        if (value != NULL) {
            read_status = H5Aread(attr, fixed_type, value);
            tg__hdf5_error_detail(detail, sizeof detail);
        }
        H5Tclose(fixed_type);
    }
    H5Tclose(memory_type);
    H5Aclose(attr);
    if (read_status < 0) {
        if (variable <= 0) {
            free(value);
        }
        return attr_read_failed(r, group, name, detail);
    }

    size_t length = strlen(value != NULL ? value : "");
    if (length >= buf_size) {
        status = tg_set_error(TG_ERR_INVALID, "checkpoint '%s': attribute '%s' of group '%s' has "
                              "%zu characters, more than the buffer of %zu holds", r->path, name,
                              tg__group_label(group), length, buf_size == 0 ? 0 : buf_size - 1);
    } else {
        memcpy(buf, value != NULL ? value : "", length + 1);
    }
    if (variable > 0) {
        H5free_memory(value);
    } else {
        free(value);
    }
    return status;
}

tg_status tg_checkpoint_read_attr_int(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, int64_t *value) {
    hid_t attr = H5I_INVALID_HID;
    tg_status status = open_attr(r, group, name, H5T_INTEGER, "an integer", &attr);
    if (status != TG_OK) {
        return status;
    }
    herr_t read_status = H5Aread(attr, H5T_NATIVE_INT64, value);
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    H5Aclose(attr);
    return read_status < 0 ? attr_read_failed(r, group, name, detail) : TG_OK;
}

tg_status tg_checkpoint_read_attr_double(const tg_checkpoint_reader *r, const char *group,
                                         const char *name, double *value) {
    hid_t attr = H5I_INVALID_HID;
    tg_status status = open_attr(r, group, name, H5T_FLOAT, "a floating-point number", &attr);
    if (status != TG_OK) {
        return status;
    }
    herr_t read_status = H5Aread(attr, H5T_NATIVE_DOUBLE, value);
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    H5Aclose(attr);
    return read_status < 0 ? attr_read_failed(r, group, name, detail) : TG_OK;
}

/* Names a configuration attribute in messages: "n_embd" in group "config",
 * else "group/name". */
static const char *field_label(char *buf, size_t buf_size, const char *group, const char *name) {
    if (group != NULL && strcmp(group, "config") == 0) {
        snprintf(buf, buf_size, "%s", name);
    } else if (tg__object_path(buf, buf_size, group, name) != TG_OK) {
        snprintf(buf, buf_size, "%s", name);
    }
    return buf;
}

tg_status tg_checkpoint_expect_int(const tg_checkpoint_reader *r, const char *group,
                                   const char *name, int64_t expected) {
    int64_t stored;
    tg_status status = tg_checkpoint_read_attr_int(r, group, name, &stored);
    if (status != TG_OK || stored == expected) {
        return status;
    }
    char field[TG__CHECKPOINT_PATH_MAX];
    return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': configuration field '%s' differs: "
                        "checkpoint has %" PRId64 ", expected %" PRId64 "; resume with the "
                        "checkpoint's settings or start a new run", r->path,
                        field_label(field, sizeof field, group, name), stored, expected);
}

tg_status tg_checkpoint_expect_double(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, double expected) {
    double stored;
    tg_status status = tg_checkpoint_read_attr_double(r, group, name, &stored);
    if (status != TG_OK || stored == expected || (isnan(stored) && isnan(expected))) {
        return status;
    }
    char field[TG__CHECKPOINT_PATH_MAX];
    return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': configuration field '%s' differs: "
                        "checkpoint has %.17g, expected %.17g; resume with the checkpoint's "
                        "settings or start a new run", r->path,
                        field_label(field, sizeof field, group, name), stored, expected);
}

tg_status tg_checkpoint_expect_string(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, const char *expected) {
    char stored[1024];
    tg_status status = tg_checkpoint_read_attr_string(r, group, name, stored, sizeof stored);
    if (status != TG_OK || strcmp(stored, expected) == 0) {
        return status;
    }
    char field[TG__CHECKPOINT_PATH_MAX];
    return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': configuration field '%s' differs: "
                        "checkpoint has '%s', expected '%s'; resume with the checkpoint's "
                        "settings or start a new run", r->path,
                        field_label(field, sizeof field, group, name), stored, expected);
}

/* ---- Datasets ------------------------------------------------------------ */

/* Writes extents as "(3, 4)" into buf. */
static char *format_dims(char *buf, size_t buf_size, int rank, const hsize_t *dims) {
    size_t len = (size_t)snprintf(buf, buf_size, "(");
    for (int i = 0; i < rank && len < buf_size; i++) {
        len += (size_t)snprintf(buf + len, buf_size - len, "%s%llu", i > 0 ? ", " : "",
                                (unsigned long long)dims[i]);
    }
    if (len < buf_size) {
        snprintf(buf + len, buf_size - len, ")");
    }
    return buf;
}

/* A dataset opened for reading, with its type and extents. */
typedef struct dataset_info {
    hid_t id;
    hid_t type;
    int rank;
    hsize_t dims[H5S_MAX_RANK];
    char object[TG__CHECKPOINT_PATH_MAX];
} dataset_info;

static void dataset_close(dataset_info *d) {
    H5Tclose(d->type);
    H5Dclose(d->id);
}

/* Returns TG_OK if the open dataset keeps its elements in the checkpoint
 * file. HDF5 reads the elements of a dataset with external storage from the
 * raw files that its header names, and those of a virtual dataset from other
 * HDF5 files. Either kind could make the reader read any file on the system,
 * or block on a FIFO. */
static tg_status check_storage(const tg_checkpoint_reader *r, const char *object, hid_t dataset) {
    hid_t dcpl = H5Dget_create_plist(dataset);
    if (dcpl < 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': reading the storage of dataset '%s' "
                            "failed (HDF5: %s)", r->path, object, detail);
    }
    int external_files = H5Pget_external_count(dcpl);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    if (external_files != 0 || layout == H5D_VIRTUAL) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' keeps its elements "
                            "outside the file (%s); tapegrad checkpoints store every element in "
                            "the file itself", r->path, object,
                            layout == H5D_VIRTUAL ? "a virtual dataset" : "external storage");
    }
    return TG_OK;
}

/* Opens dataset `group/name`. Returns the error, naming the dataset, if it
 * is missing, is a group, keeps its elements outside the file, has a null
 * dataspace (no elements at all) or cannot be opened. */
static tg_status dataset_open(const tg_checkpoint_reader *r, const char *group, const char *name,
                              dataset_info *d) {
    tg__hdf5_quiet();
    tg_status status = tg__object_path(d->object, sizeof d->object, group, name);
    if (status == TG_OK) {
        status = check_hard_links(r, d->object);
    }
    if (status != TG_OK) {
        return status;
    }
    if (!tg__hdf5_path_exists(r->file, d->object)) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has no dataset '%s'; it was saved "
                            "from a different model or program", r->path, d->object);
    }
    char detail[512];
    d->id = H5Oopen(r->file, d->object, H5P_DEFAULT);
    if (d->id < 0) {
        tg__hdf5_error_detail(detail, sizeof detail);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': opening '%s' failed (HDF5: %s)",
                            r->path, d->object, detail);
    }
    if (H5Iget_type(d->id) != H5I_DATASET) {
        H5Oclose(d->id);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': '%s' is not a dataset",
                            r->path, d->object);
    }
    status = check_storage(r, d->object, d->id);
    if (status != TG_OK) {
        H5Dclose(d->id);
        return status;
    }
    d->type = H5Dget_type(d->id);
    hid_t space = d->type >= 0 ? H5Dget_space(d->id) : -1;
    if (space < 0) {
        tg__hdf5_error_detail(detail, sizeof detail);
        if (d->type >= 0) {
            H5Tclose(d->type);
        }
        H5Dclose(d->id);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': opening dataset '%s' failed "
                            "(HDF5: %s)", r->path, d->object, detail);
    }
    /* A null dataspace has rank 0 like a scalar one, but no element to
     * read, so a read "succeeds" without writing anything. */
    bool is_null = H5Sget_simple_extent_type(space) == H5S_NULL;
    d->rank = H5Sget_simple_extent_ndims(space);
    H5Sget_simple_extent_dims(space, d->dims, NULL);
    H5Sclose(space);
    if (is_null) {
        dataset_close(d);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' has a null dataspace "
                            "and holds no elements", r->path, d->object);
    }
    return TG_OK;
}

static tg_status dataset_read(const tg_checkpoint_reader *r, dataset_info *d, hid_t memory_type,
                              void *values) {
    herr_t read_status = H5Dread(d->id, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    if (read_status < 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': reading dataset '%s' failed "
                            "(HDF5: %s); the file is damaged, so use another checkpoint",
                            r->path, d->object, detail);
    }
    return TG_OK;
}

/* Checks that the open dataset can fill tensor t: float type, same shape. */
static tg_status check_tensor_dataset(const tg_checkpoint_reader *r, const dataset_info *d,
                                      const tg_tensor *t) {
    if (H5Tget_class(d->type) != H5T_FLOAT) {
        char type_name[32];
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' is %s, expected float32",
                            r->path, d->object, tg__hdf5_type_name(d->type, type_name,
                                                                   sizeof type_name));
    }
    bool same = d->rank == t->ndim;
    for (int i = 0; same && i < t->ndim; i++) {
        same = d->dims[i] == (hsize_t)t->shape[i];
    }
    if (!same) {
        char stored[128];
        char expected[128];
        return tg_set_error(TG_ERR_SHAPE, "checkpoint '%s': dataset '%s' has shape %s, expected %s",
                            r->path, d->object, format_dims(stored, sizeof stored, d->rank,
                                                            d->dims),
                            tg_shape_format(expected, sizeof expected, t->ndim, t->shape));
    }
    return TG_OK;
}

tg_status tg_checkpoint_read_tensor(const tg_checkpoint_reader *r, const char *group,
                                    const char *name, tg_tensor *t) {
    dataset_info d;
    tg_status status = dataset_open(r, group, name, &d);
    if (status != TG_OK) {
        return status;
    }
    status = check_tensor_dataset(r, &d, t);
    if (status == TG_OK) {
        status = dataset_read(r, &d, SCALAR_MEMORY_TYPE, t->data);
    }
    dataset_close(&d);
    return status;
}

tg_status tg_checkpoint_dataset_length(const tg_checkpoint_reader *r, const char *group,
                                       const char *name, size_t *count) {
    dataset_info d;
    tg_status status = dataset_open(r, group, name, &d);
    if (status != TG_OK) {
        return status;
    }
    if (d.rank != 1) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' has %d dimensions, "
                              "expected 1", r->path, d.object, d.rank);
    } else {
        *count = (size_t)d.dims[0];
    }
    dataset_close(&d);
    return status;
}

/* Reads a one-dimensional integer dataset of exactly `count` elements whose
 * stored type is `expected_type` ("uint64", "int32"). */
static tg_status read_int_array(const tg_checkpoint_reader *r, const char *group,
                                const char *name, void *values, size_t count,
                                hid_t memory_type, const char *expected_type) {
    dataset_info d;
    tg_status status = dataset_open(r, group, name, &d);
    if (status != TG_OK) {
        return status;
    }
    char stored_type[32];
    tg__hdf5_type_name(d.type, stored_type, sizeof stored_type);
    if (strcmp(stored_type, expected_type) != 0) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' is %s, expected %s",
                              r->path, d.object, stored_type, expected_type);
    } else if (d.rank != 1) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' has %d dimensions, "
                              "expected 1", r->path, d.object, d.rank);
    } else if (d.dims[0] != (hsize_t)count) {
        status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': dataset '%s' has %llu elements, "
                              "expected %zu", r->path, d.object,
                              (unsigned long long)d.dims[0], count);
    } else if (count > 0) {
        status = dataset_read(r, &d, memory_type, values);
    }
    dataset_close(&d);
    return status;
}

tg_status tg_checkpoint_read_u64(const tg_checkpoint_reader *r, const char *group,
                                 const char *name, uint64_t *values, size_t count) {
    return read_int_array(r, group, name, values, count, H5T_NATIVE_UINT64, "uint64");
}

tg_status tg_checkpoint_read_i32(const tg_checkpoint_reader *r, const char *group,
                                 const char *name, int32_t *values, size_t count) {
    return read_int_array(r, group, name, values, count, H5T_NATIVE_INT32, "int32");
}

/* Returns TG_OK if every link in `group` names a parameter of the list. */
static tg_status check_no_extra(const tg_checkpoint_reader *r, const char *group,
                                const tg_param_list *params) {
    const char *label = tg__group_label(group);
    hid_t gid = H5Gopen2(r->file, label, H5P_DEFAULT);
    H5G_info_t info;
    if (gid < 0 || H5Gget_info(gid, &info) < 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        if (gid >= 0) {
            H5Gclose(gid);
        }
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': listing group '%s' failed "
                            "(HDF5: %s)", r->path, label, detail);
    }
    tg_status status = TG_OK;
    for (hsize_t i = 0; i < info.nlinks && status == TG_OK; i++) {
        char name[TG__CHECKPOINT_PATH_MAX];
        ssize_t len = H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, name,
                                         sizeof name, H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) {
            H5Eclear2(H5E_DEFAULT);
            status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': group '%s' holds an object "
                                  "whose name cannot be read or is too long", r->path, label);
        } else if (tg_param_list_find(params, name) == NULL) {
            status = tg_set_error(TG_ERR_FORMAT, "checkpoint '%s': group '%s' has '%s', which "
                                  "is not a parameter of the model (%d parameters expected, %llu "
                                  "stored); it was saved from a different configuration", r->path,
                                  label, name, params->count, (unsigned long long)info.nlinks);
        }
    }
    H5Gclose(gid);
    return status;
}

tg_status tg_checkpoint_read_params(const tg_checkpoint_reader *r, const char *group,
                                    const tg_param_list *params) {
    tg__hdf5_quiet();
    tg_status group_status = check_hard_links(r, tg__group_label(group));
    if (group_status != TG_OK) {
        return group_status;
    }
    if (!tg__hdf5_path_exists(r->file, tg__group_label(group))) {
        return tg_set_error(TG_ERR_FORMAT, "checkpoint '%s' has no group '%s'", r->path,
                            tg__group_label(group));
    }
    /* Check every dataset before reading any, so that a mismatch leaves all
     * tensors as they were. */
    for (int i = 0; i < params->count; i++) {
        dataset_info d;
        tg_status status = dataset_open(r, group, params->items[i].name, &d);
        if (status != TG_OK) {
            return status;
        }
        status = check_tensor_dataset(r, &d, params->items[i].tensor);
        dataset_close(&d);
        if (status != TG_OK) {
            return status;
        }
    }
    tg_status status = check_no_extra(r, group, params);
    for (int i = 0; i < params->count && status == TG_OK; i++) {
        status = tg_checkpoint_read_tensor(r, group, params->items[i].name,
                                           params->items[i].tensor);
    }
    return status;
}
