/* Numerical gradient checking of any function of tensors.
 *
 * tg_gradcheck compares the gradients a backward pass computes with central
 * differences of the same function. The output may have any shape: the check
 * differentiates L = sum_i r_i * out_i for fixed random weights r, so every
 * output element takes part and no reduction op is needed.
 *
 * For each element x_j of each input that requires grad:
 *     numeric_j  = (L(x_j + eps) - L(x_j - eps)) / (2 eps)
 *     analytic_j = dL/dx_j from tg_tape_backward_from
 *     error_j    = |analytic_j - numeric_j| / max(|analytic_j|, |numeric_j|, scale_floor)
 * The check passes when every error_j is at most `tolerance`. With the default
 * scale_floor of 1 the error is relative for gradients larger than 1 and
 * absolute below, which keeps rounding noise in tiny gradients from failing
 * a correct op.
 *
 * Build the function against the double library (tapegrad_f64, where
 * tg_scalar is double): its central differences are accurate to about 1e-9,
 * so a tolerance of 1e-6 separates a correct backward from a wrong one. In
 * float32, differences are only good to about 1e-3 and the defaults loosen to
 * match.
 */
#ifndef TG_AUTOGRAD_GRADCHECK_H
#define TG_AUTOGRAD_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "tape.h"

/* The function under test. It records ops on `tape` from `inputs` and returns
 * the output, or NULL if an op failed. It must be deterministic: the same
 * inputs give the same output on every call (seed any dropout inside it). */
typedef tg_tensor *(*tg_gradcheck_fn)(tg_tape *tape, tg_tensor *const *inputs, void *user_data);

typedef struct tg_gradcheck_options {
    double eps;          /* finite-difference step */
    double tolerance;    /* largest error that passes */
    double scale_floor;  /* smallest denominator of the error (see above) */
    uint64_t seed;       /* seed of the output weights r */
} tg_gradcheck_options;

typedef struct tg_gradcheck_result {
    double max_error;    /* largest error_j over all checked elements */
    int worst_input;     /* input holding the worst element */
    size_t worst_index;  /* its flat row-major index in that input */
    double analytic;     /* analytic gradient at the worst element */
    double numeric;      /* numeric gradient at the worst element */
    size_t checked;      /* number of elements checked */
} tg_gradcheck_result;

/* Returns the defaults for this build: eps 1e-6 and tolerance 1e-6 in double,
 * eps 1e-3 and tolerance 1e-2 in float32; scale_floor 1; seed 1. */
tg_gradcheck_options tg_gradcheck_default_options(void);

/* Checks the gradients of fn with respect to every input that requires grad.
 * inputs are heap tensors; their data is perturbed and restored, and their
 * gradients are overwritten. options may be NULL for the defaults.
 * Returns TG_OK if the check passed; TG_ERR_NUMERIC if some element failed,
 * with tg_last_error() naming the input, the element, both values and the
 * error; TG_ERR_INVALID if no input requires grad; or the status of a failed
 * call of fn. result, if not NULL, is filled in whenever the check ran. */
tg_status tg_gradcheck(tg_gradcheck_fn fn, int n_inputs, tg_tensor *const *inputs,
                       void *user_data, const tg_gradcheck_options *options,
                       tg_gradcheck_result *result);

#endif
