/* Elementwise functions of one tensor: exp, log, sqrt, tanh and the
 * activations sigmoid, relu, silu and gelu.
 *
 * Each takes x (any shape) and gives y of the same shape. Each constructor
 * returns a tape tensor, or NULL if an earlier op failed or x is NULL. Inputs
 * outside a function's domain follow IEEE arithmetic, as in PyTorch: log(0) is
 * -inf, log and sqrt of a negative number are NaN.
 */
#ifndef TG_AUTOGRAD_OPS_UNARY_H
#define TG_AUTOGRAD_OPS_UNARY_H

#include "../tape.h"

/* Computes e^x. */
tg_tensor *tg_exp(tg_tape *tape, const tg_tensor *x);

/* Computes the natural logarithm of x. */
tg_tensor *tg_log(tg_tape *tape, const tg_tensor *x);

/* Computes the square root of x. The gradient at x = 0 is infinite, or NaN
 * where the incoming gradient is 0. */
tg_tensor *tg_sqrt(tg_tape *tape, const tg_tensor *x);

/* Computes the hyperbolic tangent of x. */
tg_tensor *tg_tanh(tg_tape *tape, const tg_tensor *x);

/* Computes 1 / (1 + e^-x) without overflow for any finite x. sigmoid(-1000)
 * is 0 and sigmoid(1000) is 1, both with gradient 0. */
tg_tensor *tg_sigmoid(tg_tape *tape, const tg_tensor *x);

/* Computes max(x, 0). The gradient at x = 0 is 0, as in PyTorch. */
tg_tensor *tg_relu(tg_tape *tape, const tg_tensor *x);

/* Computes x * sigmoid(x), also called swish. Like tg_sigmoid, it is stable
 * for large |x|. */
tg_tensor *tg_silu(tg_tape *tape, const tg_tensor *x);

/* Form of the GELU activation. */
typedef enum tg_gelu_approx {
    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch's
     * gelu(approximate='tanh') and GPT-2. */
    TG_GELU_TANH,
    /* x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), as PyTorch's default gelu. */
    TG_GELU_EXACT,
} tg_gelu_approx;

/* Applies the GELU activation to x in the given form. An approx other than the
 * two values above is a TG_ERR_INVALID recorded on the tape. */
tg_tensor *tg_gelu(tg_tape *tape, const tg_tensor *x, tg_gelu_approx approx);

#endif
