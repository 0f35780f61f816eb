/* Parameter groups: weight decay by kind and rank, name-prefix rules for
 * weight decay and lr_scale, their effect on optimizer steps, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* A small transformer-like set: one parameter of every kind and ranks 1 and 2. */
typedef struct model {
    tg_param_list list;
    tg_tensor *tensors[5];
} model;

static const char *const param_names[5] = {
    "wte.weight", "h.0.attn.weight", "h.0.attn.bias", "h.0.ln.weight", "lm_head.weight",
};
static const tg_param_kind param_kinds[5] = {
    TG_PARAM_EMBEDDING, TG_PARAM_WEIGHT, TG_PARAM_BIAS, TG_PARAM_NORM, TG_PARAM_WEIGHT,
};
static const int param_ndims[5] = {2, 2, 1, 1, 2};

static model model_new(void) {
    model m;
    tg_param_list_init(&m.list);
    for (int i = 0; i < 5; i++) {
        int shape[2] = {2, 3};
        m.tensors[i] = tg_tensor_zeros(param_ndims[i], param_ndims[i] == 1 ? shape + 1 : shape);
        cr_assert_not_null(m.tensors[i], "%s", tg_last_error());
        cr_assert_eq(tg_tensor_set_requires_grad(m.tensors[i], true), TG_OK);
        cr_assert_eq(tg_param_list_add(&m.list, NULL, param_names[i], param_kinds[i],
                                       m.tensors[i]), TG_OK, "%s", tg_last_error());
    }
    return m;
}

static void model_free(model *m) {
    for (int i = 0; i < 5; i++) {
        tg_tensor_free(m->tensors[i]);
    }
    tg_param_list_free(&m->list);
}

/* Checks the settings groups give every parameter of m for weight_decay 0.1. */
static void expect_settings(const tg_param_groups *groups, const model *m,
                            const double *expected_decay, const double *expected_scale) {
    for (int i = 0; i < 5; i++) {
        double decay = -1;
        double scale = -1;
        tg_param_groups_resolve(groups, &m->list.items[i], 0.1, &decay, &scale);
        cr_assert_eq(decay, expected_decay[i], "%s: weight decay %g, expected %g",
                     param_names[i], decay, expected_decay[i]);
        cr_assert_eq(scale, expected_scale[i], "%s: lr_scale %g, expected %g", param_names[i],
                     scale, expected_scale[i]);
    }
}

static const double no_scaling[5] = {1, 1, 1, 1, 1};

Test(param_groups, defaults_decay_weights_only) {
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    double decay[5] = {0, 0.1, 0, 0, 0.1};
    expect_settings(&groups, &m, decay, no_scaling);
    model_free(&m);
}

Test(param_groups, kind_table_is_configurable) {
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    groups.decay_kind[TG_PARAM_EMBEDDING] = true;
    groups.decay_kind[TG_PARAM_WEIGHT] = false;
    double decay[5] = {0.1, 0, 0, 0, 0};
    expect_settings(&groups, &m, decay, no_scaling);
    model_free(&m);
}

Test(param_groups, nanogpt_decays_by_rank) {
    /* nanoGPT decays every tensor with 2 or more dimensions, embeddings
     * included, and nothing else. */
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    for (int kind = 0; kind < TG_PARAM_KIND_COUNT; kind++) {
        groups.decay_kind[kind] = true;
    }
    groups.decay_min_ndim = 2;
    cr_assert_eq(tg_param_groups_validate(&groups), TG_OK, "%s", tg_last_error());
    double decay[5] = {0.1, 0.1, 0, 0, 0.1};
    expect_settings(&groups, &m, decay, no_scaling);
    model_free(&m);
}

Test(param_groups, name_rules_override_in_order) {
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "h.", 0.5), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(tg_param_groups_set_weight_decay(&groups, "h.0.attn", 0.3), TG_OK);
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "h.0.ln", 2), TG_OK);
    cr_assert_eq(tg_param_groups_set_weight_decay(&groups, "lm_head.weight", 0), TG_OK);
    cr_assert_eq(groups.rule_count, 4);
    /* The attention bias gets the absolute 0.3 by name although biases do
     * not decay by kind; the norm's later rule replaces the "h." scale. */
    double decay[5] = {0, 0.3, 0.3, 0, 0};
    double scale[5] = {1, 0.5, 0.5, 2, 1};
    expect_settings(&groups, &m, decay, scale);

    /* An empty prefix matches every name. */
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "", 3), TG_OK);
    double scale_all[5] = {3, 3, 3, 3, 3};
    expect_settings(&groups, &m, decay, scale_all);
    model_free(&m);
}

Test(param_groups, optimizer_reports_resolved_settings) {
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "lm_head.", 0.25), TG_OK);
    tg_adam_options options = tg_adamw_default_options();
    options.weight_decay = 0.2;
    options.groups = &groups;
    tg_optimizer *opt = tg_adamw_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());

    /* The optimizer keeps its own copy of the groups. */
    tg_param_groups_init(&groups);
    double decay[5] = {0, 0.2, 0, 0, 0.2};
    double scale[5] = {1, 1, 1, 1, 0.25};
    for (int i = 0; i < 5; i++) {
        double d;
        double s;
        cr_assert_eq(tg_optimizer_param_settings(opt, param_names[i], &d, &s), TG_OK, "%s",
                     tg_last_error());
        cr_assert_eq(d, decay[i], "%s: weight decay %g, expected %g", param_names[i], d,
                     decay[i]);
        cr_assert_eq(s, scale[i], "%s: lr_scale %g, expected %g", param_names[i], s, scale[i]);
    }
    double d;
    double s;
    cr_assert_eq(tg_optimizer_param_settings(opt, "wpe.weight", &d, &s), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "no parameter 'wpe.weight'") != NULL, "message: %s",
              tg_last_error());
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(param_groups, adamw_step_decays_per_group) {
    /* With zero gradients an AdamW step only multiplies each parameter by
     * 1 - lr * lr_scale * weight_decay, which shows each group's settings. */
    model m = model_new();
    for (int i = 0; i < 5; i++) {
        tg_tensor_fill(m.tensors[i], 1);
    }
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "lm_head.", 0.5), TG_OK);
    cr_assert_eq(tg_param_groups_set_weight_decay(&groups, "h.0.ln.", 0.4), TG_OK);
    tg_adam_options options = tg_adamw_default_options();
    options.weight_decay = 0.1;
    options.groups = &groups;
    tg_optimizer *opt = tg_adamw_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_step(opt, 0.2), TG_OK, "%s", tg_last_error());

    double expected[5] = {1, 1 - 0.2 * 0.1, 1, 1 - 0.2 * 0.4, 1 - 0.2 * 0.5 * 0.1};
    for (int i = 0; i < 5; i++) {
        double values[6];
        for (size_t j = 0; j < m.tensors[i]->size; j++) {
            values[j] = expected[i];
        }
        expect_close(param_names[i], m.tensors[i]->data, values, m.tensors[i]->size, 0, 1e-7);
    }
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(param_groups, sgd_step_uses_lr_scale_and_decay) {
    /* SGD moves p by lr * lr_scale * (g + weight_decay * p). */
    model m = model_new();
    for (int i = 0; i < 5; i++) {
        tg_tensor_fill(m.tensors[i], 2);
        for (size_t j = 0; j < m.tensors[i]->size; j++) {
            m.tensors[i]->grad[j] = 1;
        }
    }
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "h.0.attn.", 0.5), TG_OK);
    tg_sgd_options options = {.weight_decay = 0.25, .groups = &groups};
    tg_optimizer *opt = tg_sgd_new(&m.list, &options);
    cr_assert_not_null(opt, "%s", tg_last_error());
    cr_assert_eq(tg_optimizer_step(opt, 0.1), TG_OK, "%s", tg_last_error());

    double expected[5] = {
        2 - 0.1 * 1,                    /* embedding: no decay */
        2 - 0.1 * 0.5 * (1 + 0.25 * 2), /* attention weight: decay, half rate */
        2 - 0.1 * 0.5 * 1,              /* attention bias: half rate */
        2 - 0.1 * 1,                    /* norm: no decay */
        2 - 0.1 * (1 + 0.25 * 2),       /* head weight: decay */
    };
    for (int i = 0; i < 5; i++) {
        double values[6];
        for (size_t j = 0; j < m.tensors[i]->size; j++) {
            values[j] = expected[i];
        }
        expect_close(param_names[i], m.tensors[i]->data, values, m.tensors[i]->size, 0, 1e-7);
    }
    tg_optimizer_free(opt);
    model_free(&m);
}

Test(param_groups, rejects_invalid_rules) {
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    cr_assert_eq(tg_param_groups_set_weight_decay(&groups, "h.", -0.1), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "weight_decay -0.1 for prefix 'h.' is invalid") != NULL,
              "message: %s", tg_last_error());
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "wte.", 0), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "lr_scale 0 for prefix 'wte.' is invalid") != NULL,
              "message: %s", tg_last_error());
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "wte.", NAN), TG_ERR_INVALID);
    cr_assert_eq(groups.rule_count, 0, "a rejected rule was added");

    char long_prefix[TG_PARAM_NAME_MAX + 1];
    memset(long_prefix, 'a', TG_PARAM_NAME_MAX);
    long_prefix[TG_PARAM_NAME_MAX] = '\0';
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, long_prefix, 1), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "prefix of 128 characters") != NULL, "message: %s",
              tg_last_error());

    for (int i = 0; i < TG_PARAM_GROUP_RULES_MAX; i++) {
        cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "x", 1), TG_OK);
    }
    cr_assert_eq(tg_param_groups_set_lr_scale(&groups, "y", 1), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "maximum of 16 rules") != NULL, "message: %s",
              tg_last_error());
}

Test(param_groups, optimizer_rejects_invalid_groups) {
    model m = model_new();
    tg_param_groups groups;
    tg_param_groups_init(&groups);
    groups.decay_min_ndim = 7;
    tg_sgd_options options = {.groups = &groups};
    cr_assert_null(tg_sgd_new(&m.list, &options));
    cr_assert(strstr(tg_last_error(), "decay_min_ndim 7 is invalid") != NULL, "message: %s",
              tg_last_error());

    tg_param_groups_init(&groups);
    groups.rule_count = 1;
    strcpy(groups.rules[0].prefix, "h.");
    groups.rules[0].setting = TG_PARAM_SET_LR_SCALE;
    groups.rules[0].value = -2;
    cr_assert_null(tg_sgd_new(&m.list, &options));
    cr_assert(strstr(tg_last_error(), "lr_scale -2 for prefix 'h.' is invalid") != NULL,
              "message: %s", tg_last_error());
    model_free(&m);
}
