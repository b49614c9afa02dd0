/* The sparse first layer's inner loops (rows.pxi), a stored entry p of X at a time:
 *   gather:  out[0:n] += val[p] src[idx[p] ld + 0:n] for p0 <= p < p1 (z(2) = X W(1)^T
 *            from W(1)^T's rows, the gradient X^T delta(2) from delta(2)'s rows);
 *   scatter: dst[idx[p] ld + 0:n] += (alpha val[p]) src[0:n] for p0 <= p < p1 (the
 *            gradient from one sample's delta(2)).
 * The row that every entry reads (gather: out; scatter: src) is held in registers,
 * CB_GV vectors of the build's width at a time. Written as loops over memory, gather's
 * out went through a load and a store at every entry: a chain through store
 * forwarding, and few entries in the out-of-order window to gather ahead for
 * (benchmarks/README.md). The sums are the same: each element adds its products in
 * the entries' order. The row of the entry ahead_n entries on is prefetched while that
 * entry is below `ahead` (0: none), past p1, where the caller's next entries follow.
 * Compilers without GCC's vector extensions (MSVC) get the loops over memory, with
 * the same prefetches. */
#ifndef CBACKPROP_GATHER_H
#define CBACKPROP_GATHER_H

#include <string.h>

#if defined(_MSC_VER)
#include <xmmintrin.h>
#define CB_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define CB_PREFETCH(p) __builtin_prefetch((p))
#endif

static inline void cb_prefetch_bytes(const void *p, long n_bytes)
{
    for (long b = 0; b < n_bytes; b += 64)
        CB_PREFETCH((const char *)p + b);
}

#if defined(__GNUC__)

#include "lanes.h"

#define CB_GV 8                             /* half the registers of AVX2 and SSE2 */
#define CB_VBYTES (CB_LV * (int)sizeof(double))

/* cb_rows_S(scatter, fixed, ...): both loops in one, `scatter` a constant where it is
 * called. gather: fixed is out (summed in registers), the picked rows are src's (read);
 * scatter: fixed is src (read once into registers), the picked rows are dst's (updated).
 * v = alpha val[p] (1 for a gather: the same bits as val[p]). A chunk of nv vectors (a
 * constant) of the fixed row at a time, then the elements left. */
#define CB_GATHER(T, S)                                                                      \
typedef T cb_gv_##S __attribute__((vector_size(CB_VBYTES)));                                 \
enum { CB_GL_##S = CB_VBYTES / (int)sizeof(T) };                                             \
static inline cb_gv_##S cb_gload_##S(const T *p)                                             \
{                                                                                            \
    cb_gv_##S v;                                                                             \
    memcpy(&v, p, sizeof v);                                                                 \
    return v;                                                                                \
}                                                                                            \
static inline void cb_gstore_##S(T *p, cb_gv_##S v)                                          \
{                                                                                            \
    memcpy(p, &v, sizeof v);                                                                 \
}                                                                                            \
static inline __attribute__((always_inline)) void                                            \
cb_chunk_##S(const int nv, const int scatter, T *fixed, T alpha, const T *val,               \
             const int *idx, long p0, long p1, T *picked, long ld, long ahead, long ahead_n) \
{                                                                                            \
    cb_gv_##S r[CB_GV];                                                                      \
    _Pragma("GCC unroll 8") for (int h = 0; h < nv; h++)                                     \
        r[h] = cb_gload_##S(fixed + h * CB_GL_##S);                                          \
    for (long p = p0; p < p1; p++) {                                                         \
        if (p + ahead_n < ahead)                                                             \
            cb_prefetch_bytes(picked + (long)idx[p + ahead_n] * ld,                          \
                              nv * CB_GL_##S * (long)sizeof(T));                             \
        cb_gv_##S v = (cb_gv_##S){0} + alpha * val[p];                                       \
        T *at = picked + (long)idx[p] * ld;                                                  \
        _Pragma("GCC unroll 8") for (int h = 0; h < nv; h++) {                               \
            if (scatter)                                                                     \
                cb_gstore_##S(at + h * CB_GL_##S, cb_gload_##S(at + h * CB_GL_##S) + v * r[h]); \
            else                                                                             \
                r[h] += v * cb_gload_##S(at + h * CB_GL_##S);                                \
        }                                                                                    \
    }                                                                                        \
    if (!scatter)                                                                            \
        _Pragma("GCC unroll 8") for (int h = 0; h < nv; h++)                                 \
            cb_gstore_##S(fixed + h * CB_GL_##S, r[h]);                                      \
}                                                                                            \
static inline __attribute__((always_inline)) void                                            \
cb_rows_##S(const int scatter, T *fixed, long n, T alpha, const T *val, const int *idx,     \
            long p0, long p1, T *picked, long ld, long ahead, long ahead_n)                  \
{                                                                                            \
    const long L = CB_GL_##S;                                                                \
    long k = 0;                                                                              \
    for (; k + CB_GV * L <= n; k += CB_GV * L)                                               \
        cb_chunk_##S(CB_GV, scatter, fixed + k, alpha, val, idx, p0, p1, picked + k, ld,     \
                     ahead, ahead_n);                                                        \
    /* the chunks' sizes are constants, so that each keeps its vectors in registers */      \
    if (k + 4 * L <= n) {                                                                    \
        cb_chunk_##S(4, scatter, fixed + k, alpha, val, idx, p0, p1, picked + k, ld, ahead,  \
                     ahead_n);                                                               \
        k += 4 * L;                                                                          \
    }                                                                                        \
    if (k + 2 * L <= n) {                                                                    \
        cb_chunk_##S(2, scatter, fixed + k, alpha, val, idx, p0, p1, picked + k, ld, ahead,  \
                     ahead_n);                                                               \
        k += 2 * L;                                                                          \
    }                                                                                        \
    if (k + L <= n) {                                                                        \
        cb_chunk_##S(1, scatter, fixed + k, alpha, val, idx, p0, p1, picked + k, ld, ahead,  \
                     ahead_n);                                                               \
        k += L;                                                                              \
    }                                                                                        \
    for (long p = p0; p < p1 && k < n; p++) {                                                \
        T v = alpha * val[p], *at = picked + (long)idx[p] * ld;                              \
        for (long e = k; e < n; e++) {                                                       \
            if (scatter)                                                                     \
                at[e] += v * fixed[e];                                                       \
            else                                                                             \
                fixed[e] += v * at[e];                                                       \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
static inline void cb_gather_##S(T *out, long n, const T *val, const int *idx, long p0,     \
                                 long p1, const T *src, long ld, long ahead, long ahead_n)   \
{                                                                                            \
    /* src is only read: gather mode never writes the picked rows */                         \
    cb_rows_##S(0, out, n, 1, val, idx, p0, p1, (T *)src, ld, ahead, ahead_n);               \
}                                                                                            \
static inline void cb_scatter_##S(T *dst, long n, T alpha, const T *val, const int *idx,    \
                                  long p0, long p1, const T *src, long ld, long ahead,       \
                                  long ahead_n)                                              \
{                                                                                            \
    /* src is only read: scatter mode never writes the fixed row */                          \
    cb_rows_##S(1, (T *)src, n, alpha, val, idx, p0, p1, dst, ld, ahead, ahead_n);           \
}

#else   /* no vector extensions: the loops over memory */

#define CB_GATHER(T, S)                                                                      \
static inline void cb_gather_##S(T *out, long n, const T *val, const int *idx, long p0,     \
                                 long p1, const T *src, long ld, long ahead, long ahead_n)   \
{                                                                                            \
    for (long p = p0; p < p1; p++) {                                                         \
        if (p + ahead_n < ahead)                                                             \
            cb_prefetch_bytes(src + (long)idx[p + ahead_n] * ld, n * (long)sizeof(T));       \
        const T *s = src + (long)idx[p] * ld;                                                \
        for (long k = 0; k < n; k++)                                                         \
            out[k] += val[p] * s[k];                                                         \
    }                                                                                        \
}                                                                                            \
static inline void cb_scatter_##S(T *dst, long n, T alpha, const T *val, const int *idx,    \
                                  long p0, long p1, const T *src, long ld, long ahead,       \
                                  long ahead_n)                                              \
{                                                                                            \
    for (long p = p0; p < p1; p++) {                                                         \
        if (p + ahead_n < ahead)                                                             \
            cb_prefetch_bytes(dst + (long)idx[p + ahead_n] * ld, n * (long)sizeof(T));       \
        T v = alpha * val[p];                                                                \
        T *d = dst + (long)idx[p] * ld;                                                      \
        for (long k = 0; k < n; k++)                                                         \
            d[k] += v * src[k];                                                              \
    }                                                                                        \
}

#endif

CB_GATHER(double, d)
CB_GATHER(float, f)

#endif
