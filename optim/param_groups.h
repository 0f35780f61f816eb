/* Parameter groups: the weight decay and learning-rate multiplier of each
 * parameter.
 *
 * An optimizer gives every parameter of its list two settings:
 * - weight_decay: the optimizer's weight_decay if the parameter decays,
 *   else 0. Whether a parameter decays follows from its kind and rank:
 *   decay_kind[kind] must be true and the tensor must have at least
 *   decay_min_ndim dimensions.
 * - lr_scale: 1, so the parameter's rate is the lr passed to the step.
 * Name rules then override either setting for every parameter whose name
 * starts with a prefix. They apply in the order added, so a later rule wins.
 *
 * The defaults (tg_param_groups_init) decay TG_PARAM_WEIGHT only, which keeps
 * biases, norm gains and embeddings out of weight decay. nanoGPT instead
 * decays every tensor with 2 or more dimensions, embeddings included:
 *
 *     tg_param_groups groups;
 *     tg_param_groups_init(&groups);
 *     for (int kind = 0; kind < TG_PARAM_KIND_COUNT; kind++) {
 *         groups.decay_kind[kind] = true;
 *     }
 *     groups.decay_min_ndim = 2;
 *     tg_param_groups_set_lr_scale(&groups, "lm_head.", 0.5);   // a name rule
 */
#ifndef TG_OPTIM_PARAM_GROUPS_H
#define TG_OPTIM_PARAM_GROUPS_H

#include <stdbool.h>

#include "autograd/params.h"

/* Number of tg_param_kind values. */
#define TG_PARAM_KIND_COUNT (TG_PARAM_EMBEDDING + 1)

/* Maximum number of name rules in one tg_param_groups. */
#define TG_PARAM_GROUP_RULES_MAX 16

/* The setting a name rule overrides. */
typedef enum tg_param_setting {
    TG_PARAM_SET_WEIGHT_DECAY,  /* value replaces the weight decay (absolute) */
    TG_PARAM_SET_LR_SCALE,      /* value replaces the learning-rate multiplier */
} tg_param_setting;

/* A rule that sets one setting of every parameter whose name starts with
 * prefix ("" matches every name). */
typedef struct tg_param_name_rule {
    char prefix[TG_PARAM_NAME_MAX];
    tg_param_setting setting;
    double value;
} tg_param_name_rule;

typedef struct tg_param_groups {
    bool decay_kind[TG_PARAM_KIND_COUNT];  /* whether parameters of each kind decay */
    int decay_min_ndim;                    /* decaying parameters need this many dimensions */
    int rule_count;
    tg_param_name_rule rules[TG_PARAM_GROUP_RULES_MAX];  /* applied in order */
} tg_param_groups;

/* Sets the default groups: weights decay, biases, norms and embeddings do
 * not, no rank condition, no name rules. */
void tg_param_groups_init(tg_param_groups *groups);

/* Adds a rule giving every parameter whose name starts with prefix the weight
 * decay `weight_decay` (>= 0, used as is, not scaled by the optimizer's).
 * Returns TG_ERR_INVALID for a negative or non-finite value, a prefix longer
 * than TG_PARAM_NAME_MAX - 1 characters, or a full rule table. */
tg_status tg_param_groups_set_weight_decay(tg_param_groups *groups, const char *prefix,
                                           double weight_decay);

/* Adds a rule giving every parameter whose name starts with prefix the
 * learning-rate multiplier `lr_scale` (> 0; leave a parameter out of the list
 * to freeze it). Errors as tg_param_groups_set_weight_decay. */
tg_status tg_param_groups_set_lr_scale(tg_param_groups *groups, const char *prefix,
                                       double lr_scale);

/* Checks the fields of groups (a struct filled by hand) and returns TG_OK, or
 * TG_ERR_INVALID with a message naming the field and its value. */
tg_status tg_param_groups_validate(const tg_param_groups *groups);

/* Computes the settings of one parameter under groups, for an optimizer whose
 * weight_decay is `weight_decay`. groups must be valid. */
void tg_param_groups_resolve(const tg_param_groups *groups, const tg_named_param *param,
                             double weight_decay, double *param_weight_decay,
                             double *param_lr_scale);

#endif
