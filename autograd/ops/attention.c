/* Scaled dot-product multi-head attention, forward and backward fused.
 *
 * Shapes: q (B, Tq, C), k (B, Tk, C), v (B, Tk, C), out (B, Tq, C), with
 * H heads of D = C / H channels. The packed form reads q, k and v from one
 * qkv (B, T, 3C), so the three operands are strided views with row stride 3C
 * instead of C; both forms run the same kernels.
 *
 * Forward, per batch entry b and head h (matrices of the head's channels):
 *     S = scale * Q K^T                    (Tq, Tk)   head_product
 *     P = softmax(S) per row, masked keys set to probability 0
 *     O = P V                              (Tq, D)    gemm
 * The softmax subtracts the row maximum of the unmasked scores before exp,
 * so large scores cannot overflow, and adds the exponentials in SIMD lanes
 * whose totals are added in double. A row with no unmasked key becomes all
 * zeros. The float build takes exp from exp_nonpositive below, a vectorised
 * polynomial within about 2 ulp of libm; the float64 build uses libm.
 * Backward, per (b, h), with dO the head's slice of the output gradient:
 *     dV += P^T dO                                    gemm
 *     dP  = dO V^T                                    head_product
 *     dS  = P * (dP - rowsum(dP * P))                 softmax backward
 *     dQ += scale * dS K                              gemm
 *     dK += scale * dS^T Q                            gemm
 * Masked entries have P = 0 and hence dS = 0, so the backward needs no mask,
 * and a fully masked row passes no gradient back.
 * The forward saves P (B, H, Tq, Tk), and only when it records a node.
 *
 * Causal attention runs in blocks of ATTN_ROW_BLOCK query rows, each of
 * which multiplies only by the keys its last row may see, so the products skip
 * most of the masked upper triangle.
 *
 * Threads: the (b, h) pairs run in parallel, taken by the threads in turn
 * (schedule dynamic), so a thread that loses its core to another process
 * leaves its pairs to the others. OpenBLAS's
 * OpenMP build (0.3.21 here) runs a gemm called inside an active parallel
 * region on the calling thread alone, so every gemm of a pair runs on one
 * thread in one fixed order, as head_product does. Each pair reads and
 * writes only its own slices of out, P, dq, dk and dv, so results are the
 * same bits for any thread count. Scratch comes from the tape's step
 * memory: per thread, a transposed copy of the head's K or V (D, Tk) and a
 * (Tq, Tk) matrix for the scores or dS. The softmax rows and head_product
 * are compiled for AVX2 and for the baseline, and the CPU picks one at load
 * time. With FMA contraction off (ISO C mode) both do the same operations
 * in the same order, so they give the same bits.
 */
#include "attention.h"

#include <omp.h>
#include <string.h>
#include <tgmath.h>

#include "../gemm.h"
#include "../op.h"

typedef struct attention_plan {
    int B, Tq, Tk, C, H, D;
    int ldq, ldk, ldv;       /* row strides of q, k and v: C, or 3C when packed */
    int k_input, v_input;    /* node inputs with k and v (0 when packed) */
    size_t k_offset;         /* element offset of k within its input: 0 or C */
    size_t v_offset;         /* element offset of v within its input: 0 or 2C */
    bool causal;
    tg_scalar scale;
} attention_plan;

typedef struct attention_saved {
    attention_plan plan;
    tg_scalar *probs;        /* P (B, H, Tq, Tk) */
} attention_saved;

/* Query rows per block in causal attention. Block r0..r1 needs only the keys
 * up to the last row's causal limit. 16 was the fastest of 8, 16, 32 and 64
 * for T = 64, D = 32 on the 2-core Xeon this was written on. */
#define ATTN_ROW_BLOCK 16

/* Sixteen bytes of scalars: four floats, or two doubles in the float64 build.
 * GNU C vector types make the row reductions use SIMD registers while the
 * order of every sum stays fixed by the code. */
typedef tg_scalar simd __attribute__((vector_size(16)));
#ifdef TG_SCALAR_DOUBLE
typedef int64_t simd_bits __attribute__((vector_size(16)));
#else
typedef int32_t simd_bits __attribute__((vector_size(16)));
#endif
#define SIMD_WIDTH ((int)(sizeof(simd) / sizeof(tg_scalar)))

static inline simd simd_load(const tg_scalar *p) {
    simd v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline simd simd_max(simd a, simd b) {
    simd_bits a_greater = a > b;
    return (simd)(((simd_bits)a & a_greater) | ((simd_bits)b & ~a_greater));
}

/* Adds the lanes of v in double, in lane order. */
static inline double simd_total(simd v) {
    double total = 0.0;
    for (int l = 0; l < SIMD_WIDTH; l++) {
        total += (double)v[l];
    }
    return total;
}

/* The row helpers below are forced inline: their callers are compiled per
 * instruction set (target_clones), and a call from the AVX2 build into a
 * baseline copy of a helper measured slower than no AVX2 build at all. */

/* Returns the largest of x[0, n), n >= 1. */
__attribute__((always_inline))
static inline tg_scalar row_max(const tg_scalar *x, int n) {
    tg_scalar max = x[0];
    int j = 0;
    if (n >= 2 * SIMD_WIDTH) {
        simd m0 = simd_load(x);
        simd m1 = simd_load(x + SIMD_WIDTH);
        for (j = 2 * SIMD_WIDTH; j + 2 * SIMD_WIDTH <= n; j += 2 * SIMD_WIDTH) {
            m0 = simd_max(m0, simd_load(x + j));
            m1 = simd_max(m1, simd_load(x + j + SIMD_WIDTH));
        }
        m0 = simd_max(m0, m1);
        for (int l = 0; l < SIMD_WIDTH; l++) {
            max = m0[l] > max ? m0[l] : max;
        }
    }
    for (; j < n; j++) {
        max = x[j] > max ? x[j] : max;
    }
    return max;
}

/* Returns the sum of x[0, n) times y[0, n), or of x alone if y is NULL.
 * SIMD lanes accumulate at most 256 terms, 32 per float lane, in the scalar
 * type; lanes and blocks are added in double. */
__attribute__((always_inline))
static inline double row_dot(const tg_scalar *x, const tg_scalar *y, int n) {
    enum { BLOCK = 256 };
    double total = 0.0;
    for (int start = 0; start < n; start += BLOCK) {
        int end = n - start < BLOCK ? n : start + BLOCK;
        simd a0 = {0};
        simd a1 = {0};
        int j = start;
        for (; j + 2 * SIMD_WIDTH <= end; j += 2 * SIMD_WIDTH) {
            simd x0 = simd_load(x + j);
            simd x1 = simd_load(x + j + SIMD_WIDTH);
            if (y != NULL) {
                x0 *= simd_load(y + j);
                x1 *= simd_load(y + j + SIMD_WIDTH);
            }
            a0 += x0;
            a1 += x1;
        }
        double block = simd_total(a0) + simd_total(a1);
        for (; j < end; j++) {
            block += y != NULL ? (double)(x[j] * y[j]) : (double)x[j];
        }
        total += block;
    }
    return total;
}

/* exp(x) in float for x <= 0, written so that loops over it vectorise:
 * x = k ln2 + r with |r| <= ln2 / 2, exp(r) from its Taylor series to r^7
 * (relative error below 1.1e-7, about 2 ulp), and 2^k built in the exponent
 * bits. Inputs below -87, -inf included, give 0 (exp(-87) is 1.6e-38), and a
 * NaN input gives an unspecified value. The clamp compares the bit patterns
 * as unsigned integers, which for x <= 0 orders them by magnitude, because a
 * float comparison in a loop blocks vectorisation unless -fno-trapping-math
 * is given. */
static inline float exp_nonpositive(float x) {
    const float log2e = 1.44269504088896341f;
    /* ln2 = ln2_hi + ln2_lo, where ln2_hi ends in 9 zero bits, so k * ln2_hi
     * is exact for |k| < 512. */
    const float ln2_hi = 0.693145751953125f;
    const float ln2_lo = 1.42860676533018708e-06f;
    /* 1.5 * 2^23: adding it and subtracting it again rounds to an integer. */
    const float round_magic = 12582912.0f;
    const uint32_t lowest_bits = 0xC2AE0000u;  /* -87.0f */
    uint32_t x_bits;
    memcpy(&x_bits, &x, sizeof x_bits);
    uint32_t in_range = x_bits <= lowest_bits ? 0xFFFFFFFFu : 0u;
    uint32_t clamped_bits = x_bits <= lowest_bits ? x_bits : lowest_bits;
    float xc;
    memcpy(&xc, &clamped_bits, sizeof xc);

    float kf = (xc * log2e + round_magic) - round_magic;
    float r = (xc - kf * ln2_hi) - kf * ln2_lo;
    float poly = 1.0f / 5040.0f;
    poly = poly * r + 1.0f / 720.0f;
    poly = poly * r + 1.0f / 120.0f;
    poly = poly * r + 1.0f / 24.0f;
    poly = poly * r + 1.0f / 6.0f;
    poly = poly * r + 0.5f;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    uint32_t scale_bits = ((uint32_t)((int32_t)kf + 127) << 23) & in_range;
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return poly * scale;
}

/* The float exp of the softmax, exposed so that the test suite can check it
 * against libm over its whole range in either build of the library. */
float tg__attention_expf(float x);
float tg__attention_expf(float x) {
    return exp_nonpositive(x);
}

/* row[j] = exp(row[j] - shift) for j in [0, n). The float build uses
 * exp_nonpositive; the float64 build, which exists for gradient checks, uses
 * libm's exp. */
__attribute__((always_inline))
static inline void exp_shifted(tg_scalar *row, int n, tg_scalar shift) {
    for (int j = 0; j < n; j++) {
#ifdef TG_SCALAR_DOUBLE
        row[j] = exp(row[j] - shift);
#else
        row[j] = exp_nonpositive(row[j] - shift);
#endif
    }
}

/* Number of keys row i may attend to before the padding mask: all Tk, or a
 * prefix when causal. The result may be 0 (causal with Tq > Tk). */
static int causal_limit(const attention_plan *p, int i) {
    if (!p->causal) {
        return p->Tk;
    }
    int limit = i + 1 + (p->Tk - p->Tq);
    return limit < 0 ? 0 : (limit > p->Tk ? p->Tk : limit);
}

/* Turns the scores row[0, width) into probabilities in place, over the keys
 * j < n that pad (NULL for none) leaves unmasked; the other entries become 0.
 * A row with no key left becomes all zeros.
 * Masked entries are set to -inf, whose exp is exactly 0, so every loop runs
 * over the whole width. In causal blocks of 16 rows the width is then usually
 * a multiple of the vector length, and the loops have no scalar tail. */
__attribute__((target_clones("avx2", "default")))
static void softmax_row(tg_scalar *row, int n, int width, const uint8_t *pad) {
    for (int j = n; j < width; j++) {
        row[j] = -INFINITY;
    }
    if (pad != NULL) {
        for (int j = 0; j < n; j++) {
            row[j] = pad[j] != 0 ? (tg_scalar)-INFINITY : row[j];
        }
    }
    tg_scalar max = row_max(row, width);
    if (max == (tg_scalar)-INFINITY) {
        memset(row, 0, (size_t)width * sizeof *row);
        return;
    }
    exp_shifted(row, width, max);
    tg_scalar inv_sum = (tg_scalar)(1.0 / row_dot(row, NULL, width));
    for (int j = 0; j < width; j++) {
        row[j] *= inv_sum;
    }
}

/* The query rows r0..r1 of one block and the number of keys they need. */
typedef struct row_block {
    int r0, r1, keys;
} row_block;

static int row_block_count(const attention_plan *p) {
    return p->causal ? (p->Tq + ATTN_ROW_BLOCK - 1) / ATTN_ROW_BLOCK : 1;
}

static row_block row_block_at(const attention_plan *p, int index) {
    row_block blk = {0, p->Tq, p->Tk};
    if (p->causal) {
        blk.r0 = index * ATTN_ROW_BLOCK;
        blk.r1 = blk.r0 + ATTN_ROW_BLOCK < p->Tq ? blk.r0 + ATTN_ROW_BLOCK : p->Tq;
        blk.keys = causal_limit(p, blk.r1 - 1);
    }
    return blk;
}

/* Copies the first n rows of x (n, D), row stride ld, into xt (D, n) with row
 * stride ldt. The score products then read a plain (D, n) matrix whose rows
 * head_product loads as vectors. The loop writes xt row by row: with the
 * loops the other way round, its strided stores took about 2 % of a charlm step. */
static void transpose_rows(tg_scalar *restrict xt, int ldt, const tg_scalar *restrict x, int ld,
                           int n, int D) {
    for (int d = 0; d < D; d++) {
        for (int j = 0; j < n; j++) {
            xt[(size_t)d * ldt + j] = x[(size_t)j * ld + d];
        }
    }
}

/* Thirty-two bytes of scalars, for the register tiles of head_product: eight
 * floats, one AVX2 register, or four doubles in the float64 build. Vectors
 * move in and out by memcpy inside the tile function, because a function
 * that returned one would change the ABI between the AVX2 and baseline
 * builds. */
typedef tg_scalar vec __attribute__((vector_size(32)));
#define VEC_WIDTH ((int)(sizeof(vec) / sizeof(tg_scalar)))
/* The largest tile of head_product: 4 rows by two vectors of columns. */
#define TILE_ROWS 4
#define TILE_VECS 2

/* Writes the tile at rows 0..rows and columns 0..vecs * VEC_WIDTH of
 * C = alpha * A B (see head_product), rows <= TILE_ROWS, vecs <= TILE_VECS.
 * Called with constant sizes, so that the loops over r and v unroll and the
 * sums stay in registers while k runs. Each lane adds its terms in k order,
 * as edge_product does for each element. */
__attribute__((always_inline))
static inline void tile_product(int rows, int vecs, int K, tg_scalar alpha, const tg_scalar *A,
                                int lda, const tg_scalar *B, int ldb, tg_scalar *C, int ldc) {
    vec acc[TILE_ROWS][TILE_VECS] = {{{0}}};
    for (int k = 0; k < K; k++) {
        vec b[TILE_VECS];
        for (int v = 0; v < vecs; v++) {
            memcpy(&b[v], B + (size_t)k * ldb + v * VEC_WIDTH, sizeof b[v]);
        }
        for (int r = 0; r < rows; r++) {
            tg_scalar a = A[(size_t)r * lda + k];
            for (int v = 0; v < vecs; v++) {
                acc[r][v] += a * b[v];
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < vecs; v++) {
            vec out = alpha * acc[r][v];
            memcpy(C + (size_t)r * ldc + v * VEC_WIDTH, &out, sizeof out);
        }
    }
}

/* Writes rows 0..rows and columns 0..cols of C = alpha * A B in scalars, for
 * the columns that fill no vector. rows (at most TILE_ROWS) is a constant,
 * so the rows' sums run as independent chains of additions. */
__attribute__((always_inline))
static inline void edge_product(int rows, int cols, int K, tg_scalar alpha, const tg_scalar *A,
                                int lda, const tg_scalar *B, int ldb, tg_scalar *C, int ldc) {
    for (int j = 0; j < cols; j++) {
        tg_scalar sum[TILE_ROWS] = {0};
        for (int k = 0; k < K; k++) {
            tg_scalar b = B[(size_t)k * ldb + j];
            for (int r = 0; r < rows; r++) {
                sum[r] += A[(size_t)r * lda + k] * b;
            }
        }
        for (int r = 0; r < rows; r++) {
            C[(size_t)r * ldc + j] = alpha * sum[r];
        }
    }
}

/* Writes `rows` rows (a constant from 1 to TILE_ROWS) of C = alpha * A B:
 * tiles of two vectors, then one, then single columns. */
__attribute__((always_inline))
static inline void row_band_product(int rows, int N, int K, tg_scalar alpha, const tg_scalar *A,
                                    int lda, const tg_scalar *B, int ldb, tg_scalar *C, int ldc) {
    int j = 0;
    for (; j + TILE_VECS * VEC_WIDTH <= N; j += TILE_VECS * VEC_WIDTH) {
        tile_product(rows, TILE_VECS, K, alpha, A, lda, B + j, ldb, C + j, ldc);
    }
    for (; j + VEC_WIDTH <= N; j += VEC_WIDTH) {
        tile_product(rows, 1, K, alpha, A, lda, B + j, ldb, C + j, ldc);
    }
    edge_product(rows, N - j, K, alpha, A, lda, B + j, ldb, C + j, ldc);
}

/* C (M, N) = alpha * A (M, K) B (K, N), row-major with row strides lda, ldb
 * and ldc, for the small products of one head: the scores Q K^T and the
 * backward's dO V^T, with B the transposed copy of K or V. OpenBLAS 0.3.21's
 * small-matrix sgemm kernel allocates 128 bytes from the heap on every call
 * at some of these shapes (49 x 49 x 32), about 2,000 times per ddpm step.
 * Each C[i][j] adds A[i][k] B[k][j] for k = 0, 1, ..., K - 1 in that order,
 * in the scalar type and starting from 0, and is then multiplied by alpha,
 * so the tiling does not change the bits. */
__attribute__((target_clones("avx2", "default")))
static void head_product(int M, int N, int K, tg_scalar alpha, const tg_scalar *A, int lda,
                         const tg_scalar *B, int ldb, tg_scalar *C, int ldc) {
    int i = 0;
    for (; i + TILE_ROWS <= M; i += TILE_ROWS) {
        row_band_product(TILE_ROWS, N, K, alpha, A + (size_t)i * lda, lda, B, ldb,
                         C + (size_t)i * ldc, ldc);
    }
    const tg_scalar *a = A + (size_t)i * lda;
    tg_scalar *c = C + (size_t)i * ldc;
    switch (M - i) {
    case 3:
        row_band_product(3, N, K, alpha, a, lda, B, ldb, c, ldc);
        break;
    case 2:
        row_band_product(2, N, K, alpha, a, lda, B, ldb, c, ldc);
        break;
    case 1:
        row_band_product(1, N, K, alpha, a, lda, B, ldb, c, ldc);
        break;
    default:
        break;
    }
}

/* head_product, exposed so that the test suite can check it at any shape. */
void tg__attention_product(int M, int N, int K, tg_scalar alpha, const tg_scalar *A, int lda,
                           const tg_scalar *B, int ldb, tg_scalar *C, int ldc);
void tg__attention_product(int M, int N, int K, tg_scalar alpha, const tg_scalar *A, int lda,
                           const tg_scalar *B, int ldb, tg_scalar *C, int ldc) {
    head_product(M, N, K, alpha, A, lda, B, ldb, C, ldc);
}

/* Returns whether the (b, h) pairs run in an OpenMP region. A one-thread
 * region is avoided, not only made serial by an if clause, because libgomp
 * allocates the team of every one-thread region from the heap. */
static bool use_threads(long pairs) {
    return pairs > 1 && omp_get_max_threads() > 1;
}

/* Scalars of scratch per thread: K^T (D, Tk), and the scores (Tq, Tk) when
 * the forward does not store P. */
static size_t forward_scratch_size(const attention_plan *p, bool scores) {
    return (size_t)p->D * p->Tk + (scores ? (size_t)p->Tq * p->Tk : 0);
}

/* Scalars of scratch per thread in the backward: V^T (D, Tk) and dS (Tq, Tk). */
static size_t backward_scratch_size(const attention_plan *p) {
    return (size_t)p->D * p->Tk + (size_t)p->Tq * p->Tk;
}

/* Runs the forward of pair bh = b * H + h. scratch is the calling thread's
 * forward_scratch_size() scalars. */
static void attention_forward_pair(tg_scalar *out, tg_scalar *probs, tg_scalar *scratch,
                                   const tg_scalar *q, const tg_scalar *k, const tg_scalar *v,
                                   const uint8_t *mask, const attention_plan *p, long bh) {
    int b = (int)(bh / p->H);
    int h = (int)(bh % p->H);
    size_t tile = (size_t)p->Tq * (size_t)p->Tk;
    int n_blocks = row_block_count(p);
    const tg_scalar *q_bh = q + (size_t)b * p->Tq * p->ldq + (size_t)h * p->D;
    const tg_scalar *k_bh = k + (size_t)b * p->Tk * p->ldk + (size_t)h * p->D;
    const tg_scalar *v_bh = v + (size_t)b * p->Tk * p->ldv + (size_t)h * p->D;
    tg_scalar *o_bh = out + (size_t)b * p->Tq * p->C + (size_t)h * p->D;
    tg_scalar *kt = scratch;
    tg_scalar *s_bh = probs != NULL ? probs + (size_t)bh * tile : kt + (size_t)p->D * p->Tk;
    const uint8_t *pad = mask != NULL ? mask + (size_t)b * p->Tk : NULL;
    transpose_rows(kt, p->Tk, k_bh, p->ldk, causal_limit(p, p->Tq - 1), p->D);

    for (int index = 0; index < n_blocks; index++) {
        row_block blk = row_block_at(p, index);
        int rows = blk.r1 - blk.r0;
        tg_scalar *s = s_bh + (size_t)blk.r0 * p->Tk;
        tg_scalar *o = o_bh + (size_t)blk.r0 * p->C;
        if (blk.keys == 0) {
            /* Causal rows before the first key attend to nothing. */
            for (int i = 0; i < rows; i++) {
                memset(o + (size_t)i * p->C, 0, (size_t)p->D * sizeof *o);
            }
            continue;
        }
        /* S (rows, keys) = scale * Q (rows, D) K^T (D, keys) */
        head_product(rows, blk.keys, p->D, p->scale, q_bh + (size_t)blk.r0 * p->ldq, p->ldq, kt,
                     p->Tk, s, p->Tk);
        for (int i = 0; i < rows; i++) {
            softmax_row(s + (size_t)i * p->Tk, causal_limit(p, blk.r0 + i), blk.keys, pad);
        }
        /* O (rows, D) = P (rows, keys) V (keys, D) */
        tg_gemm(false, false, rows, p->D, blk.keys, 1, s, p->Tk, v_bh, p->ldv, 0, o, p->C);
    }
}

/* Writes out (B, Tq, C) and, if probs is not NULL, P (B, H, Tq, Tk) there;
 * otherwise the scores of each pair go through the thread's scratch matrix.
 * scratch has room for forward_scratch_size() scalars per thread.
 * Entries of P right of a causal block's last key are left unwritten; the
 * backward never reads them. */
static void attention_forward(tg_scalar *out, tg_scalar *probs, tg_scalar *scratch,
                              const tg_scalar *q, const tg_scalar *k, const tg_scalar *v,
                              const uint8_t *mask, const attention_plan *p) {
    long pairs = (long)p->B * p->H;
    size_t per_thread = forward_scratch_size(p, probs == NULL);
    if (!use_threads(pairs)) {
        for (long bh = 0; bh < pairs; bh++) {
            attention_forward_pair(out, probs, scratch, q, k, v, mask, p, bh);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (long bh = 0; bh < pairs; bh++) {
        tg_scalar *thread_scratch = scratch + (size_t)omp_get_thread_num() * per_thread;
        attention_forward_pair(out, probs, thread_scratch, q, k, v, mask, p, bh);
    }
}

/* dS = P * (dP - rowsum(dP * P)) in place over ds[0, width). Entries with
 * P = 0, masked keys among them, get dS = 0. */
__attribute__((target_clones("avx2", "default")))
static void softmax_backward_row(tg_scalar *ds, const tg_scalar *prob, int width) {
    tg_scalar dot = (tg_scalar)row_dot(ds, prob, width);
    for (int j = 0; j < width; j++) {
        ds[j] = prob[j] * (ds[j] - dot);
    }
}

/* Runs the backward of pair bh = b * H + h. scratch is the calling thread's
 * backward_scratch_size() scalars, or NULL if dq and dk are both NULL. */
static void attention_backward_pair(tg_scalar *dq, tg_scalar *dk, tg_scalar *dv,
                                    tg_scalar *scratch, const tg_scalar *dout,
                                    const tg_scalar *probs, const tg_scalar *q,
                                    const tg_scalar *k, const tg_scalar *v,
                                    const attention_plan *p, long bh) {
    int b = (int)(bh / p->H);
    int h = (int)(bh % p->H);
    size_t tile = (size_t)p->Tq * (size_t)p->Tk;
    int n_blocks = row_block_count(p);
    size_t q_at = (size_t)b * p->Tq * p->ldq + (size_t)h * p->D;
    size_t k_at = (size_t)b * p->Tk * p->ldk + (size_t)h * p->D;
    size_t v_at = (size_t)b * p->Tk * p->ldv + (size_t)h * p->D;
    const tg_scalar *do_bh = dout + (size_t)b * p->Tq * p->C + (size_t)h * p->D;
    const tg_scalar *p_bh = probs + (size_t)bh * tile;
    tg_scalar *vt = scratch;
    tg_scalar *ds_bh = NULL;
    if (scratch != NULL) {
        ds_bh = vt + (size_t)p->D * p->Tk;
        transpose_rows(vt, p->Tk, v + v_at, p->ldv, causal_limit(p, p->Tq - 1), p->D);
    }

    for (int index = 0; index < n_blocks; index++) {
        row_block blk = row_block_at(p, index);
        int rows = blk.r1 - blk.r0;
        if (blk.keys == 0) {
            continue;
        }
        const tg_scalar *prob = p_bh + (size_t)blk.r0 * p->Tk;
        const tg_scalar *d_o = do_bh + (size_t)blk.r0 * p->C;
        if (dv != NULL) {
            /* dV (keys, D) += P^T (keys, rows) dO (rows, D) */
            tg_gemm(true, false, blk.keys, p->D, rows, 1, prob, p->Tk, d_o, p->C, 1,
                    dv + v_at, p->ldv);
        }
        if (ds_bh == NULL) {
            continue;
        }
        /* dP (rows, keys) = dO (rows, D) V^T (D, keys), then dS in place. */
        tg_scalar *ds = ds_bh + (size_t)blk.r0 * p->Tk;
        head_product(rows, blk.keys, p->D, 1, d_o, p->C, vt, p->Tk, ds, p->Tk);
        for (int i = 0; i < rows; i++) {
            softmax_backward_row(ds + (size_t)i * p->Tk, prob + (size_t)i * p->Tk, blk.keys);
        }
        if (dq != NULL) {
            /* dQ (rows, D) += scale * dS (rows, keys) K (keys, D) */
            tg_gemm(false, false, rows, p->D, blk.keys, p->scale, ds, p->Tk, k + k_at, p->ldk,
                    1, dq + q_at + (size_t)blk.r0 * p->ldq, p->ldq);
        }
        if (dk != NULL) {
            /* dK (keys, D) += scale * dS^T (keys, rows) Q (rows, D) */
            tg_gemm(true, false, blk.keys, p->D, rows, p->scale, ds, p->Tk,
                    q + q_at + (size_t)blk.r0 * p->ldq, p->ldq, 1, dk + k_at, p->ldk);
        }
    }
}

/* Adds into dq, dk and dv (each NULL if not wanted), which have the row
 * strides of q, k and v. scratch has room for backward_scratch_size() scalars
 * per thread, and may be NULL if dq and dk are both NULL. */
static void attention_backward_kernel(tg_scalar *dq, tg_scalar *dk, tg_scalar *dv,
                                      tg_scalar *scratch, const tg_scalar *dout,
                                      const tg_scalar *probs, const tg_scalar *q,
                                      const tg_scalar *k, const tg_scalar *v,
                                      const attention_plan *p) {
    long pairs = (long)p->B * p->H;
    if (!use_threads(pairs)) {
        for (long bh = 0; bh < pairs; bh++) {
            attention_backward_pair(dq, dk, dv, scratch, dout, probs, q, k, v, p, bh);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (long bh = 0; bh < pairs; bh++) {
        tg_scalar *thread_scratch =
            scratch != NULL
                ? scratch + (size_t)omp_get_thread_num() * backward_scratch_size(p)
                : NULL;
        attention_backward_pair(dq, dk, dv, thread_scratch, dout, probs, q, k, v, p, bh);
    }
}

static void attention_backward(tg_node *node) {
    const attention_saved *s = node->saved;
    const attention_plan *p = &s->plan;
    tg_scalar *dq = tg_node_input_grad(node, 0);
    tg_scalar *dk = tg_node_input_grad(node, p->k_input);
    tg_scalar *dv = tg_node_input_grad(node, p->v_input);
    dk = dk != NULL ? dk + p->k_offset : NULL;
    dv = dv != NULL ? dv + p->v_offset : NULL;
    tg_scalar *scratch = NULL;
    if (dq != NULL || dk != NULL) {
        scratch = tg_tape_alloc(node->tape, (size_t)omp_get_max_threads() *
                                                backward_scratch_size(p) * sizeof *scratch);
        if (scratch == NULL) {
            return;
        }
    }
    attention_backward_kernel(dq, dk, dv, scratch, node->output->grad, s->probs,
                              node->inputs[0]->data, node->inputs[p->k_input]->data + p->k_offset,
                              node->inputs[p->v_input]->data + p->v_offset, p);
}

static const tg_op attention_op = {"attention", attention_backward};
static const tg_op self_attention_packed_op = {"self_attention_packed", attention_backward};

/* Fills in the head split and the options, or records an error and returns
 * false. op_name and x_name name the op and the tensor in messages. */
static bool plan_heads(tg_tape *tape, attention_plan *p, int n_head,
                       const tg_attention_options *options, const char *op_name,
                       const tg_tensor *x, const char *x_name) {
    if (n_head < 1) {
        tg_op_fail(tape, TG_ERR_INVALID, "%s: n_head is %d but must be at least 1", op_name,
                   n_head);
        return false;
    }
    if (p->C % n_head != 0) {
        char xs[128];
        tg_op_fail(tape, TG_ERR_SHAPE,
                   "%s: %s has shape %s, so C = %d channels, which do not split into "
                   "n_head = %d heads of equal size; C must be a multiple of n_head",
                   op_name, x_name, tg_shape_format(xs, sizeof xs, x->ndim, x->shape), p->C,
                   n_head);
        return false;
    }
    p->H = n_head;
    p->D = p->C / n_head;
    double scale = options != NULL ? options->scale : 0.0;
    if (!isfinite(scale)) {
        tg_op_fail(tape, TG_ERR_INVALID,
                   "%s: scale is %g but must be finite; pass 0 for 1 / sqrt(D)", op_name, scale);
        return false;
    }
    p->scale = (tg_scalar)(scale != 0.0 ? scale : 1.0 / sqrt((double)p->D));
    p->causal = options != NULL && options->causal;
    return true;
}

/* Allocates the output, records the node and runs the forward. */
static tg_tensor *attention_run(tg_tape *tape, const tg_op *op, int n_inputs,
                                const tg_tensor *const *inputs, const attention_plan *p,
                                const tg_scalar *q, const tg_scalar *k, const tg_scalar *v,
                                const tg_attention_options *options) {
    int shape[3] = {p->B, p->Tq, p->C};
    tg_tensor *out = tg_tape_tensor(tape, 3, shape);
    if (out == NULL) {
        return NULL;
    }
    size_t tile = (size_t)p->Tq * (size_t)p->Tk;

    /* Record first: P is kept only for a backward, else scratch will do. */
    tg_node *node = tg_tape_record(tape, op, out, n_inputs, inputs);
    tg_scalar *probs = NULL;
    if (node != NULL) {
        attention_saved *saved = tg_tape_alloc(tape, sizeof *saved);
        probs = tg_tape_alloc(tape, (size_t)p->B * (size_t)p->H * tile * sizeof *probs);
        if (saved == NULL || probs == NULL) {
            return NULL;
        }
        saved->plan = *p;
        saved->probs = probs;
        node->saved = saved;
    } else if (tg_tape_status(tape) != TG_OK) {
        return NULL;
    }
    tg_scalar *scratch = tg_tape_alloc(tape, (size_t)omp_get_max_threads() *
                                                 forward_scratch_size(p, probs == NULL) *
                                                 sizeof *scratch);
    if (scratch == NULL) {
        return NULL;
    }
    const uint8_t *mask = options != NULL ? options->key_padding_mask : NULL;
    attention_forward(out->data, probs, scratch, q, k, v, mask, p);
    return out;
}

static tg_tensor *attention_shape_error(tg_tape *tape, const char *name_a, const tg_tensor *a,
                                        const char *name_b, const tg_tensor *b,
                                        const char *reason) {
    char as[128];
    char bs[128];
    return tg_op_fail(tape, TG_ERR_SHAPE, "attention: %s %s and %s %s: %s", name_a,
                      tg_shape_format(as, sizeof as, a->ndim, a->shape), name_b,
                      tg_shape_format(bs, sizeof bs, b->ndim, b->shape), reason);
}

tg_tensor *tg_attention(tg_tape *tape, const tg_tensor *q, const tg_tensor *k,
                        const tg_tensor *v, int n_head, const tg_attention_options *options) {
    const tg_tensor *inputs[3] = {q, k, v};
    if (!tg_op_inputs_ok(tape, 3, inputs)) {
        return NULL;
    }
    const char *names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        if (inputs[i]->ndim != 3) {
            char xs[128];
            return tg_op_fail(tape, TG_ERR_SHAPE,
                              "attention: %s has shape %s but must be 3-D, (B, T, C)", names[i],
                              tg_shape_format(xs, sizeof xs, inputs[i]->ndim,
                                              inputs[i]->shape));
        }
    }
    if (!tg_tensor_same_shape(k, v)) {
        return attention_shape_error(tape, "k", k, "v", v,
                                     "k and v must have the same shape (B, Tk, C)");
    }
    if (q->shape[0] != k->shape[0] || q->shape[2] != k->shape[2]) {
        return attention_shape_error(tape, "q", q, "k", k,
                                     "q (B, Tq, C) and k (B, Tk, C) must have the same batch "
                                     "size B and channels C");
    }
    attention_plan p = {
        .B = q->shape[0],
        .Tq = q->shape[1],
        .Tk = k->shape[1],
        .C = q->shape[2],
        .ldq = q->shape[2],
        .ldk = q->shape[2],
        .ldv = q->shape[2],
        .k_input = 1,
        .v_input = 2,
    };
    if (!plan_heads(tape, &p, n_head, options, "attention", q, "q")) {
        return NULL;
    }
    return attention_run(tape, &attention_op, 3, inputs, &p, q->data, k->data, v->data, options);
}

tg_tensor *tg_self_attention_packed(tg_tape *tape, const tg_tensor *qkv, int n_head,
                                    const tg_attention_options *options) {
    if (!tg_op_inputs_ok(tape, 1, &qkv)) {
        return NULL;
    }
    if (qkv->ndim != 3 || qkv->shape[2] % 3 != 0) {
        char xs[128];
        return tg_op_fail(tape, TG_ERR_SHAPE,
                          "self_attention_packed: qkv has shape %s but must be (B, T, 3C), "
                          "3-D with a last dimension that is a multiple of 3",
                          tg_shape_format(xs, sizeof xs, qkv->ndim, qkv->shape));
    }
    int C = qkv->shape[2] / 3;
    attention_plan p = {
        .B = qkv->shape[0],
        .Tq = qkv->shape[1],
        .Tk = qkv->shape[1],
        .C = C,
        .ldq = 3 * C,
        .ldk = 3 * C,
        .ldv = 3 * C,
        .k_input = 0,
        .v_input = 0,
        .k_offset = (size_t)C,
        .v_offset = 2 * (size_t)C,
    };
    if (!plan_heads(tape, &p, n_head, options, "self_attention_packed", qkv, "qkv")) {
        return NULL;
    }
    return attention_run(tape, &self_attention_packed_op, 1, &qkv, &p, qkv->data,
                         qkv->data + C, qkv->data + 2 * C, options);
}
