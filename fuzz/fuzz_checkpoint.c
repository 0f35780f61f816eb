/* Fuzz target for the checkpoint reader (checkpoint/checkpoint.h).
 *
 * Each input is written to a scratch file and opened with tg_checkpoint_open
 * for model kind "fuzz". If it opens, the driver reads what a resuming program
 * would, from the layout that fuzz_checkpoint_write_seed writes. It reads root
 * and configuration attributes of each type, a tensor and a scalar tensor,
 * uint64 and int32 arrays of the stored length, and a parameter list. It
 * checks that
 *   - every failure is a known status with a message, and open fails with
 *     one of the statuses its header lists;
 *   - a failed tg_checkpoint_read_tensor leaves the tensor unchanged;
 *   - no HDF5 identifier (file, object, datatype, dataspace, property list)
 *     stays open after the input, which would leak memory in a long run.
 * AddressSanitizer, UBSan and LeakSanitizer catch the rest.
 */
#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "fuzz_util.h"

#define KIND "fuzz"
/* Maximum length of an array that the driver reads. A longer stored array is
 * read with this count, which must fail. */
#define MAX_ARRAY 256

/* The tensors of the seed and the shapes the driver expects. */
static const int weight_shape[2] = {2, 3};
static const int bias_shape[1] = {3};

/* Identifier types whose count must not grow across an input. */
static const H5I_type_t counted_types[] = {
    H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST,
};
#define N_COUNTED (sizeof counted_types / sizeof counted_types[0])

static void count_identifiers(hsize_t counts[N_COUNTED]) {
    for (size_t i = 0; i < N_COUNTED; i++) {
        counts[i] = 0;
        if (H5Inmembers(counted_types[i], &counts[i]) < 0) {
            H5Eclear2(H5E_DEFAULT);
        }
    }
}

/* Returns true if a read status is one that the reader documents. */
static bool is_read_status(tg_status status) {
    return status == TG_ERR_FORMAT || status == TG_ERR_SHAPE || status == TG_ERR_INVALID ||
           status == TG_ERR_NOMEM;
}

/* The first failure of a read in the current input, or TG_OK. */
static tg_status first_failure;

static void check_read(tg_status status, const char *call) {
    if (status != TG_OK && first_failure == TG_OK) {
        first_failure = status;
    }
    if (status != TG_OK) {
        fuzz_check_error(status, call);
        FUZZ_CHECK(is_read_status(status), "%s returned %s, which the header does not list",
                   call, tg_status_name(status));
    }
}

static void read_attributes(const tg_checkpoint_reader *r) {
    /* A buffer of 8 bytes also exercises the too-long path. */
    char small[8];
    char large[256];
    int64_t integer;
    double real;
    check_read(tg_checkpoint_read_attr_string(r, "config", "name", small, sizeof small),
               "read_attr_string(config/name, 8 bytes)");
    tg_status status = tg_checkpoint_read_attr_string(r, NULL, "created", large, sizeof large);
    check_read(status, "read_attr_string(created)");
    if (status == TG_OK) {
        FUZZ_CHECK(memchr(large, '\0', sizeof large) != NULL, "created is not NUL-terminated");
    }
    check_read(tg_checkpoint_read_attr_int(r, "config", "width", &integer),
               "read_attr_int(config/width)");
    check_read(tg_checkpoint_read_attr_double(r, "config", "lr", &real),
               "read_attr_double(config/lr)");
    check_read(tg_checkpoint_expect_int(r, "config", "width", 3), "expect_int(config/width)");
    check_read(tg_checkpoint_expect_double(r, "config", "lr", 0.5), "expect_double(config/lr)");
    check_read(tg_checkpoint_expect_string(r, "config", "name", "tiny"),
               "expect_string(config/name)");
    /* Reading a string attribute as a number must fail on the type. */
    status = tg_checkpoint_read_attr_int(r, NULL, "model_kind", &integer);
    FUZZ_CHECK(status == TG_ERR_FORMAT, "model_kind, a string on open, read as an integer "
               "returned %s", tg_status_name(status));
    fuzz_check_error(status, "read_attr_int(model_kind)");
}

/* Returns true if every byte of element i of t is still `fill`. */
static bool element_is_fill(const tg_tensor *t, size_t i, unsigned char fill) {
    const unsigned char *bytes = (const unsigned char *)&t->data[i];
    for (size_t k = 0; k < sizeof t->data[i]; k++) {
        if (bytes[k] != fill) {
            return false;
        }
    }
    return true;
}

/* Reads group/name twice into tensors of the given shape, filled beforehand
 * with two different byte patterns. Both reads must agree. A failure must
 * leave every element as it was, and a success must set every element: an
 * element that still contains its fill in both tensors was not written. */
static void read_one_tensor(const tg_checkpoint_reader *r, const char *group, const char *name,
                            int ndim, const int *shape) {
    const unsigned char fill_a = 0xA5;
    const unsigned char fill_b = 0x5A;
    tg_tensor *a = tg_tensor_zeros(ndim, shape);
    tg_tensor *b = tg_tensor_zeros(ndim, shape);
    FUZZ_CHECK(a != NULL && b != NULL, "tg_tensor_zeros failed: %s", tg_last_error());
    memset(a->data, fill_a, a->size * sizeof *a->data);
    memset(b->data, fill_b, b->size * sizeof *b->data);
    tg_status status_a = tg_checkpoint_read_tensor(r, group, name, a);
    check_read(status_a, "read_tensor");
    tg_status status_b = tg_checkpoint_read_tensor(r, group, name, b);
    check_read(status_b, "read_tensor");
    FUZZ_CHECK(status_a == status_b, "reading %s/%s twice returned %s, then %s", group, name,
               tg_status_name(status_a), tg_status_name(status_b));
    for (size_t i = 0; i < a->size; i++) {
        bool kept_a = element_is_fill(a, i, fill_a);
        bool kept_b = element_is_fill(b, i, fill_b);
        if (status_a != TG_OK) {
            FUZZ_CHECK(kept_a && kept_b, "failed read_tensor(%s/%s) changed element %zu", group,
                       name, i);
        } else {
            FUZZ_CHECK(!(kept_a && kept_b), "read_tensor(%s/%s) succeeded but left element %zu "
                       "unwritten", group, name, i);
            FUZZ_CHECK(memcmp(&a->data[i], &b->data[i], sizeof a->data[i]) == 0,
                       "two reads of %s/%s differ at element %zu", group, name, i);
        }
    }
    tg_tensor_free(a);
    tg_tensor_free(b);
}

/* Reads a uint64 (is_u64) or int32 array of the stored length. */
static void read_array(const tg_checkpoint_reader *r, const char *group, const char *name,
                       bool is_u64) {
    size_t count = 0;
    tg_status status = tg_checkpoint_dataset_length(r, group, name, &count);
    check_read(status, "dataset_length");
    if (status != TG_OK) {
        return;
    }
    size_t request = count <= MAX_ARRAY ? count : MAX_ARRAY;
    uint64_t u64[MAX_ARRAY];
    int32_t i32[MAX_ARRAY];
    if (is_u64) {
        status = tg_checkpoint_read_u64(r, group, name, u64, request);
    } else {
        status = tg_checkpoint_read_i32(r, group, name, i32, request);
    }
    check_read(status, is_u64 ? "read_u64" : "read_i32");
    FUZZ_CHECK(count <= MAX_ARRAY || status != TG_OK,
               "reading %zu of the %zu stored elements of %s/%s succeeded", request, count,
               group, name);
}

static void read_param_list(const tg_checkpoint_reader *r) {
    tg_tensor *weight = tg_tensor_zeros(2, weight_shape);
    tg_tensor *bias = tg_tensor_zeros(1, bias_shape);
    FUZZ_CHECK(weight != NULL && bias != NULL, "tg_tensor_zeros failed: %s", tg_last_error());
    tg_param_list params;
    tg_param_list_init(&params);
    FUZZ_CHECK(tg_param_list_add(&params, NULL, "weight", TG_PARAM_WEIGHT, weight) == TG_OK &&
                   tg_param_list_add(&params, NULL, "bias", TG_PARAM_BIAS, bias) == TG_OK,
               "tg_param_list_add failed: %s", tg_last_error());
    check_read(tg_checkpoint_read_params(r, "model", &params), "read_params(model)");
    tg_param_list_free(&params);
    tg_tensor_free(weight);
    tg_tensor_free(bias);
}

static void read_everything(const tg_checkpoint_reader *r) {
    FUZZ_CHECK(tg_checkpoint_format_version(r) >= 1 &&
                   tg_checkpoint_format_version(r) <= TG_CHECKPOINT_FORMAT_VERSION,
               "open accepted format version %d", tg_checkpoint_format_version(r));
    FUZZ_CHECK(strcmp(tg_checkpoint_model_kind(r), KIND) == 0,
               "open accepted model kind '%s', expected '%s'", tg_checkpoint_model_kind(r), KIND);
    read_attributes(r);
    (void)tg_checkpoint_has(r, "ema");
    (void)tg_checkpoint_has(r, "model/weight/deeper");
    read_one_tensor(r, "model", "weight", 2, weight_shape);
    read_one_tensor(r, "/", "scale", 0, NULL);
    read_array(r, "rng", "train", true);
    read_array(r, "data", "order", false);
    read_param_list(r);
}

/* Opens and reads the file at `path` and returns the first failure. */
static tg_status run_reader(const char *path) {
    first_failure = TG_OK;
    tg_status status = TG_OK;
    tg_checkpoint_reader *r = tg_checkpoint_open(path, KIND, &status);
    if (r == NULL) {
        fuzz_check_error(status, "tg_checkpoint_open");
        FUZZ_CHECK(status == TG_ERR_IO || status == TG_ERR_FORMAT || status == TG_ERR_NOMEM,
                   "tg_checkpoint_open returned %s, which the header does not list",
                   tg_status_name(status));
        FUZZ_CHECK(strstr(tg_last_error(), path) != NULL, "open's message does not name '%s': %s",
                   path, tg_last_error());
        return status;
    }
    FUZZ_CHECK(status == TG_OK, "open returned a reader with status %s", tg_status_name(status));
    read_everything(r);
    tg_checkpoint_close(r);
    return first_failure;
}

tg_status fuzz_checkpoint_input(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_scratch("checkpoint", data, size);
    hsize_t before[N_COUNTED];
    hsize_t after[N_COUNTED];
    count_identifiers(before);
    tg_status status = run_reader(path);
    count_identifiers(after);
    H5garbage_collect();
    /* HDF5 registers some identifiers lazily the first time a code path
     * runs, so a grown count is a leak only if a second run grows it again. */
    for (size_t i = 0; i < N_COUNTED; i++) {
        if (after[i] > before[i]) {
            memcpy(before, after, sizeof before);
            run_reader(path);
            count_identifiers(after);
            break;
        }
    }
    for (size_t i = 0; i < N_COUNTED; i++) {
        FUZZ_CHECK(after[i] <= before[i], "HDF5 identifiers of type %d grew from %llu to %llu",
                   (int)counted_types[i], (unsigned long long)before[i],
                   (unsigned long long)after[i]);
    }
    return status;
}

tg_status fuzz_checkpoint_write_seed(const char *path, const char *kind) {
    tg_status status = TG_OK;
    tg_checkpoint_writer *w = tg_checkpoint_begin(path, kind, &status);
    if (w == NULL) {
        return status;
    }
    const tg_scalar weight_values[6] = {1, -2, 3.5f, 0, -0.25f, 8};
    const tg_scalar bias_values[3] = {0.5f, 0.25f, -1};
    const tg_scalar scale_value = 2;
    tg_tensor *weight = tg_tensor_from_values(2, weight_shape, weight_values);
    tg_tensor *bias = tg_tensor_from_values(1, bias_shape, bias_values);
    tg_tensor *scale = tg_tensor_from_values(0, NULL, &scale_value);
    tg_param_list params;
    tg_param_list_init(&params);
    tg_param_list_add(&params, NULL, "weight", TG_PARAM_WEIGHT, weight);
    tg_param_list_add(&params, NULL, "bias", TG_PARAM_BIAS, bias);
    const uint64_t rng_state[4] = {1, 2, 3, UINT64_MAX};
    const int32_t order[5] = {4, 0, 3, 1, 2};

    tg_checkpoint_set_step(w, 42);
    tg_checkpoint_write_attr_string(w, "config", "name", "tiny");
    tg_checkpoint_write_attr_int(w, "config", "width", 3);
    tg_checkpoint_write_attr_double(w, "config", "lr", 0.5);
    tg_checkpoint_write_params(w, "model", &params);
    tg_checkpoint_write_tensor(w, NULL, "scale", scale);
    tg_checkpoint_write_u64(w, "rng", "train", rng_state, 4);
    tg_checkpoint_write_i32(w, "data", "order", order, 5);
    status = tg_checkpoint_commit(w);

    tg_param_list_free(&params);
    tg_tensor_free(weight);
    tg_tensor_free(bias);
    tg_tensor_free(scale);
    return status;
}

#ifdef TG_FUZZ_ENTRY_POINT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_checkpoint_input(data, size);
    return 0;
}
#endif
