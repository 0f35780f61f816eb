/* The kernels of the linear op (linear.c), shared with the fused MLP op
 * (gelu_mlp.c). Shapes as in linear.c: x (N, IN), W (OUT, IN), b (OUT),
 * residual and y (N, OUT). */
#ifndef TG_AUTOGRAD_OPS_LINEAR_INTERNAL_H
#define TG_AUTOGRAD_OPS_LINEAR_INTERNAL_H

#include "../scalar.h"

/* Writes y = residual + x W^T + b; b and residual may be NULL. Large
 * products run as two gemms on fixed halves of the rows, in parallel with
 * two or more threads, so the bits do not depend on the thread count. */
void tg__linear_forward(tg_scalar *y, const tg_scalar *x, const tg_scalar *w, const tg_scalar *b,
                        const tg_scalar *residual, int N, int IN, int OUT);

/* Adds dx += dy W, dW += dy^T x and db += the column sums of dy; each of dx,
 * dw and db may be NULL. With two or more threads the two products run at
 * once, each as one gemm on its own thread, so the bits do not depend on the
 * thread count. */
void tg__linear_backward(tg_scalar *dx, tg_scalar *dw, tg_scalar *db, const tg_scalar *dy,
                         const tg_scalar *x, const tg_scalar *w, int N, int IN, int OUT);

/* Adds the column sums of dy (N, OUT) into db (OUT), rows in order. */
void tg__column_sums_add(tg_scalar *db, const tg_scalar *dy, int N, int OUT);

#endif
