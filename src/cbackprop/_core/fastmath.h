/* Vectorizable exp, expm1 and log1p on the ranges the kernels need.
 *
 * libm's exp/log1p are opaque calls, so loops around them run one element at a
 * time. These are branch-free polynomials that the compiler vectorizes (AVX2/AVX-512
 * where the build allows, SSE2 otherwise) with the ordinary floating-point model:
 * no -ffast-math. Accuracy: a few ulp in double (relative error < 1e-15), and in float.
 *
 * Only non-positive arguments are needed: sigmoid and softplus use exp(-|z|), tanh
 * uses expm1(-2|z|), softmax uses exp(z - max z), and log1p takes exp(-|z|) in (0, 1].
 */
#ifndef CBACKPROP_FASTMATH_H
#define CBACKPROP_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* x = n ln2 + r with |r| <= ln2/2; 2^n from the bits of a rounded shifter (no int conversion). */
#define CB_LOG2E 1.4426950408889634
#define CB_LN2_HI 6.93147180369123816490e-01
#define CB_LN2_LO 1.90821492927058770002e-10

/* expm1(r) - r for |r| <= ln2/2: Taylor terms r^2/2! .. r^13/13! (error < 1e-17), summed
 * in Estrin's scheme (pairs, then pairs of pairs): a chain of 5 multiply-adds, not Horner's
 * 12. One sample of online training waits on every exp it computes, so latency counts. */
static inline double cb_expm1_poly(double r) {
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double q0 = 0.5 + r * (1.0 / 6.0), q1 = 1.0 / 24.0 + r * (1.0 / 120.0);
    double q2 = 1.0 / 720.0 + r * (1.0 / 5040.0), q3 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    double q4 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
    double q5 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    double s0 = q0 + r2 * q1, s1 = q2 + r2 * q3, s2 = q4 + r2 * q5;
    return (s0 + r4 * s1 + r8 * s2) * r2;
}

/* Reduce x in [-708, 0]: returns expm1(r) and sets *scale = 2^n. */
static inline double cb_reduce(double x, double *scale) {
    const double shifter = 6755399441055744.0;          /* 1.5 * 2^52 */
    double t = x * CB_LOG2E + shifter;                   /* round(x log2 e) in the low bits */
    double n = t - shifter;
    double r = (x - n * CB_LN2_HI) - n * CB_LN2_LO;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023u) << 52;                         /* the exponent field of 2^n */
    memcpy(scale, &bits, sizeof bits);
    return r + cb_expm1_poly(r);
}

/* exp(x) for x <= 0 (exactly 0 below -708). */
static inline double cb_exp_neg(double x) {
    double xc = x < -708.0 ? -708.0 : x;
    double scale;
    double q = cb_reduce(xc, &scale);
    double e = scale + scale * q;
    return x < -708.0 ? 0.0 : e;
}

/* expm1(x) for x <= 0, accurate near 0 (no cancellation when n = 0). */
static inline double cb_expm1_neg(double x) {
    double xc = x < -708.0 ? -708.0 : x;
    double scale;
    double q = cb_reduce(xc, &scale);
    return scale * q + (scale - 1.0);
}

/* log1p(u) for u in [0, 1] as 2 atanh(s): s = u / (2 + u) for u <= sqrt(2) - 1, else
 * log1p(u) = ln 2 + 2 atanh(s) with s = (u - 1) / (u + 3) (the halved argument); either
 * way |s| <= 0.1716 and the odd series to s^21 is exact to double precision. */
static inline double cb_log1p_unit(double u) {
    int high = u > 0.41421356237309503;
    /* one division of the selected terms, not two divisions and a select: the same s */
    double s = (high ? u - 1.0 : u) / (high ? u + 3.0 : 2.0 + u);
    double s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    double r = 2.0 * s + 2.0 * s * s2 * p;
    double ln2 = high ? 0.6931471805599453 : 0.0;
    return r + ln2;
}

/* float versions: the same reductions with shorter polynomials. */
static inline float cb_reduce_f(float x, float *scale) {
    const float shifter = 12582912.0f;                   /* 1.5 * 2^23 */
    float t = x * 1.44269504f + shifter;
    float n = t - shifter;
    float r = (x - n * 0.693145752f) - n * 1.42860677e-06f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 127u) << 23;
    memcpy(scale, &bits, sizeof bits);
    float r2 = r * r, r4 = r2 * r2;                    /* Estrin, as cb_expm1_poly */
    float q0 = 0.5f + r * (1.0f / 6.0f), q1 = 1.0f / 24.0f + r * (1.0f / 120.0f);
    float q2 = 1.0f / 720.0f + r * (1.0f / 5040.0f);
    float p = (q0 + r2 * q1) + r4 * (q2 + r2 * (1.0f / 40320.0f));
    return r + p * r * r;
}

static inline float cb_exp_neg_f(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    float scale;
    float q = cb_reduce_f(xc, &scale);
    float e = scale + scale * q;
    return x < -87.0f ? 0.0f : e;
}

static inline float cb_expm1_neg_f(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    float scale;
    float q = cb_reduce_f(xc, &scale);
    return scale * q + (scale - 1.0f);
}

static inline float cb_log1p_unit_f(float u) {
    int high = u > 0.41421356f;
    float s = (high ? u - 1.0f : u) / (high ? u + 3.0f : 2.0f + u);
    float s2 = s * s;
    float p = 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    float r = 2.0f * s + 2.0f * s * s2 * p;
    return r + (high ? 0.693147181f : 0.0f);
}

#endif
