/* Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW (PyTorch 1.13).
 * For each parameter p with gradient g, weight decay wd (from its group),
 * rate lr (the step's lr times the group's lr_scale) and step count t
 * (1 on the first step):
 *
 *     g = g + wd * p                     (Adam: L2 weight decay)
 *     p = p * (1 - lr * wd)              (AdamW: decoupled weight decay)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g^2
 *     v_max = max(v_max, v)              (amsgrad; v_max replaces v below)
 *     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * m, v and v_max start at zero. The state slots are "exp_avg" (m),
 * "exp_avg_sq" (v) and, with amsgrad, "max_exp_avg_sq" (v_max).
 */
#ifndef TG_OPTIM_ADAM_H
#define TG_OPTIM_ADAM_H

#include <stdbool.h>

#include "optimizer.h"
#include "param_groups.h"

typedef struct tg_adam_options {
    double beta1;         /* decay of the first moment, in [0, 1) */
    double beta2;         /* decay of the second moment, in [0, 1) */
    double eps;           /* added to the denominator, >= 0 */
    double weight_decay;  /* coefficient of decaying parameters, >= 0 */
    bool amsgrad;         /* divide by the running maximum of v */
    const tg_param_groups *groups;  /* copied, or NULL for tg_param_groups_init defaults */
} tg_adam_options;

/* Returns PyTorch's Adam defaults: beta1 0.9, beta2 0.999, eps 1e-8, no
 * weight decay, no amsgrad, default groups. */
tg_adam_options tg_adam_default_options(void);

/* Returns PyTorch's AdamW defaults: as Adam's but weight_decay 0.01. */
tg_adam_options tg_adamw_default_options(void);

/* Create an Adam (L2 weight decay) or AdamW (decoupled weight decay)
 * optimizer over the parameters of list; options NULL gives the defaults
 * above. Every parameter must have a gradient buffer. Each returns a new
 * optimizer that the caller frees with tg_optimizer_free, or NULL with
 * tg_last_error() naming the offending option, value or parameter. */
tg_optimizer *tg_adam_new(const tg_param_list *list, const tg_adam_options *options);
tg_optimizer *tg_adamw_new(const tg_param_list *list, const tg_adam_options *options);

/* Writes the options of an Adam or AdamW optimizer; options->groups then
 * points at the optimizer's copy. Returns TG_ERR_INVALID for SGD. */
tg_status tg_adam_get_options(const tg_optimizer *opt, tg_adam_options *options);

#endif
