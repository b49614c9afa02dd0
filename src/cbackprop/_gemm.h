/* Our own products for row blocks, on builds with AVX-512 or AVX2 + FMA.
 *
 * The products of a layer are thin: one side is a hidden or output width (tens of
 * units), the other a block of rows. BLAS packs both operands on every call (X's block
 * twice per gradient, once per product) and costs microseconds a call on the small
 * layers. Here every product is one form,
 *
 *     C[r, :] (+)= alpha * sum_s coef(r, s) B[s, :]      coef(r, s) = coef[r rs + s ss]
 *
 * with C and B read in vectors along their rows and coef broadcast, so nothing is packed
 * except W^T for the forward product (once per call, not per block):
 *     forward   Z = A W^T:   r = sample, s = input unit,  coef = A,  B = W^T (packed)
 *     backward  D' = D W:    r = sample, s = output unit, coef = D,  B = W
 *     gradient  G += a D^T A: r = output unit, s = sample, coef = D (transposed), B = A
 * A tile of CB_RT rows x CB_VT vectors of C stays in registers over the whole sum
 * (6 x 4 zmm with AVX-512's 32 registers, 4 x 3 ymm with AVX2's 16), and masked loads
 * and stores end the rows without reading or writing past them.
 * Builds without either (baseline) define CB_OWN_GEMM 0 and the core calls BLAS.
 */
#ifndef CBACKPROP_GEMM_H
#define CBACKPROP_GEMM_H

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define CB_OWN_GEMM 1
#include <immintrin.h>

#if defined(__AVX512F__)
#define CB_RT 6
#define CB_VT 4

#define CB_T double
#define CB_V __m512d
#define CB_W 8
#define CB_M __mmask8
#define CB_FN(name) name##_d
#define CB_ZERO() _mm512_setzero_pd()
#define CB_SET1(x) _mm512_set1_pd(x)
#define CB_LOADU(p) _mm512_loadu_pd(p)
#define CB_STOREU(p, x) _mm512_storeu_pd(p, x)
#define CB_LOADM(p, m) _mm512_maskz_loadu_pd(m, p)
#define CB_STOREM(p, m, x) _mm512_mask_storeu_pd(p, m, x)
#define CB_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define CB_MUL(a, b) _mm512_mul_pd(a, b)
#define CB_ADD(a, b) _mm512_add_pd(a, b)
#define CB_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#include "_gemm_tile.h"

#define CB_T float
#define CB_V __m512
#define CB_W 16
#define CB_M __mmask16
#define CB_FN(name) name##_f
#define CB_ZERO() _mm512_setzero_ps()
#define CB_SET1(x) _mm512_set1_ps(x)
#define CB_LOADU(p) _mm512_loadu_ps(p)
#define CB_STOREU(p, x) _mm512_storeu_ps(p, x)
#define CB_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define CB_STOREM(p, m, x) _mm512_mask_storeu_ps(p, m, x)
#define CB_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define CB_MUL(a, b) _mm512_mul_ps(a, b)
#define CB_ADD(a, b) _mm512_add_ps(a, b)
#define CB_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#include "_gemm_tile.h"

#else /* AVX2 + FMA: masks are vectors whose lanes have the sign bit set */
#define CB_RT 4
#define CB_VT 3

static inline __m256i cb_mask_lanes(int n, int lanes) {
    const __m256i idx = lanes == 4 ? _mm256_setr_epi64x(0, 1, 2, 3)
                                   : _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return lanes == 4 ? _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx)
                      : _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

#define CB_T double
#define CB_V __m256d
#define CB_W 4
#define CB_M __m256i
#define CB_FN(name) name##_d
#define CB_ZERO() _mm256_setzero_pd()
#define CB_SET1(x) _mm256_set1_pd(x)
#define CB_LOADU(p) _mm256_loadu_pd(p)
#define CB_STOREU(p, x) _mm256_storeu_pd(p, x)
#define CB_LOADM(p, m) _mm256_maskload_pd(p, m)
#define CB_STOREM(p, m, x) _mm256_maskstore_pd(p, m, x)
#define CB_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define CB_MUL(a, b) _mm256_mul_pd(a, b)
#define CB_ADD(a, b) _mm256_add_pd(a, b)
#define CB_MASK(n) cb_mask_lanes(n, 4)
#include "_gemm_tile.h"

#define CB_T float
#define CB_V __m256
#define CB_W 8
#define CB_M __m256i
#define CB_FN(name) name##_f
#define CB_ZERO() _mm256_setzero_ps()
#define CB_SET1(x) _mm256_set1_ps(x)
#define CB_LOADU(p) _mm256_loadu_ps(p)
#define CB_STOREU(p, x) _mm256_storeu_ps(p, x)
#define CB_LOADM(p, m) _mm256_maskload_ps(p, m)
#define CB_STOREM(p, m, x) _mm256_maskstore_ps(p, m, x)
#define CB_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define CB_MUL(a, b) _mm256_mul_ps(a, b)
#define CB_ADD(a, b) _mm256_add_ps(a, b)
#define CB_MASK(n) cb_mask_lanes(n, 8)
#include "_gemm_tile.h"
#endif

#else /* baseline: the core calls BLAS; these are never reached */
#define CB_OWN_GEMM 0
static inline void cb_gemm_d(int R, int N, int S, double alpha, const double *coef, long rs,
                             long ss, const double *B, long ldb, int accumulate, double *C,
                             long ldc) {}
static inline void cb_gemm_f(int R, int N, int S, float alpha, const float *coef, long rs,
                             long ss, const float *B, long ldb, int accumulate, float *C,
                             long ldc) {}
#endif

#endif
