/* Checkpoint file names in a run directory, and rotation of step
 * checkpoints: "<prefix>-<step>.h5" with the step zero-padded to 8 digits,
 * and "<prefix>-best.h5", which rotation never deletes. Rotation also
 * deletes the temporary files that killed saves left behind.
 */
#define _POSIX_C_SOURCE 200809L

#include "checkpoint.h"
#include "checkpoint_internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The writer checks paths against the internal limit, so the public limit
 * must equal it (less the terminating NUL). */
_Static_assert(TG_CHECKPOINT_FILE_PATH_MAX == TG__CHECKPOINT_PATH_MAX - 1,
               "TG_CHECKPOINT_FILE_PATH_MAX must match the writer's path limit");

/* Maximum number of step digits in a file name, because 18 digits always
 * fit in an int64_t. */
#define STEP_DIGITS_MAX 18

static tg_status check_prefix(const char *function, const char *prefix) {
    if (prefix == NULL || prefix[0] == '\0' || strchr(prefix, '/') != NULL) {
        return tg_set_error(TG_ERR_INVALID, "%s: invalid prefix '%s'; it must be a non-empty file "
                            "name part without '/', such as \"ckpt\"", function,
                            prefix != NULL ? prefix : "(null)");
    }
    return TG_OK;
}

static tg_status path_fits(const char *function, int n, size_t buf_size) {
    if (n < 0 || (size_t)n >= buf_size) {
        return tg_set_error(TG_ERR_INVALID, "%s: the path needs %d characters, more than the "
                            "buffer of %zu holds", function, n, buf_size == 0 ? 0 : buf_size - 1);
    }
    return TG_OK;
}

tg_status tg_checkpoint_step_path(char *buf, size_t buf_size, const char *dir,
                                  const char *prefix, int64_t step) {
    tg_status status = check_prefix("tg_checkpoint_step_path", prefix);
    if (status != TG_OK) {
        return status;
    }
    if (step < 0) {
        return tg_set_error(TG_ERR_INVALID, "tg_checkpoint_step_path: step %lld is negative",
                            (long long)step);
    }
    int n = snprintf(buf, buf_size, "%s/%s-%0*lld.h5", dir, prefix, TG_CHECKPOINT_STEP_DIGITS,
                     (long long)step);
    return path_fits("tg_checkpoint_step_path", n, buf_size);
}

tg_status tg_checkpoint_best_path(char *buf, size_t buf_size, const char *dir,
                                  const char *prefix) {
    tg_status status = check_prefix("tg_checkpoint_best_path", prefix);
    if (status != TG_OK) {
        return status;
    }
    int n = snprintf(buf, buf_size, "%s/%s-best.h5", dir, prefix);
    return path_fits("tg_checkpoint_best_path", n, buf_size);
}

/* Returns the step of a file named exactly "<prefix>-<digits>.h5", or -1. */
static int64_t parse_step_name(const char *file_name, const char *prefix) {
    size_t prefix_len = strlen(prefix);
    if (strncmp(file_name, prefix, prefix_len) != 0 || file_name[prefix_len] != '-') {
        return -1;
    }
    const char *digits = file_name + prefix_len + 1;
    size_t n_digits = strspn(digits, "0123456789");
    if (n_digits == 0 || n_digits > STEP_DIGITS_MAX || strcmp(digits + n_digits, ".h5") != 0) {
        return -1;
    }
    int64_t step = 0;
    for (size_t i = 0; i < n_digits; i++) {
        step = step * 10 + (digits[i] - '0');
    }
    return step;
}

/* Returns the process id in a temporary file name of `prefix` written by
 * the checkpoint writer, "<prefix>-<anything>.h5.tmp.<pid>.<n>", or -1. */
static long parse_temp_pid(const char *file_name, const char *prefix) {
    size_t prefix_len = strlen(prefix);
    if (strncmp(file_name, prefix, prefix_len) != 0 || file_name[prefix_len] != '-') {
        return -1;
    }
    const char *marker = strstr(file_name + prefix_len, ".h5.tmp.");
    if (marker == NULL) {
        return -1;
    }
    const char *pid_digits = marker + strlen(".h5.tmp.");
    size_t pid_len = strspn(pid_digits, "0123456789");
    if (pid_len == 0 || pid_len > 9 || pid_digits[pid_len] != '.') {
        return -1;
    }
    const char *counter_digits = pid_digits + pid_len + 1;
    size_t counter_len = strspn(counter_digits, "0123456789");
    if (counter_len == 0 || counter_digits[counter_len] != '\0') {
        return -1;
    }
    return strtol(pid_digits, NULL, 10);
}

/* Returns true if no process with this id exists. A process that exists but
 * belongs to another user (EPERM) counts as alive. */
static bool process_is_gone(long pid) {
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Deletes the temporary files of `prefix` in `dir` whose writing process no
 * longer exists. A file of a live process may be a save in progress, so it
 * stays. */
static tg_status remove_stale_temps(const char *dir, const char *prefix) {
    DIR *handle = opendir(dir);
    if (handle == NULL) {
        return tg_set_error(TG_ERR_IO, "tg_checkpoint_rotate: cannot read directory '%s': %s",
                            dir, strerror(errno));
    }
    tg_status status = TG_OK;
    struct dirent *entry;
    while (status == TG_OK && (entry = readdir(handle)) != NULL) {
        if (!process_is_gone(parse_temp_pid(entry->d_name, prefix))) {
            continue;
        }
        size_t size = strlen(dir) + strlen(entry->d_name) + 2;
        char *path = malloc(size);
        if (path == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "tg_checkpoint_rotate: out of memory");
            break;
        }
        snprintf(path, size, "%s/%s", dir, entry->d_name);
        if (unlink(path) != 0 && errno != ENOENT) {
            status = tg_set_error(TG_ERR_IO, "tg_checkpoint_rotate: cannot delete the temporary "
                                  "file '%s' of a stopped save: %s", path, strerror(errno));
        }
        free(path);
    }
    closedir(handle);
    return status;
}

typedef struct step_file {
    int64_t step;
    char *name;
} step_file;

typedef struct step_file_list {
    step_file *items;
    size_t count;
} step_file_list;

static void step_file_list_free(step_file_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
    }
    free(list->items);
}

/* Orders by step, then by name, so that "ckpt-7.h5" and "ckpt-007.h5"
 * have a fixed order. */
static int compare_step_files(const void *a, const void *b) {
    const step_file *x = a;
    const step_file *y = b;
    if (x->step != y->step) {
        return x->step < y->step ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

/* Lists the step checkpoints of `prefix` in `dir`, sorted by step. */
static tg_status list_step_files(const char *function, const char *dir, const char *prefix,
                                 step_file_list *list) {
    list->items = NULL;
    list->count = 0;
    tg_status status = check_prefix(function, prefix);
    if (status != TG_OK) {
        return status;
    }
    DIR *handle = opendir(dir);
    if (handle == NULL) {
        return tg_set_error(TG_ERR_IO, "%s: cannot read directory '%s': %s", function, dir,
                            strerror(errno));
    }
    size_t capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        int64_t step = parse_step_name(entry->d_name, prefix);
        if (step < 0) {
            continue;
        }
        if (list->count == capacity) {
            capacity = capacity == 0 ? 16 : 2 * capacity;
            step_file *items = realloc(list->items, capacity * sizeof *items);
            if (items == NULL) {
                status = tg_set_error(TG_ERR_NOMEM, "%s: out of memory listing '%s'", function,
                                      dir);
                break;
            }
            list->items = items;
        }
        char *name = strdup(entry->d_name);
        if (name == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "%s: out of memory listing '%s'", function, dir);
            break;
        }
        list->items[list->count].step = step;
        list->items[list->count].name = name;
        list->count++;
    }
    closedir(handle);
    if (status != TG_OK) {
        step_file_list_free(list);
        return status;
    }
    if (list->count > 0) {
        qsort(list->items, list->count, sizeof *list->items, compare_step_files);
    }
    return TG_OK;
}

tg_status tg_checkpoint_find_latest(const char *dir, const char *prefix, char *path,
                                    size_t path_size, int64_t *step) {
    step_file_list list;
    tg_status status = list_step_files("tg_checkpoint_find_latest", dir, prefix, &list);
    if (status != TG_OK) {
        return status;
    }
    *step = -1;
    if (path_size > 0) {
        path[0] = '\0';
    }
    if (list.count > 0) {
        const step_file *latest = &list.items[list.count - 1];
        int n = snprintf(path, path_size, "%s/%s", dir, latest->name);
        status = path_fits("tg_checkpoint_find_latest", n, path_size);
        if (status == TG_OK) {
            *step = latest->step;
        } else if (path_size > 0) {
            path[0] = '\0';
        }
    }
    step_file_list_free(&list);
    return status;
}

tg_status tg_checkpoint_rotate(const char *dir, const char *prefix, int keep_last,
                               int64_t saved_step, int *removed) {
    if (removed != NULL) {
        *removed = 0;
    }
    if (keep_last < 1) {
        return tg_set_error(TG_ERR_INVALID, "tg_checkpoint_rotate: keep_last is %d; it must be "
                            "at least 1, so that the newest checkpoint stays", keep_last);
    }
    step_file_list list;
    tg_status status = list_step_files("tg_checkpoint_rotate", dir, prefix, &list);
    if (status != TG_OK) {
        return status;
    }
    /* Checkpoints after saved_step belong to a continuation that this run
     * went back from; they stay, and only the earlier ones count. */
    size_t n_counted = 0;
    while (n_counted < list.count && list.items[n_counted].step <= saved_step) {
        n_counted++;
    }
    size_t n_delete = n_counted > (size_t)keep_last ? n_counted - (size_t)keep_last : 0;
    for (size_t i = 0; i < n_delete && status == TG_OK; i++) {
        size_t size = strlen(dir) + strlen(list.items[i].name) + 2;
        char *path = malloc(size);
        if (path == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "tg_checkpoint_rotate: out of memory");
            break;
        }
        snprintf(path, size, "%s/%s", dir, list.items[i].name);
        if (unlink(path) == 0) {
            if (removed != NULL) {
                (*removed)++;
            }
        } else if (errno != ENOENT) {
            /* ENOENT: another process deleted it first, which is the goal. */
            status = tg_set_error(TG_ERR_IO, "tg_checkpoint_rotate: cannot delete old checkpoint "
                                  "'%s': %s", path, strerror(errno));
        }
        free(path);
    }
    step_file_list_free(&list);
    if (status == TG_OK) {
        status = remove_stale_temps(dir, prefix);
    }
    return status;
}
