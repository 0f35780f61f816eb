#include "param_groups.h"

#include <math.h>
#include <string.h>

void tg_param_groups_init(tg_param_groups *groups) {
    memset(groups, 0, sizeof *groups);
    groups->decay_kind[TG_PARAM_WEIGHT] = true;
}

static const char *setting_name(tg_param_setting setting) {
    switch (setting) {
    case TG_PARAM_SET_WEIGHT_DECAY: return "weight_decay";
    case TG_PARAM_SET_LR_SCALE: return "lr_scale";
    }
    return "unknown setting";
}

static tg_status check_rule(const tg_param_name_rule *rule, int index) {
    if (memchr(rule->prefix, '\0', sizeof rule->prefix) == NULL) {
        return tg_set_error(TG_ERR_INVALID, "param groups: rule %d has a prefix without a "
                            "terminating NUL", index);
    }
    double value = rule->value;
    switch (rule->setting) {
    case TG_PARAM_SET_WEIGHT_DECAY:
        if (!isfinite(value) || value < 0) {
            return tg_set_error(TG_ERR_INVALID, "param groups: weight_decay %g for prefix '%s' "
                                "is invalid; pass a finite value >= 0", value, rule->prefix);
        }
        return TG_OK;
    case TG_PARAM_SET_LR_SCALE:
        if (!isfinite(value) || value <= 0) {
            return tg_set_error(TG_ERR_INVALID, "param groups: lr_scale %g for prefix '%s' is "
                                "invalid; pass a finite value > 0 (leave a parameter out of "
                                "the list to freeze it)", value, rule->prefix);
        }
        return TG_OK;
    }
    return tg_set_error(TG_ERR_INVALID, "param groups: rule %d has an unknown setting %d",
                        index, (int)rule->setting);
}

static tg_status add_rule(tg_param_groups *groups, const char *prefix, tg_param_setting setting,
                          double value) {
    if (groups->rule_count >= TG_PARAM_GROUP_RULES_MAX) {
        return tg_set_error(TG_ERR_INVALID, "param groups: cannot add a %s rule for prefix '%s'; "
                            "the table already holds the maximum of %d rules",
                            setting_name(setting), prefix, TG_PARAM_GROUP_RULES_MAX);
    }
    size_t length = strlen(prefix);
    if (length >= TG_PARAM_NAME_MAX) {
        return tg_set_error(TG_ERR_INVALID, "param groups: prefix of %zu characters is longer "
                            "than a parameter name can be (%d)", length, TG_PARAM_NAME_MAX - 1);
    }
    tg_param_name_rule rule;
    memset(&rule, 0, sizeof rule);
    memcpy(rule.prefix, prefix, length + 1);
    rule.setting = setting;
    rule.value = value;
    tg_status status = check_rule(&rule, groups->rule_count);
    if (status != TG_OK) {
        return status;
    }
    groups->rules[groups->rule_count++] = rule;
    return TG_OK;
}

tg_status tg_param_groups_set_weight_decay(tg_param_groups *groups, const char *prefix,
                                           double weight_decay) {
    return add_rule(groups, prefix, TG_PARAM_SET_WEIGHT_DECAY, weight_decay);
}

tg_status tg_param_groups_set_lr_scale(tg_param_groups *groups, const char *prefix,
                                       double lr_scale) {
    return add_rule(groups, prefix, TG_PARAM_SET_LR_SCALE, lr_scale);
}

tg_status tg_param_groups_validate(const tg_param_groups *groups) {
    if (groups->decay_min_ndim < 0 || groups->decay_min_ndim > TG_MAX_DIMS) {
        return tg_set_error(TG_ERR_INVALID, "param groups: decay_min_ndim %d is invalid; pass 0 "
                            "to %d", groups->decay_min_ndim, TG_MAX_DIMS);
    }
    if (groups->rule_count < 0 || groups->rule_count > TG_PARAM_GROUP_RULES_MAX) {
        return tg_set_error(TG_ERR_INVALID, "param groups: rule_count %d is invalid; pass 0 to "
                            "%d", groups->rule_count, TG_PARAM_GROUP_RULES_MAX);
    }
    for (int i = 0; i < groups->rule_count; i++) {
        tg_status status = check_rule(&groups->rules[i], i);
        if (status != TG_OK) {
            return status;
        }
    }
    return TG_OK;
}

void tg_param_groups_resolve(const tg_param_groups *groups, const tg_named_param *param,
                             double weight_decay, double *param_weight_decay,
                             double *param_lr_scale) {
    bool kind_decays = (unsigned)param->kind < TG_PARAM_KIND_COUNT &&
                       groups->decay_kind[param->kind];
    bool decays = kind_decays && param->tensor->ndim >= groups->decay_min_ndim;
    double decay = decays ? weight_decay : 0.0;
    double lr_scale = 1.0;
    for (int i = 0; i < groups->rule_count; i++) {
        const tg_param_name_rule *rule = &groups->rules[i];
        if (strncmp(param->name, rule->prefix, strlen(rule->prefix)) != 0) {
            continue;
        }
        if (rule->setting == TG_PARAM_SET_WEIGHT_DECAY) {
            decay = rule->value;
        } else {
            lr_scale = rule->value;
        }
    }
    *param_weight_decay = decay;
    *param_lr_scale = lr_scale;
}
