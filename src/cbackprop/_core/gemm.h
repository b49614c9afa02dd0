/* Our own products for row blocks, on builds with AVX-512 or AVX2 + FMA.
 *
 * The products of a layer are thin: one side is a hidden or output width (tens of
 * units), the other a block of rows. BLAS packs both operands on every call (X's block
 * twice per gradient, once per product), a fixed cost a call that is large next to the
 * small layers' arithmetic. Here every product is one form,
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
 * One sample (online training, the per-sample method) has loops of its own: cb_matvec_rows
 * (z = W a, CB_RT rows at a time), the broadcast form with one row (W^T d), and
 * cb_update_rows (Theta = decay Theta + alpha d a^T with aligned stores), where BLAS
 * level 2 calls spend more on the call than on a small layer's arithmetic (the figures:
 * benchmarks/README.md, "Measurements behind the code's choices").
 * Builds without either (baseline) define CB_OWN_GEMM 0 and the core calls BLAS.
 */
#ifndef CBACKPROP_GEMM_H
#define CBACKPROP_GEMM_H

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define CB_OWN_GEMM 1
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* out[r] = the sum of acc[r]'s lanes, r < CB_RT, one vector at a time */
#define CB_HSUM_EACH(acc, out) \
    do { for (int r_ = 0; r_ < CB_RT; r_++) (out)[r_] = CB_HSUM((acc)[r_]); } while (0)

#if defined(__AVX512F__)
#define CB_RT 6
#define CB_VT 4
#define CB_ROWV 16                  /* one row's vectors at once (cb_row) */
#define CB_LANES_D 8                /* elements a vector, for the callers' choices */
#define CB_LANES_F 16

/* The sums of CB_RT (6) vectors' lanes at once, rounded as _mm512_reduce_add_pd rounds
 * each (lanes i + 4, then i + 2, then the pair), in fewer shuffles, which Intel's cores
 * run on one port: one sample's matrix-vector products end in these reductions. */
static inline void cb_hsum_rt_d(const __m512d *a, double *out) {
    const __m512d z = _mm512_setzero_pd();
    __m512d t01 = _mm512_add_pd(_mm512_shuffle_f64x2(a[0], a[1], 0x44),
                                _mm512_shuffle_f64x2(a[0], a[1], 0xee));
    __m512d t23 = _mm512_add_pd(_mm512_shuffle_f64x2(a[2], a[3], 0x44),
                                _mm512_shuffle_f64x2(a[2], a[3], 0xee));
    __m512d t45 = _mm512_add_pd(_mm512_shuffle_f64x2(a[4], a[5], 0x44),
                                _mm512_shuffle_f64x2(a[4], a[5], 0xee));
    __m512d u03 = _mm512_add_pd(_mm512_shuffle_f64x2(t01, t23, 0x88),
                                _mm512_shuffle_f64x2(t01, t23, 0xdd));
    __m512d u45 = _mm512_add_pd(_mm512_shuffle_f64x2(t45, z, 0x88),
                                _mm512_shuffle_f64x2(t45, z, 0xdd));
    double v[8];        /* lanes: sums 0 4 1 5 2 - 3 - */
    _mm512_storeu_pd(v, _mm512_add_pd(_mm512_unpacklo_pd(u03, u45),
                                      _mm512_unpackhi_pd(u03, u45)));
    out[0] = v[0]; out[1] = v[2]; out[2] = v[4]; out[3] = v[6]; out[4] = v[1]; out[5] = v[3];
}

#define CB_T double
#define CB_V __m512d
#define CB_W 8
#define CB_M __mmask8
#define CB_FN(name) name##_d
#define CB_ZERO() _mm512_setzero_pd()
#define CB_SET1(x) _mm512_set1_pd(x)
#define CB_LOADU(p) _mm512_loadu_pd(p)
#define CB_STOREU(p, x) _mm512_storeu_pd(p, x)
#define CB_LOADA(p) _mm512_load_pd(p)
#define CB_STOREA(p, x) _mm512_store_pd(p, x)
#define CB_LOADM(p, m) _mm512_maskz_loadu_pd(m, p)
#define CB_STOREM(p, m, x) _mm512_mask_storeu_pd(p, m, x)
#define CB_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define CB_MUL(a, b) _mm512_mul_pd(a, b)
#define CB_ADD(a, b) _mm512_add_pd(a, b)
#define CB_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define CB_HSUM(v) _mm512_reduce_add_pd(v)
#define CB_HSUM_RT(acc, out) cb_hsum_rt_d(acc, out)
#define CB_FMA1(a, b, c) fma(a, b, c)
#include "gemm_tile.h"

#define CB_T float
#define CB_V __m512
#define CB_W 16
#define CB_M __mmask16
#define CB_FN(name) name##_f
#define CB_ZERO() _mm512_setzero_ps()
#define CB_SET1(x) _mm512_set1_ps(x)
#define CB_LOADU(p) _mm512_loadu_ps(p)
#define CB_STOREU(p, x) _mm512_storeu_ps(p, x)
#define CB_LOADA(p) _mm512_load_ps(p)
#define CB_STOREA(p, x) _mm512_store_ps(p, x)
#define CB_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define CB_STOREM(p, m, x) _mm512_mask_storeu_ps(p, m, x)
#define CB_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define CB_MUL(a, b) _mm512_mul_ps(a, b)
#define CB_ADD(a, b) _mm512_add_ps(a, b)
#define CB_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define CB_HSUM(v) _mm512_reduce_add_ps(v)
#define CB_HSUM_RT(acc, out) CB_HSUM_EACH(acc, out)
#define CB_FMA1(a, b, c) fmaf(a, b, c)
#include "gemm_tile.h"

#else /* AVX2 + FMA: masks are vectors whose lanes have the sign bit set */
#define CB_RT 4
#define CB_VT 3
#define CB_ROWV 12
#define CB_LANES_D 4
#define CB_LANES_F 8

static inline __m256i cb_mask_lanes(int n, int lanes) {
    const __m256i idx = lanes == 4 ? _mm256_setr_epi64x(0, 1, 2, 3)
                                   : _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return lanes == 4 ? _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx)
                      : _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

static inline double cb_hsum_d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static inline float cb_hsum_f(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
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
#define CB_LOADA(p) _mm256_load_pd(p)
#define CB_STOREA(p, x) _mm256_store_pd(p, x)
#define CB_LOADM(p, m) _mm256_maskload_pd(p, m)
#define CB_STOREM(p, m, x) _mm256_maskstore_pd(p, m, x)
#define CB_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define CB_MUL(a, b) _mm256_mul_pd(a, b)
#define CB_ADD(a, b) _mm256_add_pd(a, b)
#define CB_MASK(n) cb_mask_lanes(n, 4)
#define CB_HSUM(v) cb_hsum_d(v)
#define CB_HSUM_RT(acc, out) CB_HSUM_EACH(acc, out)
#define CB_FMA1(a, b, c) fma(a, b, c)
#include "gemm_tile.h"

#define CB_T float
#define CB_V __m256
#define CB_W 8
#define CB_M __m256i
#define CB_FN(name) name##_f
#define CB_ZERO() _mm256_setzero_ps()
#define CB_SET1(x) _mm256_set1_ps(x)
#define CB_LOADU(p) _mm256_loadu_ps(p)
#define CB_STOREU(p, x) _mm256_storeu_ps(p, x)
#define CB_LOADA(p) _mm256_load_ps(p)
#define CB_STOREA(p, x) _mm256_store_ps(p, x)
#define CB_LOADM(p, m) _mm256_maskload_ps(p, m)
#define CB_STOREM(p, m, x) _mm256_maskstore_ps(p, m, x)
#define CB_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define CB_MUL(a, b) _mm256_mul_ps(a, b)
#define CB_ADD(a, b) _mm256_add_ps(a, b)
#define CB_MASK(n) cb_mask_lanes(n, 8)
#define CB_HSUM(v) cb_hsum_f(v)
#define CB_HSUM_RT(acc, out) CB_HSUM_EACH(acc, out)
#define CB_FMA1(a, b, c) fmaf(a, b, c)
#include "gemm_tile.h"
#endif

#else /* baseline: the core calls BLAS; these are never reached */
#define CB_OWN_GEMM 0
#define CB_LANES_D 1
#define CB_LANES_F 1
static inline void cb_dot_rows_d(int R, int T, int S, const double *X, long ldx,
                                 const double *Wr, long ldw, double *C, long ldc) {}
static inline void cb_dot_rows_f(int R, int T, int S, const float *X, long ldx,
                                 const float *Wr, long ldw, float *C, long ldc) {}
static inline void cb_gemm_d(int R, int N, int S, double alpha, const double *coef, long rs,
                             long ss, const double *B, long ldb, int accumulate, double *C,
                             long ldc, int s_block) {}
static inline void cb_gemm_f(int R, int N, int S, float alpha, const float *coef, long rs,
                             long ss, const float *B, long ldb, int accumulate, float *C,
                             long ldc, int s_block) {}
static inline void cb_colsum_d(int S, int N, const double *B, long ldb, double *out) {}
static inline void cb_colsum_f(int S, int N, const float *B, long ldb, float *out) {}
static inline void cb_matvec_rows_d(int m, int n, const double *W, long ld, const double *x,
                                    double *y) {}
static inline void cb_matvec_rows_f(int m, int n, const float *W, long ld, const float *x,
                                    float *y) {}
static inline void cb_update_matvec_rows_d(int m, int n, double *W, long ld, const double *x,
                                           double *y, double alpha, const double *dp,
                                           const double *xp, double decay) {}
static inline void cb_update_matvec_rows_f(int m, int n, float *W, long ld, const float *x,
                                           float *y, float alpha, const float *dp,
                                           const float *xp, float decay) {}
static inline void cb_update_rows_d(int m, int n, double alpha, const double *d, const double *x,
                                    double *G, long ld, double decay) {}
static inline void cb_update_rows_f(int m, int n, float alpha, const float *d, const float *x,
                                    float *G, long ld, float decay) {}
#endif

#endif
