#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"

Test(params, names_join_with_prefix) {
    tg_param_list list;
    tg_param_list_init(&list);
    int shape[1] = {3};
    tg_tensor *w = tg_tensor_ones(1, shape);
    tg_tensor *b = tg_tensor_ones(1, shape);
    cr_assert_eq(tg_param_list_add(&list, "blocks.0.attn", "weight", TG_PARAM_WEIGHT, w), TG_OK);
    cr_assert_eq(tg_param_list_add(&list, NULL, "bias", TG_PARAM_BIAS, b), TG_OK);
    cr_assert_str_eq(list.items[0].name, "blocks.0.attn.weight");
    cr_assert_str_eq(list.items[1].name, "bias");
    cr_assert_eq(tg_param_list_find(&list, "bias"), b);
    cr_assert_null(tg_param_list_find(&list, "missing"));
    cr_assert_eq(tg_param_list_numel(&list), 6);
    tg_param_list_free(&list);
    tg_tensor_free(w);
    tg_tensor_free(b);
}

Test(params, duplicate_name_is_rejected) {
    tg_param_list list;
    tg_param_list_init(&list);
    int shape[1] = {1};
    tg_tensor *w = tg_tensor_ones(1, shape);
    cr_assert_eq(tg_param_list_add(&list, "fc", "weight", TG_PARAM_WEIGHT, w), TG_OK);
    cr_assert_eq(tg_param_list_add(&list, "fc", "weight", TG_PARAM_WEIGHT, w), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "fc.weight") != NULL, "message: %s", tg_last_error());
    tg_param_list_free(&list);
    tg_tensor_free(w);
}

Test(params, list_grows_past_initial_capacity) {
    tg_param_list list;
    tg_param_list_init(&list);
    int shape[1] = {1};
    tg_tensor *w = tg_tensor_ones(1, shape);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        cr_assert_eq(tg_param_list_add(&list, NULL, name, TG_PARAM_WEIGHT, w), TG_OK);
    }
    cr_assert_eq(list.count, 100);
    cr_assert_str_eq(list.items[99].name, "p99");
    tg_param_list_free(&list);
    tg_tensor_free(w);
}

Test(params, overlong_name_is_rejected) {
    tg_param_list list;
    tg_param_list_init(&list);
    char prefix[200];
    memset(prefix, 'a', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    int shape[1] = {1};
    tg_tensor *w = tg_tensor_ones(1, shape);
    cr_assert_eq(tg_param_list_add(&list, prefix, "weight", TG_PARAM_WEIGHT, w), TG_ERR_INVALID);
    tg_param_list_free(&list);
    tg_tensor_free(w);
}
