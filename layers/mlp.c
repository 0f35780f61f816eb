#include "mlp.h"

#include <string.h>

#include "../autograd/op.h"
#include "../autograd/ops/dropout.h"
#include "../autograd/ops/elementwise.h"
#include "../autograd/ops/gelu_mlp.h"

tg_status tg_mlp_init(tg_mlp *mlp, int dim, int hidden, bool bias, tg_gelu_approx gelu,
                      double dropout, tg_rng *rng, double init_std, double proj_init_std) {
    memset(mlp, 0, sizeof *mlp);
    if (!(dropout >= 0.0 && dropout < 1.0)) {
        return tg_set_error(TG_ERR_INVALID, "mlp: invalid dropout %g; it must be in [0, 1)",
                            dropout);
    }
    tg_status status = tg_linear_layer_init(&mlp->c_fc, dim, hidden, bias, rng, init_std);
    if (status == TG_OK) {
        status = tg_linear_layer_init(&mlp->c_proj, hidden, dim, bias, rng, proj_init_std);
    }
    if (status != TG_OK) {
        tg_mlp_free(mlp);
        return status;
    }
    mlp->gelu = gelu;
    mlp->dropout = dropout;
    return TG_OK;
}

/* Returns residual + mlp(x), or mlp(x) when residual is NULL. Without
 * dropout the fused op adds the residual itself. */
static tg_tensor *mlp_forward(tg_tape *tape, const tg_mlp *mlp, const tg_tensor *x,
                              const tg_tensor *residual, const tg_mode *mode) {
    bool dropout = mode != NULL && mode->training && mlp->dropout > 0.0;
    if (!dropout) {
        return tg_gelu_mlp(tape, x, mlp->c_fc.weight, mlp->c_fc.bias, mlp->c_proj.weight,
                           mlp->c_proj.bias, residual, mlp->gelu);
    }
    tg_tensor *h = tg_gelu_mlp(tape, x, mlp->c_fc.weight, mlp->c_fc.bias, mlp->c_proj.weight,
                               mlp->c_proj.bias, NULL, mlp->gelu);
    h = tg_dropout(tape, h, mlp->dropout, mode->rng, true);
    return residual != NULL ? tg_add(tape, residual, h) : h;
}

tg_tensor *tg_mlp_forward(tg_tape *tape, const tg_mlp *mlp, const tg_tensor *x,
                          const tg_mode *mode) {
    return mlp_forward(tape, mlp, x, NULL, mode);
}

tg_tensor *tg_mlp_forward_residual(tg_tape *tape, const tg_mlp *mlp, const tg_tensor *x,
                                   const tg_tensor *residual, const tg_mode *mode) {
    if (!tg_op_inputs_ok(tape, 1, &residual)) {
        return NULL;
    }
    return mlp_forward(tape, mlp, x, residual, mode);
}

tg_status tg_mlp_params(const tg_mlp *mlp, const char *prefix, tg_param_list *list) {
    char name[TG_PARAM_NAME_MAX];
    tg_status status = tg_param_name_join(name, sizeof name, prefix, "c_fc");
    if (status == TG_OK) {
        status = tg_linear_layer_params(&mlp->c_fc, name, list);
    }
    if (status == TG_OK) {
        status = tg_param_name_join(name, sizeof name, prefix, "c_proj");
    }
    if (status == TG_OK) {
        status = tg_linear_layer_params(&mlp->c_proj, name, list);
    }
    return status;
}

void tg_mlp_free(tg_mlp *mlp) {
    tg_linear_layer_free(&mlp->c_fc);
    tg_linear_layer_free(&mlp->c_proj);
}
