/* Inputs that once crashed a parser, hung it or broke one of its contracts.
 *
 * Each folder $TAPEGRAD_TEST_DATA/fuzz_regressions/<target> contains such inputs
 * for the fuzz target fuzz/fuzz_<target>.c (see the README.md there). Every
 * input is replayed through that target's driver, which makes the same calls
 * and contract checks as the fuzzer and aborts on a broken contract
 * (Criterion then reports a crash), and must give a clean result.
 *
 * The checkpoints there point outside themselves or lack a tensor's element;
 * the tests below check that the reader rejects each with a message that
 * says why, and leaves the tensor unchanged.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tapegrad.h"

typedef int (*driver_fn)(const uint8_t *data, size_t size);

static int checkpoint_driver(const uint8_t *data, size_t size) {
    return (int)fuzz_checkpoint_input(data, size);
}

static int idx_driver(const uint8_t *data, size_t size) {
    return (int)fuzz_idx_input(data, size);
}

static int text_driver(const uint8_t *data, size_t size) {
    return (int)fuzz_text_input(data, size);
}

/* The fuzz targets, their drivers, and whether the driver returns
 * cli_parse's 0, 1 or 2 rather than a tg_status. */
static const struct {
    const char *name;
    driver_fn driver;
    bool returns_cli_code;
} targets[] = {
    {"checkpoint", checkpoint_driver, false},
    {"idx", idx_driver, false},
    {"text", text_driver, false},
    {"cli", fuzz_cli_input, true},
};

static void data_path(char *buf, size_t size, const char *relative) {
    const char *root = getenv("TAPEGRAD_TEST_DATA");
    cr_assert_not_null(root, "TAPEGRAD_TEST_DATA is not set; run the tests through ctest");
    snprintf(buf, size, "%s/%s", root, relative);
}

static uint8_t *read_whole_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    cr_assert_not_null(file, "cannot open %s", path);
    cr_assert_eq(fseek(file, 0, SEEK_END), 0, "cannot seek in %s", path);
    long length = ftell(file);
    cr_assert(length >= 0, "cannot measure %s", path);
    rewind(file);
    uint8_t *data = malloc((size_t)length + 1);
    cr_assert_not_null(data, "out of memory for %ld bytes", length);
    *size = fread(data, 1, (size_t)length, file);
    fclose(file);
    cr_assert_eq(*size, (size_t)length, "read %zu of the %ld bytes of %s", *size, length, path);
    return data;
}

/* Replays every file of fuzz_regressions/<target>, if that folder exists,
 * and checks that each gives a clean result. Returns the number of files. */
static int replay_folder(const char *target, driver_fn driver, bool returns_cli_code) {
    char folder[512];
    char relative[128];
    snprintf(relative, sizeof relative, "fuzz_regressions/%s", target);
    data_path(folder, sizeof folder, relative);
    DIR *dir = opendir(folder);
    if (dir == NULL) {
        return 0;
    }
    int count = 0;
    for (struct dirent *entry = readdir(dir); entry != NULL; entry = readdir(dir)) {
        if (entry->d_name[0] == '.') {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", folder, entry->d_name);
        size_t size = 0;
        uint8_t *data = read_whole_file(path, &size);
        tg_clear_error();
        int result = driver(data, size);
        free(data);
        if (returns_cli_code) {
            cr_assert(result >= 0 && result <= 2, "%s: cli_parse returned %d", path, result);
        } else {
            cr_assert(result >= TG_OK && result <= TG_ERR_STATE, "%s: unknown status %d", path,
                      result);
            cr_assert(result == TG_OK || tg_last_error()[0] != '\0',
                      "%s: failed with %s but left no message", path,
                      tg_status_name((tg_status)result));
        }
        count++;
    }
    closedir(dir);
    return count;
}

Test(fuzz_regressions, every_input_gives_clean_result) {
    int total = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        total += replay_folder(targets[i].name, targets[i].driver, targets[i].returns_cli_code);
    }
    cr_assert(total >= 5, "replayed %d inputs, fewer than the 5 checkpoints", total);
}

Test(fuzz_regressions, checkpoint_inputs_fail_on_read) {
    const char *files[] = {"external-link.h5", "soft-link.h5", "external-storage.h5",
                           "virtual.h5", "null-dataspace.h5"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char relative[256];
        char path[1024];
        snprintf(relative, sizeof relative, "fuzz_regressions/checkpoint/%s", files[i]);
        data_path(path, sizeof path, relative);
        size_t size = 0;
        uint8_t *data = read_whole_file(path, &size);
        tg_status status = fuzz_checkpoint_input(data, size);
        free(data);
        cr_assert_eq(status, TG_ERR_FORMAT, "%s gives %s, expected a format error: %s", files[i],
                     tg_status_name(status), tg_last_error());
    }
}

/* ---- Checkpoints that point outside themselves --------------------------- */

/* Opens fuzz_regressions/checkpoint/<file>, which has a valid root. */
static tg_checkpoint_reader *open_hostile(const char *file) {
    char relative[256];
    char path[1024];
    snprintf(relative, sizeof relative, "fuzz_regressions/checkpoint/%s", file);
    data_path(path, sizeof path, relative);
    tg_status status = TG_OK;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, "fuzz", &status);
    cr_assert_not_null(r, "opening %s: %s", path, tg_last_error());
    return r;
}

/* Reads group/name of fuzz_regressions/checkpoint/<file> into a tensor of the given
 * shape and expects TG_ERR_FORMAT with `reason` in the message and the
 * tensor unchanged. */
static void expect_rejected(const char *file, const char *group, const char *name, int ndim,
                            const int *shape, const char *reason) {
    tg_checkpoint_reader *r = open_hostile(file);
    tg_tensor *t = tg_tensor_zeros(ndim, shape);
    cr_assert_not_null(t, "%s", tg_last_error());
    tg_tensor_fill(t, 7.0f);
    tg_status status = tg_checkpoint_read_tensor(r, group, name, t);
    cr_assert_eq(status, TG_ERR_FORMAT, "%s: reading %s/%s returned %s (%s), expected a "
                 "format error", file, group, name, tg_status_name(status), tg_last_error());
    cr_assert(strstr(tg_last_error(), reason) != NULL, "%s: expected \"%s\" in the message: %s",
              file, reason, tg_last_error());
    for (size_t i = 0; i < t->size; i++) {
        cr_assert_eq(t->data[i], 7.0f, "%s: element %zu changed to %g", file, i,
                     (double)t->data[i]);
    }
    tg_tensor_free(t);
    tg_checkpoint_close(r);
}

static const int weight_shape[2] = {2, 3};
static const int bias_shape[1] = {3};

Test(fuzz_regressions, checkpoint_rejects_external_link) {
    expect_rejected("external-link.h5", "model", "weight", 2, weight_shape,
                    "'model/weight' is an external link");
}

Test(fuzz_regressions, checkpoint_rejects_soft_link) {
    expect_rejected("soft-link.h5", "model", "weight", 2, weight_shape,
                    "'model' is a soft link");
}

Test(fuzz_regressions, checkpoint_soft_link_is_not_found) {
    tg_checkpoint_reader *r = open_hostile("soft-link.h5");
    cr_assert_not(tg_checkpoint_has(r, "model/weight"),
                  "tg_checkpoint_has followed the soft link 'model'");
    cr_assert(tg_checkpoint_has(r, "model_data/weight"), "the link's target is missing");
    tg_checkpoint_close(r);
}

Test(fuzz_regressions, checkpoint_rejects_external_storage) {
    expect_rejected("external-storage.h5", "model", "bias", 1, bias_shape,
                    "outside the file (external storage)");
}

Test(fuzz_regressions, checkpoint_rejects_virtual_dataset) {
    expect_rejected("virtual.h5", "model", "bias", 1, bias_shape,
                    "outside the file (a virtual dataset)");
}

Test(fuzz_regressions, checkpoint_rejects_null_dataspace) {
    expect_rejected("null-dataspace.h5", "/", "scale", 0, NULL, "null dataspace");
}

Test(fuzz_regressions, checkpoint_params_behind_soft_link) {
    tg_checkpoint_reader *r = open_hostile("soft-link.h5");
    tg_tensor *weight = tg_tensor_zeros(2, weight_shape);
    tg_tensor *bias = tg_tensor_zeros(1, bias_shape);
    tg_param_list params;
    tg_param_list_init(&params);
    cr_assert_eq(tg_param_list_add(&params, NULL, "weight", TG_PARAM_WEIGHT, weight), TG_OK);
    cr_assert_eq(tg_param_list_add(&params, NULL, "bias", TG_PARAM_BIAS, bias), TG_OK);
    tg_status status = tg_checkpoint_read_params(r, "model", &params);
    cr_assert_eq(status, TG_ERR_FORMAT, "read_params returned %s: %s", tg_status_name(status),
                 tg_last_error());
    cr_assert(strstr(tg_last_error(), "soft link") != NULL, "message: %s", tg_last_error());
    tg_param_list_free(&params);
    tg_tensor_free(weight);
    tg_tensor_free(bias);
    tg_checkpoint_close(r);
}
