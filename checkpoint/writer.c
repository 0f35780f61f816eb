/* Checkpoint writer: builds the HDF5 file in memory, then replaces the
 * target file atomically.
 *
 * The HDF5 file lives in memory (HDF5's core driver, no backing store) until
 * commit. Commit takes the finished file image and writes it with plain
 * write() calls into a temporary file created by begin in the target's
 * directory, then fsync, rename over the target, and fsync of the directory.
 * So HDF5 never has a half-written file open on disk, every disk error arrives
 * as an errno that the message can name, and a crash at any point leaves the
 * target either as it was or complete. The cost is memory: during commit the
 * process holds the file image twice (HDF5's copy and ours).
 */
#define _POSIX_C_SOURCE 200809L

#include "checkpoint.h"
#include "checkpoint_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef TG_LIBRARY_VERSION
#define TG_LIBRARY_VERSION "unknown"
#endif

#ifdef TG_SCALAR_DOUBLE
#define SCALAR_MEMORY_TYPE H5T_NATIVE_DOUBLE
#else
#define SCALAR_MEMORY_TYPE H5T_NATIVE_FLOAT
#endif

/* Tries at most this many temporary names before giving up. */
#define TEMP_NAME_ATTEMPTS 1000

struct tg_checkpoint_writer {
    char *path;          /* the checkpoint to replace on commit */
    char *temp_path;     /* "<path>.tmp.<pid>.<n>"; NULL once renamed or removed */
    int temp_fd;         /* open on temp_path, or -1 */
    hid_t file;          /* the in-memory HDF5 file, or H5I_INVALID_HID */
    bool step_written;
    tg_status error;     /* first failure, or TG_OK */
    char message[1024];  /* its message, restored on every later call */
};

/* Distinguishes temporary files of one process. */
static atomic_uint temp_counter;

/* Records the writer's first failure and sets it as the last error. */
__attribute__((format(printf, 3, 4)))
static tg_status writer_fail(tg_checkpoint_writer *w, tg_status status, const char *format, ...) {
    if (w->error == TG_OK) {
        va_list args;
        va_start(args, format);
        vsnprintf(w->message, sizeof w->message, format, args);
        va_end(args);
        w->error = status;
    }
    return tg_set_error(w->error, "%s", w->message);
}

/* Records the failure of an HDF5 call with HDF5's innermost message, which
 * the caller takes with tg__hdf5_error_detail before any further HDF5 call
 * (each call clears the error stack). */
static tg_status writer_fail_hdf5(tg_checkpoint_writer *w, const char *what, const char *object,
                                  const char *detail) {
    return writer_fail(w, TG_ERR_IO, "cannot write checkpoint '%s': %s '%s' failed (HDF5: %s)",
                       w->path, what, object, detail);
}

/* Records the failure of the HDF5 call just made. */
static tg_status writer_fail_now(tg_checkpoint_writer *w, const char *what, const char *object) {
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    return writer_fail_hdf5(w, what, object, detail);
}

/* Returns TG_OK if the writer may go on, else its first error again. */
static tg_status writer_check(tg_checkpoint_writer *w) {
    tg__hdf5_quiet();
    if (w->error != TG_OK) {
        return tg_set_error(w->error, "%s", w->message);
    }
    return TG_OK;
}

static tg_status create_temp_file(tg_checkpoint_writer *w) {
    size_t size = strlen(w->path) + 64;
    w->temp_path = malloc(size);
    if (w->temp_path == NULL) {
        return writer_fail(w, TG_ERR_NOMEM, "cannot write checkpoint '%s': out of memory",
                           w->path);
    }
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        unsigned n = atomic_fetch_add(&temp_counter, 1u);
        snprintf(w->temp_path, size, "%s.tmp.%ld.%u", w->path, (long)getpid(), n);
        w->temp_fd = open(w->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->temp_fd >= 0) {
            return TG_OK;
        }
        if (errno != EEXIST) {
            int err = errno;
            free(w->temp_path);
            w->temp_path = NULL;
            return writer_fail(w, TG_ERR_IO,
                               "cannot write checkpoint '%s': creating a temporary file next to "
                               "it failed: %s; check that the directory exists and is writable",
                               w->path, strerror(err));
        }
    }
    free(w->temp_path);
    w->temp_path = NULL;
    return writer_fail(w, TG_ERR_IO,
                       "cannot write checkpoint '%s': %d temporary names '%s.tmp.*' are taken; "
                       "delete the stale ones", w->path, TEMP_NAME_ATTEMPTS, w->path);
}

static tg_status create_memory_file(tg_checkpoint_writer *w) {
    /* The earliest file format (superblock version 0) on purpose. With the
     * later superblock versions 2 and 3, HDF5 1.10.8's H5Fget_file_image
     * returns an image whose superblock checksum is wrong, so the written
     * file fails to open. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        if (fapl >= 0) {
            H5Pclose(fapl);
        }
        return writer_fail_hdf5(w, "setting up", "the in-memory file", detail);
    }
    /* HDF5 first tries to open an existing file of this name on disk, so the
     * name is a path below the temporary file, which cannot exist. */
    char name[TG__CHECKPOINT_PATH_MAX + 64];
    snprintf(name, sizeof name, "%s/in-memory", w->temp_path);
    w->file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    H5Pclose(fapl);
    if (w->file < 0) {
        return writer_fail_hdf5(w, "creating", "the in-memory file", detail);
    }
    return TG_OK;
}

/* Opens `group`, creating it and any missing parents. Returns a negative id
 * after recording the failure. */
static hid_t open_or_create_group(tg_checkpoint_writer *w, const char *group) {
    const char *label = tg__group_label(group);
    hid_t id;
    char detail[512];
    if (tg__hdf5_path_exists(w->file, label)) {
        id = H5Oopen(w->file, label, H5P_DEFAULT);
        tg__hdf5_error_detail(detail, sizeof detail);
        if (id >= 0 && H5Iget_type(id) != H5I_GROUP) {
            H5Oclose(id);
            writer_fail(w, TG_ERR_INVALID,
                        "cannot write checkpoint '%s': '%s' is a dataset, not a group",
                        w->path, label);
            return -1;
        }
    } else {
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        id = H5Gcreate2(w->file, label, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        tg__hdf5_error_detail(detail, sizeof detail);
        H5Pclose(lcpl);
    }
    if (id < 0) {
        writer_fail_hdf5(w, "opening group", label, detail);
    }
    return id;
}

static tg_status write_attr(tg_checkpoint_writer *w, const char *group, const char *name,
                            hid_t file_type, hid_t memory_type, const void *value) {
    char object[TG__CHECKPOINT_PATH_MAX];
    if (tg__object_path(object, sizeof object, group, name) != TG_OK) {
        return writer_fail(w, TG_ERR_INVALID, "cannot write checkpoint '%s': %s", w->path,
                           tg_last_error());
    }
    hid_t gid = open_or_create_group(w, group);
    if (gid < 0) {
        return w->error;
    }
    htri_t exists = H5Aexists(gid, name);
    if (exists != 0) {
        char detail[512];
        tg__hdf5_error_detail(detail, sizeof detail);
        H5Gclose(gid);
        if (exists > 0) {
            return writer_fail(w, TG_ERR_INVALID,
                               "cannot write checkpoint '%s': attribute '%s' is written twice",
                               w->path, object);
        }
        return writer_fail_hdf5(w, "checking attribute", object, detail);
    }
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(gid, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t written = attr >= 0 ? H5Awrite(attr, memory_type, value) : -1;
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    if (attr >= 0) {
        H5Aclose(attr);
    }
    H5Sclose(space);
    H5Gclose(gid);
    if (written < 0) {
        return writer_fail_hdf5(w, "writing attribute", object, detail);
    }
    return TG_OK;
}

static tg_status write_string_attr(tg_checkpoint_writer *w, const char *group, const char *name,
                                   const char *value) {
    /* A variable-length UTF-8 string, which h5py reads as str. */
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    tg_status status = write_attr(w, group, name, type, type, &value);
    H5Tclose(type);
    return status;
}

static tg_status write_root_attrs(tg_checkpoint_writer *w, const char *model_kind) {
    int64_t version = TG_CHECKPOINT_FORMAT_VERSION;
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);

    write_string_attr(w, NULL, "format", TG_CHECKPOINT_FORMAT);
    write_attr(w, NULL, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &version);
    write_string_attr(w, NULL, "model_kind", model_kind);
    write_string_attr(w, NULL, "created", created);
    write_string_attr(w, NULL, "library_version", TG_LIBRARY_VERSION);
    return w->error;
}

static void writer_free(tg_checkpoint_writer *w) {
    if (w->file >= 0) {
        H5Fclose(w->file);
    }
    if (w->temp_fd >= 0) {
        close(w->temp_fd);
    }
    if (w->temp_path != NULL) {
        unlink(w->temp_path);
        free(w->temp_path);
    }
    free(w->path);
    free(w);
}

tg_checkpoint_writer *tg_checkpoint_begin(const char *path, const char *model_kind,
                                          tg_status *status) {
    tg__hdf5_quiet();
    tg_status dummy;
    if (status == NULL) {
        status = &dummy;
    }
    if (path == NULL || path[0] == '\0') {
        *status = tg_set_error(TG_ERR_INVALID, "tg_checkpoint_begin: the path is empty");
        return NULL;
    }
    if (strlen(path) >= TG__CHECKPOINT_PATH_MAX) {
        *status = tg_set_error(TG_ERR_INVALID, "cannot write checkpoint '%s': the path is longer "
                               "than %d characters", path, TG__CHECKPOINT_PATH_MAX - 1);
        return NULL;
    }
    if (model_kind == NULL || model_kind[0] == '\0' ||
        strlen(model_kind) >= TG_CHECKPOINT_KIND_MAX) {
        *status = tg_set_error(TG_ERR_INVALID, "cannot write checkpoint '%s': the model kind must "
                               "have 1 to %d characters", path, TG_CHECKPOINT_KIND_MAX - 1);
        return NULL;
    }
    tg_checkpoint_writer *w = calloc(1, sizeof *w);
    char *path_copy = strdup(path);
    if (w == NULL || path_copy == NULL) {
        free(w);
        free(path_copy);
        *status = tg_set_error(TG_ERR_NOMEM, "cannot write checkpoint '%s': out of memory", path);
        return NULL;
    }
    w->path = path_copy;
    w->temp_fd = -1;
    w->file = H5I_INVALID_HID;

    if (create_temp_file(w) == TG_OK && create_memory_file(w) == TG_OK) {
        write_root_attrs(w, model_kind);
    }
    if (w->error != TG_OK) {
        *status = w->error;
        char message[sizeof w->message];
        memcpy(message, w->message, sizeof message);
        writer_free(w);
        tg_set_error(*status, "%s", message);
        return NULL;
    }
    *status = TG_OK;
    return w;
}

tg_status tg_checkpoint_set_step(tg_checkpoint_writer *w, int64_t step) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    if (step < 0) {
        return writer_fail(w, TG_ERR_INVALID, "cannot write checkpoint '%s': step %lld is negative",
                           w->path, (long long)step);
    }
    if (write_attr(w, NULL, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &step) == TG_OK) {
        w->step_written = true;
    }
    return w->error;
}

tg_status tg_checkpoint_write_attr_string(tg_checkpoint_writer *w, const char *group,
                                          const char *name, const char *value) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    if (value == NULL) {
        return writer_fail(w, TG_ERR_INVALID, "cannot write checkpoint '%s': attribute '%s' "
                           "of group '%s' has a NULL value", w->path, name != NULL ? name : "",
                           tg__group_label(group));
    }
    return write_string_attr(w, group, name, value);
}

tg_status tg_checkpoint_write_attr_int(tg_checkpoint_writer *w, const char *group,
                                       const char *name, int64_t value) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    return write_attr(w, group, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

tg_status tg_checkpoint_write_attr_double(tg_checkpoint_writer *w, const char *group,
                                          const char *name, double value) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    return write_attr(w, group, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

/* Returns the creation properties of a dataset with these extents: one chunk
 * holding the whole dataset with HDF5's Fletcher-32 checksum, so that a
 * reader notices a changed byte of the elements. Returns H5P_DEFAULT (one
 * contiguous block without a checksum) where HDF5 cannot chunk the data: a
 * scalar, an empty extent, or a chunk of 4 GiB or more. */
static hid_t checksummed_layout(int rank, const hsize_t *dims, size_t element_size) {
    const uint64_t chunk_bytes_max = UINT64_C(0xFFFFFFFF);
    if (rank == 0) {
        return H5P_DEFAULT;
    }
    uint64_t bytes = element_size;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0 || bytes > chunk_bytes_max / dims[i]) {
            return H5P_DEFAULT;
        }
        bytes *= dims[i];
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0 || H5Pset_chunk(dcpl, rank, dims) < 0 || H5Pset_fletcher32(dcpl) < 0) {
        if (dcpl >= 0) {
            H5Pclose(dcpl);
        }
        H5Eclear2(H5E_DEFAULT);
        return H5P_DEFAULT;
    }
    return dcpl;
}

/* Creates dataset `group/name` of the given file type and extents and writes
 * `data`: as many elements of memory_type as the product of dims. */
static tg_status write_dataset(tg_checkpoint_writer *w, const char *group, const char *name,
                               hid_t file_type, hid_t memory_type, int rank, const hsize_t *dims,
                               const void *data) {
    char object[TG__CHECKPOINT_PATH_MAX];
    if (tg__object_path(object, sizeof object, group, name) != TG_OK) {
        return writer_fail(w, TG_ERR_INVALID, "cannot write checkpoint '%s': %s", w->path,
                           tg_last_error());
    }
    if (tg__hdf5_path_exists(w->file, object)) {
        return writer_fail(w, TG_ERR_INVALID,
                           "cannot write checkpoint '%s': dataset '%s' is written twice", w->path,
                           object);
    }
    hid_t gid = open_or_create_group(w, group);
    if (gid < 0) {
        return w->error;
    }
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = checksummed_layout(rank, dims, H5Tget_size(file_type));
    hid_t dset = H5Dcreate2(gid, name, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    herr_t written = dset >= 0 ? 0 : -1;
    if (dset >= 0 && H5Sget_simple_extent_npoints(space) > 0) {
        written = H5Dwrite(dset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    }
    char detail[512];
    tg__hdf5_error_detail(detail, sizeof detail);
    if (dset >= 0) {
        H5Dclose(dset);
    }
    if (dcpl != H5P_DEFAULT) {
        H5Pclose(dcpl);
    }
    H5Pclose(lcpl);
    H5Sclose(space);
    H5Gclose(gid);
    if (written < 0) {
        return writer_fail_hdf5(w, "writing dataset", object, detail);
    }
    return TG_OK;
}

tg_status tg_checkpoint_write_tensor(tg_checkpoint_writer *w, const char *group,
                                     const char *name, const tg_tensor *t) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    hsize_t dims[TG_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        dims[i] = (hsize_t)t->shape[i];
    }
    return write_dataset(w, group, name, H5T_IEEE_F32LE, SCALAR_MEMORY_TYPE, t->ndim, dims,
                         t->data);
}

tg_status tg_checkpoint_write_u64(tg_checkpoint_writer *w, const char *group, const char *name,
                                  const uint64_t *values, size_t count) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    hsize_t dims[1] = {(hsize_t)count};
    return write_dataset(w, group, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims, values);
}

tg_status tg_checkpoint_write_i32(tg_checkpoint_writer *w, const char *group, const char *name,
                                  const int32_t *values, size_t count) {
    if (writer_check(w) != TG_OK) {
        return w->error;
    }
    hsize_t dims[1] = {(hsize_t)count};
    return write_dataset(w, group, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, values);
}

tg_status tg_checkpoint_write_params(tg_checkpoint_writer *w, const char *group,
                                     const tg_param_list *params) {
    for (int i = 0; i < params->count; i++) {
        const tg_named_param *p = &params->items[i];
        if (tg_checkpoint_write_tensor(w, group, p->name, p->tensor) != TG_OK) {
            break;
        }
    }
    return writer_check(w);
}

/* ---- Commit ------------------------------------------------------------ */

/* Writes all of buf to the temporary file, retrying short writes. */
static tg_status write_all(tg_checkpoint_writer *w, const unsigned char *buf, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(w->temp_fd, buf + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const char *reason = n < 0 ? strerror(errno) : "the write call wrote nothing";
            return writer_fail(w, TG_ERR_IO,
                               "cannot write checkpoint '%s': writing temporary file '%s' failed "
                               "after %zu of %zu bytes: %s", w->path, w->temp_path, done, size,
                               reason);
        }
        done += (size_t)n;
    }
    return TG_OK;
}

/* Closes the in-memory HDF5 file and writes its image to the temporary file,
 * synced and closed. */
static tg_status store_image(tg_checkpoint_writer *w) {
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
        return writer_fail_now(w, "flushing", "the in-memory file");
    }
    ssize_t size = H5Fget_file_image(w->file, NULL, 0);
    if (size <= 0) {
        return writer_fail_now(w, "measuring", "the in-memory file");
    }
    unsigned char *image = malloc((size_t)size);
    if (image == NULL) {
        return writer_fail(w, TG_ERR_NOMEM, "cannot write checkpoint '%s': out of memory for "
                           "its %zd-byte image", w->path, size);
    }
    if (H5Fget_file_image(w->file, image, (size_t)size) != size) {
        free(image);
        return writer_fail_now(w, "copying", "the in-memory file");
    }
    herr_t closed = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (closed < 0) {
        free(image);
        return writer_fail_now(w, "closing", "the in-memory file");
    }

    tg_status status = write_all(w, image, (size_t)size);
    free(image);
    if (status != TG_OK) {
        return status;
    }
    if (fsync(w->temp_fd) != 0) {
        return writer_fail(w, TG_ERR_IO, "cannot write checkpoint '%s': syncing temporary file "
                           "'%s' failed: %s", w->path, w->temp_path, strerror(errno));
    }
    int closed_fd = close(w->temp_fd);
    w->temp_fd = -1;
    if (closed_fd != 0) {
        return writer_fail(w, TG_ERR_IO, "cannot write checkpoint '%s': closing temporary file "
                           "'%s' failed: %s", w->path, w->temp_path, strerror(errno));
    }
    return TG_OK;
}

/* Syncs the directory holding w->path, so that the rename survives a power
 * loss. */
static tg_status sync_directory(tg_checkpoint_writer *w) {
    char dir[TG__CHECKPOINT_PATH_MAX];
    const char *slash = strrchr(w->path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == w->path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - w->path), w->path);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return writer_fail(w, TG_ERR_IO, "checkpoint '%s' is in place, but opening its directory "
                           "'%s' to sync it failed: %s", w->path, dir, strerror(errno));
    }
    /* EINVAL: the file system cannot sync directories, so there is nothing to wait for. */
    int synced = fsync(fd);
    int err = errno;
    close(fd);
    if (synced != 0 && err != EINVAL) {
        return writer_fail(w, TG_ERR_IO, "checkpoint '%s' is in place, but syncing directory "
                           "'%s' failed: %s; it may not survive a power loss", w->path, dir,
                           strerror(err));
    }
    return TG_OK;
}

tg_status tg_checkpoint_commit(tg_checkpoint_writer *w) {
    writer_check(w);
    if (w->error == TG_OK && !w->step_written) {
        writer_fail(w, TG_ERR_STATE, "cannot write checkpoint '%s': the step was never set; "
                    "call tg_checkpoint_set_step before tg_checkpoint_commit", w->path);
    }
    if (w->error == TG_OK) {
        store_image(w);
    }
    if (w->error == TG_OK) {
        if (rename(w->temp_path, w->path) != 0) {
            writer_fail(w, TG_ERR_IO, "cannot write checkpoint '%s': renaming temporary file "
                        "'%s' over it failed: %s", w->path, w->temp_path, strerror(errno));
        } else {
            free(w->temp_path);
            w->temp_path = NULL;
            sync_directory(w);
        }
    }

    tg_status status = w->error;
    char message[sizeof w->message];
    memcpy(message, w->message, sizeof message);
    writer_free(w);
    if (status != TG_OK) {
        tg_set_error(status, "%s", message);
    }
    return status;
}

void tg_checkpoint_abort(tg_checkpoint_writer *w) {
    if (w == NULL) {
        return;
    }
    tg__hdf5_quiet();
    writer_free(w);
}
