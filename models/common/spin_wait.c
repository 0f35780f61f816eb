#define _POSIX_C_SOURCE 200809L
#include "spin_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void spin_wait_limit(char **argv) {
    if (getenv("GOMP_SPINCOUNT") != NULL || getenv("OMP_WAIT_POLICY") != NULL) {
        return;
    }
    char path[4096];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0 || (size_t)length >= sizeof path - 1) {
        return;
    }
    path[length] = '\0';
    if (setenv("GOMP_SPINCOUNT", SPIN_WAIT_COUNT, 0) != 0) {
        return;
    }
    /* The program's own argv[0], not /proc/self/exe, keeps its process name. */
    execv(path, argv);
    /* Reached only if the exec failed: run on with libgomp's defaults. */
    unsetenv("GOMP_SPINCOUNT");
}

const char *spin_wait_describe(char *buffer, size_t size) {
    const char *spin_count = getenv("GOMP_SPINCOUNT");
    const char *wait_policy = getenv("OMP_WAIT_POLICY");
    snprintf(buffer, size, "GOMP_SPINCOUNT %s, OMP_WAIT_POLICY %s",
             spin_count != NULL ? spin_count : "unset",
             wait_policy != NULL ? wait_policy : "unset");
    return buffer;
}
