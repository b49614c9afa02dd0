/* Dot products of long float64 rows in eight explicit lanes, written with GCC's vector
 * extensions (the vectors below), for the L-BFGS passes of lbfgs.pxi. When the lanes
 * were eight-element Cython arrays, GCC vectorized the four-row form across the rows,
 * with a permute per load, and that pass ran at half the other pass's memory bandwidth
 * (benchmarks/README.md). The sums are unchanged: lane u adds the products of elements
 * u, u + 8, ... in order; the tail is summed first, then the lanes in order. Compilers
 * without GCC's vector extensions (MSVC) get the lanes as arrays. */
#ifndef CBACKPROP_LANES_H
#define CBACKPROP_LANES_H

#include <string.h>

#if defined(__GNUC__)

/* The eight lanes as vectors the build has registers for: one of 8 on AVX-512, two of 4
 * on AVX2, four of 2 on SSE2 (a vector wider than the build's registers makes GCC spill
 * it to the stack on every add). Lane u is element u % CB_LV of vector u / CB_LV. */
#if defined(__AVX512F__)
#define CB_LV 8
#elif defined(__AVX__)
#define CB_LV 4
#else
#define CB_LV 2
#endif
#define CB_NV (8 / CB_LV)

typedef double cb_vec __attribute__((vector_size(CB_LV * sizeof(double))));

static inline cb_vec cb_loadv(const double *p)
{
    cb_vec v;
    memcpy(&v, p, sizeof v);            /* an unaligned vector load */
    return v;
}

/* out[q] = w_q'g for the four rows w_0 .. w_3, each over n elements */
static inline void cb_dot_four(const double *w0, const double *w1, const double *w2,
                               const double *w3, const double *g, long n, double *out)
{
    const double *rows[4] = {w0, w1, w2, w3};
    cb_vec acc[4][CB_NV];
    double t[4] = {0, 0, 0, 0};
    long k = 0;
    for (int q = 0; q < 4; q++)
        for (int h = 0; h < CB_NV; h++)
            acc[q][h] = (cb_vec){0};
    for (; k + 8 <= n; k += 8) {
        cb_vec x[CB_NV];
        for (int h = 0; h < CB_NV; h++)
            x[h] = cb_loadv(g + k + h * CB_LV);
        for (int q = 0; q < 4; q++)
            for (int h = 0; h < CB_NV; h++)
                acc[q][h] += cb_loadv(rows[q] + k + h * CB_LV) * x[h];
    }
    for (; k < n; k++)
        for (int q = 0; q < 4; q++)
            t[q] += rows[q][k] * g[k];
    for (int q = 0; q < 4; q++) {
        for (int h = 0; h < CB_NV; h++)
            for (int e = 0; e < CB_LV; e++)
                t[q] += acc[q][h][e];
        out[q] = t[q];
    }
}

#else

static inline void cb_dot_four(const double *w0, const double *w1, const double *w2,
                               const double *w3, const double *g, long n, double *out)
{
    const double *w[4] = {w0, w1, w2, w3};
    double acc[4][8] = {{0}}, t[4] = {0, 0, 0, 0};
    long k = 0;
    for (; k + 8 <= n; k += 8)
        for (int q = 0; q < 4; q++)
            for (int u = 0; u < 8; u++)
                acc[q][u] += w[q][k + u] * g[k + u];
    for (; k < n; k++)
        for (int q = 0; q < 4; q++)
            t[q] += w[q][k] * g[k];
    for (int q = 0; q < 4; q++) {
        for (int u = 0; u < 8; u++)
            t[q] += acc[q][u];
        out[q] = t[q];
    }
}

#endif

#endif
