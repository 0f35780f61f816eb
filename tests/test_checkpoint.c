/* Checkpoints: bitwise round trips, every rejection with its message, saves
 * that fail or are killed without damaging the previous checkpoint,
 * rotation, and a cross-check of the written file with h5py.
 *
 * Commands, from the repository root:
 *
 *   cmake -S . -B build -DTAPEGRAD_BUILD_MODELS=OFF -DTAPEGRAD_BUILD_BENCH=OFF
 *   cmake --build build -j2 --target test_checkpoint
 *   cd build && ctest -R test_checkpoint --output-on-failure
 *
 * To run one test:
 *
 *   build/tests/test_checkpoint --filter 'checkpoint/killed_*' --verbose
 *
 * The test h5py_reads_what_library_wrote writes a checkpoint and runs
 *
 *   /usr/bin/python3 tests/checkpoint_read.py FILE
 *
 * and prints the script's output if it fails. It is skipped, with a message
 * saying so, when /usr/bin/python3 cannot import h5py (python3-h5py).
 *
 * Each test works in its own fresh directory under $TMPDIR (or /tmp), removed
 * afterwards. Tests that need a failing or killed save run it in a forked
 * child, which reports back through a pipe and never returns into Criterion.
 */
#define _XOPEN_SOURCE 700

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"

_Static_assert(sizeof(tg_scalar) == 4, "the checkpoint tests link the float32 library");

/* ---- Test directory ------------------------------------------------------ */

static char test_dir[512];

static void make_test_dir(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(test_dir, sizeof test_dir, "%s/tapegrad-checkpoint-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(test_dir), "mkdtemp failed: %s", strerror(errno));
    /* Readable by all, so that a child running as another user can enter it. */
    chmod(test_dir, 0755);
}

static void remove_tree(const char *path) {
    chmod(path, 0755);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
            continue;
        }
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        struct stat info;
        if (lstat(child, &info) == 0 && S_ISDIR(info.st_mode)) {
            remove_tree(child);
        } else {
            unlink(child);
        }
    }
    closedir(dir);
    rmdir(path);
}

static void remove_test_dir(void) {
    remove_tree(test_dir);
}

TestSuite(checkpoint, .init = make_test_dir, .fini = remove_test_dir);

/* Writes "<test_dir>/<name>" into buf. */
static char *test_path(char *buf, size_t buf_size, const char *name) {
    snprintf(buf, buf_size, "%s/%s", test_dir, name);
    return buf;
}

/* Returns the names in dir, sorted and joined by spaces, in buf. */
static char *list_dir(char *buf, size_t buf_size, const char *dir) {
    char names[64][256];
    int count = 0;
    DIR *handle = opendir(dir);
    cr_assert_not_null(handle, "cannot list '%s': %s", dir, strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL && count < 64) {
        if (entry->d_name[0] != '.') {
            snprintf(names[count++], sizeof names[0], "%s", entry->d_name);
        }
    }
    closedir(handle);
    qsort(names, (size_t)count, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    buf[0] = '\0';
    for (int i = 0; i < count; i++) {
        strncat(buf, i > 0 ? " " : "", buf_size - strlen(buf) - 1);
        strncat(buf, names[i], buf_size - strlen(buf) - 1);
    }
    return buf;
}

static void expect_contains(const char *message, const char *fragment) {
    cr_assert(strstr(message, fragment) != NULL, "message \"%s\" does not contain \"%s\"", message,
              fragment);
}

static long file_size(const char *path) {
    struct stat info;
    cr_assert_eq(stat(path, &info), 0, "stat '%s' failed: %s", path, strerror(errno));
    return (long)info.st_size;
}

/* ---- Writing and reading helpers ---------------------------------------- */

static tg_checkpoint_writer *begin_ok(const char *path, const char *kind) {
    tg_status status = TG_ERR_STATE;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, kind, &status);
    cr_assert_not_null(w, "tg_checkpoint_begin('%s') failed: %s", path, tg_last_error());
    cr_assert_eq(status, TG_OK, "status %d after a successful begin", status);
    return w;
}

static tg_checkpoint_reader *open_ok(const char *path, const char *kind) {
    tg_status status = TG_ERR_STATE;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, kind, &status);
    cr_assert_not_null(r, "tg_checkpoint_open('%s') failed: %s", path, tg_last_error());
    cr_assert_eq(status, TG_OK, "status %d after a successful open", status);
    return r;
}

/* Opens path expecting failure with `expected` and returns the message. */
static const char *open_fails(const char *path, const char *kind, tg_status expected) {
    tg_status status = TG_OK;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, kind, &status);
    cr_assert_null(r, "opening '%s' succeeded, expected %s", path, tg_status_name(expected));
    cr_assert_eq(status, expected, "opening '%s': status %s, expected %s (%s)", path,
                 tg_status_name(status), tg_status_name(expected), tg_last_error());
    return tg_last_error();
}

static void commit_ok(tg_checkpoint_writer *w) {
    tg_status status = tg_checkpoint_commit(w);
    cr_assert_eq(status, TG_OK, "commit failed: %s", tg_last_error());
}

/* Fills a tensor with random bit patterns, NaNs, infinities and subnormals
 * included, so that only a bitwise copy reproduces it. */
static void fill_random_bits(tg_tensor *t, tg_rng *rng) {
    for (size_t i = 0; i < t->size; i++) {
        uint32_t bits = (uint32_t)tg_rng_next(rng);
        memcpy(&t->data[i], &bits, sizeof bits);
    }
}

static void expect_same_bits(const char *what, const tg_tensor *actual, const tg_tensor *expected) {
    cr_assert_eq(actual->size, expected->size, "%s: %zu elements, expected %zu", what,
                 actual->size, expected->size);
    for (size_t i = 0; i < actual->size; i++) {
        uint32_t a;
        uint32_t e;
        memcpy(&a, &actual->data[i], sizeof a);
        memcpy(&e, &expected->data[i], sizeof e);
        cr_assert_eq(a, e, "%s: element %zu has bits 0x%08" PRIx32 ", expected 0x%08" PRIx32, what,
                     i, a, e);
    }
}

/* A small checkpoint: model/weight (2, 3) filled with `value`, config n_embd
 * 128, at `step`. */
static void write_small_checkpoint(const char *path, const char *kind, int64_t step,
                                   float value) {
    int shape[2] = {2, 3};
    tg_tensor *weight = tg_tensor_zeros(2, shape);
    tg_tensor_fill(weight, value);
    tg_checkpoint_writer *w = begin_ok(path, kind);
    cr_assert_eq(tg_checkpoint_set_step(w, step), TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_checkpoint_write_tensor(w, "model", "weight", weight), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_int(w, "config", "n_embd", 128), TG_OK, "%s",
                 tg_last_error());
    commit_ok(w);
    tg_tensor_free(weight);
}

/* Checks that path contains the small checkpoint of `step` and `value`. */
static void expect_small_checkpoint(const char *path, int64_t step, float value) {
    tg_checkpoint_reader *r = open_ok(path, NULL);
    cr_assert_eq(tg_checkpoint_step(r), step, "'%s' has step %" PRId64 ", expected %" PRId64, path,
                 tg_checkpoint_step(r), step);
    int shape[2] = {2, 3};
    tg_tensor *weight = tg_tensor_zeros(2, shape);
    cr_assert_eq(tg_checkpoint_read_tensor(r, "model", "weight", weight), TG_OK, "%s",
                 tg_last_error());
    for (size_t i = 0; i < weight->size; i++) {
        cr_assert_eq(weight->data[i], value, "'%s' weight[%zu] is %g, expected %g", path, i,
                     (double)weight->data[i], (double)value);
    }
    tg_tensor_free(weight);
    tg_checkpoint_close(r);
}

/* ---- Round trips --------------------------------------------------------- */

Test(checkpoint, round_trip_every_kind_bitwise) {
    char path[600];
    test_path(path, sizeof path, "all.h5");
    tg_rng rng;
    tg_rng_seed(&rng, 2024);

    /* One tensor of every rank from 0 to TG_MAX_DIMS. */
    const int shapes[TG_MAX_DIMS + 1][TG_MAX_DIMS] = {
        {0}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {1, 2, 1, 2, 3}, {2, 2, 1, 3, 1, 2},
    };
    tg_tensor *saved[TG_MAX_DIMS + 1];
    tg_tensor *loaded[TG_MAX_DIMS + 1];
    for (int ndim = 0; ndim <= TG_MAX_DIMS; ndim++) {
        saved[ndim] = tg_tensor_zeros(ndim, shapes[ndim]);
        loaded[ndim] = tg_tensor_zeros(ndim, shapes[ndim]);
        fill_random_bits(saved[ndim], &rng);
    }
    const float specials[8] = {-0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-40f, 3.4028235e38f,
                               1.0f};
    memcpy(saved[1]->data, specials, 7 * sizeof(float));

    const uint64_t rng_state[5] = {0, 1, UINT64_C(0x8000000000000000), UINT64_MAX,
                                   UINT64_C(0x0123456789abcdef)};
    const int32_t order[6] = {INT32_MIN, -1, 0, 1, 42, INT32_MAX};
    const double doubles[6] = {-0.0, 5e-324, 3e-4, 1.0 / 3.0, INFINITY, -1.7976931348623157e308};

    /* A parameter list in "model", as a layer would build it. */
    tg_param_list params;
    tg_param_list_init(&params);
    int wshape[2] = {4, 3};
    int bshape[1] = {3};
    tg_tensor *weight = tg_tensor_zeros(2, wshape);
    tg_tensor *bias = tg_tensor_zeros(1, bshape);
    fill_random_bits(weight, &rng);
    fill_random_bits(bias, &rng);
    tg_param_list_add(&params, "blocks.0.attn.c_attn", "weight", TG_PARAM_WEIGHT, weight);
    tg_param_list_add(&params, "blocks.0.attn.c_attn", "bias", TG_PARAM_BIAS, bias);

    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_set_step(w, INT64_C(9007199254740993)), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_params(w, "model", &params), TG_OK, "%s", tg_last_error());
    for (int ndim = 0; ndim <= TG_MAX_DIMS; ndim++) {
        char name[32];
        snprintf(name, sizeof name, "rank%d", ndim);
        cr_assert_eq(tg_checkpoint_write_tensor(w, "optimizer/m", name, saved[ndim]), TG_OK,
                     "%s", tg_last_error());
    }
    cr_assert_eq(tg_checkpoint_write_u64(w, "rng", "train", rng_state, 5), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_u64(w, "rng", "empty", NULL, 0), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_i32(w, "data", "order", order, 6), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_int(w, "config", "min", INT64_MIN), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_int(w, "config", "max", INT64_MAX), TG_OK, "%s",
                 tg_last_error());
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", i);
        cr_assert_eq(tg_checkpoint_write_attr_double(w, "schedule", name, doubles[i]), TG_OK,
                     "%s", tg_last_error());
    }
    cr_assert_eq(tg_checkpoint_write_attr_double(w, "schedule", "nan", NAN), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_string(w, "config", "dataset", "tiny \xc3\xa9t\xc3\xa9"),
                 TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_string(w, "config", "empty", ""), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_string(w, NULL, "note", "at the root"), TG_OK, "%s",
                 tg_last_error());
    commit_ok(w);

    /* Read everything back into fresh memory. */
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_step(r), INT64_C(9007199254740993), "step %" PRId64,
                 tg_checkpoint_step(r));
    cr_assert_str_eq(tg_checkpoint_model_kind(r), "charlm");
    cr_assert_eq(tg_checkpoint_format_version(r), TG_CHECKPOINT_FORMAT_VERSION);

    char text[128];
    cr_assert_eq(tg_checkpoint_read_attr_string(r, "/", "format", text, sizeof text), TG_OK);
    cr_assert_str_eq(text, "tapegrad-checkpoint");
    cr_assert_eq(tg_checkpoint_read_attr_string(r, NULL, "library_version", text, sizeof text),
                 TG_OK);
    cr_assert_gt(strlen(text), 0, "library_version is empty");
    cr_assert_eq(tg_checkpoint_read_attr_string(r, NULL, "created", text, sizeof text), TG_OK);
    cr_assert_eq(strlen(text), 20, "created '%s' is not YYYY-MM-DDTHH:MM:SSZ", text);
    cr_assert(text[4] == '-' && text[10] == 'T' && text[19] == 'Z',
              "created '%s' is not YYYY-MM-DDTHH:MM:SSZ", text);

    tg_tensor *weight_back = tg_tensor_zeros(2, wshape);
    tg_tensor *bias_back = tg_tensor_zeros(1, bshape);
    tg_param_list params_back;
    tg_param_list_init(&params_back);
    tg_param_list_add(&params_back, "blocks.0.attn.c_attn", "weight", TG_PARAM_WEIGHT,
                      weight_back);
    tg_param_list_add(&params_back, "blocks.0.attn.c_attn", "bias", TG_PARAM_BIAS, bias_back);
    cr_assert_eq(tg_checkpoint_read_params(r, "model", &params_back), TG_OK, "%s",
                 tg_last_error());
    expect_same_bits("model weight", weight_back, weight);
    expect_same_bits("model bias", bias_back, bias);

    for (int ndim = 0; ndim <= TG_MAX_DIMS; ndim++) {
        char name[32];
        snprintf(name, sizeof name, "rank%d", ndim);
        cr_assert_eq(tg_checkpoint_read_tensor(r, "optimizer/m", name, loaded[ndim]), TG_OK,
                     "%s", tg_last_error());
        expect_same_bits(name, loaded[ndim], saved[ndim]);
    }

    uint64_t rng_back[5] = {0};
    cr_assert_eq(tg_checkpoint_read_u64(r, "rng", "train", rng_back, 5), TG_OK, "%s",
                 tg_last_error());
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(rng_back[i], rng_state[i], "rng/train[%d] is %" PRIu64 ", expected %" PRIu64,
                     i, rng_back[i], rng_state[i]);
    }
    cr_assert_eq(tg_checkpoint_read_u64(r, "rng", "empty", NULL, 0), TG_OK, "%s",
                 tg_last_error());
    size_t length = 99;
    cr_assert_eq(tg_checkpoint_dataset_length(r, "data", "order", &length), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(length, 6, "data/order has length %zu, expected 6", length);
    int32_t order_back[6] = {0};
    cr_assert_eq(tg_checkpoint_read_i32(r, "data", "order", order_back, 6), TG_OK, "%s",
                 tg_last_error());
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(order_back[i], order[i], "data/order[%d] is %" PRId32 ", expected %" PRId32,
                     i, order_back[i], order[i]);
    }

    int64_t integer = 0;
    cr_assert_eq(tg_checkpoint_read_attr_int(r, "config", "min", &integer), TG_OK);
    cr_assert_eq(integer, INT64_MIN, "config/min is %" PRId64, integer);
    cr_assert_eq(tg_checkpoint_read_attr_int(r, "config", "max", &integer), TG_OK);
    cr_assert_eq(integer, INT64_MAX, "config/max is %" PRId64, integer);
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", i);
        double value = 0;
        cr_assert_eq(tg_checkpoint_read_attr_double(r, "schedule", name, &value), TG_OK);
        cr_assert(memcmp(&value, &doubles[i], sizeof value) == 0,
                  "schedule/%s is %.17g, expected %.17g bitwise", name, value, doubles[i]);
    }
    double nan_back = 0;
    cr_assert_eq(tg_checkpoint_read_attr_double(r, "schedule", "nan", &nan_back), TG_OK);
    cr_assert(isnan(nan_back), "schedule/nan is %g", nan_back);
    cr_assert_eq(tg_checkpoint_read_attr_string(r, "config", "dataset", text, sizeof text), TG_OK);
    cr_assert_str_eq(text, "tiny \xc3\xa9t\xc3\xa9");
    cr_assert_eq(tg_checkpoint_read_attr_string(r, "config", "empty", text, sizeof text), TG_OK);
    cr_assert_str_eq(text, "");
    cr_assert_eq(tg_checkpoint_read_attr_string(r, "", "note", text, sizeof text), TG_OK);
    cr_assert_str_eq(text, "at the root");

    cr_assert(tg_checkpoint_has(r, "optimizer/m/rank3"), "optimizer/m/rank3 not found");
    cr_assert(tg_checkpoint_has(r, "model"), "group model not found");
    cr_assert(!tg_checkpoint_has(r, "ema"), "group ema found in a checkpoint without it");
    cr_assert(!tg_checkpoint_has(r, "ema/weight"), "ema/weight found");

    tg_checkpoint_close(r);
    for (int ndim = 0; ndim <= TG_MAX_DIMS; ndim++) {
        tg_tensor_free(saved[ndim]);
        tg_tensor_free(loaded[ndim]);
    }
    tg_param_list_free(&params);
    tg_param_list_free(&params_back);
    tg_tensor_free(weight);
    tg_tensor_free(bias);
    tg_tensor_free(weight_back);
    tg_tensor_free(bias_back);
}

Test(checkpoint, commit_replaces_existing_file) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.5f);
    write_small_checkpoint(path, "charlm", 2, 2.5f);
    expect_small_checkpoint(path, 2, 2.5f);
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "ckpt.h5");
}

Test(checkpoint, h5ls_lists_written_layout) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 3, 1.0f);
    char command[1400];
    snprintf(command, sizeof command, "h5ls -r '%s' 2>&1", path);
    FILE *out = popen(command, "r");
    cr_assert_not_null(out, "popen failed: %s", strerror(errno));
    char listing[2048] = "";
    size_t n = fread(listing, 1, sizeof listing - 1, out);
    listing[n] = '\0';
    int exit_status = pclose(out);
    if (WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 127) {
        cr_skip_test("h5ls is not installed (Debian package hdf5-tools); output: %s", listing);
    }
    cr_assert_eq(exit_status, 0, "h5ls failed: %s", listing);
    expect_contains(listing, "/model/weight            Dataset {2, 3}");
    expect_contains(listing, "/config                  Group");
}

/* ---- Rejections when opening -------------------------------------------- */

Test(checkpoint, rejects_missing_file) {
    char path[600];
    test_path(path, sizeof path, "absent.h5");
    const char *message = open_fails(path, "charlm", TG_ERR_IO);
    expect_contains(message, path);
    expect_contains(message, "No such file or directory");
}

Test(checkpoint, rejects_directory) {
    const char *message = open_fails(test_dir, "charlm", TG_ERR_IO);
    expect_contains(message, test_dir);
    expect_contains(message, "not a regular file");
}

Test(checkpoint, rejects_text_file) {
    char path[600];
    test_path(path, sizeof path, "notes.h5");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("step 100: loss 2.31\nthis is a training log, not a checkpoint\n", f);
    fclose(f);
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "is not an HDF5 file");
}

Test(checkpoint, rejects_empty_file) {
    char path[600];
    test_path(path, sizeof path, "empty.h5");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "is empty");
}

/* Copies the first `length` bytes of `from` to `to`. */
static void copy_prefix(const char *from, const char *to, long length) {
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    cr_assert(in != NULL && out != NULL, "cannot copy '%s' to '%s'", from, to);
    for (long i = 0; i < length; i++) {
        int c = fgetc(in);
        cr_assert_neq(c, EOF, "'%s' is shorter than %ld bytes", from, length);
        fputc(c, out);
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0, "writing '%s' failed", to);
}

Test(checkpoint, detects_changed_tensor_bytes) {
    char path[600];
    test_path(path, sizeof path, "flipped.h5");
    /* 2 x 3 elements of 1234.5f, whose bytes 00 50 9a 44 occur nowhere else. */
    write_small_checkpoint(path, "charlm", 7, 1234.5f);
    const unsigned char pattern[4] = {0x00, 0x50, 0x9a, 0x44};

    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "cannot open '%s'", path);
    long size = file_size(path);
    unsigned char *bytes = malloc((size_t)size);
    cr_assert_not_null(bytes);
    cr_assert_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
    long data_at = -1;
    for (long i = 0; i + 24 <= size && data_at < 0; i++) {
        if (memcmp(bytes + i, pattern, 4) == 0 && memcmp(bytes + i + 20, pattern, 4) == 0) {
            data_at = i;
        }
    }
    cr_assert_geq(data_at, 0, "the tensor's elements were not found in '%s'", path);
    /* One bit of the third element's mantissa: 1234.5 becomes 1234.5001. */
    bytes[data_at + 8] ^= 0x01;
    cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, (size_t)size, f), (size_t)size);
    cr_assert_eq(fclose(f), 0);
    free(bytes);

    tg_checkpoint_reader *r = open_ok(path, "charlm");
    int shape[2] = {2, 3};
    tg_tensor *weight = tg_tensor_zeros(2, shape);
    tg_status status = tg_checkpoint_read_tensor(r, "model", "weight", weight);
    cr_assert_neq(status, TG_OK, "a tensor with a changed byte was read without an error");
    expect_contains(tg_last_error(), "model/weight");
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(), "Fletcher32 checksum");
    tg_tensor_free(weight);
    tg_checkpoint_close(r);
}

Test(checkpoint, rejects_truncated_file) {
    char path[600];
    char cut[600];
    test_path(path, sizeof path, "whole.h5");
    test_path(cut, sizeof cut, "cut.h5");
    write_small_checkpoint(path, "charlm", 7, 0.5f);
    long size = file_size(path);
    /* Cuts inside the superblock, inside the metadata, in the middle and at
     * the last byte. */
    const long lengths[] = {8, 20, 100, 1000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        copy_prefix(path, cut, lengths[i]);
        const char *message = open_fails(cut, "charlm", TG_ERR_FORMAT);
        expect_contains(message, cut);
        expect_contains(message, "truncated");
    }
    /* Below the 8-byte signature the file no longer looks like HDF5. */
    copy_prefix(path, cut, 5);
    expect_contains(open_fails(cut, "charlm", TG_ERR_FORMAT), "is not an HDF5 file");
}

/* Rewrites root attribute `name` of an existing checkpoint with HDF5 itself,
 * as another program (or a future version) would have written it. */
static void rewrite_root_attr(const char *path, const char *name, hid_t type, const void *value) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0, "H5Fopen('%s') failed", path);
    if (H5Aexists(file, name) > 0) {
        cr_assert_geq(H5Adelete(file, name), 0, "H5Adelete('%s') failed", name);
    }
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "H5Acreate2('%s') failed", name);
    cr_assert_geq(H5Awrite(attr, type, value), 0, "H5Awrite('%s') failed", name);
    H5Aclose(attr);
    H5Sclose(space);
    H5Fclose(file);
}

static void rewrite_root_string(const char *path, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    rewrite_root_attr(path, name, type, &value);
    H5Tclose(type);
}

Test(checkpoint, rejects_unknown_format_name) {
    char path[600];
    test_path(path, sizeof path, "other.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    rewrite_root_string(path, "format", "keras-weights");
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "has format 'keras-weights', expected 'tapegrad-checkpoint'");
}

Test(checkpoint, reads_strings_of_other_writers) {
    char path[600];
    test_path(path, sizeof path, "ascii.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    /* A fixed-length, space-padded ASCII string, as Fortran or h5py's bytes
     * values store them. */
    hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 8);
    H5Tset_strpad(fixed, H5T_STR_SPACEPAD);
    rewrite_root_attr(path, "model_kind", fixed, "charlm  ");
    H5Tclose(fixed);
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    cr_assert_str_eq(tg_checkpoint_model_kind(r), "charlm");
    tg_checkpoint_close(r);
}

Test(checkpoint, rejects_hdf5_file_without_format) {
    char path[600];
    test_path(path, sizeof path, "plain.h5");
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(file, 0, "H5Fcreate('%s') failed", path);
    H5Fclose(file);
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "not a tapegrad checkpoint: it has no root attribute 'format'");
}

Test(checkpoint, rejects_newer_format_version) {
    char path[600];
    test_path(path, sizeof path, "future.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    int64_t version = TG_CHECKPOINT_FORMAT_VERSION + 1;
    rewrite_root_attr(path, "format_version", H5T_NATIVE_INT64, &version);
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "has format version 2, newer than version 1");
}

Test(checkpoint, rejects_format_version_of_wrong_type) {
    char path[600];
    test_path(path, sizeof path, "typed.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    rewrite_root_string(path, "format_version", "1");
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, "attribute 'format_version' is string, expected an integer");
}

Test(checkpoint, rejects_other_model_kind) {
    char path[600];
    test_path(path, sizeof path, "ddpm.h5");
    write_small_checkpoint(path, "ddpm", 1, 1.0f);
    const char *message = open_fails(path, "charlm", TG_ERR_FORMAT);
    expect_contains(message, path);
    expect_contains(message, "holds a 'ddpm' model, expected 'charlm'");
    /* NULL accepts any kind. */
    tg_checkpoint_close(open_ok(path, NULL));
}

/* ---- Rejections when reading values -------------------------------------- */

Test(checkpoint, names_missing_tensor) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    int shape[1] = {4};
    tg_tensor *t = tg_tensor_zeros(1, shape);
    tg_status status = tg_checkpoint_read_tensor(r, "model", "blocks.3.mlp.c_fc.weight", t);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(), "has no dataset 'model/blocks.3.mlp.c_fc.weight'");
    status = tg_checkpoint_read_tensor(r, "ema", "weight", t);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no dataset 'ema/weight'");
    status = tg_checkpoint_read_tensor(r, NULL, "model", t);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "'model' is not a dataset");
    tg_tensor_free(t);
    tg_checkpoint_close(r);
}

Test(checkpoint, names_both_shapes_on_mismatch) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    int shape[2] = {3, 2};
    tg_tensor *t = tg_tensor_zeros(2, shape);
    tg_tensor_fill(t, -7.0f);
    tg_status status = tg_checkpoint_read_tensor(r, "model", "weight", t);
    cr_assert_eq(status, TG_ERR_SHAPE, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(), "dataset 'model/weight' has shape (2, 3), expected (3, 2)");
    for (size_t i = 0; i < t->size; i++) {
        cr_assert_eq(t->data[i], -7.0f, "element %zu changed to %g", i, (double)t->data[i]);
    }
    int flat_shape[1] = {6};
    tg_tensor *flat = tg_tensor_zeros(1, flat_shape);
    status = tg_checkpoint_read_tensor(r, "model", "weight", flat);
    cr_assert_eq(status, TG_ERR_SHAPE, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has shape (2, 3), expected (6)");
    tg_tensor_free(flat);
    tg_tensor_free(t);
    tg_checkpoint_close(r);
}

Test(checkpoint, checks_array_types_and_lengths) {
    char path[600];
    test_path(path, sizeof path, "arrays.h5");
    const uint64_t state[4] = {1, 2, 3, 4};
    const int32_t order[3] = {2, 0, 1};
    tg_checkpoint_writer *w = begin_ok(path, "ddpm");
    tg_checkpoint_set_step(w, 1);
    tg_checkpoint_write_u64(w, "rng", "train", state, 4);
    tg_checkpoint_write_i32(w, "data", "order", order, 3);
    commit_ok(w);

    tg_checkpoint_reader *r = open_ok(path, "ddpm");
    uint64_t state_back[5];
    tg_status status = tg_checkpoint_read_u64(r, "rng", "train", state_back, 5);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'rng/train' has 4 elements, expected 5");
    status = tg_checkpoint_read_u64(r, "data", "order", state_back, 3);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'data/order' is int32, expected uint64");
    int32_t order_back[4];
    status = tg_checkpoint_read_i32(r, "rng", "train", order_back, 4);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'rng/train' is uint64, expected int32");
    status = tg_checkpoint_read_i32(r, "rng", "missing", order_back, 4);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no dataset 'rng/missing'");
    int shape[1] = {4};
    tg_tensor *t = tg_tensor_zeros(1, shape);
    status = tg_checkpoint_read_tensor(r, "rng", "train", t);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'rng/train' is uint64, expected float32");
    tg_tensor_free(t);
    tg_checkpoint_close(r);
}

Test(checkpoint, checks_attribute_types) {
    char path[600];
    test_path(path, sizeof path, "attrs.h5");
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    tg_checkpoint_set_step(w, 1);
    tg_checkpoint_write_attr_int(w, "config", "n_embd", 128);
    tg_checkpoint_write_attr_double(w, "config", "lr", 3e-4);
    tg_checkpoint_write_attr_string(w, "config", "dataset", "shakespeare");
    commit_ok(w);

    tg_checkpoint_reader *r = open_ok(path, "charlm");
    double value;
    tg_status status = tg_checkpoint_read_attr_double(r, "config", "n_embd", &value);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(),
                    "attribute 'config/n_embd' is int64, expected a floating-point number");
    int64_t integer;
    status = tg_checkpoint_read_attr_int(r, "config", "lr", &integer);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "attribute 'config/lr' is float64, expected an integer");
    char text[8];
    status = tg_checkpoint_read_attr_string(r, "config", "n_embd", text, sizeof text);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "attribute 'config/n_embd' is int64, expected a string");
    status = tg_checkpoint_read_attr_string(r, "config", "dataset", text, sizeof text);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has 11 characters, more than the buffer of 7 holds");
    status = tg_checkpoint_read_attr_int(r, "config", "n_head", &integer);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no attribute 'n_head' in group 'config'");
    status = tg_checkpoint_read_attr_int(r, "optimizer", "beta1", &integer);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no attribute 'beta1' in group 'optimizer'");
    tg_checkpoint_close(r);
}

Test(checkpoint, reports_configuration_differences) {
    char path[600];
    test_path(path, sizeof path, "config.h5");
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    tg_checkpoint_set_step(w, 1);
    tg_checkpoint_write_attr_int(w, "config", "n_embd", 128);
    tg_checkpoint_write_attr_double(w, "config", "lr", 3e-4);
    tg_checkpoint_write_attr_string(w, "config", "dataset", "shakespeare");
    tg_checkpoint_write_attr_int(w, "schedule", "warmup_steps", 100);
    commit_ok(w);

    tg_checkpoint_reader *r = open_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_expect_int(r, "config", "n_embd", 128), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_double(r, "config", "lr", 3e-4), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_string(r, "config", "dataset", "shakespeare"), TG_OK, "%s",
                 tg_last_error());

    tg_status status = tg_checkpoint_expect_int(r, "config", "n_embd", 256);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(),
                    "configuration field 'n_embd' differs: checkpoint has 128, expected 256");
    status = tg_checkpoint_expect_double(r, "config", "lr", 1e-3);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "configuration field 'lr' differs: checkpoint has "
                                     "0.00029999999999999997, expected 0.001");
    status = tg_checkpoint_expect_string(r, "config", "dataset", "mnist");
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "configuration field 'dataset' differs: checkpoint has "
                                     "'shakespeare', expected 'mnist'");
    status = tg_checkpoint_expect_int(r, "schedule", "warmup_steps", 0);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "configuration field 'schedule/warmup_steps' differs: "
                                     "checkpoint has 100, expected 0");
    status = tg_checkpoint_expect_int(r, "config", "n_layer", 4);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no attribute 'n_layer' in group 'config'");
    tg_checkpoint_close(r);
}

/* Builds a list of `count` parameters "layers.<i>.weight" of shape (2, i+1). */
static void make_params(tg_param_list *list, tg_tensor **tensors, int count, float value) {
    tg_param_list_init(list);
    for (int i = 0; i < count; i++) {
        int shape[2] = {2, i + 1};
        tensors[i] = tg_tensor_zeros(2, shape);
        tg_tensor_fill(tensors[i], value + (float)i);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d", i);
        tg_param_list_add(list, prefix, "weight", TG_PARAM_WEIGHT, tensors[i]);
    }
}

static void free_params(tg_param_list *list, tg_tensor **tensors, int count) {
    for (int i = 0; i < count; i++) {
        tg_tensor_free(tensors[i]);
    }
    tg_param_list_free(list);
}

static void expect_params_untouched(tg_tensor **tensors, int count, float value) {
    for (int i = 0; i < count; i++) {
        for (size_t j = 0; j < tensors[i]->size; j++) {
            cr_assert_eq(tensors[i]->data[j], value + (float)i,
                         "parameter %d element %zu changed to %g by a failed read", i, j,
                         (double)tensors[i]->data[j]);
        }
    }
}

Test(checkpoint, param_mismatch_changes_no_tensor) {
    char path[600];
    test_path(path, sizeof path, "params.h5");
    tg_param_list saved;
    tg_tensor *saved_tensors[3];
    make_params(&saved, saved_tensors, 3, 10.0f);
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    tg_checkpoint_set_step(w, 1);
    tg_checkpoint_write_params(w, "model", &saved);
    commit_ok(w);
    tg_checkpoint_reader *r = open_ok(path, "charlm");

    /* The model has a parameter the checkpoint lacks. */
    tg_param_list more;
    tg_tensor *more_tensors[4];
    make_params(&more, more_tensors, 4, 0.0f);
    tg_status status = tg_checkpoint_read_params(r, "model", &more);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no dataset 'model/layers.3.weight'");
    expect_params_untouched(more_tensors, 4, 0.0f);

    /* The checkpoint has a parameter the model lacks. */
    tg_param_list fewer;
    tg_tensor *fewer_tensors[2];
    make_params(&fewer, fewer_tensors, 2, 0.0f);
    status = tg_checkpoint_read_params(r, "model", &fewer);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "group 'model' has 'layers.2.weight', which is not a "
                                     "parameter of the model (2 parameters expected, 3 stored)");
    expect_params_untouched(fewer_tensors, 2, 0.0f);

    /* Same names, one shape differs: the last one, so the others were
     * checked first and must still be untouched. */
    tg_param_list reshaped;
    tg_tensor *reshaped_tensors[3];
    make_params(&reshaped, reshaped_tensors, 3, 0.0f);
    int wrong[2] = {3, 2};
    tg_tensor_free(reshaped_tensors[2]);
    reshaped_tensors[2] = tg_tensor_zeros(2, wrong);
    tg_tensor_fill(reshaped_tensors[2], 2.0f);
    reshaped.items[2].tensor = reshaped_tensors[2];
    status = tg_checkpoint_read_params(r, "model", &reshaped);
    cr_assert_eq(status, TG_ERR_SHAPE, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'model/layers.2.weight' has shape (2, 3), "
                                     "expected (3, 2)");
    expect_params_untouched(reshaped_tensors, 3, 0.0f);

    status = tg_checkpoint_read_params(r, "ema", &saved);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "has no group 'ema'");

    /* The matching list reads. */
    tg_param_list same;
    tg_tensor *same_tensors[3];
    make_params(&same, same_tensors, 3, 0.0f);
    cr_assert_eq(tg_checkpoint_read_params(r, "model", &same), TG_OK, "%s", tg_last_error());
    expect_params_untouched(same_tensors, 3, 10.0f);

    tg_checkpoint_close(r);
    free_params(&saved, saved_tensors, 3);
    free_params(&more, more_tensors, 4);
    free_params(&fewer, fewer_tensors, 2);
    free_params(&reshaped, reshaped_tensors, 3);
    free_params(&same, same_tensors, 3);
}

/* ---- Writer errors ------------------------------------------------------- */

Test(checkpoint, first_write_error_sticks_until_commit) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);

    int shape[1] = {2};
    tg_tensor *t = tg_tensor_ones(1, shape);
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    tg_checkpoint_set_step(w, 2);
    cr_assert_eq(tg_checkpoint_write_tensor(w, "model", "weight", t), TG_OK, "%s",
                 tg_last_error());
    tg_status status = tg_checkpoint_write_tensor(w, "model", "weight", t);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'model/weight' is written twice");

    /* Later calls do nothing and return the first error. */
    tg_clear_error();
    status = tg_checkpoint_write_attr_int(w, "config", "n_embd", 1);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "dataset 'model/weight' is written twice");
    tg_clear_error();
    status = tg_checkpoint_commit(w);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(), "dataset 'model/weight' is written twice");

    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "ckpt.h5");
    expect_small_checkpoint(path, 1, 1.0f);
    tg_tensor_free(t);
}

Test(checkpoint, duplicate_attribute_is_rejected) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_write_attr_double(w, "schedule", "lr", 1.0), TG_OK);
    tg_status status = tg_checkpoint_write_attr_int(w, "schedule", "lr", 1);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "attribute 'schedule/lr' is written twice");
    tg_checkpoint_abort(w);
}

Test(checkpoint, commit_requires_step) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    tg_status status = tg_checkpoint_commit(w);
    cr_assert_eq(status, TG_ERR_STATE, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "call tg_checkpoint_set_step");
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "");
}

Test(checkpoint, abort_removes_temporary_file) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    char names[256];
    list_dir(names, sizeof names, test_dir);
    cr_assert(strstr(names, "ckpt.h5.tmp.") != NULL, "no temporary file during a save: '%s'",
              names);
    tg_checkpoint_set_step(w, 2);
    tg_checkpoint_abort(w);
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "ckpt.h5");
    expect_small_checkpoint(path, 1, 1.0f);
}

Test(checkpoint, begin_rejects_bad_arguments) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    tg_status status = TG_OK;
    cr_assert_null(tg_checkpoint_begin(path, "", &status));
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "model kind");
    cr_assert_null(tg_checkpoint_begin("", "charlm", &status));
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "");
}

Test(checkpoint, missing_directory_fails_at_begin) {
    char path[600];
    test_path(path, sizeof path, "no-such-dir/ckpt.h5");
    tg_status status = TG_OK;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, "charlm", &status);
    cr_assert_null(w);
    cr_assert_eq(status, TG_ERR_IO, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), path);
    expect_contains(tg_last_error(), "No such file or directory");
}

/* What a forked child reports: the status of its save and the message. */
typedef struct child_report {
    tg_status status;
    char message[1024];
} child_report;

/* Exit code of a child that could not set itself up (not a test failure). */
#define CHILD_SETUP_FAILED 3

typedef tg_status (*child_fn)(const char *path);

/* Runs fn(path) in a child process and returns its report. Returns false if
 * the child could not set itself up, with its reason in the report. */
static bool run_in_child(child_fn fn, const char *path, child_report *report) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0, "pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        child_report out;
        memset(&out, 0, sizeof out);
        out.status = fn(path);
        snprintf(out.message, sizeof out.message, "%s", tg_last_error());
        ssize_t written = write(fds[1], &out, sizeof out);
        _exit(written == (ssize_t)sizeof out ? 0 : 1);
    }
    close(fds[1]);
    memset(report, 0, sizeof *report);
    ssize_t n = read(fds[0], report, sizeof *report);
    close(fds[0]);
    int wait_status = 0;
    cr_assert_eq(waitpid(pid, &wait_status, 0), pid, "waitpid failed: %s", strerror(errno));
    if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == CHILD_SETUP_FAILED) {
        return false;
    }
    cr_assert(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0,
              "child ended abnormally (wait status 0x%x)", wait_status);
    cr_assert_eq(n, (ssize_t)sizeof *report, "child reported %zd bytes", n);
    return true;
}

/* Saves a checkpoint with a 1 MiB tensor at path, step 2. */
static tg_status save_large(const char *path) {
    int shape[1] = {256 * 1024};
    tg_tensor *t = tg_tensor_ones(1, shape);
    tg_status status;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, "charlm", &status);
    if (w == NULL) {
        tg_tensor_free(t);
        return status;
    }
    tg_checkpoint_set_step(w, 2);
    tg_checkpoint_write_tensor(w, "model", "weight", t);
    status = tg_checkpoint_commit(w);
    tg_tensor_free(t);
    return status;
}

static tg_status save_as_nobody(const char *path) {
    /* Root may write into any directory, so switch to the unprivileged user
     * "nobody" (uid 65534) first. */
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
        fprintf(stderr, "cannot switch to user nobody: %s\n", strerror(errno));
        _exit(CHILD_SETUP_FAILED);
    }
    return save_large(path);
}

Test(checkpoint, read_only_directory_keeps_old_file) {
    char ro_dir[600];
    char path[700];
    test_path(ro_dir, sizeof ro_dir, "read-only");
    cr_assert_eq(mkdir(ro_dir, 0755), 0, "mkdir failed: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/ckpt.h5", ro_dir);
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    cr_assert_eq(chmod(ro_dir, 0555), 0, "chmod failed: %s", strerror(errno));

    child_report report;
    if (!run_in_child(save_as_nobody, path, &report)) {
        chmod(ro_dir, 0755);
        cr_skip_test("running as root and cannot switch to user nobody, so a read-only "
                     "directory cannot be made");
    }
    chmod(ro_dir, 0755);
    cr_assert_eq(report.status, TG_ERR_IO, "status %s: %s", tg_status_name(report.status),
                 report.message);
    expect_contains(report.message, path);
    expect_contains(report.message, "Permission denied");
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, ro_dir), "ckpt.h5");
    expect_small_checkpoint(path, 1, 1.0f);
}

static tg_status save_over_size_limit(const char *path) {
    /* Writes past RLIMIT_FSIZE then fail with EFBIG instead of killing the
     * process with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) {
        fprintf(stderr, "setrlimit failed: %s\n", strerror(errno));
        _exit(CHILD_SETUP_FAILED);
    }
    return save_large(path);
}

Test(checkpoint, file_size_limit_keeps_old_file) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    write_small_checkpoint(path, "charlm", 1, 1.0f);
    cr_assert_lt(file_size(path), 64 * 1024, "the old checkpoint is over the 64 KiB limit");

    child_report report;
    cr_assert(run_in_child(save_over_size_limit, path, &report), "setrlimit failed");
    cr_assert_eq(report.status, TG_ERR_IO, "status %s: %s", tg_status_name(report.status),
                 report.message);
    expect_contains(report.message, path);
    expect_contains(report.message, "File too large");
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "ckpt.h5");
    expect_small_checkpoint(path, 1, 1.0f);
}

Test(checkpoint, library_prints_nothing_on_errors) {
    char path[600];
    char log_path[600];
    test_path(path, sizeof path, "cut.h5");
    test_path(log_path, sizeof log_path, "stderr.log");
    char whole[600];
    test_path(whole, sizeof whole, "whole.h5");
    write_small_checkpoint(whole, "charlm", 1, 1.0f);
    copy_prefix(whole, path, file_size(whole) / 2);

    /* Send stderr and stdout to a file while HDF5 calls fail. */
    fflush(stderr);
    fflush(stdout);
    int saved_err = dup(2);
    int saved_out = dup(1);
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(log, 0);
    dup2(log, 2);
    dup2(log, 1);

    tg_status status;
    tg_checkpoint_reader *bad = tg_checkpoint_open(path, "charlm", &status);
    tg_checkpoint_reader *r = tg_checkpoint_open(whole, "charlm", &status);
    int shape[1] = {3};
    tg_tensor *t = tg_tensor_zeros(1, shape);
    tg_status missing = tg_checkpoint_read_tensor(r, "model", "absent", t);
    tg_status mis_shaped = tg_checkpoint_read_tensor(r, "model", "weight", t);
    int64_t integer;
    tg_status no_attr = tg_checkpoint_read_attr_int(r, "model", "absent", &integer);
    tg_checkpoint_close(r);
    tg_checkpoint_writer *w = tg_checkpoint_begin(whole, "charlm", &status);
    tg_checkpoint_write_tensor(w, "model", "weight", t);
    tg_status twice = tg_checkpoint_write_tensor(w, "model", "weight", t);
    tg_checkpoint_abort(w);

    fflush(stderr);
    fflush(stdout);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    close(log);
    tg_tensor_free(t);

    cr_assert_null(bad, "the truncated file opened");
    cr_assert_eq(missing, TG_ERR_FORMAT, "status %s", tg_status_name(missing));
    cr_assert_eq(mis_shaped, TG_ERR_SHAPE, "status %s", tg_status_name(mis_shaped));
    cr_assert_eq(no_attr, TG_ERR_FORMAT, "status %s", tg_status_name(no_attr));
    cr_assert_eq(twice, TG_ERR_INVALID, "status %s", tg_status_name(twice));
    cr_assert_eq(file_size(log_path), 0, "the library printed %ld bytes", file_size(log_path));
}

/* ---- Killed saves -------------------------------------------------------- */

#define KILL_TENSORS 4
#define KILL_TENSOR_SIZE (1024 * 1024)
#define KILL_ROUNDS 30

/* The value of element i of tensor k in generation g: exact in float32. */
static float generation_value(int64_t g, int k, size_t i) {
    return (float)((g * 7919 + k * 104729 + (int64_t)i) % 1000003);
}

static void fill_generation(tg_tensor **tensors, int64_t g) {
    for (int k = 0; k < KILL_TENSORS; k++) {
        for (size_t i = 0; i < tensors[k]->size; i++) {
            tensors[k]->data[i] = generation_value(g, k, i);
        }
    }
}

static tg_status save_generation(const char *path, tg_tensor **tensors, int64_t g) {
    fill_generation(tensors, g);
    tg_status status;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, "charlm", &status);
    if (w == NULL) {
        return status;
    }
    tg_checkpoint_set_step(w, g);
    for (int k = 0; k < KILL_TENSORS; k++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.weight", k);
        tg_checkpoint_write_tensor(w, "model", name, tensors[k]);
    }
    return tg_checkpoint_commit(w);
}

/* Loads path and checks that every element belongs to its stored step.
 * Returns that step. */
static int64_t load_generation(const char *path, tg_tensor **tensors) {
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    int64_t g = tg_checkpoint_step(r);
    for (int k = 0; k < KILL_TENSORS; k++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.weight", k);
        cr_assert_eq(tg_checkpoint_read_tensor(r, "model", name, tensors[k]), TG_OK, "%s",
                     tg_last_error());
        for (size_t i = 0; i < tensors[k]->size; i++) {
            cr_assert_eq(tensors[k]->data[i], generation_value(g, k, i),
                         "step %" PRId64 " tensor %d element %zu is %g, expected %g: content "
                         "of another save", g, k, i, (double)tensors[k]->data[i],
                         (double)generation_value(g, k, i));
        }
    }
    tg_checkpoint_close(r);
    return g;
}

/* Removes the temporary files killed saves left in test_dir and returns how
 * many there were. */
static int remove_temporary_files(void) {
    DIR *dir = opendir(test_dir);
    cr_assert_not_null(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strstr(entry->d_name, ".tmp.") != NULL) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", test_dir, entry->d_name);
            unlink(path);
            count++;
        }
    }
    closedir(dir);
    return count;
}

static double seconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* A child saves generation after generation of a 16 MiB checkpoint and
 * reports each commit to the parent. The parent kills it with SIGKILL after
 * a delay that grows each round, from 0 to about three save durations. Then
 * the checkpoint must open and contain one whole generation. That generation
 * is the last one reported committed, or the next one when the kill came
 * after the rename but before the report. */
Test(checkpoint, killed_saves_leave_old_or_new_checkpoint, .timeout = 600) {
    char path[600];
    test_path(path, sizeof path, "ckpt.h5");
    tg_tensor *tensors[KILL_TENSORS];
    int shape[1] = {KILL_TENSOR_SIZE};
    for (int k = 0; k < KILL_TENSORS; k++) {
        tensors[k] = tg_tensor_zeros(1, shape);
    }

    double start = seconds_now();
    cr_assert_eq(save_generation(path, tensors, 0), TG_OK, "%s", tg_last_error());
    double save_s = seconds_now() - start;

    int64_t known = 0;
    int interrupted_saves = 0;
    int rounds_with_progress = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0, "pipe failed: %s", strerror(errno));
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            close(fds[0]);
            /* Bounded, in case the parent dies before killing it. */
            for (int64_t g = known + 1; g < known + 1000; g++) {
                if (save_generation(path, tensors, g) != TG_OK) {
                    _exit(1);
                }
                if (write(fds[1], &g, sizeof g) != (ssize_t)sizeof g) {
                    _exit(1);
                }
            }
            _exit(0);
        }
        close(fds[1]);
        double delay_s = 3.0 * save_s * round / KILL_ROUNDS;
        struct timespec delay = {(time_t)delay_s, (long)((delay_s - (double)(time_t)delay_s) *
                                                         1e9)};
        nanosleep(&delay, NULL);
        kill(pid, SIGKILL);
        int wait_status = 0;
        cr_assert_eq(waitpid(pid, &wait_status, 0), pid, "waitpid failed: %s", strerror(errno));
        cr_assert(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL,
                  "round %d: the saving child ended before the kill (wait status 0x%x)", round,
                  wait_status);

        int64_t committed = known;
        int64_t reported;
        while (read(fds[0], &reported, sizeof reported) == (ssize_t)sizeof reported) {
            cr_assert_eq(reported, committed + 1, "round %d: commits out of order", round);
            committed = reported;
        }
        close(fds[0]);

        int64_t loaded = load_generation(path, tensors);
        cr_assert(loaded == committed || loaded == committed + 1,
                  "round %d (kill after %.1f ms): checkpoint holds step %" PRId64 ", expected the "
                  "last committed step %" PRId64 " or the next", round, 1e3 * delay_s, loaded,
                  committed);
        rounds_with_progress += loaded > known;
        interrupted_saves += remove_temporary_files();
        known = loaded;
    }
    /* If no kill had landed inside a save, this test would prove nothing. */
    cr_assert_gt(interrupted_saves, 0, "no kill interrupted a save (one save takes %.1f ms)",
                 1e3 * save_s);
    cr_log_info("%d of %d kills interrupted a save, %d rounds committed a new step; one save "
                "takes %.1f ms", interrupted_saves, KILL_ROUNDS, rounds_with_progress,
                1e3 * save_s);
    for (int k = 0; k < KILL_TENSORS; k++) {
        tg_tensor_free(tensors[k]);
    }
}

/* ---- Names and rotation -------------------------------------------------- */

static void touch(const char *name) {
    char path[600];
    FILE *f = fopen(test_path(path, sizeof path, name), "w");
    cr_assert_not_null(f, "cannot create '%s': %s", path, strerror(errno));
    fclose(f);
}

Test(checkpoint, step_and_best_paths) {
    char buf[128];
    cr_assert_eq(tg_checkpoint_step_path(buf, sizeof buf, "runs/a", "ckpt", 1200), TG_OK);
    cr_assert_str_eq(buf, "runs/a/ckpt-00001200.h5");
    cr_assert_eq(tg_checkpoint_step_path(buf, sizeof buf, "runs/a", "ckpt", 123456789012), TG_OK);
    cr_assert_str_eq(buf, "runs/a/ckpt-123456789012.h5");
    cr_assert_eq(tg_checkpoint_best_path(buf, sizeof buf, "runs/a", "ckpt"), TG_OK);
    cr_assert_str_eq(buf, "runs/a/ckpt-best.h5");
    cr_assert_eq(tg_checkpoint_step_path(buf, sizeof buf, "runs", "ckpt", -1), TG_ERR_INVALID);
    cr_assert_eq(tg_checkpoint_step_path(buf, sizeof buf, "runs", "a/b", 1), TG_ERR_INVALID);
    cr_assert_eq(tg_checkpoint_best_path(buf, sizeof buf, "runs", ""), TG_ERR_INVALID);
    cr_assert_eq(tg_checkpoint_step_path(buf, 10, "runs", "ckpt", 1), TG_ERR_INVALID);
    expect_contains(tg_last_error(), "more than the buffer of 9 holds");
}

Test(checkpoint, rotate_keeps_last_and_best) {
    const char *files[] = {
        "ckpt-00000100.h5", "ckpt-00000200.h5", "ckpt-00000300.h5", "ckpt-00000400.h5",
        "ckpt-1000.h5",     /* unpadded: step 1000, the newest */
        "ckpt-best.h5",     /* the best checkpoint */
        "ema-00000050.h5",  /* another prefix */
        "ckpt-00000500.h5.tmp.1.0", /* a save by process 1, which is always alive */
        "ckpt-00000050.h5.bak", "ckpt-x.h5", "ckpt-.h5", "notes.txt",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        touch(files[i]);
    }
    int removed = -1;
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 3, 1000, &removed), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(removed, 2, "removed %d files, expected 2", removed);
    char names[1024];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-.h5 ckpt-00000050.h5.bak ckpt-00000300.h5 ckpt-00000400.h5 "
                     "ckpt-00000500.h5.tmp.1.0 ckpt-1000.h5 ckpt-best.h5 ckpt-x.h5 "
                     "ema-00000050.h5 notes.txt");

    /* Rotating again changes nothing; keeping one leaves the newest. */
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 3, 1000, &removed), TG_OK);
    cr_assert_eq(removed, 0, "removed %d files on the second rotation", removed);
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 1, 1000, &removed), TG_OK);
    cr_assert_eq(removed, 2, "removed %d files, expected 2", removed);
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-.h5 ckpt-00000050.h5.bak ckpt-00000500.h5.tmp.1.0 ckpt-1000.h5 "
                     "ckpt-best.h5 ckpt-x.h5 ema-00000050.h5 notes.txt");
}

/* A run resumed from step 300 saves step 350 in a folder that still contains
 * the checkpoints 400 and 500 of its earlier continuation. Rotation counts
 * only the steps up to 350, so it keeps the new file and the one resumed
 * from, and leaves the later ones alone. */
Test(checkpoint, rotate_leaves_steps_after_the_saved_one) {
    const char *files[] = {
        "ckpt-00000100.h5", "ckpt-00000200.h5", "ckpt-00000300.h5", "ckpt-00000350.h5",
        "ckpt-00000400.h5", "ckpt-00000500.h5", "ckpt-best.h5",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        touch(files[i]);
    }
    int removed = -1;
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 2, 350, &removed), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(removed, 2, "removed %d files, expected 2", removed);
    char names[512];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-00000300.h5 ckpt-00000350.h5 ckpt-00000400.h5 ckpt-00000500.h5 "
                     "ckpt-best.h5");

    /* The resumed run overwrites 400, so only 500 is left out of the count. */
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 2, 400, &removed), TG_OK);
    cr_assert_eq(removed, 1, "removed %d files, expected 1", removed);
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-00000350.h5 ckpt-00000400.h5 ckpt-00000500.h5 ckpt-best.h5");

    /* A step below every checkpoint deletes nothing. */
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 1, 0, &removed), TG_OK);
    cr_assert_eq(removed, 0, "removed %d files, expected none", removed);
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-00000350.h5 ckpt-00000400.h5 ckpt-00000500.h5 ckpt-best.h5");
}

/* Returns the id of a child process that has exited and been reaped, so no
 * process has it until the kernel hands it out again. */
static pid_t exited_pid(void) {
    pid_t child = fork();
    cr_assert_geq(child, 0, "fork failed: %s", strerror(errno));
    if (child == 0) {
        _exit(0);
    }
    cr_assert_eq(waitpid(child, NULL, 0), child);
    return child;
}

Test(checkpoint, rotate_removes_temps_of_gone_processes) {
    char live[64];
    char gone[64];
    char gone_best[64];
    char other_prefix[64];
    pid_t dead = exited_pid();
    snprintf(live, sizeof live, "ckpt-00000300.h5.tmp.%ld.0", (long)getpid());
    snprintf(gone, sizeof gone, "ckpt-00000200.h5.tmp.%ld.1", (long)dead);
    snprintf(gone_best, sizeof gone_best, "ckpt-best.h5.tmp.%ld.0", (long)dead);
    snprintf(other_prefix, sizeof other_prefix, "ema-00000200.h5.tmp.%ld.0", (long)dead);
    const char *files[] = {
        "ckpt-00000100.h5", live, gone, gone_best, other_prefix,
        "ckpt-00000200.h5.tmp.x.0", "ckpt-00000200.h5.tmp.12.", "notes.tmp.1.0",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        touch(files[i]);
    }
    int removed = -1;
    cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 2, 300, &removed), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(removed, 0, "removed %d step checkpoints, expected none", removed);

    char expected[512];
    snprintf(expected, sizeof expected,
             "ckpt-00000100.h5 ckpt-00000200.h5.tmp.12. ckpt-00000200.h5.tmp.x.0 %s %s "
             "notes.tmp.1.0", live, other_prefix);
    char names[1024];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), expected);
}

Test(checkpoint, rotate_rejects_bad_arguments) {
    touch("ckpt-00000001.h5");
    int removed = -1;
    tg_status status = tg_checkpoint_rotate(test_dir, "ckpt", 0, 1, &removed);
    cr_assert_eq(status, TG_ERR_INVALID, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), "keep_last is 0");
    cr_assert_eq(removed, 0);
    char missing[600];
    test_path(missing, sizeof missing, "absent");
    status = tg_checkpoint_rotate(missing, "ckpt", 2, 1, NULL);
    cr_assert_eq(status, TG_ERR_IO, "status %s", tg_status_name(status));
    expect_contains(tg_last_error(), missing);
    char names[256];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir), "ckpt-00000001.h5");
}

Test(checkpoint, find_latest_picks_highest_step) {
    char path[600];
    int64_t step = 0;
    cr_assert_eq(tg_checkpoint_find_latest(test_dir, "ckpt", path, sizeof path, &step), TG_OK);
    cr_assert_eq(step, -1, "step %" PRId64 " in an empty directory", step);
    cr_assert_str_eq(path, "");

    touch("ckpt-00000900.h5");
    touch("ckpt-00010000.h5");
    touch("ckpt-best.h5");
    touch("ckpt-00099999.h5.tmp.1.0");
    touch("other-00500000.h5");
    cr_assert_eq(tg_checkpoint_find_latest(test_dir, "ckpt", path, sizeof path, &step), TG_OK);
    cr_assert_eq(step, 10000, "step %" PRId64, step);
    char expected[600];
    cr_assert_str_eq(path, test_path(expected, sizeof expected, "ckpt-00010000.h5"));
}

Test(checkpoint, rotation_follows_real_saves) {
    char path[600];
    for (int64_t step = 100; step <= 500; step += 100) {
        cr_assert_eq(tg_checkpoint_step_path(path, sizeof path, test_dir, "ckpt", step), TG_OK);
        write_small_checkpoint(path, "charlm", step, (float)step);
        cr_assert_eq(tg_checkpoint_rotate(test_dir, "ckpt", 2, step, NULL), TG_OK, "%s",
                     tg_last_error());
        if (step == 200) {
            cr_assert_eq(tg_checkpoint_best_path(path, sizeof path, test_dir, "ckpt"), TG_OK);
            write_small_checkpoint(path, "charlm", step, (float)step);
        }
    }
    char names[512];
    cr_assert_str_eq(list_dir(names, sizeof names, test_dir),
                     "ckpt-00000400.h5 ckpt-00000500.h5 ckpt-best.h5");
    int64_t step = 0;
    cr_assert_eq(tg_checkpoint_find_latest(test_dir, "ckpt", path, sizeof path, &step), TG_OK);
    expect_small_checkpoint(path, 500, 500.0f);
    cr_assert_eq(tg_checkpoint_best_path(path, sizeof path, test_dir, "ckpt"), TG_OK);
    expect_small_checkpoint(path, 200, 200.0f);
}

/* ---- Cross-check with h5py ----------------------------------------------- */

/* Writes the checkpoint that tests/checkpoint_read.py expects; keep the two
 * in step. */
static void write_reference_checkpoint(const char *path) {
    int attn_shape[2] = {3, 4};
    int wte_shape[2] = {5, 2};
    tg_tensor *attn = tg_tensor_zeros(2, attn_shape);
    tg_tensor *wte = tg_tensor_zeros(2, wte_shape);
    for (size_t i = 0; i < attn->size; i++) {
        attn->data[i] = (float)i * 0.25f - 1.5f;
    }
    for (size_t i = 0; i < wte->size; i++) {
        wte->data[i] = (i % 2 == 0 ? 1.0f : -1.0f) * ldexpf(1.0f, -(int)i);
    }
    tg_param_list params;
    tg_param_list_init(&params);
    tg_param_list_add(&params, "blocks.0.attn.c_attn", "weight", TG_PARAM_WEIGHT, attn);
    tg_param_list_add(&params, "wte", "weight", TG_PARAM_EMBEDDING, wte);
    const uint64_t state[4] = {0, 1, UINT64_C(1) << 63, UINT64_MAX};
    const int32_t order[5] = {4, 0, 3, 1, 2};

    tg_checkpoint_writer *w = begin_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_set_step(w, 4242), TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_checkpoint_write_params(w, "model", &params), TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_checkpoint_write_u64(w, "rng", "train", state, 4), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_i32(w, "data", "order", order, 5), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_int(w, "config", "n_embd", 128), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_double(w, "config", "lr", 3e-4), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_write_attr_string(w, "config", "dataset", "tiny shakespeare"),
                 TG_OK, "%s", tg_last_error());
    commit_ok(w);
    tg_param_list_free(&params);
    tg_tensor_free(attn);
    tg_tensor_free(wte);
}

/* Exit status of tests/checkpoint_read.py when h5py cannot be imported. */
#define SCRIPT_SKIP 77

Test(checkpoint, h5py_reads_what_library_wrote) {
    char path[600];
    test_path(path, sizeof path, "reference.h5");
    write_reference_checkpoint(path);

    const char *python = "/usr/bin/python3";
    if (access(python, X_OK) != 0) {
        cr_skip_test("%s is missing, so the h5py cross-check cannot run", python);
    }
    char script[1024];
    snprintf(script, sizeof script, "%s/checkpoint_read.py", TG_TESTS_DIR);

    /* Run: /usr/bin/python3 tests/checkpoint_read.py <path>, output captured. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0, "pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(python, python, script, path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char output[8192];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof output - 1 &&
           (n = read(fds[0], output + used, sizeof output - 1 - used)) > 0) {
        used += (size_t)n;
    }
    output[used] = '\0';
    close(fds[0]);
    int wait_status = 0;
    cr_assert_eq(waitpid(pid, &wait_status, 0), pid, "waitpid failed: %s", strerror(errno));
    cr_assert(WIFEXITED(wait_status), "%s %s was killed (wait status 0x%x): %s", python, script,
              wait_status, output);
    if (WEXITSTATUS(wait_status) == SCRIPT_SKIP) {
        cr_skip_test("h5py cannot be imported by %s, so the h5py cross-check is skipped "
                     "(install python3-h5py): %s", python, output);
    }
    cr_assert_eq(WEXITSTATUS(wait_status), 0, "%s %s %s failed with exit status %d:\n%s", python,
                 script, path, WEXITSTATUS(wait_status), output);
    expect_contains(output, "every check passed");
}

/* ---- Committed version-1 file -------------------------------------------- */

/* tests/fixtures/checkpoint/format-v1.h5 was written with h5py by
 * make_fixture.py beside it, from the documented layout alone. */
Test(checkpoint, reads_committed_version1_fixture) {
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/checkpoint/format-v1.h5", TG_TESTS_DIR);
    tg_checkpoint_reader *r = open_ok(path, "charlm");
    cr_assert_eq(tg_checkpoint_step(r), 300, "step %" PRId64, tg_checkpoint_step(r));
    cr_assert_eq(tg_checkpoint_format_version(r), 1);

    int wte_shape[2] = {4, 2};
    int bias_shape[1] = {4};
    tg_tensor *wte = tg_tensor_zeros(2, wte_shape);
    tg_tensor *bias = tg_tensor_zeros(1, bias_shape);
    tg_param_list params;
    tg_param_list_init(&params);
    tg_param_list_add(&params, "wte", "weight", TG_PARAM_EMBEDDING, wte);
    tg_param_list_add(&params, "lm_head", "bias", TG_PARAM_BIAS, bias);
    cr_assert_eq(tg_checkpoint_read_params(r, "model", &params), TG_OK, "%s", tg_last_error());
    for (size_t i = 0; i < wte->size; i++) {
        cr_assert_eq(wte->data[i], (float)i / 8 - 1, "wte.weight[%zu] is %g", i,
                     (double)wte->data[i]);
    }
    for (size_t i = 0; i < bias->size; i++) {
        cr_assert_eq(bias->data[i], (float)i + 0.5f, "lm_head.bias[%zu] is %g", i,
                     (double)bias->data[i]);
    }
    cr_assert_eq(tg_checkpoint_read_params(r, "optimizer/m", &params), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(wte->data[7], 0.25f, "optimizer/m/wte.weight[7] is %g", (double)wte->data[7]);
    cr_assert_eq(bias->data[3], -0.25f, "optimizer/m/lm_head.bias[3] is %g",
                 (double)bias->data[3]);

    uint64_t state[4];
    cr_assert_eq(tg_checkpoint_read_u64(r, "rng", "train", state, 4), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(state[3], UINT64_MAX, "rng/train[3] is %" PRIu64, state[3]);
    int32_t order[3];
    cr_assert_eq(tg_checkpoint_read_i32(r, "data", "order", order, 3), TG_OK, "%s",
                 tg_last_error());
    cr_assert(order[0] == 2 && order[1] == 0 && order[2] == 1, "data/order is %d %d %d",
              order[0], order[1], order[2]);
    int64_t epoch = 0;
    cr_assert_eq(tg_checkpoint_read_attr_int(r, "data", "epoch", &epoch), TG_OK);
    cr_assert_eq(epoch, 4, "data epoch is %" PRId64, epoch);
    cr_assert_eq(tg_checkpoint_expect_int(r, "config", "n_embd", 2), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_double(r, "config", "lr", 3e-4), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_string(r, "config", "dataset", "tiny"), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_double(r, "optimizer", "beta1", 0.9), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_checkpoint_expect_string(r, "schedule", "kind", "cosine"), TG_OK, "%s",
                 tg_last_error());
    cr_assert(!tg_checkpoint_has(r, "ema"), "the fixture has no ema group");

    tg_checkpoint_close(r);
    tg_param_list_free(&params);
    tg_tensor_free(wte);
    tg_tensor_free(bias);
}
