/* Stochastic gradient descent with momentum, as torch.optim.SGD (PyTorch
 * 1.13). For each parameter p with gradient g, weight decay wd (from its
 * group) and rate lr (the step's lr times the group's lr_scale):
 *
 *     d = g + wd * p                                    (L2 weight decay)
 *     with momentum:
 *         buf = d                                       (first step)
 *         buf = momentum * buf + (1 - dampening) * d    (later steps)
 *         d = d + momentum * buf                        (nesterov)
 *         d = buf                                       (otherwise)
 *     p = p - lr * d
 *
 * The first step copies d into the buffer without dampening, as PyTorch
 * does. The state slot is "momentum_buffer", present only with momentum > 0.
 */
#ifndef TG_OPTIM_SGD_H
#define TG_OPTIM_SGD_H

#include <stdbool.h>

#include "optimizer.h"
#include "param_groups.h"

/* A zero-initialized struct is plain SGD without weight decay. */
typedef struct tg_sgd_options {
    double momentum;      /* >= 0, and 0 keeps no momentum buffer */
    double dampening;     /* in [0, 1], shrinks the gradient added to the buffer */
    bool nesterov;        /* needs momentum > 0 and dampening 0 */
    double weight_decay;  /* L2 coefficient of decaying parameters, >= 0 */
    const tg_param_groups *groups;  /* copied, or NULL for tg_param_groups_init defaults */
} tg_sgd_options;

/* Creates an SGD optimizer over the parameters of list (options NULL for
 * plain SGD). Every parameter must have a gradient buffer. Returns a new
 * optimizer that the caller frees with tg_optimizer_free, or NULL with
 * tg_last_error() naming the offending option, value or parameter. */
tg_optimizer *tg_sgd_new(const tg_param_list *list, const tg_sgd_options *options);

/* Writes the options of an SGD optimizer; options->groups then points at the
 * optimizer's copy. Returns TG_ERR_INVALID if opt is not SGD. */
tg_status tg_sgd_get_options(const tg_optimizer *opt, tg_sgd_options *options);

#endif
