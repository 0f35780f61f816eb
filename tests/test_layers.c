/* Layers: gradient checks in float64 with respect to inputs and every
 * parameter, parameter names, and configuration errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* Marks every parameter of a list as a gradcheck input after the given ones. */
static int gather_inputs(tg_tensor **inputs, int n_fixed, const tg_param_list *list) {
    for (int i = 0; i < list->count; i++) {
        inputs[n_fixed + i] = list->items[i].tensor;
    }
    return n_fixed + list->count;
}

/* Perturbs parameters away from their tidy initial values (zero biases, unit
 * gains), so the check covers the general case. */
static void randomise_params(const tg_param_list *list, tg_rng *rng) {
    for (int i = 0; i < list->count; i++) {
        tg_tensor *t = list->items[i].tensor;
        for (size_t j = 0; j < t->size; j++) {
            t->data[j] += (tg_scalar)(0.3 * tg_rng_normal(rng));
        }
    }
}

/* ---- linear ---------------------------------------------------------------- */

static tg_tensor *linear_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    return tg_linear_layer_forward(tape, user_data, in[0]);
}

Test(layers, linear_gradcheck_and_names) {
    tg_rng rng;
    tg_rng_seed(&rng, 41);
    tg_linear_layer layer;
    cr_assert_eq(tg_linear_layer_init(&layer, 5, 3, true, &rng, 0.5), TG_OK);
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_eq(tg_linear_layer_params(&layer, "fc", &list), TG_OK);
    cr_assert_eq(list.count, 2);
    cr_assert_str_eq(list.items[0].name, "fc.weight");
    cr_assert_str_eq(list.items[1].name, "fc.bias");
    cr_assert_eq(list.items[1].kind, TG_PARAM_BIAS);
    randomise_params(&list, &rng);

    int x_shape[3] = {2, 3, 5};
    tg_tensor *inputs[8] = {random_input(&rng, 3, x_shape)};
    int n = gather_inputs(inputs, 1, &list);
    expect_gradcheck("linear layer", linear_fn, n, inputs, &layer, NULL);

    tg_tensor_free(inputs[0]);
    tg_param_list_free(&list);
    tg_linear_layer_free(&layer);
}

Test(layers, linear_rejects_zero_size) {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_linear_layer layer;
    cr_assert_eq(tg_linear_layer_init(&layer, 0, 3, true, &rng, 0.02), TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "0 -> 3") != NULL, "message: %s", tg_last_error());
}

/* ---- embedding --------------------------------------------------------------- */

static tg_tensor *embedding_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)in;
    static const int32_t indices[6] = {1, 3, 1, 0, 3, 3};
    int shape[2] = {2, 3};
    return tg_embedding_layer_forward(tape, user_data, indices, 2, shape);
}

Test(layers, embedding_gradcheck) {
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    tg_embedding_layer layer;
    cr_assert_eq(tg_embedding_layer_init(&layer, 4, 5, &rng, 1.0), TG_OK);
    tg_tensor *inputs[1] = {layer.weight};
    expect_gradcheck("embedding layer", embedding_fn, 1, inputs, &layer, NULL);
    tg_embedding_layer_free(&layer);
}

/* ---- layernorm --------------------------------------------------------------- */

static tg_tensor *layernorm_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    return tg_layernorm_layer_forward(tape, user_data, in[0]);
}

Test(layers, layernorm_gradcheck_with_and_without_bias) {
    tg_rng rng;
    tg_rng_seed(&rng, 43);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        tg_layernorm_layer layer;
        cr_assert_eq(tg_layernorm_layer_init(&layer, 6, 1e-5, true, with_bias == 1), TG_OK);
        tg_param_list list;
        tg_param_list_init(&list);
        cr_assert_eq(tg_layernorm_layer_params(&layer, "ln", &list), TG_OK);
        cr_assert_eq(list.count, with_bias ? 2 : 1);
        cr_assert_eq(list.items[0].kind, TG_PARAM_NORM);
        randomise_params(&list, &rng);
        int x_shape[2] = {4, 6};
        tg_tensor *inputs[4] = {random_input(&rng, 2, x_shape)};
        int n = gather_inputs(inputs, 1, &list);
        expect_gradcheck("layernorm layer", layernorm_fn, n, inputs, &layer, NULL);
        tg_tensor_free(inputs[0]);
        tg_param_list_free(&list);
        tg_layernorm_layer_free(&layer);
    }
}

/* ---- mlp --------------------------------------------------------------------- */

static tg_tensor *mlp_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    return tg_mlp_forward(tape, user_data, in[0], NULL);
}

Test(layers, mlp_gradcheck_both_gelus) {
    tg_rng rng;
    tg_rng_seed(&rng, 44);
    tg_gelu_approx kinds[2] = {TG_GELU_TANH, TG_GELU_EXACT};
    for (int k = 0; k < 2; k++) {
        tg_mlp mlp;
        cr_assert_eq(tg_mlp_init(&mlp, 4, 8, true, kinds[k], 0.0, &rng, 0.5, 0.5), TG_OK);
        tg_param_list list;
        tg_param_list_init(&list);
        cr_assert_eq(tg_mlp_params(&mlp, "mlp", &list), TG_OK);
        cr_assert_str_eq(list.items[0].name, "mlp.c_fc.weight");
        cr_assert_str_eq(list.items[3].name, "mlp.c_proj.bias");
        randomise_params(&list, &rng);
        int x_shape[3] = {2, 3, 4};
        tg_tensor *inputs[8] = {random_input(&rng, 3, x_shape)};
        int n = gather_inputs(inputs, 1, &list);
        expect_gradcheck(k == 0 ? "mlp tanh" : "mlp exact", mlp_fn, n, inputs, &mlp, NULL);
        tg_tensor_free(inputs[0]);
        tg_param_list_free(&list);
        tg_mlp_free(&mlp);
    }
}

/* ---- attention --------------------------------------------------------------- */

typedef struct attention_case {
    tg_attention_layer *layer;
    bool causal;
    const uint8_t *mask;
} attention_case;

static tg_tensor *self_attention_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const attention_case *c = user_data;
    return tg_attention_layer_forward(tape, c->layer, in[0], c->causal, c->mask, NULL);
}

static tg_tensor *cross_attention_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const attention_case *c = user_data;
    return tg_cross_attention_layer_forward(tape, c->layer, in[0], in[1], c->mask, NULL);
}

Test(layers, self_attention_gradcheck_causal_and_masked) {
    tg_rng rng;
    tg_rng_seed(&rng, 45);
    tg_attention_layer layer;
    cr_assert_eq(tg_attention_layer_init(&layer, 6, 2, true, 0.0, &rng, 0.5, 0.5), TG_OK);
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_eq(tg_attention_layer_params(&layer, "attn", &list), TG_OK);
    cr_assert_str_eq(list.items[0].name, "attn.c_attn.weight");
    cr_assert_eq(list.items[0].tensor->shape[0], 18);
    randomise_params(&list, &rng);

    /* Batch entry 1 has its last key as padding. */
    static const uint8_t mask[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    attention_case cases[3] = {{&layer, true, NULL}, {&layer, false, mask}, {&layer, true, mask}};
    for (int k = 0; k < 3; k++) {
        int x_shape[3] = {2, 4, 6};
        tg_tensor *inputs[8] = {random_input(&rng, 3, x_shape)};
        int n = gather_inputs(inputs, 1, &list);
        expect_gradcheck("self-attention layer", self_attention_fn, n, inputs, &cases[k], NULL);
        tg_tensor_free(inputs[0]);
    }
    tg_param_list_free(&list);
    tg_attention_layer_free(&layer);
}

Test(layers, cross_attention_gradcheck) {
    tg_rng rng;
    tg_rng_seed(&rng, 46);
    tg_attention_layer layer;
    cr_assert_eq(tg_cross_attention_layer_init(&layer, 4, 3, 2, true, 0.0, &rng, 0.5, 0.5), TG_OK);
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_eq(tg_attention_layer_params(&layer, "cross", &list), TG_OK);
    cr_assert_eq(list.count, 8);
    cr_assert_str_eq(list.items[2].name, "cross.k_proj.weight");
    randomise_params(&list, &rng);

    int x_shape[3] = {2, 3, 4};
    int context_shape[3] = {2, 5, 3};
    static const uint8_t mask[10] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    attention_case c = {&layer, false, mask};
    tg_tensor *inputs[12] = {random_input(&rng, 3, x_shape), random_input(&rng, 3, context_shape)};
    int n = gather_inputs(inputs, 2, &list);
    expect_gradcheck("cross-attention layer", cross_attention_fn, n, inputs, &c, NULL);
    tg_tensor_free(inputs[0]);
    tg_tensor_free(inputs[1]);
    tg_param_list_free(&list);
    tg_attention_layer_free(&layer);
}

Test(layers, attention_rejects_indivisible_heads) {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_attention_layer layer;
    cr_assert_eq(tg_attention_layer_init(&layer, 10, 3, true, 0.0, &rng, 0.02, 0.02),
                 TG_ERR_INVALID);
    cr_assert(strstr(tg_last_error(), "10") != NULL, "message: %s", tg_last_error());
    cr_assert(strstr(tg_last_error(), "n_head 3") != NULL, "message: %s", tg_last_error());
}

/* ---- transformer block -------------------------------------------------------- */

static tg_tensor *block_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    return tg_block_forward(tape, user_data, in[0], true, NULL, NULL);
}

Test(layers, block_gradcheck_and_names) {
    tg_rng rng;
    tg_rng_seed(&rng, 47);
    tg_block_config config = {
        .dim = 4, .n_head = 2, .mlp_hidden = 8, .bias = true, .dropout = 0.0,
        .layernorm_eps = 1e-5, .gelu = TG_GELU_TANH, .init_std = 0.5, .proj_init_std = 0.5,
    };
    tg_block block;
    cr_assert_eq(tg_block_init(&block, &config, &rng), TG_OK);
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_eq(tg_block_params(&block, "h.0", &list), TG_OK);
    const char *expected[12] = {
        "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
        "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_2.weight", "h.0.ln_2.bias",
        "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight",
        "h.0.mlp.c_proj.bias",
    };
    cr_assert_eq(list.count, 12);
    for (int i = 0; i < 12; i++) {
        cr_assert_str_eq(list.items[i].name, expected[i]);
    }
    randomise_params(&list, &rng);
    int x_shape[3] = {2, 3, 4};
    tg_tensor *inputs[16] = {random_input(&rng, 3, x_shape)};
    int n = gather_inputs(inputs, 1, &list);
    expect_gradcheck("transformer block", block_fn, n, inputs, &block, NULL);
    tg_tensor_free(inputs[0]);
    tg_param_list_free(&list);
    tg_block_free(&block);
}

/* ---- positional encodings ------------------------------------------------------- */

static tg_tensor *pos_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    return tg_pos_encoding_forward(tape, user_data, in[0]);
}

Test(layers, positional_gradcheck_all_variants) {
    tg_rng rng;
    tg_rng_seed(&rng, 48);
    tg_pos_kind kinds[2] = {TG_POS_SINUSOIDAL, TG_POS_LEARNED};
    tg_pos_combine combines[2] = {TG_POS_ADD, TG_POS_CONCAT};
    for (int k = 0; k < 2; k++) {
        for (int c = 0; c < 2; c++) {
            tg_pos_encoding_config config = {
                .kind = kinds[k], .combine = combines[c], .layout = TG_SINUSOID_INTERLEAVED,
                .max_len = 5, .dim = 4, .init_std = 1.0,
            };
            tg_pos_encoding pe;
            cr_assert_eq(tg_pos_encoding_init(&pe, &config, &rng), TG_OK, "%s", tg_last_error());
            int x_shape[3] = {2, 3, 4};
            tg_tensor *inputs[2] = {random_input(&rng, 3, x_shape), pe.table};
            int n = kinds[k] == TG_POS_LEARNED ? 2 : 1;
            expect_gradcheck("positional encoding", pos_fn, n, inputs, &pe, NULL);

            tg_tape *tape = tg_tape_new();
            tg_tensor *y = tg_pos_encoding_forward(tape, &pe, inputs[0]);
            cr_assert_not_null(y, "%s", tg_tape_error(tape));
            cr_assert_eq(y->shape[2], combines[c] == TG_POS_CONCAT ? 8 : 4);
            tg_tape_free(tape);
            tg_tensor_free(inputs[0]);
            tg_pos_encoding_free(&pe);
        }
    }
}

Test(layers, sinusoid_matches_formula) {
    int dim = 8;
    double positions[3] = {0, 1, 17};
    tg_scalar interleaved[24];
    tg_scalar halves[24];
    cr_assert_eq(tg_sinusoid_encode(interleaved, positions, 3, dim, TG_SINUSOID_INTERLEAVED), TG_OK);
    cr_assert_eq(tg_sinusoid_encode(halves, positions, 3, dim, TG_SINUSOID_HALVES), TG_OK);
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < dim / 2; i++) {
            double angle = positions[p] / pow(10000.0, 2.0 * i / dim);
            cr_assert(fabs(interleaved[p * dim + 2 * i] - sin(angle)) < 1e-15);
            cr_assert(fabs(interleaved[p * dim + 2 * i + 1] - cos(angle)) < 1e-15);
            cr_assert(fabs(halves[p * dim + i] - sin(angle)) < 1e-15);
            cr_assert(fabs(halves[p * dim + dim / 2 + i] - cos(angle)) < 1e-15);
        }
    }
    cr_assert_eq(tg_sinusoid_encode(halves, positions, 3, 7, TG_SINUSOID_HALVES), TG_ERR_INVALID);
}

Test(layers, sinusoid_2d_encodes_row_then_column) {
    tg_scalar grid[2 * 3 * 8];
    cr_assert_eq(tg_sinusoid_encode_2d(grid, 2, 3, 8, TG_SINUSOID_HALVES), TG_OK);
    /* Patch (1, 2) is row-major index 5. */
    tg_scalar row_code[4];
    tg_scalar col_code[4];
    double row = 1;
    double col = 2;
    tg_sinusoid_encode(row_code, &row, 1, 4, TG_SINUSOID_HALVES);
    tg_sinusoid_encode(col_code, &col, 1, 4, TG_SINUSOID_HALVES);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(grid[5 * 8 + i], row_code[i]);
        cr_assert_eq(grid[5 * 8 + 4 + i], col_code[i]);
    }
}

Test(layers, positional_rejects_long_sequence) {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_pos_encoding_config config = {.kind = TG_POS_LEARNED, .combine = TG_POS_ADD,
                                     .max_len = 4, .dim = 2, .init_std = 0.02};
    tg_pos_encoding pe;
    cr_assert_eq(tg_pos_encoding_init(&pe, &config, &rng), TG_OK);
    int x_shape[3] = {1, 5, 2};
    tg_tensor *x = tg_tensor_zeros(3, x_shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_pos_encoding_forward(tape, &pe, x));
    cr_assert(strstr(tg_tape_error(tape), "(1, 5, 2)") != NULL, "message: %s", tg_tape_error(tape));
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_pos_encoding_free(&pe);
}

/* ---- timestep embedding --------------------------------------------------------- */

static tg_tensor *timestep_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    (void)in;
    static const int32_t t[3] = {0, 17, 999};
    return tg_timestep_embedding_forward(tape, user_data, t, 3);
}

Test(layers, timestep_embedding_gradcheck) {
    tg_rng rng;
    tg_rng_seed(&rng, 49);
    tg_timestep_embedding te;
    cr_assert_eq(tg_timestep_embedding_init(&te, 8, 6, 4, &rng, 0.5), TG_OK);
    tg_param_list list;
    tg_param_list_init(&list);
    cr_assert_eq(tg_timestep_embedding_params(&te, "t_embed", &list), TG_OK);
    cr_assert_str_eq(list.items[2].name, "t_embed.fc2.weight");
    randomise_params(&list, &rng);
    tg_tensor *inputs[4];
    int n = gather_inputs(inputs, 0, &list);
    expect_gradcheck("timestep embedding", timestep_fn, n, inputs, &te, NULL);
    tg_param_list_free(&list);
    tg_timestep_embedding_free(&te);
}
