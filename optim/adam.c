/* Adam and AdamW with optional amsgrad, following the update rule in adam.h.
 * Each parameter is updated in one fused pass over its elements. The
 * elements are independent, so all parameters are split across threads in
 * one parallel region with identical results for any thread count. The
 * scalars of a step (bias corrections, step size, decay factor) are computed
 * in double, as PyTorch computes them in Python, and the elementwise
 * arithmetic follows PyTorch's order in the parameter's precision.
 */
#include "adam.h"

#include <math.h>
#include <omp.h>
#include <string.h>
#include <tgmath.h>

#include "optimizer_internal.h"

static const char *const adam_slot_names[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

/* Per-step constants of one parameter, in the parameter's precision. */
typedef struct adam_step {
    tg_scalar beta1, one_minus_beta1;
    tg_scalar beta2, one_minus_beta2;
    tg_scalar weight_decay;      /* L2 coefficient added to the gradient (Adam) */
    tg_scalar decay_factor;      /* 1 - lr * weight_decay applied to p (AdamW), else 1 */
    tg_scalar step_size;         /* lr / (1 - beta1^t) */
    tg_scalar bias_correction2_sqrt;  /* sqrt(1 - beta2^t) */
    tg_scalar eps;
} adam_step;

/* Returns the new value of one parameter element p after updating its
 * moments m and v in place. With amsgrad, v_max (the element's running
 * maximum of v) is updated too and divides instead of v. The kernels pass
 * amsgrad as a constant, so the branch disappears when this is inlined. */
static inline tg_scalar adam_element(const adam_step *k, bool amsgrad, tg_scalar p, tg_scalar g,
                                     tg_scalar *m, tg_scalar *v, tg_scalar *v_max) {
    p *= k->decay_factor;
    g += k->weight_decay * p;
    tg_scalar m_new = *m * k->beta1 + k->one_minus_beta1 * g;
    tg_scalar v_new = *v * k->beta2 + k->one_minus_beta2 * g * g;
    *m = m_new;
    *v = v_new;
    if (amsgrad) {
        tg_scalar v_max_old = *v_max;
        v_new = v_max_old > v_new ? v_max_old : v_new;
        *v_max = v_new;
    }
    tg_scalar denom = sqrt(v_new) / k->bias_correction2_sqrt + k->eps;
    return p - k->step_size * m_new / denom;
}

/* Updates elements [begin, end) of p, m and v from g in place, and of v_max
 * with amsgrad. The arrays are distinct tensors, so none aliases another,
 * and restrict lets the loop vectorise. It is compiled for AVX-512, AVX2
 * and the baseline, and the CPU picks one at load time. Without FMA
 * contraction (ISO C mode) all three give the same bits. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void adam_range(tg_scalar *restrict p, tg_scalar *restrict m, tg_scalar *restrict v,
                       tg_scalar *restrict v_max, const tg_scalar *restrict g, size_t begin,
                       size_t end, const adam_step *c, bool amsgrad) {
    const adam_step k = *c;
    if (amsgrad) {
        for (size_t i = begin; i < end; i++) {
            p[i] = adam_element(&k, true, p[i], g[i], &m[i], &v[i], &v_max[i]);
        }
    } else {
        for (size_t i = begin; i < end; i++) {
            p[i] = adam_element(&k, false, p[i], g[i], &m[i], &v[i], NULL);
        }
    }
}

/* Returns the constants of one parameter's update. */
static adam_step adam_step_of(const tg_optimizer *opt, const tg__optimizer_param *param,
                              double lr, double bias_correction1, double bias_correction2) {
    const tg_adam_options *o = &opt->options.adam;
    bool decoupled = opt->kind == TG_OPTIMIZER_ADAMW;
    double param_lr = lr * param->lr_scale;
    adam_step c = {
        .beta1 = (tg_scalar)o->beta1,
        .one_minus_beta1 = (tg_scalar)(1 - o->beta1),
        .beta2 = (tg_scalar)o->beta2,
        .one_minus_beta2 = (tg_scalar)(1 - o->beta2),
        .weight_decay = decoupled ? 0 : (tg_scalar)param->weight_decay,
        .decay_factor = decoupled ? (tg_scalar)(1 - param_lr * param->weight_decay) : 1,
        .step_size = (tg_scalar)(param_lr / bias_correction1),
        .bias_correction2_sqrt = (tg_scalar)sqrt(bias_correction2),
        .eps = (tg_scalar)o->eps,
    };
    return c;
}

/* Updates the elements [begin, end) of the concatenation of all parameters,
 * parameter by parameter, in blocks of TG__OPTIMIZER_BLOCK elements. */
static void adam_update_span(tg_optimizer *opt, double lr, double bias_correction1,
                             double bias_correction2, size_t begin, size_t end) {
    bool amsgrad = opt->options.adam.amsgrad;
    size_t offset = 0;
    for (int i = 0; i < opt->param_count && offset < end; i++) {
        tg__optimizer_param *param = &opt->params[i];
        tg_tensor *p = param->tensor;
        size_t lo = begin > offset ? begin - offset : 0;
        size_t hi = end - offset < p->size ? end - offset : p->size;
        offset += p->size;
        if (lo >= hi) {
            continue;
        }
        adam_step c = adam_step_of(opt, param, lr, bias_correction1, bias_correction2);
        tg_scalar *v_max = amsgrad ? param->slots[2]->data : NULL;
        for (size_t block = lo; block < hi; block += TG__OPTIMIZER_BLOCK) {
            size_t block_end = hi - block < TG__OPTIMIZER_BLOCK ? hi : block + TG__OPTIMIZER_BLOCK;
            adam_range(p->data, param->slots[0]->data, param->slots[1]->data, v_max, p->grad,
                       block, block_end, &c, amsgrad);
        }
    }
}

/* Updates every parameter in one parallel region: the threads split the
 * concatenation of all parameters into equal spans, so small parameters
 * share threads with large ones. Each element's update reads only that
 * element, so the split does not change any bit. */
static void adam_update(tg_optimizer *opt, double lr) {
    const tg_adam_options *o = &opt->options.adam;
    double t = (double)opt->step;
    double bias_correction1 = 1 - pow(o->beta1, t);
    double bias_correction2 = 1 - pow(o->beta2, t);
    size_t total = 0;
    for (int i = 0; i < opt->param_count; i++) {
        tg__optimizer_param *param = &opt->params[i];
        /* PyTorch creates zeroed moments on a parameter's first step. */
        if (!param->initialized) {
            for (int s = 0; s < opt->slot_count; s++) {
                tg_tensor_fill(param->slots[s], 0);
            }
        }
        total += param->tensor->size;
    }
    if (total <= TG__OPTIMIZER_PARALLEL_MIN || omp_get_max_threads() < 2) {
        adam_update_span(opt, lr, bias_correction1, bias_correction2, 0, total);
        return;
    }
#pragma omp parallel
    {
        size_t threads = (size_t)omp_get_num_threads();
        size_t thread = (size_t)omp_get_thread_num();
        adam_update_span(opt, lr, bias_correction1, bias_correction2, total * thread / threads,
                         total * (thread + 1) / threads);
    }
}

static tg_status check_options(const tg_adam_options *o, const char *kind_name) {
    if (!(o->beta1 >= 0 && o->beta1 < 1)) {
        return tg_set_error(TG_ERR_INVALID, "%s: beta1 %g is invalid; pass a value in [0, 1)",
                            kind_name, o->beta1);
    }
    if (!(o->beta2 >= 0 && o->beta2 < 1)) {
        return tg_set_error(TG_ERR_INVALID, "%s: beta2 %g is invalid; pass a value in [0, 1)",
                            kind_name, o->beta2);
    }
    if (!isfinite(o->eps) || o->eps < 0) {
        return tg_set_error(TG_ERR_INVALID, "%s: eps %g is invalid; pass a finite value >= 0",
                            kind_name, o->eps);
    }
    if (!isfinite(o->weight_decay) || o->weight_decay < 0) {
        return tg_set_error(TG_ERR_INVALID, "%s: weight_decay %g is invalid; pass a finite "
                            "value >= 0", kind_name, o->weight_decay);
    }
    return TG_OK;
}

static tg_optimizer *adam_new(const tg_param_list *list, const tg_adam_options *options,
                              tg_optimizer_kind kind) {
    const char *kind_name = tg_optimizer_kind_name(kind);
    tg_adam_options o = kind == TG_OPTIMIZER_ADAMW ? tg_adamw_default_options()
                                                   : tg_adam_default_options();
    if (options != NULL) {
        o = *options;
    }
    if (check_options(&o, kind_name) != TG_OK) {
        return NULL;
    }
    int slot_count = o.amsgrad ? 3 : 2;
    tg_optimizer *opt = tg__optimizer_new(list, kind, o.groups, o.weight_decay, slot_count,
                                          adam_slot_names);
    if (opt == NULL) {
        return NULL;
    }
    opt->update = adam_update;
    opt->options.adam = o;
    opt->options.adam.groups = &opt->groups;
    return opt;
}

tg_adam_options tg_adam_default_options(void) {
    tg_adam_options o;
    memset(&o, 0, sizeof o);
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    return o;
}

tg_adam_options tg_adamw_default_options(void) {
    tg_adam_options o = tg_adam_default_options();
    o.weight_decay = 0.01;
    return o;
}

tg_optimizer *tg_adam_new(const tg_param_list *list, const tg_adam_options *options) {
    return adam_new(list, options, TG_OPTIMIZER_ADAM);
}

tg_optimizer *tg_adamw_new(const tg_param_list *list, const tg_adam_options *options) {
    return adam_new(list, options, TG_OPTIMIZER_ADAMW);
}

tg_status tg_adam_get_options(const tg_optimizer *opt, tg_adam_options *options) {
    if (opt->kind != TG_OPTIMIZER_ADAM && opt->kind != TG_OPTIMIZER_ADAMW) {
        return tg_set_error(TG_ERR_INVALID, "tg_adam_get_options: the optimizer is %s, not adam "
                            "or adamw; call tg_sgd_get_options",
                            tg_optimizer_kind_name(opt->kind));
    }
    *options = opt->options.adam;
    return TG_OK;
}
