/* GELU and its derivative at one element, shared by the gelu op (unary.c)
 * and the fused MLP op (gelu_mlp.c).
 *
 * Tanh form: with u = k (x + c x^3), k = sqrt(2/pi), c = 0.044715,
 *     y  = 0.5 x (1 + tanh(u)) = x s,   s = sigmoid(2u) = 1 / (1 + e^(-2u))
 *     y' = 0.5 (1 + t) + 0.5 x (1 - t^2) u' = s + 2 x s (1 - s) u'
 *          with t = tanh(u), 1 - t^2 = 4 s (1 - s), u' = k (1 + 3 c x^2).
 * The sigmoid form needs one exp and no tanh, and it does not cancel where
 * 1 + tanh(u) does for negative x: 1 - s is computed as e^(-2u) s, which
 * keeps its relative accuracy when s is near 1. The float build takes exp
 * from expf_clamped below, a polynomial that loops vectorise; the float64
 * build, which exists for gradient checks, uses libm's exp.
 * Exact form: y = x Phi(x), Phi(x) = 0.5 erfc(-x / sqrt(2)),
 *     y' = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi);
 * erfc keeps Phi's relative accuracy for negative x, where 1 + erf cancels.
 */
#ifndef TG_AUTOGRAD_OPS_GELU_INTERNAL_H
#define TG_AUTOGRAD_OPS_GELU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tgmath.h>

#include "../scalar.h"
#include "unary.h"

/* sqrt(2 / pi), the GELU tanh form's scale. */
#define TG__GELU_K ((tg_scalar)0.7978845608028654)
/* The cubic coefficient of the GELU tanh form. */
#define TG__GELU_C ((tg_scalar)0.044715)
/* 1 / sqrt(2). */
#define TG__INV_SQRT2 ((tg_scalar)0.7071067811865476)
/* 1 / sqrt(2 pi), the peak of the standard normal density. */
#define TG__INV_SQRT_2PI ((tg_scalar)0.3989422804014327)

#ifndef TG_SCALAR_DOUBLE
/* e^x in float for any x, written so that loops over it vectorise. x is
 * first clamped to [-87, 87], whose ends give 1.6e-38 and 6.1e37, so that
 * neither e^x nor 1 / (1 + e^x) is a subnormal float, whose arithmetic is
 * slow. Then x = n ln2 + r with |r| <= ln2 / 2, e^r comes from its Taylor
 * series to r^7 (relative error below 1.1e-7, about 2 ulp), and 2^n is built
 * in the exponent bits. A NaN input gives an unspecified finite value. The
 * clamp compares the magnitude's bit pattern as an unsigned integer, because
 * a float comparison in a loop blocks vectorisation unless
 * -fno-trapping-math is given. */
static inline float tg__expf_clamped(float x) {
    const float log2e = 1.44269504088896341f;
    /* ln2 = ln2_hi + ln2_lo, where ln2_hi ends in 9 zero bits, so n * ln2_hi
     * is exact for |n| < 512. */
    const float ln2_hi = 0.693145751953125f;
    const float ln2_lo = 1.42860676533018708e-06f;
    /* 1.5 * 2^23: adding it and subtracting it again rounds to an integer. */
    const float round_magic = 12582912.0f;
    const uint32_t limit_bits = 0x42AE0000u;  /* 87.0f */

    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    magnitude = magnitude < limit_bits ? magnitude : limit_bits;
    uint32_t clamped_bits = (bits & 0x80000000u) | magnitude;
    float xc;
    memcpy(&xc, &clamped_bits, sizeof xc);

    float nf = (xc * log2e + round_magic) - round_magic;
    float r = (xc - nf * ln2_hi) - nf * ln2_lo;
    float poly = 1.0f / 5040.0f;
    poly = poly * r + 1.0f / 720.0f;
    poly = poly * r + 1.0f / 120.0f;
    poly = poly * r + 1.0f / 24.0f;
    poly = poly * r + 1.0f / 6.0f;
    poly = poly * r + 0.5f;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    uint32_t scale_bits = (uint32_t)((int32_t)nf + 127) << 23;
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return poly * scale;
}
#endif

/* Returns e^(-2u) for the tanh form. In float64 the argument is capped at
 * 700 (e^700 is 1e304), so that 1 - s = e^(-2u) s stays finite. */
static inline tg_scalar tg__gelu_exp_minus_2u(tg_scalar x) {
    tg_scalar u = TG__GELU_K * (x + TG__GELU_C * x * x * x);
#ifdef TG_SCALAR_DOUBLE
    double arg = -2 * u;
    return exp(arg < 700 ? arg : 700);
#else
    return tg__expf_clamped(-2 * u);
#endif
}

/* Returns the tanh form of GELU at x, as x s with the reciprocal s, so that
 * it shares its one division with the derivative in tg__gelu_tanh_pair. */
static inline tg_scalar tg__gelu_tanh(tg_scalar x) {
    tg_scalar s = 1 / (1 + tg__gelu_exp_minus_2u(x));
    return x * s;
}

/* Returns the derivative of the tanh form of GELU at x. */
static inline tg_scalar tg__gelu_tanh_derivative(tg_scalar x) {
    tg_scalar e = tg__gelu_exp_minus_2u(x);
    tg_scalar s = 1 / (1 + e);
    tg_scalar du = TG__GELU_K * (1 + 3 * TG__GELU_C * x * x);
    return s + 2 * x * s * (e * s) * du;
}

/* Writes the tanh form of GELU at x and its derivative with one exp; the
 * same bits as tg__gelu_tanh and tg__gelu_tanh_derivative. */
static inline void tg__gelu_tanh_pair(tg_scalar x, tg_scalar *y, tg_scalar *derivative) {
    tg_scalar e = tg__gelu_exp_minus_2u(x);
    tg_scalar s = 1 / (1 + e);
    *y = x * s;
    tg_scalar du = TG__GELU_K * (1 + 3 * TG__GELU_C * x * x);
    *derivative = s + 2 * x * s * (e * s) * du;
}

/* Returns the exact form of GELU at x. */
static inline tg_scalar tg__gelu_exact(tg_scalar x) {
    return (tg_scalar)0.5 * x * erfc(-x * TG__INV_SQRT2);
}

/* Returns the derivative of the exact form of GELU at x. */
static inline tg_scalar tg__gelu_exact_derivative(tg_scalar x) {
    const tg_scalar half = (tg_scalar)0.5;
    tg_scalar cdf = half * erfc(-x * TG__INV_SQRT2);
    tg_scalar pdf = TG__INV_SQRT_2PI * exp(-half * x * x);
    return cdf + x * pdf;
}

/* Writes y = gelu(x) over n elements, split over the OpenMP threads when n
 * is large. Defined in unary.c. */
void tg__gelu_forward(tg_scalar *y, const tg_scalar *x, size_t n, tg_gelu_approx approx);

/* Writes y = gelu(x) over n elements and replaces x by gelu'(x), as the
 * fused MLP's forward saves it for the backward. Defined in unary.c. */
void tg__gelu_forward_derivative(tg_scalar *y, tg_scalar *x, size_t n, tg_gelu_approx approx);

/* Writes out = dy * gelu'(x) when replace, else adds it into out, over n
 * elements; out may be dy itself. Defined in unary.c. */
void tg__gelu_backward(tg_scalar *out, const tg_scalar *dy, const tg_scalar *x, size_t n,
                       tg_gelu_approx approx, bool replace);

#endif
