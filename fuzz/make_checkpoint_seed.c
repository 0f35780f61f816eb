/* Writes the checkpoint seeds of fuzz/corpus/checkpoint into a folder.
 * valid.h5 is a checkpoint for model kind "fuzz" with the layout that
 * fuzz_checkpoint.c reads, other-kind.h5 the same for kind "other", and
 * truncated.h5 the first half of valid.h5.
 *
 * Usage: make_checkpoint_seed FOLDER
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "autograd/status.h"
#include "fuzz_util.h"

static int write_seed(const char *folder, const char *name, const char *kind) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    if (fuzz_checkpoint_write_seed(path, kind) != TG_OK) {
        fprintf(stderr, "make_checkpoint_seed: writing '%s' failed: %s\n", path, tg_last_error());
        return 1;
    }
    return 0;
}

/* Copies the first half of folder/valid.h5 to folder/truncated.h5. */
static int write_truncated(const char *folder) {
    char path[4096];
    snprintf(path, sizeof path, "%s/valid.h5", folder);
    FILE *in = fopen(path, "rb");
    struct stat info;
    if (in == NULL || stat(path, &info) != 0) {
        fprintf(stderr, "make_checkpoint_seed: cannot read '%s'\n", path);
        return 1;
    }
    size_t half = (size_t)info.st_size / 2;
    char *bytes = malloc(half);
    size_t got = bytes != NULL ? fread(bytes, 1, half, in) : 0;
    fclose(in);
    snprintf(path, sizeof path, "%s/truncated.h5", folder);
    FILE *out = fopen(path, "wb");
    int failed = got != half || out == NULL || fwrite(bytes, 1, half, out) != half;
    if (out != NULL && fclose(out) != 0) {
        failed = 1;
    }
    free(bytes);
    if (failed) {
        fprintf(stderr, "make_checkpoint_seed: writing '%s' failed\n", path);
    }
    return failed;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_checkpoint_seed FOLDER\n");
        return 2;
    }
    if (write_seed(argv[1], "valid.h5", "fuzz") != 0 ||
        write_seed(argv[1], "other-kind.h5", "other") != 0 || write_truncated(argv[1]) != 0) {
        return 1;
    }
    return 0;
}
