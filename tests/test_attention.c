/* attention and self_attention_packed. The forward is compared with a naive
 * reference in double, and values and gradients with the same computation
 * built from matmul and elementwise ops. Gradient checks in float64 cover
 * causal and padding masks. Further tests cover fully masked rows, large
 * logits, determinism across thread counts, step memory and errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <string.h>

#include "check.h"
#include "tapegrad.h"

/* The float exp of the fused softmax (attention.c). */
float tg__attention_expf(float x);

/* The per-head product C (M, N) = alpha * A (M, K) B (K, N) (attention.c). */
void tg__attention_product(int M, int N, int K, tg_scalar alpha, const tg_scalar *A, int lda,
                           const tg_scalar *B, int ldb, tg_scalar *C, int ldc);

typedef struct attention_case {
    int B, Tq, Tk, C, H;
    bool causal;
    bool padded;    /* draw a random key padding mask */
    double scale;   /* 0 for the default */
} attention_case;

static const attention_case cases[] = {
    {2, 5, 5, 8, 2, false, false, 0.0},
    {2, 5, 5, 8, 2, true, false, 0.0},
    {1, 7, 7, 12, 3, true, true, 0.0},
    {2, 3, 6, 8, 4, false, true, 0.7},   /* cross attention, Tq < Tk */
    {2, 3, 6, 8, 1, true, false, 0.0},   /* causal cross: query i attends to j <= i + 3 */
    {2, 6, 3, 4, 2, true, false, 0.0},   /* Tq > Tk: the first 3 rows see no key */
    {1, 20, 20, 8, 4, true, false, 0.0}, /* two causal row blocks, the second partial */
    {1, 37, 37, 6, 1, true, true, -0.3}, /* three blocks and a negative scale */
    {2, 17, 17, 10, 2, false, false, 0.0}, /* head size 5, a partial 16-key tile */
};

#define N_CASES (sizeof cases / sizeof cases[0])

/* Draws a (B, Tk) padding mask with about a third of the keys masked, but
 * leaves key 0 free so that no row is fully masked. */
static uint8_t *random_mask(tg_rng *rng, int B, int Tk) {
    uint8_t *mask = malloc((size_t)B * (size_t)Tk);
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < Tk; j++) {
            mask[b * Tk + j] = j > 0 && tg_rng_uniform(rng) < 0.33;
        }
    }
    return mask;
}

/* Attention in double with plain loops. q, k and v are read with row strides
 * ldq, ldk and ldv (C, or 3C for a packed tensor); out is (B, Tq, C). */
static void reference_attention(double *out, const tg_scalar *q, int ldq, const tg_scalar *k,
                                int ldk, const tg_scalar *v, int ldv, int B, int Tq, int Tk,
                                int C, int H, bool causal, const uint8_t *mask, double scale) {
    int D = C / H;
    if (scale == 0.0) {
        scale = 1.0 / sqrt((double)D);
    }
    double *p = malloc((size_t)Tk * sizeof *p);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < Tq; i++) {
                double max = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    bool allowed = !(causal && j > i + Tk - Tq) &&
                                   !(mask != NULL && mask[b * Tk + j] != 0);
                    p[j] = -INFINITY;
                    if (allowed) {
                        double s = 0.0;
                        for (int d = 0; d < D; d++) {
                            s += (double)q[(size_t)(b * Tq + i) * ldq + h * D + d] *
                                 (double)k[(size_t)(b * Tk + j) * ldk + h * D + d];
                        }
                        p[j] = scale * s;
                        max = fmax(max, p[j]);
                    }
                }
                double sum = 0.0;
                for (int j = 0; j < Tk; j++) {
                    p[j] = max == (double)-INFINITY ? 0.0 : exp(p[j] - max);
                    sum += p[j];
                }
                for (int d = 0; d < D; d++) {
                    double o = 0.0;
                    for (int j = 0; j < Tk && sum > 0.0; j++) {
                        o += p[j] / sum * (double)v[(size_t)(b * Tk + j) * ldv + h * D + d];
                    }
                    out[(size_t)(b * Tq + i) * C + h * D + d] = o;
                }
            }
        }
    }
    free(p);
}

typedef struct attention_call {
    int H;
    tg_attention_options options;
} attention_call;

static tg_tensor *attention_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const attention_call *call = user_data;
    return tg_attention(tape, in[0], in[1], in[2], call->H, &call->options);
}

static tg_tensor *packed_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const attention_call *call = user_data;
    return tg_self_attention_packed(tape, in[0], call->H, &call->options);
}

/* Self-attention with one tensor passed as q, k and v, so that all three
 * gradients land in one buffer. */
static tg_tensor *same_input_fn(tg_tape *tape, tg_tensor *const *in, void *user_data) {
    const attention_call *call = user_data;
    return tg_attention(tape, in[0], in[0], in[0], call->H, &call->options);
}

/* q, k and v for one case, with N(0, 1) elements that require grad. */
static void case_inputs(tg_rng *rng, const attention_case *c, tg_tensor **qkv) {
    int q_shape[3] = {c->B, c->Tq, c->C};
    int kv_shape[3] = {c->B, c->Tk, c->C};
    qkv[0] = random_input(rng, 3, q_shape);
    qkv[1] = random_input(rng, 3, kv_shape);
    qkv[2] = random_input(rng, 3, kv_shape);
}

Test(attention, forward_matches_naive_reference) {
    tg_rng rng;
    tg_rng_seed(&rng, 51);
    tg_tape *tape = tg_tape_new();
    for (size_t n = 0; n < N_CASES; n++) {
        const attention_case *c = &cases[n];
        tg_tensor *in[3];
        case_inputs(&rng, c, in);
        uint8_t *mask = c->padded ? random_mask(&rng, c->B, c->Tk) : NULL;
        tg_attention_options options = {c->causal, mask, c->scale};
        tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c->H, &options);
        cr_assert_not_null(out, "case %zu: %s", n, tg_tape_error(tape));
        cr_assert_eq(out->ndim, 3);
        cr_assert_eq(out->shape[0], c->B);
        cr_assert_eq(out->shape[1], c->Tq);
        cr_assert_eq(out->shape[2], c->C);
        double *expected = malloc(out->size * sizeof *expected);
        reference_attention(expected, in[0]->data, c->C, in[1]->data, c->C, in[2]->data, c->C,
                            c->B, c->Tq, c->Tk, c->C, c->H, c->causal, mask, c->scale);
        char what[32];
        snprintf(what, sizeof what, "attention case %zu", n);
        expect_close(what, out->data, expected, out->size, 1e-12, 1e-12);
        free(expected);
        free(mask);
        for (int i = 0; i < 3; i++) {
            tg_tensor_free(in[i]);
        }
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

/* Shapes the models run (ddpm: 49 tokens, head size 32; charlm: 64 causal
 * tokens) and odd ones: one token, head sizes that are no multiple of 8, and
 * row counts that are no multiple of the product's 4-row tiles. */
static const attention_case model_cases[] = {
    {2, 49, 49, 128, 4, false, false, 0.0},
    {1, 64, 64, 128, 4, true, false, 0.0},
    {3, 1, 1, 8, 2, false, false, 0.0},
    {2, 1, 1, 8, 2, true, false, 0.0},
    {1, 49, 49, 10, 2, false, true, 0.0},
    {2, 30, 30, 39, 3, true, false, 0.0},
    {1, 7, 49, 21, 1, false, false, 0.0},
};

Test(attention, forward_matches_reference_at_model_shapes) {
    tg_rng rng;
    tg_rng_seed(&rng, 57);
    tg_tape *tape = tg_tape_new();
    size_t n_cases = sizeof model_cases / sizeof model_cases[0];
    for (size_t n = 0; n < n_cases; n++) {
        const attention_case *c = &model_cases[n];
        tg_tensor *in[3];
        case_inputs(&rng, c, in);
        uint8_t *mask = c->padded ? random_mask(&rng, c->B, c->Tk) : NULL;
        tg_attention_options options = {c->causal, mask, c->scale};
        tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c->H, &options);
        cr_assert_not_null(out, "model case %zu: %s", n, tg_tape_error(tape));
        double *expected = malloc(out->size * sizeof *expected);
        reference_attention(expected, in[0]->data, c->C, in[1]->data, c->C, in[2]->data, c->C,
                            c->B, c->Tq, c->Tk, c->C, c->H, c->causal, mask, c->scale);
        char what[48];
        snprintf(what, sizeof what, "attention model case %zu", n);
        expect_close(what, out->data, expected, out->size, 1e-12, 1e-12);
        free(expected);
        free(mask);
        for (int i = 0; i < 3; i++) {
            tg_tensor_free(in[i]);
        }
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}

/* Shapes (M, N, K) of the per-head product: the models' score products,
 * single rows and columns, and sizes that leave partial tiles. */
static const int product_shapes[][3] = {
    {49, 49, 32}, {16, 64, 32}, {16, 16, 32}, {1, 1, 1},  {1, 49, 32}, {49, 1, 32},
    {5, 17, 13},  {4, 16, 8},   {3, 33, 7},   {64, 64, 32}, {7, 15, 5}, {2, 31, 40},
};

Test(attention, head_product_matches_ordered_sum) {
    tg_rng rng;
    tg_rng_seed(&rng, 58);
    const tg_scalar alphas[] = {1, (tg_scalar)0.17677669, (tg_scalar)-0.3};
    size_t n_shapes = sizeof product_shapes / sizeof product_shapes[0];
    for (size_t n = 0; n < n_shapes; n++) {
        int M = product_shapes[n][0];
        int N = product_shapes[n][1];
        int K = product_shapes[n][2];
        /* Row strides wider than the rows, as in a packed qkv. */
        int lda = K + 3;
        int ldb = N + 2;
        int ldc = N + 5;
        tg_scalar *A = malloc((size_t)M * lda * sizeof *A);
        tg_scalar *B = malloc((size_t)K * ldb * sizeof *B);
        tg_scalar *C = malloc((size_t)M * ldc * sizeof *C);
        for (size_t i = 0; i < (size_t)M * lda; i++) {
            A[i] = (tg_scalar)tg_rng_normal(&rng);
        }
        for (size_t i = 0; i < (size_t)K * ldb; i++) {
            B[i] = (tg_scalar)tg_rng_normal(&rng);
        }
        for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
            const tg_scalar sentinel = (tg_scalar)12345.0;
            for (size_t i = 0; i < (size_t)M * ldc; i++) {
                C[i] = sentinel;
            }
            tg__attention_product(M, N, K, alphas[a], A, lda, B, ldb, C, ldc);
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    tg_scalar sum = 0;
                    double exact = 0.0;
                    for (int k = 0; k < K; k++) {
                        sum += A[(size_t)i * lda + k] * B[(size_t)k * ldb + j];
                        exact += (double)A[(size_t)i * lda + k] * (double)B[(size_t)k * ldb + j];
                    }
                    tg_scalar expected = alphas[a] * sum;
                    tg_scalar actual = C[(size_t)i * ldc + j];
                    cr_assert(actual == expected,
                              "shape %d x %d x %d, alpha %g: C[%d][%d] is %.17g, the ordered "
                              "sum gives %.17g",
                              M, N, K, (double)alphas[a], i, j, (double)actual,
                              (double)expected);
                    double bound = 1e-5 * (1.0 + fabs((double)alphas[a] * exact));
                    cr_assert_leq(fabs((double)actual - (double)alphas[a] * exact), bound,
                                  "shape %d x %d x %d: C[%d][%d] is %.9g, exactly %.9g", M, N,
                                  K, i, j, (double)actual, (double)alphas[a] * exact);
                }
                for (int j = N; j < ldc; j++) {
                    cr_assert_eq(C[(size_t)i * ldc + j], sentinel,
                                 "shape %d x %d x %d: padding C[%d][%d] was written", M, N, K,
                                 i, j);
                }
            }
        }
        free(A);
        free(B);
        free(C);
    }
}

Test(attention, gradcheck_all_cases) {
    tg_rng rng;
    tg_rng_seed(&rng, 52);
    for (size_t n = 0; n < N_CASES; n++) {
        const attention_case *c = &cases[n];
        if (c->Tq * c->Tk > 100) {
            continue;  /* the long cases are covered by the comparisons */
        }
        tg_tensor *in[3];
        case_inputs(&rng, c, in);
        uint8_t *mask = c->padded ? random_mask(&rng, c->B, c->Tk) : NULL;
        attention_call call = {c->H, {c->causal, mask, c->scale}};
        char what[32];
        snprintf(what, sizeof what, "attention case %zu", n);
        expect_gradcheck(what, attention_fn, 3, in, &call, NULL);
        free(mask);
        for (int i = 0; i < 3; i++) {
            tg_tensor_free(in[i]);
        }
    }
}

Test(attention, gradcheck_packed_causal_and_mask) {
    tg_rng rng;
    tg_rng_seed(&rng, 53);
    int shape[3] = {2, 6, 12};  /* C = 4, with 2 heads of 2 */
    for (int variant = 0; variant < 3; variant++) {
        tg_tensor *qkv = random_input(&rng, 3, shape);
        uint8_t *mask = variant >= 1 ? random_mask(&rng, 2, 6) : NULL;
        attention_call call = {2, {variant != 1, mask, 0.0}};
        char what[48];
        snprintf(what, sizeof what, "packed variant %d", variant);
        expect_gradcheck(what, packed_fn, 1, &qkv, &call, NULL);
        free(mask);
        tg_tensor_free(qkv);
    }
}

Test(attention, gradcheck_one_tensor_as_q_k_v) {
    tg_rng rng;
    tg_rng_seed(&rng, 54);
    int shape[3] = {2, 5, 6};
    tg_tensor *x = random_input(&rng, 3, shape);
    attention_call call = {3, {true, NULL, 0.0}};
    expect_gradcheck("x as q, k and v", same_input_fn, 1, &x, &call, NULL);
    tg_tensor_free(x);
}

/* Runs backward from out with an output gradient drawn from seed. The
 * gradients land in the inputs. */
static void backward_with_seed(tg_tape *tape, tg_tensor *out, uint64_t seed) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_scalar *grad = malloc(out->size * sizeof *grad);
    for (size_t i = 0; i < out->size; i++) {
        grad[i] = (tg_scalar)tg_rng_normal(&rng);
    }
    cr_assert_eq(tg_tape_backward_from(tape, out, grad), TG_OK, "%s", tg_last_error());
    free(grad);
}

/* Copies channels [offset, offset + C) of each row of x (B, T, width) into a
 * new heap tensor (B, T, C) that requires grad. */
static tg_tensor *copy_columns(const tg_tensor *x, int offset, int C) {
    int shape[3] = {x->shape[0], x->shape[1], C};
    tg_tensor *y = tg_tensor_zeros(3, shape);
    int width = x->shape[2];
    for (int r = 0; r < x->shape[0] * x->shape[1]; r++) {
        for (int i = 0; i < C; i++) {
            y->data[r * C + i] = x->data[r * width + offset + i];
        }
    }
    tg_tensor_set_requires_grad(y, true);
    return y;
}

Test(attention, packed_matches_separate_inputs) {
    tg_rng rng;
    tg_rng_seed(&rng, 55);
    int B = 2;
    int T = 19;
    int C = 12;
    int shape[3] = {B, T, 3 * C};
    tg_tensor *qkv = random_input(&rng, 3, shape);
    tg_tensor *q = copy_columns(qkv, 0, C);
    tg_tensor *k = copy_columns(qkv, C, C);
    tg_tensor *v = copy_columns(qkv, 2 * C, C);
    uint8_t *mask = random_mask(&rng, B, T);
    tg_attention_options options = {true, mask, 0.0};

    tg_tape *tape = tg_tape_new();
    tg_tensor *packed = tg_self_attention_packed(tape, qkv, 3, &options);
    cr_assert_not_null(packed, "%s", tg_tape_error(tape));
    backward_with_seed(tape, packed, 56);
    tg_tape *tape2 = tg_tape_new();
    tg_tensor *separate = tg_attention(tape2, q, k, v, 3, &options);
    cr_assert_not_null(separate, "%s", tg_tape_error(tape2));
    backward_with_seed(tape2, separate, 56);

    double *expected = malloc(qkv->size * sizeof *expected);
    for (size_t i = 0; i < packed->size; i++) {
        expected[i] = (double)separate->data[i];
    }
    expect_close("packed output", packed->data, expected, packed->size, 1e-14, 1e-14);
    const tg_tensor *parts[3] = {q, k, v};
    for (int r = 0; r < B * T; r++) {
        for (int part = 0; part < 3; part++) {
            for (int i = 0; i < C; i++) {
                expected[r * 3 * C + part * C + i] = (double)parts[part]->grad[r * C + i];
            }
        }
    }
    expect_close("packed gradient", qkv->grad, expected, qkv->size, 1e-14, 1e-14);

    free(expected);
    free(mask);
    tg_tape_free(tape);
    tg_tape_free(tape2);
    tg_tensor_free(qkv);
    tg_tensor_free(q);
    tg_tensor_free(k);
    tg_tensor_free(v);
}

/* ---- The same computation from primitive ops ----------------------------- */

/* Softmax over the last dimension as a test-local op, independent of the
 * fused kernel: y = exp(x - max) / sum, dx += y * (dy - sum(dy * y)). */
static void softmax_backward(tg_node *node) {
    tg_scalar *dx = tg_node_input_grad(node, 0);
    if (dx == NULL) {
        return;
    }
    const tg_tensor *y = node->output;
    int n = y->shape[y->ndim - 1];
    for (size_t r = 0; r < y->size / (size_t)n; r++) {
        const tg_scalar *y_r = y->data + r * n;
        const tg_scalar *dy_r = y->grad + r * n;
        double dot = 0.0;
        for (int j = 0; j < n; j++) {
            dot += (double)dy_r[j] * (double)y_r[j];
        }
        for (int j = 0; j < n; j++) {
            dx[r * n + j] += (tg_scalar)((double)y_r[j] * ((double)dy_r[j] - dot));
        }
    }
}

static const tg_op softmax_op = {"test_softmax", softmax_backward};

static tg_tensor *softmax(tg_tape *tape, const tg_tensor *x) {
    if (!tg_op_inputs_ok(tape, 1, &x)) {
        return NULL;
    }
    tg_tensor *y = tg_tape_tensor(tape, x->ndim, x->shape);
    int n = x->shape[x->ndim - 1];
    for (size_t r = 0; r < x->size / (size_t)n; r++) {
        const tg_scalar *x_r = x->data + r * n;
        double max = -INFINITY;
        for (int j = 0; j < n; j++) {
            max = fmax(max, (double)x_r[j]);
        }
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            sum += exp((double)x_r[j] - max);
        }
        for (int j = 0; j < n; j++) {
            y->data[r * n + j] = (tg_scalar)(exp((double)x_r[j] - max) / sum);
        }
    }
    tg_tape_record(tape, &softmax_op, y, 1, &x);
    return y;
}

/* Attention from matmul, scale and add. A (C, D) 0/1 matrix E_h picks head
 * h's channels, and masks enter as a (B, Tq, Tk) bias of 0 or -inf. Each
 * head's output goes back to its channels through E_h^T. */
static tg_tensor *composed_attention(tg_tape *tape, tg_tensor *const *in, int H,
                                     const tg_tensor *const *select, const tg_tensor *bias,
                                     double scale) {
    tg_tensor *out = NULL;
    for (int h = 0; h < H; h++) {
        tg_tensor *q_h = tg_matmul(tape, in[0], select[h]);
        tg_tensor *k_h = tg_matmul(tape, in[1], select[h]);
        tg_tensor *v_h = tg_matmul(tape, in[2], select[h]);
        tg_tensor *scores = tg_scale(tape, tg_matmul_t(tape, q_h, k_h, false, true), scale);
        tg_tensor *probs = softmax(tape, tg_add(tape, scores, bias));
        tg_tensor *o_h = tg_matmul_t(tape, tg_matmul(tape, probs, v_h), select[h], false, true);
        out = out == NULL ? o_h : tg_add(tape, out, o_h);
    }
    return out;
}

Test(attention, matches_composition_of_primitives) {
    tg_rng rng;
    tg_rng_seed(&rng, 57);
    for (size_t n = 0; n < N_CASES; n++) {
        const attention_case *c = &cases[n];
        if (c->causal && c->Tq > c->Tk) {
            continue;  /* fully masked rows have no softmax to compare with */
        }
        int D = c->C / c->H;
        tg_tensor *fused_in[3];
        case_inputs(&rng, c, fused_in);
        tg_tensor *composed_in[3];
        for (int i = 0; i < 3; i++) {
            composed_in[i] = copy_columns(fused_in[i], 0, c->C);
        }
        uint8_t *mask = c->padded ? random_mask(&rng, c->B, c->Tk) : NULL;
        int bias_shape[3] = {c->B, c->Tq, c->Tk};
        tg_tensor *bias = tg_tensor_zeros(3, bias_shape);
        for (int b = 0; b < c->B; b++) {
            for (int i = 0; i < c->Tq; i++) {
                for (int j = 0; j < c->Tk; j++) {
                    bool masked = (c->causal && j > i + c->Tk - c->Tq) ||
                                  (mask != NULL && mask[b * c->Tk + j] != 0);
                    bias->data[(b * c->Tq + i) * c->Tk + j] = masked ? -INFINITY : 0;
                }
            }
        }
        tg_tensor *select[4];
        int select_shape[2] = {c->C, D};
        for (int h = 0; h < c->H; h++) {
            select[h] = tg_tensor_zeros(2, select_shape);
            for (int d = 0; d < D; d++) {
                select[h]->data[(h * D + d) * D + d] = 1;
            }
        }
        double scale = c->scale != 0.0 ? c->scale : 1.0 / sqrt((double)D);

        tg_tape *tape = tg_tape_new();
        tg_attention_options options = {c->causal, mask, c->scale};
        tg_tensor *fused = tg_attention(tape, fused_in[0], fused_in[1], fused_in[2], c->H,
                                        &options);
        cr_assert_not_null(fused, "case %zu: %s", n, tg_tape_error(tape));
        backward_with_seed(tape, fused, 58);
        tg_tape *tape2 = tg_tape_new();
        tg_tensor *composed = composed_attention(tape2, composed_in, c->H,
                                                 (const tg_tensor *const *)select, bias, scale);
        cr_assert_not_null(composed, "case %zu: %s", n, tg_tape_error(tape2));
        backward_with_seed(tape2, composed, 58);

        char what[48];
        double *expected = malloc(composed->size * sizeof *expected);
        for (size_t i = 0; i < composed->size; i++) {
            expected[i] = (double)composed->data[i];
        }
        snprintf(what, sizeof what, "case %zu output", n);
        expect_close(what, fused->data, expected, fused->size, 1e-12, 1e-12);
        free(expected);
        const char *names[3] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) {
            expected = malloc(fused_in[i]->size * sizeof *expected);
            for (size_t e = 0; e < fused_in[i]->size; e++) {
                expected[e] = (double)composed_in[i]->grad[e];
            }
            snprintf(what, sizeof what, "case %zu %s", n, names[i]);
            expect_close(what, fused_in[i]->grad, expected, fused_in[i]->size, 1e-12, 1e-12);
            free(expected);
        }

        tg_tape_free(tape);
        tg_tape_free(tape2);
        for (int i = 0; i < 3; i++) {
            tg_tensor_free(fused_in[i]);
            tg_tensor_free(composed_in[i]);
        }
        for (int h = 0; h < c->H; h++) {
            tg_tensor_free(select[h]);
        }
        tg_tensor_free(bias);
        free(mask);
    }
}

/* ---- Hard cases --------------------------------------------------------- */

static void expect_all_finite(const char *what, const tg_scalar *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(x[i]), "%s[%zu] is %g", what, i, (double)x[i]);
    }
}

static void expect_all_zero(const char *what, const tg_scalar *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(x[i], 0, "%s[%zu] is %g, expected 0", what, i, (double)x[i]);
    }
}

Test(attention, fully_masked_rows_give_zeros) {
    tg_rng rng;
    tg_rng_seed(&rng, 59);
    attention_case c = {2, 4, 5, 6, 2, false, true, 0.0};
    tg_tensor *in[3];
    case_inputs(&rng, &c, in);
    uint8_t mask[10] = {0, 1, 0, 0, 1, 1, 1, 1, 1, 1};  /* batch 1: every key is padding */
    tg_attention_options options = {false, mask, 0.0};
    tg_tape *tape = tg_tape_new();
    tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c.H, &options);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    backward_with_seed(tape, out, 60);

    size_t q_half = in[0]->size / 2;
    size_t kv_half = in[1]->size / 2;
    expect_all_finite("out", out->data, out->size);
    expect_all_zero("out of batch 1", out->data + q_half, q_half);
    expect_all_zero("dq of batch 1", in[0]->grad + q_half, q_half);
    expect_all_zero("dk of batch 1", in[1]->grad + kv_half, kv_half);
    expect_all_zero("dv of batch 1", in[2]->grad + kv_half, kv_half);
    for (int i = 0; i < 3; i++) {
        expect_all_finite("gradient", in[i]->grad, in[i]->size);
    }
    /* The masked keys 1 and 4 of batch 0 receive no gradient either. */
    for (int d = 0; d < c.C; d++) {
        cr_assert_eq(in[1]->grad[1 * c.C + d], 0, "dk of masked key 1 is %g",
                     (double)in[1]->grad[1 * c.C + d]);
        cr_assert_eq(in[2]->grad[4 * c.C + d], 0, "dv of masked key 4 is %g",
                     (double)in[2]->grad[4 * c.C + d]);
    }
    tg_tape_free(tape);
    for (int i = 0; i < 3; i++) {
        tg_tensor_free(in[i]);
    }
}

Test(attention, causal_rows_before_first_key_are_zero) {
    tg_rng rng;
    tg_rng_seed(&rng, 61);
    attention_case c = {2, 6, 3, 4, 2, true, false, 0.0};
    tg_tensor *in[3];
    case_inputs(&rng, &c, in);
    tg_attention_options options = {true, NULL, 0.0};
    tg_tape *tape = tg_tape_new();
    tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c.H, &options);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    backward_with_seed(tape, out, 62);
    /* Rows 0 to 2 of each batch entry precede every key (offset Tk - Tq = -3). */
    for (int b = 0; b < c.B; b++) {
        expect_all_zero("early output rows", out->data + (size_t)b * 6 * 4, 3 * 4);
        expect_all_zero("dq of early rows", in[0]->grad + (size_t)b * 6 * 4, 3 * 4);
    }
    for (int i = 0; i < 3; i++) {
        expect_all_finite("gradient", in[i]->grad, in[i]->size);
    }
    tg_tape_free(tape);
    for (int i = 0; i < 3; i++) {
        tg_tensor_free(in[i]);
    }
}

Test(attention, large_logits_stay_finite) {
    tg_rng rng;
    tg_rng_seed(&rng, 63);
    attention_case c = {2, 8, 8, 8, 2, true, false, 0.0};
    tg_tensor *in[3];
    case_inputs(&rng, &c, in);
    for (size_t i = 0; i < in[0]->size; i++) {
        in[0]->data[i] *= 300;  /* scores of order 1e5, far past exp's range */
        in[1]->data[i] *= 300;
    }
    tg_attention_options options = {true, NULL, 0.0};
    tg_tape *tape = tg_tape_new();
    tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c.H, &options);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    double *expected = malloc(out->size * sizeof *expected);
    reference_attention(expected, in[0]->data, c.C, in[1]->data, c.C, in[2]->data, c.C, c.B,
                        c.Tq, c.Tk, c.C, c.H, true, NULL, 0.0);
    expect_close("output with large logits", out->data, expected, out->size, 1e-12, 1e-12);
    backward_with_seed(tape, out, 64);
    for (int i = 0; i < 3; i++) {
        expect_all_finite("gradient with large logits", in[i]->grad, in[i]->size);
    }
    free(expected);
    tg_tape_free(tape);
    for (int i = 0; i < 3; i++) {
        tg_tensor_free(in[i]);
    }
}

Test(attention, float_exp_matches_libm) {
    /* Every 97th float in [-87, 0], plus the ends. */
    double worst = 0.0;
    float worst_x = 0.0f;
    float x = -87.0f;
    while (x < 0.0f) {
        double error = fabs((double)tg__attention_expf(x) - exp((double)x)) / exp((double)x);
        if (error > worst) {
            worst = error;
            worst_x = x;
        }
        for (int step = 0; step < 97 && x < 0.0f; step++) {
            x = nextafterf(x, 1.0f);
        }
    }
    cr_assert_leq(worst, 1.2e-7, "relative error %.3g at x = %.9g", worst, (double)worst_x);
    cr_assert_eq(tg__attention_expf(0.0f), 1.0f, "exp(0) is %.9g",
                 (double)tg__attention_expf(0.0f));
    cr_assert_eq(tg__attention_expf(-0.0f), 1.0f);
    cr_assert_eq(tg__attention_expf(-88.0f), 0.0f, "exp(-88) is %g, expected 0",
                 (double)tg__attention_expf(-88.0f));
    cr_assert_eq(tg__attention_expf(-1e30f), 0.0f);
    cr_assert_eq(tg__attention_expf(-INFINITY), 0.0f);
}

/* ---- Threads, memory, accumulation -------------------------------------- */

typedef struct attention_run {
    tg_scalar *values;  /* separate-input output, then packed output */
    tg_scalar *grads;   /* dq, dk, dv, then dqkv */
    size_t values_size;
    size_t grads_size;
} attention_run;

static attention_run run_with_threads(int threads) {
    omp_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 65);
    attention_case c = {3, 40, 40, 32, 4, true, true, 0.0};
    tg_tensor *in[3];
    case_inputs(&rng, &c, in);
    int qkv_shape[3] = {3, 40, 96};
    tg_tensor *qkv = random_input(&rng, 3, qkv_shape);
    uint8_t *mask = random_mask(&rng, 3, 40);
    tg_attention_options options = {true, mask, 0.0};

    tg_tape *tape = tg_tape_new();
    tg_tensor *out = tg_attention(tape, in[0], in[1], in[2], c.H, &options);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    backward_with_seed(tape, out, 66);
    tg_tape *tape2 = tg_tape_new();
    tg_tensor *packed = tg_self_attention_packed(tape2, qkv, c.H, &options);
    cr_assert_not_null(packed, "%s", tg_tape_error(tape2));
    backward_with_seed(tape2, packed, 67);

    attention_run run;
    run.values_size = out->size + packed->size;
    run.values = malloc(run.values_size * sizeof *run.values);
    memcpy(run.values, out->data, out->size * sizeof *run.values);
    memcpy(run.values + out->size, packed->data, packed->size * sizeof *run.values);
    run.grads_size = 3 * in[0]->size + qkv->size;
    run.grads = malloc(run.grads_size * sizeof *run.grads);
    for (int i = 0; i < 3; i++) {
        memcpy(run.grads + i * in[0]->size, in[i]->grad, in[i]->size * sizeof *run.grads);
    }
    memcpy(run.grads + 3 * in[0]->size, qkv->grad, qkv->size * sizeof *run.grads);

    free(mask);
    tg_tape_free(tape);
    tg_tape_free(tape2);
    for (int i = 0; i < 3; i++) {
        tg_tensor_free(in[i]);
    }
    tg_tensor_free(qkv);
    return run;
}

Test(attention, one_and_two_threads_same_bits) {
    int saved_threads = omp_get_max_threads();
    attention_run one_thread = run_with_threads(1);
    attention_run two_threads = run_with_threads(2);
    omp_set_num_threads(saved_threads);
    size_t values_bytes = one_thread.values_size * sizeof(tg_scalar);
    size_t grads_bytes = one_thread.grads_size * sizeof(tg_scalar);
    cr_assert_eq(memcmp(one_thread.values, two_threads.values, values_bytes), 0,
                 "outputs differ between 1 and 2 threads");
    cr_assert_eq(memcmp(one_thread.grads, two_threads.grads, grads_bytes), 0,
                 "gradients differ between 1 and 2 threads");
    free(one_thread.values);
    free(one_thread.grads);
    free(two_threads.values);
    free(two_threads.grads);
}

Test(attention, no_grad_keeps_no_probabilities) {
    tg_rng rng;
    tg_rng_seed(&rng, 68);
    int B = 8;
    int T = 32;
    int C = 16;
    int H = 4;
    int shape[3] = {B, T, 3 * C};
    tg_tensor *qkv = random_input(&rng, 3, shape);
    size_t probs_bytes = (size_t)B * H * T * T * sizeof(tg_scalar);

    tg_tape *tape = tg_tape_new();
    tg_tape_set_grad_enabled(tape, false);
    tg_tensor *out = tg_self_attention_packed(tape, qkv, H, NULL);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    cr_assert_not(out->requires_grad, "out requires grad in no-grad mode");
    tg_tape_stats stats = tg_tape_get_stats(tape);
    cr_assert_eq(stats.node_count, 0, "%ld nodes recorded in no-grad mode", stats.node_count);
    /* The output, and per thread K^T (D, T) and one (T, T) score matrix. */
    size_t bound = out->size * sizeof(tg_scalar) +
                   (size_t)omp_get_max_threads() * (size_t)(C / H * T + T * T) *
                       sizeof(tg_scalar) + 1024;
    cr_assert_leq(stats.arena_used_bytes, bound,
                  "no-grad attention used %zu bytes of step memory, more than %zu",
                  stats.arena_used_bytes, bound);

    tg_tape_reset(tape);
    tg_tape_set_grad_enabled(tape, true);
    out = tg_self_attention_packed(tape, qkv, H, NULL);
    cr_assert_not_null(out, "%s", tg_tape_error(tape));
    stats = tg_tape_get_stats(tape);
    cr_assert_eq(stats.node_count, 1);
    cr_assert_geq(stats.arena_used_bytes, probs_bytes,
                  "recording attention used %zu bytes, less than P's %zu",
                  stats.arena_used_bytes, probs_bytes);
    tg_tape_free(tape);
    tg_tensor_free(qkv);
}

Test(attention, default_scale_is_inverse_sqrt_head_size) {
    tg_rng rng;
    tg_rng_seed(&rng, 69);
    attention_case c = {2, 5, 7, 12, 3, false, false, 0.0};
    tg_tensor *in[3];
    case_inputs(&rng, &c, in);
    tg_tape *tape = tg_tape_new();
    tg_tensor *by_default = tg_attention(tape, in[0], in[1], in[2], c.H, NULL);
    tg_attention_options explicit_scale = {false, NULL, 1.0 / sqrt(4.0)};
    tg_tensor *by_value = tg_attention(tape, in[0], in[1], in[2], c.H, &explicit_scale);
    cr_assert_not_null(by_default, "%s", tg_tape_error(tape));
    cr_assert_not_null(by_value, "%s", tg_tape_error(tape));
    cr_assert_eq(memcmp(by_default->data, by_value->data, by_value->size * sizeof(tg_scalar)), 0,
                 "options NULL and scale 1/sqrt(D) = 0.5 give different outputs");
    tg_tape_free(tape);
    for (int i = 0; i < 3; i++) {
        tg_tensor_free(in[i]);
    }
}

Test(attention, backward_adds_into_gradients) {
    tg_rng rng;
    tg_rng_seed(&rng, 70);
    int shape[3] = {2, 5, 12};
    tg_tensor *qkv = random_input(&rng, 3, shape);
    tg_attention_options options = {true, NULL, 0.0};
    tg_scalar first[120];
    for (int pass = 0; pass < 2; pass++) {
        tg_tape *tape = tg_tape_new();
        tg_tensor *out = tg_self_attention_packed(tape, qkv, 2, &options);
        cr_assert_not_null(out, "%s", tg_tape_error(tape));
        backward_with_seed(tape, out, 71);
        tg_tape_free(tape);
        if (pass == 0) {
            memcpy(first, qkv->grad, sizeof first);
        }
    }
    /* A second backward adds the same values again: g + g is exact. */
    for (int i = 0; i < 120; i++) {
        cr_assert_eq(qkv->grad[i], 2 * first[i], "dqkv[%d] is %g after two passes, expected %g",
                     i, (double)qkv->grad[i], 2 * (double)first[i]);
    }
    tg_tensor_free(qkv);
}

/* ---- Errors ------------------------------------------------------------- */

static void expect_message(const tg_tape *tape, const char *part) {
    const char *message = tg_tape_error(tape);
    cr_assert(strstr(message, part) != NULL, "message \"%s\" lacks \"%s\"", message, part);
}

/* Calls tg_attention on zero tensors of the given shapes and expects status. */
static tg_tape *attention_error(const int *q_shape, const int *k_shape, const int *v_shape,
                                int n_head, tg_status status) {
    tg_tensor *q = tg_tensor_zeros(q_shape[0], q_shape + 1);
    tg_tensor *k = tg_tensor_zeros(k_shape[0], k_shape + 1);
    tg_tensor *v = tg_tensor_zeros(v_shape[0], v_shape + 1);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_attention(tape, q, k, v, n_head, NULL));
    cr_assert_eq(tg_tape_status(tape), status, "status %d, expected %d: %s",
                 tg_tape_status(tape), status, tg_tape_error(tape));
    tg_tensor_free(q);
    tg_tensor_free(k);
    tg_tensor_free(v);
    return tape;
}

Test(attention, indivisible_channels_name_shape_and_heads) {
    int shape[4] = {3, 2, 4, 10};
    tg_tape *tape = attention_error(shape, shape, shape, 4, TG_ERR_SHAPE);
    expect_message(tape, "attention: q has shape (2, 4, 10)");
    expect_message(tape, "n_head = 4");
    tg_tape_free(tape);
}

Test(attention, batch_mismatch_names_both_shapes) {
    int q_shape[4] = {3, 2, 4, 8};
    int kv_shape[4] = {3, 3, 5, 8};
    tg_tape *tape = attention_error(q_shape, kv_shape, kv_shape, 2, TG_ERR_SHAPE);
    expect_message(tape, "q (2, 4, 8) and k (3, 5, 8)");
    tg_tape_free(tape);
}

Test(attention, channel_mismatch_names_both_shapes) {
    int q_shape[4] = {3, 2, 4, 8};
    int kv_shape[4] = {3, 2, 5, 6};
    tg_tape *tape = attention_error(q_shape, kv_shape, kv_shape, 2, TG_ERR_SHAPE);
    expect_message(tape, "q (2, 4, 8) and k (2, 5, 6)");
    tg_tape_free(tape);
}

Test(attention, key_value_mismatch_names_both_shapes) {
    int q_shape[4] = {3, 2, 4, 8};
    int k_shape[4] = {3, 2, 5, 8};
    int v_shape[4] = {3, 2, 6, 8};
    tg_tape *tape = attention_error(q_shape, k_shape, v_shape, 2, TG_ERR_SHAPE);
    expect_message(tape, "k (2, 5, 8) and v (2, 6, 8)");
    tg_tape_free(tape);
}

Test(attention, two_dimensional_input_is_rejected) {
    int q_shape[4] = {2, 4, 8};
    int kv_shape[4] = {3, 1, 4, 8};
    tg_tape *tape = attention_error(q_shape, kv_shape, kv_shape, 2, TG_ERR_SHAPE);
    expect_message(tape, "q has shape (4, 8) but must be 3-D");
    tg_tape_free(tape);
}

Test(attention, bad_head_count_is_rejected) {
    int shape[4] = {3, 2, 4, 8};
    tg_tape *tape = attention_error(shape, shape, shape, 0, TG_ERR_INVALID);
    expect_message(tape, "n_head is 0");
    tg_tape_free(tape);
}

Test(attention, non_finite_scale_is_rejected) {
    int shape[3] = {2, 4, 8};
    tg_tensor *x = tg_tensor_zeros(3, shape);
    tg_attention_options options = {false, NULL, NAN};
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_attention(tape, x, x, x, 2, &options));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_INVALID);
    expect_message(tape, "scale is nan");
    tg_tape_free(tape);
    tg_tensor_free(x);
}

Test(attention, packed_width_not_multiple_of_three) {
    int shape[3] = {2, 4, 10};
    tg_tensor *qkv = tg_tensor_zeros(3, shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_self_attention_packed(tape, qkv, 2, NULL));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    expect_message(tape, "self_attention_packed: qkv has shape (2, 4, 10)");
    tg_tape_free(tape);
    tg_tensor_free(qkv);
}

Test(attention, packed_indivisible_channels_name_heads) {
    int shape[3] = {2, 4, 30};
    tg_tensor *qkv = tg_tensor_zeros(3, shape);
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_self_attention_packed(tape, qkv, 4, NULL));
    cr_assert_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    expect_message(tape, "qkv has shape (2, 4, 30)");
    expect_message(tape, "n_head = 4");
    tg_tape_free(tape);
    tg_tensor_free(qkv);
}

Test(attention, null_input_adds_no_error) {
    tg_tape *tape = tg_tape_new();
    cr_assert_null(tg_attention(tape, NULL, NULL, NULL, 2, NULL));
    cr_assert_null(tg_self_attention_packed(tape, NULL, 2, NULL));
    cr_assert_eq(tg_tape_status(tape), TG_OK, "a NULL input recorded: %s", tg_tape_error(tape));
    tg_tape_free(tape);
}
