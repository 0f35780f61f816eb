/* Transformer MLP: c_fc, GELU, c_proj, then dropout, as in GPT-2.
 *
 * x (..., C) -> c_fc (C -> hidden) -> GELU -> c_proj (hidden -> C) -> dropout.
 * Parameters: "c_fc.weight" (hidden, C), "c_fc.bias", "c_proj.weight"
 * (C, hidden), "c_proj.bias". c_proj's weight is drawn with proj_init_std,
 * which GPT-2 scales down to 0.02 / sqrt(2 * n_layer) for residual branches.
 */
#ifndef TG_LAYERS_MLP_H
#define TG_LAYERS_MLP_H

#include "../autograd/ops/unary.h"
#include "linear.h"
#include "mode.h"

typedef struct tg_mlp {
    tg_linear_layer c_fc;
    tg_linear_layer c_proj;
    tg_gelu_approx gelu;
    double dropout;      /* probability, applied after c_proj in training */
} tg_mlp;

tg_status tg_mlp_init(tg_mlp *mlp, int dim, int hidden, bool bias, tg_gelu_approx gelu,
                      double dropout, tg_rng *rng, double init_std, double proj_init_std);

/* x (..., C) gives (..., C). mode may be NULL (evaluation). */
tg_tensor *tg_mlp_forward(tg_tape *tape, const tg_mlp *mlp, const tg_tensor *x,
                          const tg_mode *mode);

/* Returns residual + the MLP of x, residual and x (..., C). Without active
 * dropout the sum is formed inside the fused MLP op (see gelu_mlp.h), which
 * keeps less in step memory than a separate tg_add. */
tg_tensor *tg_mlp_forward_residual(tg_tape *tape, const tg_mlp *mlp, const tg_tensor *x,
                                   const tg_tensor *residual, const tg_mode *mode);

tg_status tg_mlp_params(const tg_mlp *mlp, const char *prefix, tg_param_list *list);

void tg_mlp_free(tg_mlp *mlp);

#endif
