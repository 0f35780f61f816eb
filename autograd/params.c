#include "params.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Gradient elements above which zeroing runs on all OpenMP threads. */
#define ZERO_GRAD_PARALLEL_MIN 65536

void tg_param_list_init(tg_param_list *list) {
    memset(list, 0, sizeof *list);
}

void tg_param_list_free(tg_param_list *list) {
    free(list->items);
    memset(list, 0, sizeof *list);
}

tg_status tg_param_name_join(char *buf, size_t buf_size, const char *prefix, const char *name) {
    int n;
    if (prefix == NULL || prefix[0] == '\0') {
        n = snprintf(buf, buf_size, "%s", name);
    } else {
        n = snprintf(buf, buf_size, "%s.%s", prefix, name);
    }
    if (n < 0 || (size_t)n >= buf_size) {
        return tg_set_error(TG_ERR_INVALID, "parameter name '%s.%s' is longer than %zu characters",
                            prefix != NULL ? prefix : "", name, buf_size - 1);
    }
    return TG_OK;
}

tg_status tg_param_list_add(tg_param_list *list, const char *prefix, const char *name,
                            tg_param_kind kind, tg_tensor *tensor) {
    char full[TG_PARAM_NAME_MAX];
    tg_status status = tg_param_name_join(full, sizeof full, prefix, name);
    if (status != TG_OK) {
        return status;
    }
    if (tg_param_list_find(list, full) != NULL) {
        return tg_set_error(TG_ERR_INVALID, "parameter '%s' is already in the list; give each "
                            "sublayer its own prefix", full);
    }
    if (list->count == list->capacity) {
        int capacity = list->capacity == 0 ? 16 : list->capacity * 2;
        tg_named_param *items = realloc(list->items, (size_t)capacity * sizeof *items);
        if (items == NULL) {
            return tg_set_error(TG_ERR_NOMEM, "out of memory growing a parameter list to %d",
                                capacity);
        }
        list->items = items;
        list->capacity = capacity;
    }
    tg_named_param *item = &list->items[list->count++];
    memcpy(item->name, full, sizeof full);
    item->kind = kind;
    item->tensor = tensor;
    return TG_OK;
}

tg_tensor *tg_param_list_find(const tg_param_list *list, const char *name) {
    for (int i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].name, name) == 0) {
            return list->items[i].tensor;
        }
    }
    return NULL;
}

size_t tg_param_list_numel(const tg_param_list *list) {
    size_t total = 0;
    for (int i = 0; i < list->count; i++) {
        total += list->items[i].tensor->size;
    }
    return total;
}

/* Zeroes span `thread` of `threads` equal spans of the concatenation of all
 * gradients (total elements). */
static void zero_grad_span(const tg_param_list *list, size_t total, size_t thread,
                           size_t threads) {
    size_t begin = total * thread / threads;
    size_t end = total * (thread + 1) / threads;
    size_t offset = 0;
    for (int i = 0; i < list->count && offset < end; i++) {
        tg_tensor *t = list->items[i].tensor;
        size_t lo = begin > offset ? begin - offset : 0;
        size_t hi = end - offset < t->size ? end - offset : t->size;
        offset += t->size;
        if (t->grad != NULL && lo < hi) {
            memset(t->grad + lo, 0, (hi - lo) * sizeof *t->grad);
        }
    }
}

void tg_param_list_zero_grad(const tg_param_list *list) {
    /* One parallel region: the threads split the concatenation of all
     * gradients into equal spans. With one thread there is no region at all,
     * because libgomp allocates the team of a one-thread region from the
     * heap. */
    size_t total = tg_param_list_numel(list);
    if (total <= ZERO_GRAD_PARALLEL_MIN || omp_get_max_threads() < 2) {
        zero_grad_span(list, total, 0, 1);
        return;
    }
#pragma omp parallel
    zero_grad_span(list, total, (size_t)omp_get_thread_num(), (size_t)omp_get_num_threads());
}

const char *tg_param_kind_name(tg_param_kind kind) {
    switch (kind) {
    case TG_PARAM_WEIGHT: return "weight";
    case TG_PARAM_BIAS: return "bias";
    case TG_PARAM_NORM: return "norm";
    case TG_PARAM_EMBEDDING: return "embedding";
    }
    return "unknown";
}
