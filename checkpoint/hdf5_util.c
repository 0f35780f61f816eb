#include "checkpoint_internal.h"

#include <stdio.h>
#include <string.h>

void tg__hdf5_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

typedef struct text_buffer {
    char *text;
    size_t size;
} text_buffer;

static herr_t keep_innermost(unsigned n, const H5E_error2_t *error, void *client_data) {
    /* Walking upward, entry 0 is the innermost one. */
    if (n == 0 && error->desc != NULL) {
        text_buffer *out = client_data;
        snprintf(out->text, out->size, "%s", error->desc);
    }
    return 0;
}

void tg__hdf5_error_detail(char *buf, size_t buf_size) {
    snprintf(buf, buf_size, "no detail");
    text_buffer out = {buf, buf_size};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &out);
    H5Eclear2(H5E_DEFAULT);
}

static bool is_root(const char *group) {
    return group == NULL || group[0] == '\0' || strcmp(group, "/") == 0;
}

tg_status tg__object_path(char *buf, size_t buf_size, const char *group, const char *name) {
    if (name == NULL || name[0] == '\0') {
        return tg_set_error(TG_ERR_INVALID, "checkpoint: empty name in group '%s'",
                            tg__group_label(group));
    }
    int n;
    if (is_root(group)) {
        n = snprintf(buf, buf_size, "%s", name);
    } else {
        n = snprintf(buf, buf_size, "%s/%s", group, name);
    }
    if (n < 0 || (size_t)n >= buf_size) {
        return tg_set_error(TG_ERR_INVALID,
                            "checkpoint: path '%s/%s' is longer than %zu characters",
                            tg__group_label(group), name, buf_size - 1);
    }
    return TG_OK;
}

const char *tg__group_label(const char *group) {
    return is_root(group) ? "/" : group;
}

bool tg__hdf5_path_exists(hid_t loc, const char *path) {
    if (is_root(path)) {
        return true;
    }
    /* H5Lexists fails, rather than returning false, when an intermediate
     * group is missing, so test each prefix in turn. */
    char prefix[TG__CHECKPOINT_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof prefix) {
        return false;
    }
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') {
            continue;
        }
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        if (H5Lexists(loc, prefix, H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return false;
        }
    }
    return true;
}

const char *tg__hdf5_type_name(hid_t type, char *buf, size_t buf_size) {
    size_t bits = 8 * H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(buf, buf_size, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT:
        snprintf(buf, buf_size, "float%zu", bits);
        break;
    case H5T_STRING:
        snprintf(buf, buf_size, "string");
        break;
    case H5T_COMPOUND:
        snprintf(buf, buf_size, "compound");
        break;
    case H5T_ENUM:
        snprintf(buf, buf_size, "enum");
        break;
    case H5T_ARRAY:
        snprintf(buf, buf_size, "array");
        break;
    default:
        snprintf(buf, buf_size, "an unsupported type");
        break;
    }
    return buf;
}
