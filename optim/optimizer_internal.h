/* The optimizer struct and the helpers that sgd.c and adam.c share with
 * optimizer.c. Not part of the public API. */
#ifndef TG_OPTIM_OPTIMIZER_INTERNAL_H
#define TG_OPTIM_OPTIMIZER_INTERNAL_H

#include "adam.h"
#include "optimizer.h"
#include "param_groups.h"
#include "sgd.h"

/* Maximum number of state slots per parameter (Adam with amsgrad). */
#define TG__OPTIMIZER_SLOTS_MAX 3

/* Elements above which an update loop runs on all OpenMP threads. */
#define TG__OPTIMIZER_PARALLEL_MIN 32768

/* Elements per block that a thread updates in one vectorised inner loop. */
#define TG__OPTIMIZER_BLOCK 4096

typedef struct tg__optimizer_param {
    char name[TG_PARAM_NAME_MAX];
    tg_tensor *tensor;      /* the parameter, not owned */
    double weight_decay;    /* from the parameter's group */
    double lr_scale;        /* from the parameter's group */
    bool initialized;       /* the slots hold state from an earlier step */
    tg_tensor *slots[TG__OPTIMIZER_SLOTS_MAX];  /* owned, with the parameter's shape */
} tg__optimizer_param;

struct tg_optimizer {
    tg_optimizer_kind kind;
    /* Updates every parameter with base rate lr. The step count already
     * includes this step, and lr and the gradients have been checked. */
    void (*update)(tg_optimizer *opt, double lr);
    union {
        tg_sgd_options sgd;
        tg_adam_options adam;  /* Adam and AdamW */
    } options;
    tg_param_groups groups;    /* options.*.groups points here */
    long step;
    int param_count;
    tg__optimizer_param *params;
    int slot_count;            /* slots per parameter */
    const char *slot_names[TG__OPTIMIZER_SLOTS_MAX];
};

/* Creates an optimizer of `kind` over list with `slot_count` zeroed slots per
 * parameter and each parameter's settings resolved from groups (NULL for the
 * defaults) and weight_decay. The caller sets update and options. Returns
 * NULL with a message starting with the kind's name if the list is empty, a
 * parameter has no gradient buffer or appears twice, groups are invalid, or
 * memory runs out. */
tg_optimizer *tg__optimizer_new(const tg_param_list *list, tg_optimizer_kind kind,
                                const tg_param_groups *groups, double weight_decay,
                                int slot_count, const char *const *slot_names);

#endif
