#define _POSIX_C_SOURCE 200809L

#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SCRATCH_FILES 8

typedef struct scratch_file {
    char tag[32];
    char path[4096];
} scratch_file;

static scratch_file scratch_files[MAX_SCRATCH_FILES];
static int scratch_count;

void fuzz_fail(const char *file, int line, const char *expression, const char *format, ...) {
    fprintf(stderr, "%s:%d: contract broken: %s\n  ", file, line, expression);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

void fuzz_check_error(tg_status status, const char *call) {
    FUZZ_CHECK(status > TG_OK && status <= TG_ERR_STATE, "%s returned unknown status %d", call,
               (int)status);
    const char *message = tg_last_error();
    FUZZ_CHECK(message != NULL && message[0] != '\0', "%s failed with %s but left no message",
               call, tg_status_name(status));
}

static void remove_scratch_files(void) {
    for (int i = 0; i < scratch_count; i++) {
        unlink(scratch_files[i].path);
    }
}

/* Returns the scratch file of `tag`, creating it on first use. */
static const char *scratch_path(const char *tag) {
    for (int i = 0; i < scratch_count; i++) {
        if (strcmp(scratch_files[i].tag, tag) == 0) {
            return scratch_files[i].path;
        }
    }
    FUZZ_CHECK(scratch_count < MAX_SCRATCH_FILES, "more than %d scratch tags", MAX_SCRATCH_FILES);
    scratch_file *f = &scratch_files[scratch_count];
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }
    snprintf(f->tag, sizeof f->tag, "%s", tag);
    int n = snprintf(f->path, sizeof f->path, "%s/tapegrad-fuzz-%s-XXXXXX", dir, tag);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof f->path, "scratch path under '%s' is too long", dir);
    int fd = mkstemp(f->path);
    FUZZ_CHECK(fd >= 0, "cannot create scratch file '%s': %s", f->path, strerror(errno));
    close(fd);
    if (scratch_count == 0) {
        atexit(remove_scratch_files);
    }
    scratch_count++;
    return f->path;
}

const char *fuzz_write_scratch(const char *tag, const void *data, size_t size) {
    const char *path = scratch_path(tag);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "cannot open scratch file '%s': %s", path, strerror(errno));
    const char *bytes = data;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        FUZZ_CHECK(n > 0, "writing scratch file '%s' failed: %s", path, strerror(errno));
        done += (size_t)n;
    }
    close(fd);
    return path;
}
