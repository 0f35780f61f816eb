/* SGD with momentum, dampening, Nesterov momentum and L2 weight decay,
 * following the update rule in sgd.h. Each parameter is updated in one pass over its
 * elements, which are independent, so large tensors are split across threads
 * with identical results for any thread count. The arithmetic follows
 * PyTorch's order in the parameter's precision.
 */
#include "sgd.h"

#include <math.h>
#include <string.h>
#include <tgmath.h>

#include "optimizer_internal.h"

static const char *const sgd_slot_names[1] = {"momentum_buffer"};

/* Updates p (n) from g (n) in place, without momentum. */
static void sgd_update_plain(tg_scalar *p, const tg_scalar *g, size_t n, tg_scalar lr,
                             tg_scalar weight_decay) {
#pragma omp parallel for schedule(static) if (n > TG__OPTIMIZER_PARALLEL_MIN)
    for (long i = 0; i < (long)n; i++) {
        tg_scalar d = g[i] + weight_decay * p[i];
        p[i] -= lr * d;
    }
}

/* Updates p (n) and the momentum buffer buf (n) from g (n) in place, where
 * keep is 1 - dampening. On the first step (first true) buf takes the
 * decayed gradient as it is. */
static void sgd_update_momentum(tg_scalar *p, tg_scalar *buf, const tg_scalar *g, size_t n,
                                tg_scalar lr, tg_scalar weight_decay, tg_scalar momentum,
                                tg_scalar keep, bool nesterov, bool first) {
#pragma omp parallel for schedule(static) if (n > TG__OPTIMIZER_PARALLEL_MIN)
    for (long i = 0; i < (long)n; i++) {
        tg_scalar d = g[i] + weight_decay * p[i];
        tg_scalar b = first ? d : buf[i] * momentum + keep * d;
        buf[i] = b;
        tg_scalar direction = nesterov ? d + momentum * b : b;
        p[i] -= lr * direction;
    }
}

static void sgd_update(tg_optimizer *opt, double lr) {
    const tg_sgd_options *o = &opt->options.sgd;
    for (int i = 0; i < opt->param_count; i++) {
        tg__optimizer_param *param = &opt->params[i];
        tg_tensor *p = param->tensor;
        tg_scalar param_lr = (tg_scalar)(lr * param->lr_scale);
        tg_scalar weight_decay = (tg_scalar)param->weight_decay;
        if (o->momentum == 0) {
            sgd_update_plain(p->data, p->grad, p->size, param_lr, weight_decay);
            continue;
        }
        sgd_update_momentum(p->data, param->slots[0]->data, p->grad, p->size, param_lr,
                            weight_decay, (tg_scalar)o->momentum, (tg_scalar)(1 - o->dampening),
                            o->nesterov, !param->initialized);
    }
}

static tg_status check_options(const tg_sgd_options *o) {
    if (!isfinite(o->momentum) || o->momentum < 0) {
        return tg_set_error(TG_ERR_INVALID, "sgd: momentum %g is invalid; pass a finite value "
                            ">= 0", o->momentum);
    }
    if (!(o->dampening >= 0 && o->dampening <= 1)) {
        return tg_set_error(TG_ERR_INVALID, "sgd: dampening %g is invalid; pass a value in "
                            "[0, 1]", o->dampening);
    }
    if (!isfinite(o->weight_decay) || o->weight_decay < 0) {
        return tg_set_error(TG_ERR_INVALID, "sgd: weight_decay %g is invalid; pass a finite "
                            "value >= 0", o->weight_decay);
    }
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
        return tg_set_error(TG_ERR_INVALID, "sgd: nesterov needs momentum > 0 and dampening 0, "
                            "but momentum is %g and dampening %g", o->momentum, o->dampening);
    }
    return TG_OK;
}

tg_optimizer *tg_sgd_new(const tg_param_list *list, const tg_sgd_options *options) {
    tg_sgd_options o;
    memset(&o, 0, sizeof o);
    if (options != NULL) {
        o = *options;
    }
    if (check_options(&o) != TG_OK) {
        return NULL;
    }
    int slot_count = o.momentum > 0 ? 1 : 0;
    tg_optimizer *opt = tg__optimizer_new(list, TG_OPTIMIZER_SGD, o.groups, o.weight_decay,
                                          slot_count, sgd_slot_names);
    if (opt == NULL) {
        return NULL;
    }
    opt->update = sgd_update;
    opt->options.sgd = o;
    opt->options.sgd.groups = &opt->groups;
    return opt;
}

tg_status tg_sgd_get_options(const tg_optimizer *opt, tg_sgd_options *options) {
    if (opt->kind != TG_OPTIMIZER_SGD) {
        return tg_set_error(TG_ERR_INVALID, "tg_sgd_get_options: the optimizer is %s, not sgd; "
                            "call tg_adam_get_options", tg_optimizer_kind_name(opt->kind));
    }
    *options = opt->options.sgd;
    return TG_OK;
}
