/* The run-folder lock of the command-line programs: one holder at a time,
 * a message that names the holder, and release on close. */
#define _DEFAULT_SOURCE

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_lock.h"

static char run_dir[] = "/tmp/tapegrad-run-lock-XXXXXX";

static void make_dir(void) {
    cr_assert_not_null(mkdtemp(run_dir), "mkdtemp failed");
}

static void remove_dir(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/.lock", run_dir);
    remove(path);
    chmod(run_dir, 0700);
    rmdir(run_dir);
}

TestSuite(run_lock, .init = make_dir, .fini = remove_dir);

/* Runs run_lock_acquire and copies what it wrote to err into message. */
static int acquire(char *message, size_t size) {
    FILE *err = tmpfile();
    cr_assert_not_null(err);
    int fd = run_lock_acquire("charlm train", run_dir, err);
    rewind(err);
    size_t n = fread(message, 1, size - 1, err);
    message[n] = '\0';
    fclose(err);
    return fd;
}

Test(run_lock, second_holder_rejected) {
    char message[512];
    int first = acquire(message, sizeof message);
    cr_assert_geq(first, 0, "the first lock failed: %s", message);
    cr_assert_str_empty(message);

    int second = acquire(message, sizeof message);
    cr_assert_eq(second, -1, "a second lock on the same folder succeeded");
    char expected[128];
    snprintf(expected, sizeof expected, "another process (id %ld) is training", (long)getpid());
    cr_assert(strstr(message, expected) != NULL, "message \"%s\" lacks \"%s\"", message,
              expected);
    cr_assert(strstr(message, run_dir) != NULL, "message \"%s\" does not name the folder",
              message);
    cr_assert(strncmp(message, "charlm train: ", 14) == 0, "message \"%s\"", message);

    run_lock_release(first);
    int third = acquire(message, sizeof message);
    cr_assert_geq(third, 0, "the lock was not released: %s", message);
    run_lock_release(third);
}

Test(run_lock, unwritable_folder_rejected) {
    if (geteuid() == 0) {
        cr_skip_test("running as root, which ignores folder permissions");
    }
    chmod(run_dir, 0500);
    char message[512];
    int fd = acquire(message, sizeof message);
    cr_assert_eq(fd, -1);
    cr_assert(strstr(message, "cannot open the lock file") != NULL, "message \"%s\"", message);
}
