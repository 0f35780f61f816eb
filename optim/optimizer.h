/* The optimizer interface shared by SGD, Adam and AdamW.
 *
 * An optimizer is created from a parameter list by tg_sgd_new, tg_adam_new
 * or tg_adamw_new and updates the parameters in place from their gradients:
 *
 *     tg_optimizer *opt = tg_adamw_new(&params, &options);
 *     for (long step = 0; step < steps; step++) {
 *         ... forward, tg_tape_backward ...
 *         tg_clip_grad_norm(&params, 1.0, &norm);
 *         tg_optimizer_step(opt, tg_lr_at(&schedule, step));
 *         tg_param_list_zero_grad(&params);
 *     }
 *     tg_optimizer_free(opt);
 *
 * The learning rate is passed to every step, so a schedule is a plain
 * function of the step number (schedule.h). Each parameter's rate is that lr
 * times the lr_scale of its group, and its weight decay comes from its group
 * too (param_groups.h).
 *
 * State: every parameter has the slots its optimizer needs, named as in
 * PyTorch's state_dict: "momentum_buffer" (SGD with momentum), "exp_avg",
 * "exp_avg_sq" and "max_exp_avg_sq" (Adam and AdamW, the last with amsgrad
 * only). A parameter's state is uninitialized until its first step, as in
 * PyTorch, where the state does not exist yet. The distinction matters for
 * SGD, whose first step copies the gradient into the momentum buffer. A
 * checkpoint saves the step count and every slot with its initialized flag;
 * restoring writes them back through tg_optimizer_set_step,
 * tg_optimizer_state_find and tg_optimizer_set_initialized.
 *
 * The optimizer keeps pointers to the parameter tensors, which must outlive
 * it; the parameter list itself may be freed after creation. A step
 * allocates no memory: all state is allocated when the optimizer is created.
 */
#ifndef TG_OPTIM_OPTIMIZER_H
#define TG_OPTIM_OPTIMIZER_H

#include <stdbool.h>

#include "autograd/params.h"

typedef struct tg_optimizer tg_optimizer;

typedef enum tg_optimizer_kind {
    TG_OPTIMIZER_SGD,
    TG_OPTIMIZER_ADAM,   /* Adam with L2 weight decay added to the gradient */
    TG_OPTIMIZER_ADAMW,  /* Adam with decoupled weight decay */
} tg_optimizer_kind;

/* One state slot of one parameter, as the state functions return it. */
typedef struct tg_optimizer_state {
    const char *param_name;  /* owned by the optimizer */
    const char *slot_name;   /* "momentum_buffer", "exp_avg", "exp_avg_sq" or "max_exp_avg_sq" */
    tg_tensor *tensor;       /* owned by the optimizer, with the parameter's shape */
    bool initialized;        /* false until the parameter's first step */
} tg_optimizer_state;

/* Updates every parameter from its gradient with learning rate lr times the
 * parameter's lr_scale, then counts the step. Gradients are read, not
 * cleared. Returns TG_ERR_INVALID, changing nothing, if lr is not a positive
 * finite number or a parameter has lost its gradient buffer. */
tg_status tg_optimizer_step(tg_optimizer *opt, double lr);

/* Frees the optimizer and its state; the parameters are not touched. Accepts
 * NULL. */
void tg_optimizer_free(tg_optimizer *opt);

/* Returns the optimizer's kind. Its hyperparameters come from
 * tg_sgd_get_options or tg_adam_get_options. */
tg_optimizer_kind tg_optimizer_get_kind(const tg_optimizer *opt);

/* Returns "sgd", "adam" or "adamw". */
const char *tg_optimizer_kind_name(tg_optimizer_kind kind);

/* Returns the number of parameters the optimizer updates. */
int tg_optimizer_param_count(const tg_optimizer *opt);

/* Writes the weight decay and lr_scale the parameter `name` got from its
 * group. Returns TG_ERR_INVALID if no parameter has that name. */
tg_status tg_optimizer_param_settings(const tg_optimizer *opt, const char *name,
                                      double *weight_decay, double *lr_scale);

/* Returns the number of steps taken (or last set), which Adam's bias
 * correction uses. */
long tg_optimizer_get_step(const tg_optimizer *opt);

/* Sets the step count, as when restoring a checkpoint. Returns
 * TG_ERR_INVALID for a negative step. */
tg_status tg_optimizer_set_step(tg_optimizer *opt, long step);

/* Returns the number of state slots over all parameters: parameters in list
 * order, each with its slots in a fixed order. 0 for SGD without momentum. */
int tg_optimizer_state_count(const tg_optimizer *opt);

/* Writes slot `index` (0 to tg_optimizer_state_count() - 1) into state.
 * Returns TG_ERR_INVALID for an index out of range. */
tg_status tg_optimizer_state_get(const tg_optimizer *opt, int index, tg_optimizer_state *state);

/* Writes the slot `slot_name` of parameter `param_name` into state. Returns
 * TG_ERR_INVALID, naming both, if there is no such parameter or slot. */
tg_status tg_optimizer_state_find(const tg_optimizer *opt, const char *param_name,
                                  const char *slot_name, tg_optimizer_state *state);

/* Marks the state of parameter `param_name` as initialized (restored from a
 * checkpoint) or not (the next step starts it afresh). Returns
 * TG_ERR_INVALID if no parameter has that name. */
tg_status tg_optimizer_set_initialized(tg_optimizer *opt, const char *param_name,
                                       bool initialized);

#endif
