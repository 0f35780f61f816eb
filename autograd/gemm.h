/* A row-major general matrix product on tg_scalar through CBLAS:
 *
 *     C (M, N) = alpha * op(A) op(B) + beta * C,   op(X) = X or X^T
 *
 * where op(A) is (M, K) and op(B) is (K, N), and lda, ldb, ldc are the row
 * strides of A, B and C as stored. The float build calls cblas_sgemm and the
 * double build cblas_dgemm. Kernels call this instead of writing loops, so
 * every product runs in the BLAS's tuned, threaded code.
 */
#ifndef TG_AUTOGRAD_GEMM_H
#define TG_AUTOGRAD_GEMM_H

#include <cblas.h>
#include <stdbool.h>

#include "scalar.h"

static inline void tg_gemm(bool trans_a, bool trans_b, int M, int N, int K, tg_scalar alpha,
                           const tg_scalar *A, int lda, const tg_scalar *B, int ldb,
                           tg_scalar beta, tg_scalar *C, int ldc) {
#ifdef TG_SCALAR_DOUBLE
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
#endif
}

#endif
