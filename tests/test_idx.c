/* IDX files (plain and gzip), their error paths, splits, the pixel scaling,
 * batch gathering and the epoch sampler. The fixtures in
 * $TAPEGRAD_TEST_DATA/idx come from make_fixtures.py there, whose pixel and
 * label formulas pixel_value and label_value repeat. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

static void data_path(char *buf, size_t size, const char *relative) {
    const char *root = getenv("TAPEGRAD_TEST_DATA");
    cr_assert_not_null(root, "TAPEGRAD_TEST_DATA is not set; run the tests through ctest");
    snprintf(buf, size, "%s/idx/%s", root, relative);
}

static uint8_t pixel_value(int item, int row, int col) {
    return (uint8_t)((37 * item + 11 * row + 5 * col) % 256);
}

static uint8_t label_value(int item) {
    return (uint8_t)((3 * item + 1) % 10);
}

static void expect_message_contains(const char *needle) {
    const char *message = tg_last_error();
    cr_assert(strstr(message, needle) != NULL, "expected \"%s\" in the message: %s", needle,
              message);
}

/* Checks every pixel and label of a dataset that contains the fixture items
 * first, first + 1, ..., first + count - 1. */
static void expect_items(const tg_idx_dataset *data, int first, int count) {
    cr_assert_eq(data->count, count, "count %d, expected %d", data->count, count);
    cr_assert_eq(data->rows, 28, "rows %d", data->rows);
    cr_assert_eq(data->cols, 28, "cols %d", data->cols);
    for (int i = 0; i < count; i++) {
        for (int r = 0; r < 28; r++) {
            for (int c = 0; c < 28; c++) {
                uint8_t got = data->pixels[(i * 28 + r) * 28 + c];
                uint8_t expected = pixel_value(first + i, r, c);
                cr_assert_eq(got, expected, "item %d pixel (%d, %d) is %u, expected %u", i, r, c,
                             got, expected);
            }
        }
        cr_assert_eq(data->labels[i], label_value(first + i), "label %d is %u, expected %u", i,
                     data->labels[i], label_value(first + i));
    }
}

static tg_status load_images_fixture(const char *relative, tg_idx_images *images,
                                     char *path, size_t path_size) {
    data_path(path, path_size, relative);
    return tg_idx_load_images(path, images);
}

/* ---- Reading ------------------------------------------------------------- */

Test(idx, gzip_images_and_labels_load) {
    char path[512];
    tg_idx_images images;
    cr_assert_eq(load_images_fixture("train-images-idx3-ubyte.gz", &images, path, sizeof path),
                 TG_OK, "%s", tg_last_error());
    cr_assert_eq(images.count, 5);
    cr_assert_eq(images.rows, 28);
    cr_assert_eq(images.cols, 28);
    cr_assert_eq(images.pixels[0], 0);
    cr_assert_eq(images.pixels[28 * 20 + 7], 255, "pixel (0, 20, 7) is %u",
                 images.pixels[28 * 20 + 7]);
    cr_assert_eq(images.pixels[784 + 1], pixel_value(1, 0, 1));
    tg_idx_images_free(&images);
    cr_assert_null(images.pixels);
    cr_assert_eq(images.count, 0);

    tg_idx_labels labels;
    data_path(path, sizeof path, "train-labels-idx1-ubyte.gz");
    cr_assert_eq(tg_idx_load_labels(path, &labels), TG_OK, "%s", tg_last_error());
    cr_assert_eq(labels.count, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(labels.labels[i], label_value(i), "label %d is %u", i, labels.labels[i]);
    }
    tg_idx_labels_free(&labels);
}

Test(idx, split_loads_gzip_and_plain_files) {
    char folder[512];
    data_path(folder, sizeof folder, "");
    tg_idx_dataset train;
    cr_assert_eq(tg_idx_load_split(folder, "train", &train), TG_OK, "%s", tg_last_error());
    expect_items(&train, 0, 5);

    tg_idx_dataset test;
    cr_assert_eq(tg_idx_load_split(folder, "t10k", &test), TG_OK, "%s", tg_last_error());
    expect_items(&test, 5, 3);

    /* The same train split stored plain, and a folder given without the
     * trailing slash, give the same bytes. */
    char plain_folder[512];
    data_path(plain_folder, sizeof plain_folder, "plain");
    tg_idx_dataset plain;
    cr_assert_eq(tg_idx_load_split(plain_folder, "train", &plain), TG_OK, "%s",
                 tg_last_error());
    cr_assert(memcmp(plain.pixels, train.pixels, 5 * 784) == 0, "plain and gzip pixels differ");
    cr_assert(memcmp(plain.labels, train.labels, 5) == 0, "plain and gzip labels differ");

    tg_idx_dataset_free(&train);
    tg_idx_dataset_free(&test);
    tg_idx_dataset_free(&plain);
    cr_assert_null(train.pixels);
    cr_assert_null(train.labels);
}

Test(idx, split_rejects_unknown_name) {
    tg_idx_dataset data;
    tg_status status = tg_idx_load_split(".", "test", &data);
    cr_assert_eq(status, TG_ERR_INVALID, "status %d", status);
    expect_message_contains("unknown split 'test'");
    expect_message_contains("\"t10k\"");
    cr_assert_null(data.pixels);
}

Test(idx, split_in_missing_folder_names_both_paths) {
    tg_idx_dataset data;
    tg_status status = tg_idx_load_split("/nonexistent/mnist", "train", &data);
    cr_assert_eq(status, TG_ERR_IO, "status %d", status);
    expect_message_contains("'/nonexistent/mnist/train-images-idx3-ubyte.gz'");
    expect_message_contains("'/nonexistent/mnist/train-images-idx3-ubyte'");
    cr_assert_null(data.pixels);

    /* Images present, labels missing: the corrupt/ folder has no labels. */
    char folder[512];
    data_path(folder, sizeof folder, "corrupt");
    status = tg_idx_load_split(folder, "t10k", &data);
    cr_assert_eq(status, TG_ERR_IO, "status %d", status);
    expect_message_contains("t10k-labels-idx1-ubyte.gz");
    cr_assert_null(data.pixels);
}

Test(idx, pair_count_mismatch_names_both_files) {
    char images_path[512];
    char labels_path[512];
    data_path(images_path, sizeof images_path, "t10k-images-idx3-ubyte");
    data_path(labels_path, sizeof labels_path, "train-labels-idx1-ubyte.gz");
    tg_idx_dataset data;
    tg_status status = tg_idx_load_pair(images_path, labels_path, &data);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %d", status);
    expect_message_contains(images_path);
    expect_message_contains(labels_path);
    expect_message_contains("contains 3 images");
    expect_message_contains("contains 5 labels");
    cr_assert_null(data.pixels);
    cr_assert_null(data.labels);
}

/* ---- Error paths --------------------------------------------------------- */

/* A broken file, the loader to run and words the message must contain. */
typedef struct bad_file_case {
    const char *file;
    bool as_labels;
    tg_status status;
    const char *words[3];
} bad_file_case;

static const bad_file_case bad_file_cases[] = {
    {"corrupt/does-not-exist-idx3-ubyte", false, TG_ERR_IO,
     {"cannot open images file", "No such file or directory", NULL}},
    {"corrupt/empty-idx3-ubyte", false, TG_ERR_FORMAT,
     {"ends after 0 bytes, before the 4-byte magic number", NULL, NULL}},
    {"corrupt/short-header-idx3-ubyte", false, TG_ERR_FORMAT,
     {"ends 6 bytes into the 12 bytes of sizes", NULL, NULL}},
    {"corrupt/bad-magic-idx3-ubyte", false, TG_ERR_FORMAT,
     {"magic number 0x12345678, expected 0x00000803", "not an IDX file", NULL}},
    {"corrupt/bad-magic-idx3-ubyte", true, TG_ERR_FORMAT,
     {"magic number 0x12345678, expected 0x00000801", "(labels)", NULL}},
    {"corrupt/float-images-idx3-ubyte", false, TG_ERR_FORMAT,
     {"magic number 0x00000d03, expected 0x00000803", "element type 0x0d (float)",
      "not 0x08 (unsigned byte)"}},
    {"corrupt/matrix-idx2-ubyte", false, TG_ERR_FORMAT,
     {"magic number 0x00000802, expected 0x00000803", "2 dimensions instead of 3", NULL}},
    {"corrupt/matrix-idx2-ubyte", true, TG_ERR_FORMAT,
     {"magic number 0x00000802, expected 0x00000801", "2 dimensions instead of 1", NULL}},
    {"train-labels-idx1-ubyte.gz", false, TG_ERR_FORMAT,
     {"magic number 0x00000801, expected 0x00000803", "1 dimension instead of 3", "swapped"}},
    {"t10k-images-idx3-ubyte", true, TG_ERR_FORMAT,
     {"magic number 0x00000803, expected 0x00000801", "3 dimensions instead of 1", NULL}},
    {"corrupt/zero-rows-idx3-ubyte", false, TG_ERR_FORMAT,
     {"dimension 1 has size 0", NULL, NULL}},
    {"corrupt/truncated-images-idx3-ubyte", false, TG_ERR_FORMAT,
     {"truncated data", "3 x 28 x 28 = 2352 bytes", "only 2000 follow;"}},
    {"corrupt/truncated-images-idx3-ubyte.gz", false, TG_ERR_FORMAT,
     {"truncated data", "2352 bytes", "only 2000 follow"}},
    {"corrupt/cut-off-images-idx3-ubyte.gz", false, TG_ERR_FORMAT,
     {"truncated data", "2352 bytes", "the gzip stream ends early"}},
    {"corrupt/bad-crc-images-idx3-ubyte.gz", false, TG_ERR_FORMAT,
     {"corrupt gzip data (incorrect data check)", NULL, NULL}},
    {"corrupt/trailing-bytes-idx3-ubyte", false, TG_ERR_FORMAT,
     {"more data follows the 3 x 28 x 28 = 2352 bytes", NULL, NULL}},
};

Test(idx, every_broken_file_is_reported) {
    for (size_t c = 0; c < sizeof bad_file_cases / sizeof bad_file_cases[0]; c++) {
        const bad_file_case *bad = &bad_file_cases[c];
        char path[512];
        data_path(path, sizeof path, bad->file);
        tg_status status;
        if (bad->as_labels) {
            tg_idx_labels labels;
            status = tg_idx_load_labels(path, &labels);
            cr_assert_null(labels.labels, "%s: labels left after a failure", bad->file);
        } else {
            tg_idx_images images;
            status = tg_idx_load_images(path, &images);
            cr_assert_null(images.pixels, "%s: pixels left after a failure", bad->file);
        }
        const char *message = tg_last_error();
        cr_assert_eq(status, bad->status, "%s: status %s, expected %s: %s", bad->file,
                     tg_status_name(status), tg_status_name(bad->status), message);
        cr_assert(strstr(message, path) != NULL, "%s: message lacks the path: %s", bad->file,
                  message);
        for (int w = 0; w < 3 && bad->words[w] != NULL; w++) {
            cr_assert(strstr(message, bad->words[w]) != NULL, "%s: expected \"%s\" in: %s",
                      bad->file, bad->words[w], message);
        }
    }
}

/* ---- Conversion and batches ---------------------------------------------- */

Test(idx, pixels_scale_to_unit_range) {
    uint8_t pixels[256];
    for (int i = 0; i < 256; i++) {
        pixels[i] = (uint8_t)i;
    }
    tg_scalar values[256];
    tg_idx_pixels_to_scalars(pixels, 256, values);
    cr_assert_eq(values[0], -1, "0 gives %g", (double)values[0]);
    cr_assert_eq(values[255], 1, "255 gives %g", (double)values[255]);
    for (int i = 0; i < 256; i++) {
        tg_scalar expected = (tg_scalar)(i / 127.5 - 1.0);
        cr_assert_eq(values[i], expected, "%d gives %.9g, expected %.9g", i, (double)values[i],
                     (double)expected);
        cr_assert(values[i] >= -1 && values[i] <= 1, "%d gives %g", i, (double)values[i]);
    }
    for (int i = 1; i < 256; i++) {
        cr_assert_gt(values[i], values[i - 1], "not increasing at %d", i);
    }
}

Test(idx, gather_copies_scaled_items) {
    char folder[512];
    data_path(folder, sizeof folder, "");
    tg_idx_dataset data;
    cr_assert_eq(tg_idx_load_split(folder, "train", &data), TG_OK, "%s", tg_last_error());
    size_t indices[3] = {4, 0, 4};
    tg_scalar images[3 * 784];
    int32_t labels[3];
    cr_assert_eq(tg_idx_gather(&data, indices, 3, images, labels), TG_OK, "%s",
                 tg_last_error());
    for (int b = 0; b < 3; b++) {
        int item = (int)indices[b];
        cr_assert_eq(labels[b], label_value(item), "label %d is %d", b, labels[b]);
        for (int p = 0; p < 784; p++) {
            tg_scalar expected = (tg_scalar)(pixel_value(item, p / 28, p % 28) / 127.5 - 1.0);
            cr_assert_eq(images[b * 784 + p], expected, "batch %d pixel %d is %g, expected %g", b,
                         p, (double)images[b * 784 + p], (double)expected);
        }
    }
    cr_assert_eq(tg_idx_gather(&data, indices, 3, images, NULL), TG_OK);

    size_t bad[2] = {1, 5};
    cr_assert_eq(tg_idx_gather(&data, bad, 2, images, labels), TG_ERR_INVALID);
    expect_message_contains("index 5 at batch position 1 is outside [0, 5)");
    tg_idx_dataset_free(&data);
}

/* ---- Epoch sampler ------------------------------------------------------- */

/* The documented shuffle, written out independently. */
static void reference_shuffle(tg_rng *rng, size_t count, size_t *perm) {
    for (size_t i = 0; i < count; i++) {
        perm[i] = i;
    }
    for (size_t i = count - 1; i > 0; i--) {
        size_t j = (size_t)tg_rng_below(rng, i + 1);
        size_t swap = perm[i];
        perm[i] = perm[j];
        perm[j] = swap;
    }
}

static tg_epoch_sampler *new_sampler(size_t count, int batch_size, bool drop_last,
                                     uint64_t seed) {
    tg_epoch_sampler *sampler = NULL;
    tg_status status = tg_epoch_sampler_new(count, batch_size, drop_last, seed, &sampler);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    return sampler;
}

Test(epoch_sampler, epochs_follow_reference_shuffle) {
    enum { COUNT = 23, BATCH = 5 };
    tg_epoch_sampler *sampler = new_sampler(COUNT, BATCH, false, 77);
    tg_rng rng;
    tg_rng_seed(&rng, 77);
    size_t perm[COUNT];
    size_t batch[BATCH];
    for (int epoch = 0; epoch < 4; epoch++) {
        reference_shuffle(&rng, COUNT, perm);
        int consumed = 0;
        bool seen[COUNT] = {false};
        /* 23 items in batches of 5: four full batches and one of 3. */
        for (int k = 0; k < 5; k++) {
            int n = -1;
            tg_epoch_sampler_next(sampler, batch, &n);
            cr_assert_eq(tg_epoch_sampler_epoch(sampler), (uint64_t)epoch, "epoch %llu at %d",
                         (unsigned long long)tg_epoch_sampler_epoch(sampler), epoch);
            cr_assert_eq(n, k < 4 ? BATCH : 3, "epoch %d batch %d has %d items", epoch, k, n);
            for (int b = 0; b < n; b++) {
                cr_assert_eq(batch[b], perm[consumed + b], "epoch %d item %d is %zu, expected %zu",
                             epoch, consumed + b, batch[b], perm[consumed + b]);
                cr_assert(!seen[batch[b]], "epoch %d repeats item %zu", epoch, batch[b]);
                seen[batch[b]] = true;
            }
            consumed += n;
        }
        cr_assert_eq(consumed, COUNT);
    }
    tg_epoch_sampler_free(sampler);
}

Test(epoch_sampler, consecutive_epochs_differ) {
    enum { COUNT = 50 };
    tg_epoch_sampler *sampler = new_sampler(COUNT, COUNT, true, 3);
    size_t first[COUNT];
    size_t second[COUNT];
    int n;
    tg_epoch_sampler_next(sampler, first, &n);
    tg_epoch_sampler_next(sampler, second, &n);
    cr_assert_eq(tg_epoch_sampler_epoch(sampler), 1);
    cr_assert(memcmp(first, second, sizeof first) != 0, "epochs 0 and 1 have the same order");
    bool identity = true;
    for (int i = 0; i < COUNT; i++) {
        identity = identity && first[i] == (size_t)i;
    }
    cr_assert(!identity, "epoch 0 is not shuffled");
    tg_epoch_sampler_free(sampler);
}

Test(epoch_sampler, drop_last_skips_remainder) {
    tg_epoch_sampler *sampler = new_sampler(10, 4, true, 9);
    size_t batch[4];
    int n;
    for (int k = 0; k < 6; k++) {
        tg_epoch_sampler_next(sampler, batch, &n);
        cr_assert_eq(n, 4, "batch %d has %d items", k, n);
        cr_assert_eq(tg_epoch_sampler_epoch(sampler), (uint64_t)(k / 2), "batch %d in epoch %llu",
                     k, (unsigned long long)tg_epoch_sampler_epoch(sampler));
    }
    tg_epoch_sampler_free(sampler);

    tg_epoch_sampler *rejected = (tg_epoch_sampler *)1;
    cr_assert_eq(tg_epoch_sampler_new(3, 4, true, 1, &rejected), TG_ERR_INVALID);
    cr_assert_null(rejected);
    expect_message_contains("3 items cannot fill one batch of 4");
    cr_assert_eq(tg_epoch_sampler_new(0, 4, false, 1, &rejected), TG_ERR_INVALID);
    expect_message_contains("invalid count 0");
    cr_assert_eq(tg_epoch_sampler_new(5, 0, false, 1, &rejected), TG_ERR_INVALID);
    expect_message_contains("batch size 0");

    /* One item, no drop_last: every batch is that item. */
    tg_epoch_sampler *single = new_sampler(1, 4, false, 1);
    tg_epoch_sampler_next(single, batch, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(batch[0], 0);
    tg_epoch_sampler_free(single);
}

Test(epoch_sampler, restored_state_repeats_batches) {
    enum { COUNT = 17, BATCH = 4, AFTER = 12 };
    /* Save at several points, including mid-epoch and at an epoch's end. */
    const int save_points[] = {0, 1, 3, 4, 5, 9};
    for (size_t s = 0; s < sizeof save_points / sizeof save_points[0]; s++) {
        tg_epoch_sampler *sampler = new_sampler(COUNT, BATCH, false, 4242);
        size_t batch[BATCH];
        int n;
        for (int k = 0; k < save_points[s]; k++) {
            tg_epoch_sampler_next(sampler, batch, &n);
        }
        tg_epoch_sampler_state saved;
        tg_epoch_sampler_get_state(sampler, &saved);
        size_t expected[AFTER][BATCH];
        int expected_n[AFTER];
        for (int k = 0; k < AFTER; k++) {
            tg_epoch_sampler_next(sampler, expected[k], &expected_n[k]);
        }
        tg_epoch_sampler_free(sampler);

        /* Restore into a sampler that has run elsewhere with another seed. */
        tg_epoch_sampler *restored = new_sampler(COUNT, BATCH, false, 1);
        for (int k = 0; k < 7; k++) {
            tg_epoch_sampler_next(restored, batch, &n);
        }
        cr_assert_eq(tg_epoch_sampler_set_state(restored, &saved), TG_OK, "%s", tg_last_error());
        for (int k = 0; k < AFTER; k++) {
            tg_epoch_sampler_next(restored, batch, &n);
            cr_assert_eq(n, expected_n[k], "save point %d batch %d: %d items, expected %d",
                         save_points[s], k, n, expected_n[k]);
            cr_assert(memcmp(batch, expected[k], (size_t)n * sizeof *batch) == 0,
                      "save point %d batch %d differs after restoring", save_points[s], k);
        }
        tg_epoch_sampler_free(restored);
    }
}

Test(epoch_sampler, restore_rejects_other_dataset) {
    tg_epoch_sampler *sampler = new_sampler(10, 2, false, 5);
    tg_epoch_sampler_state state;
    tg_epoch_sampler_get_state(sampler, &state);
    tg_epoch_sampler_state other = state;
    other.count = 11;
    cr_assert_eq(tg_epoch_sampler_set_state(sampler, &other), TG_ERR_INVALID);
    expect_message_contains("saved state is for 11 items but this sampler has 10");
    other = state;
    other.position = 12;
    cr_assert_eq(tg_epoch_sampler_set_state(sampler, &other), TG_ERR_INVALID);
    expect_message_contains("position 12");

    tg_epoch_sampler_state after;
    tg_epoch_sampler_get_state(sampler, &after);
    cr_assert(memcmp(&after, &state, sizeof state) == 0, "a rejected restore changed the state");
    tg_epoch_sampler_free(sampler);
}

Test(idx, fashion_mnist_from_debian_when_installed) {
    const char *folder = "/usr/share/datasets/fashion-mnist";
    FILE *probe = fopen("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb");
    if (probe == NULL) {
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    }
    fclose(probe);
    tg_idx_dataset test;
    cr_assert_eq(tg_idx_load_split(folder, "t10k", &test), TG_OK, "%s", tg_last_error());
    cr_assert_eq(test.count, 10000, "count %d", test.count);
    cr_assert_eq(test.rows, 28);
    cr_assert_eq(test.cols, 28);
    int per_class[10] = {0};
    for (int i = 0; i < test.count; i++) {
        cr_assert_lt(test.labels[i], 10, "label %d is %u", i, test.labels[i]);
        per_class[test.labels[i]]++;
    }
    for (int k = 0; k < 10; k++) {
        cr_assert_eq(per_class[k], 1000, "class %d has %d test images", k, per_class[k]);
    }
    tg_idx_dataset_free(&test);
}
