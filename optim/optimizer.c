/* The parts of an optimizer that do not depend on its update rule: creation
 * from a parameter list, the step's checks and the state accessors. */
#include "optimizer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Checks that the list can be optimized: not empty, every tensor with a
 * gradient buffer and none listed twice. */
static tg_status check_params(const tg_param_list *list, const char *kind_name) {
    if (list == NULL || list->count == 0) {
        return tg_set_error(TG_ERR_INVALID, "%s: the parameter list is empty; add the model's "
                            "parameters before creating the optimizer", kind_name);
    }
    for (int i = 0; i < list->count; i++) {
        const tg_named_param *param = &list->items[i];
        if (param->tensor == NULL || param->tensor->grad == NULL) {
            return tg_set_error(TG_ERR_INVALID, "%s: parameter '%s' has no gradient buffer; call "
                                "tg_tensor_set_requires_grad(tensor, true) before creating the "
                                "optimizer", kind_name, param->name);
        }
        for (int j = 0; j < i; j++) {
            if (list->items[j].tensor == param->tensor) {
                return tg_set_error(TG_ERR_INVALID, "%s: parameters '%s' and '%s' are the same "
                                    "tensor, which would be updated twice; list it once",
                                    kind_name, list->items[j].name, param->name);
            }
        }
    }
    return TG_OK;
}

static tg_status init_param(tg__optimizer_param *dst, const tg_named_param *src,
                            const tg_optimizer *opt, double weight_decay, const char *kind_name) {
    memcpy(dst->name, src->name, sizeof dst->name);
    dst->tensor = src->tensor;
    tg_param_groups_resolve(&opt->groups, src, weight_decay, &dst->weight_decay,
                            &dst->lr_scale);
    for (int s = 0; s < opt->slot_count; s++) {
        dst->slots[s] = tg_tensor_zeros(src->tensor->ndim, src->tensor->shape);
        if (dst->slots[s] == NULL) {
            return tg_set_error(TG_ERR_NOMEM, "%s: out of memory allocating the %s of parameter "
                                "'%s' (%zu elements)", kind_name, opt->slot_names[s], src->name,
                                src->tensor->size);
        }
    }
    return TG_OK;
}

tg_optimizer *tg__optimizer_new(const tg_param_list *list, tg_optimizer_kind kind,
                                const tg_param_groups *groups, double weight_decay,
                                int slot_count, const char *const *slot_names) {
    const char *kind_name = tg_optimizer_kind_name(kind);
    if (check_params(list, kind_name) != TG_OK) {
        return NULL;
    }
    if (groups != NULL && tg_param_groups_validate(groups) != TG_OK) {
        return NULL;
    }
    tg_optimizer *opt = calloc(1, sizeof *opt);
    if (opt == NULL) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory allocating the optimizer", kind_name);
        return NULL;
    }
    opt->kind = kind;
    if (groups != NULL) {
        opt->groups = *groups;
    } else {
        tg_param_groups_init(&opt->groups);
    }
    opt->slot_count = slot_count;
    for (int s = 0; s < slot_count; s++) {
        opt->slot_names[s] = slot_names[s];
    }
    opt->params = calloc((size_t)list->count, sizeof *opt->params);
    if (opt->params == NULL) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory allocating %d parameter records", kind_name,
                     list->count);
        free(opt);
        return NULL;
    }
    opt->param_count = list->count;
    for (int i = 0; i < list->count; i++) {
        if (init_param(&opt->params[i], &list->items[i], opt, weight_decay, kind_name) != TG_OK) {
            tg_optimizer_free(opt);
            return NULL;
        }
    }
    return opt;
}

void tg_optimizer_free(tg_optimizer *opt) {
    if (opt == NULL) {
        return;
    }
    for (int i = 0; i < opt->param_count; i++) {
        for (int s = 0; s < opt->slot_count; s++) {
            tg_tensor_free(opt->params[i].slots[s]);
        }
    }
    free(opt->params);
    free(opt);
}

tg_status tg_optimizer_step(tg_optimizer *opt, double lr) {
    const char *kind_name = tg_optimizer_kind_name(opt->kind);
    if (!isfinite(lr) || lr <= 0) {
        return tg_set_error(TG_ERR_INVALID, "%s step: lr %g is invalid; pass a positive, finite "
                            "learning rate", kind_name, lr);
    }
    for (int i = 0; i < opt->param_count; i++) {
        if (opt->params[i].tensor->grad == NULL) {
            return tg_set_error(TG_ERR_INVALID, "%s step: parameter '%s' has no gradient buffer; "
                                "keep requires_grad set on every optimized parameter", kind_name,
                                opt->params[i].name);
        }
    }
    opt->step++;
    opt->update(opt, lr);
    for (int i = 0; i < opt->param_count; i++) {
        opt->params[i].initialized = true;
    }
    return TG_OK;
}

tg_optimizer_kind tg_optimizer_get_kind(const tg_optimizer *opt) {
    return opt->kind;
}

const char *tg_optimizer_kind_name(tg_optimizer_kind kind) {
    switch (kind) {
    case TG_OPTIMIZER_SGD: return "sgd";
    case TG_OPTIMIZER_ADAM: return "adam";
    case TG_OPTIMIZER_ADAMW: return "adamw";
    }
    return "unknown optimizer";
}

int tg_optimizer_param_count(const tg_optimizer *opt) {
    return opt->param_count;
}

/* Returns the record of the parameter `name`, or NULL after setting an error. */
static tg__optimizer_param *find_param(const tg_optimizer *opt, const char *name,
                                       const char *function_name) {
    for (int i = 0; i < opt->param_count; i++) {
        if (strcmp(opt->params[i].name, name) == 0) {
            return &opt->params[i];
        }
    }
    tg_set_error(TG_ERR_INVALID, "%s: the %s optimizer has no parameter '%s'", function_name,
                 tg_optimizer_kind_name(opt->kind), name);
    return NULL;
}

tg_status tg_optimizer_param_settings(const tg_optimizer *opt, const char *name,
                                      double *weight_decay, double *lr_scale) {
    const tg__optimizer_param *param = find_param(opt, name, "tg_optimizer_param_settings");
    if (param == NULL) {
        return TG_ERR_INVALID;
    }
    *weight_decay = param->weight_decay;
    *lr_scale = param->lr_scale;
    return TG_OK;
}

long tg_optimizer_get_step(const tg_optimizer *opt) {
    return opt->step;
}

tg_status tg_optimizer_set_step(tg_optimizer *opt, long step) {
    if (step < 0) {
        return tg_set_error(TG_ERR_INVALID, "tg_optimizer_set_step: step %ld is invalid; pass a "
                            "count >= 0", step);
    }
    opt->step = step;
    return TG_OK;
}

int tg_optimizer_state_count(const tg_optimizer *opt) {
    return opt->param_count * opt->slot_count;
}

static void fill_state(const tg_optimizer *opt, const tg__optimizer_param *param, int slot,
                       tg_optimizer_state *state) {
    state->param_name = param->name;
    state->slot_name = opt->slot_names[slot];
    state->tensor = param->slots[slot];
    state->initialized = param->initialized;
}

tg_status tg_optimizer_state_get(const tg_optimizer *opt, int index, tg_optimizer_state *state) {
    int count = tg_optimizer_state_count(opt);
    if (index < 0 || index >= count) {
        return tg_set_error(TG_ERR_INVALID, "tg_optimizer_state_get: index %d is out of range; "
                            "the %s optimizer has %d state slots", index,
                            tg_optimizer_kind_name(opt->kind), count);
    }
    fill_state(opt, &opt->params[index / opt->slot_count], index % opt->slot_count, state);
    return TG_OK;
}

tg_status tg_optimizer_state_find(const tg_optimizer *opt, const char *param_name,
                                  const char *slot_name, tg_optimizer_state *state) {
    const tg__optimizer_param *param = find_param(opt, param_name, "tg_optimizer_state_find");
    if (param == NULL) {
        return TG_ERR_INVALID;
    }
    for (int s = 0; s < opt->slot_count; s++) {
        if (strcmp(opt->slot_names[s], slot_name) == 0) {
            fill_state(opt, param, s, state);
            return TG_OK;
        }
    }
    return tg_set_error(TG_ERR_INVALID, "tg_optimizer_state_find: the %s optimizer keeps no "
                        "slot '%s' for parameter '%s'", tg_optimizer_kind_name(opt->kind),
                        slot_name, param_name);
}

tg_status tg_optimizer_set_initialized(tg_optimizer *opt, const char *param_name,
                                       bool initialized) {
    tg__optimizer_param *param = find_param(opt, param_name, "tg_optimizer_set_initialized");
    if (param == NULL) {
        return TG_ERR_INVALID;
    }
    param->initialized = initialized;
    return TG_OK;
}
