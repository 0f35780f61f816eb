#define _DEFAULT_SOURCE

#include "run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Reads the process id that the holder wrote into the lock file, or 0. */
static long holder_pid(int fd) {
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    return strtol(text, NULL, 10);
}

/* Replaces the lock file's contents with this process's id, so that a
 * rejected process can name the holder. The id only improves that message,
 * so a failed write is ignored. */
static void write_own_pid(int fd) {
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0) {
        ssize_t written = pwrite(fd, text, (size_t)n, 0);
        (void)written;
    }
}

int run_lock_acquire(const char *program, const char *dir, FILE *err) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/.lock", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        fprintf(err, "%s: the --out path '%s' is too long; choose a shorter one\n", program, dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(err, "%s: cannot open the lock file '%s': %s; check that --out is a writable "
                "folder\n", program, path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        long pid = holder_pid(fd);
        close(fd);
        if (error == EWOULDBLOCK) {
            if (pid > 0) {
                fprintf(err, "%s: another process (id %ld) is training in --out folder '%s'; "
                        "wait for it to finish or choose another --out\n", program, pid, dir);
            } else {
                fprintf(err, "%s: another process is training in --out folder '%s'; wait for it "
                        "to finish or choose another --out\n", program, dir);
            }
        } else {
            fprintf(err, "%s: cannot lock '%s': %s\n", program, path, strerror(error));
        }
        return -1;
    }
    write_own_pid(fd);
    return fd;
}

void run_lock_release(int fd) {
    if (fd >= 0) {
        close(fd);
    }
}
