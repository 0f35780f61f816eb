/* HDF5 helpers shared by the checkpoint writer and reader. Not public. */
#ifndef TG_CHECKPOINT_CHECKPOINT_INTERNAL_H
#define TG_CHECKPOINT_CHECKPOINT_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

#include "autograd/status.h"

/* Longest "group/name" object path, including the terminating NUL. */
#define TG__CHECKPOINT_PATH_MAX 512

/* Turns off HDF5's automatic error printing on the calling thread. HDF5's
 * error settings are per thread, so every function that calls HDF5 calls
 * this first. */
void tg__hdf5_quiet(void);

/* Writes the description of the innermost error on HDF5's error stack, where
 * the failure was detected (such as "truncated file: eof = 800, ..."), into
 * buf, or "no detail" if the stack is empty. Clears the stack. */
void tg__hdf5_error_detail(char *buf, size_t buf_size);

/* Joins group and name into "group/name" ("name" for the root group: NULL,
 * "" or "/"). Returns TG_ERR_INVALID if name is empty or the path does not
 * fit in buf. */
tg_status tg__object_path(char *buf, size_t buf_size, const char *group, const char *name);

/* Returns the group path as shown in messages: "/" for the root. */
const char *tg__group_label(const char *group);

/* Returns true if every component of the slash-separated `path` exists as a
 * link below loc ("" and "/" always exist). */
bool tg__hdf5_path_exists(hid_t loc, const char *path);

/* Describes an HDF5 datatype as "float32", "int64", "uint64", "string" and
 * so on, in buf, and returns buf. */
const char *tg__hdf5_type_name(hid_t type, char *buf, size_t buf_size);

#endif
