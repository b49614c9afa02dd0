/* One instance of gemm.h's loops for one element type and vector width. gemm.h
 * includes this file once per type after defining:
 *   CB_T (element), CB_V (vector), CB_W (lanes), CB_M (tail mask), CB_RT x CB_VT (tile:
 *   rows x vectors, sized to the register file), CB_FN(name) (suffixes a name), and the
 *   operations CB_ZERO CB_SET1 CB_LOADU CB_STOREU CB_LOADA CB_STOREA (aligned) CB_LOADM
 *   CB_STOREM (masked) CB_FMA CB_MUL CB_ADD CB_MASK(n) (the first n lanes) CB_HSUM (the sum
 *   of the lanes) CB_FMA1 (scalar fused multiply-add).
 * It undefines the per-type ones at its end, for the next instance.
 */

/* One tile: C[r, 0:nv W] (+)= alpha sum_s coef[r rs + s ss] B[s ldb + 0:nv W] for r < nr.
 * With `masked`, the last vector of the tile is masked (`last`): it may pass the end of a
 * row of B or C. Called with constant nr, nv and masked, so that the loops unroll and acc
 * stays in registers (and, unmasked, AVX2's mask, a vector register, is not kept: 12
 * accumulators, 3 vectors of B and the broadcast fill its 16). */
static inline __attribute__((always_inline)) void
CB_FN(cb_tile)(const int nr, const int nv, const int masked, int S, CB_T alpha,
               const CB_T *coef, long rs, long ss, const CB_T *B, long ldb, int accumulate,
               CB_T *C, long ldc, CB_M last)
{
    CB_V acc[CB_RT][CB_VT], b[CB_VT];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[r][v] = CB_ZERO();
    for (int s = 0; s < S; s++) {
        const CB_T *bs = B + (long)s * ldb, *as = coef + (long)s * ss;
#pragma GCC unroll 8
        for (int v = 0; v < nv - 1; v++)
            b[v] = CB_LOADU(bs + v * CB_W);
        b[nv - 1] = masked ? CB_LOADM(bs + (nv - 1) * CB_W, last)
                           : CB_LOADU(bs + (nv - 1) * CB_W);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            CB_V a = CB_SET1(as[r * rs]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                acc[r][v] = CB_FMA(a, b[v], acc[r][v]);
        }
    }
    CB_V al = CB_SET1(alpha);
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        CB_T *c = C + (long)r * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < nv - 1; v++) {
            CB_V x = CB_MUL(al, acc[r][v]);
            if (accumulate) x = CB_ADD(x, CB_LOADU(c + v * CB_W));
            CB_STOREU(c + v * CB_W, x);
        }
        CB_V x = CB_MUL(al, acc[r][nv - 1]);
        if (masked) {
            if (accumulate) x = CB_ADD(x, CB_LOADM(c + (nv - 1) * CB_W, last));
            CB_STOREM(c + (nv - 1) * CB_W, last, x);
        } else {
            if (accumulate) x = CB_ADD(x, CB_LOADU(c + (nv - 1) * CB_W));
            CB_STOREU(c + (nv - 1) * CB_W, x);
        }
    }
}

/* Each tile shape is a small function of its own, with cb_tile inlined at literal sizes:
 * inlined two dozen times into one large function, GCC stopped unrolling some of them
 * and kept their accumulators on the stack instead of in registers (benchmarks/README.md
 * has the cost). */
#define CB_TILE_FN(NR, NV)                                                             \
static __attribute__((noinline)) void CB_FN(cb_tile_##NR##_##NV)(                     \
        int S, CB_T alpha, const CB_T *coef, long rs, long ss, const CB_T *B, long ldb,  \
        int accumulate, CB_T *C, long ldc, CB_M last) {                                \
    CB_FN(cb_tile)(NR, NV, 1, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, last); \
}                                                                                      \
static __attribute__((noinline)) void CB_FN(cb_tile_##NR##_##NV##_full)(              \
        int S, CB_T alpha, const CB_T *coef, long rs, long ss, const CB_T *B, long ldb,  \
        int accumulate, CB_T *C, long ldc, CB_M last) {                                \
    CB_FN(cb_tile)(NR, NV, 0, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, last); \
}
#define CB_TILE_FNS(NR) CB_TILE_FN(NR, 1) CB_TILE_FN(NR, 2) CB_TILE_FN(NR, 3) CB_TILE_FN4(NR)
#if CB_VT > 3
#define CB_TILE_FN4(NR) CB_TILE_FN(NR, 4)
#else
#define CB_TILE_FN4(NR)
#endif
CB_TILE_FNS(1)
CB_TILE_FNS(2)
CB_TILE_FNS(3)
CB_TILE_FNS(4)
#if CB_RT > 4
CB_TILE_FNS(5)
CB_TILE_FNS(6)
#endif

#define CB_TILE_ARGS ns, alpha, co + (long)r0 * rs, rs, ss, Bc, ldb, acc, \
                     Cc + (long)r0 * ldc, ldc, last
#define CB_TILE_CALL(NR, NV) CB_TILE_CALL_(NR, NV)       /* expands CB_RT, CB_VT first */
#define CB_TILE_CALL_(NR, NV) \
    (full ? CB_FN(cb_tile_##NR##_##NV##_full) : CB_FN(cb_tile_##NR##_##NV))(CB_TILE_ARGS)
#define CB_TILE_NV(NR)                                                       \
    switch (nv) {                                                            \
    case 1: CB_TILE_CALL(NR, 1); break;                                      \
    case 2: CB_TILE_CALL(NR, 2); break;                                      \
    case 3: CB_TILE_CALL(NR, 3); break;                                      \
    default: CB_TILE_CALL(NR, CB_VT); break;                                 \
    }

/* One row's C[0:nv W] (+)= alpha sum_s coef[s ss] B[s ldb + 0:nv W], nv vectors of each
 * row of B at once (CB_ROWV or half as many): nv chains of multiply-adds hide their
 * latency, where CB_VT would wait on them over a short sum (one sample's W^T d), and a
 * wide row streams through B at the cache's bandwidth (one row of the predictor's
 * 784 x 256 W^T; the figures: benchmarks/README.md). */
static inline __attribute__((always_inline)) void
CB_FN(cb_row)(const int nv, int S, CB_T alpha, const CB_T *coef, long ss, const CB_T *B,
              long ldb, int accumulate, CB_T *C)
{
    CB_V acc[CB_ROWV];
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++)
        acc[v] = CB_ZERO();
    for (int s = 0; s < S; s++) {
        const CB_T *bs = B + (long)s * ldb;
        CB_V a = CB_SET1(coef[(long)s * ss]);
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            acc[v] = CB_FMA(a, CB_LOADU(bs + v * CB_W), acc[v]);
    }
    CB_V al = CB_SET1(alpha);
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++) {
        CB_V x = CB_MUL(al, acc[v]);
        if (accumulate) x = CB_ADD(x, CB_LOADU(C + v * CB_W));
        CB_STOREU(C + v * CB_W, x);
    }
}

static __attribute__((noinline)) void CB_FN(cb_row_full)(int S, CB_T alpha, const CB_T *coef,
        long ss, const CB_T *B, long ldb, int accumulate, CB_T *C) {
    CB_FN(cb_row)(CB_ROWV, S, alpha, coef, ss, B, ldb, accumulate, C);
}
static __attribute__((noinline)) void CB_FN(cb_row_half)(int S, CB_T alpha, const CB_T *coef,
        long ss, const CB_T *B, long ldb, int accumulate, CB_T *C) {
    CB_FN(cb_row)(CB_ROWV / 2, S, alpha, coef, ss, B, ldb, accumulate, C);
}

/* C (R x N, row stride ldc) (+)= alpha * sum_s coef(r, s) B[s, :] with coef(r, s) =
 * coef[r rs + s ss] and B (S x N, row stride ldb): the three products of a layer are all
 * this form (see gemm.h). Column groups of up to CB_VT vectors outside, row tiles
 * inside, so that a group's panel of B is reused from cache by every row tile. s_block > 0 cuts
 * the sum into slices of that many s, each slice's panel small enough for L1: the
 * gradient's panel (a block's 250 rows of A) is 64 KB, which each of five row tiles
 * would otherwise read from L2 (benchmarks/README.md has the gain). The forward
 * product runs faster whole. */
static void CB_FN(cb_gemm)(int R, int N, int S, CB_T alpha, const CB_T *coef, long rs,
                           long ss, const CB_T *B, long ldb, int accumulate, CB_T *C,
                           long ldc, int s_block)
{
    /* tiles of even height, differing by one row at most (25 rows: 5 x 5 and, on AVX2,
     * 4 4 4 4 3 3 3, not 6 6 6 6 1 or 4 4 4 4 4 4 1, whose last reuses little and runs
     * too few chains to hide the FMAs' latency) */
    if (R <= 0) return;
    int tiles = (R + CB_RT - 1) / CB_RT, base = R / tiles, taller = R % tiles;
    if (s_block <= 0 || s_block > S) s_block = S;
    /* When all of B's rows start at the same offset within a vector's alignment (ldb a
     * multiple of the lanes) and not on it, the first columns up to that boundary are a
     * group of one vector of their own: every other group's loads of B are then aligned,
     * where each would otherwise straddle two cache lines (AVX-512) or one in two (AVX2).
     * On rows of 16 vectors or more: on narrower ones the extra group costs more than the
     * aligned loads gain (benchmarks/README.md). */
    int mis = (int)(((uintptr_t)B / sizeof(CB_T)) % CB_W);
    int peel = mis && ldb % CB_W == 0 && N >= 16 * CB_W ? CB_W - mis : 0;
    int c_begin = 0;
    if (R == 1 && !peel) {      /* one row: as many columns as fit through cb_row */
        for (; c_begin + CB_ROWV * CB_W <= N; c_begin += CB_ROWV * CB_W)
            CB_FN(cb_row_full)(S, alpha, coef, ss, B + c_begin, ldb, accumulate, C + c_begin);
        if (c_begin + CB_ROWV / 2 * CB_W <= N) {
            CB_FN(cb_row_half)(S, alpha, coef, ss, B + c_begin, ldb, accumulate, C + c_begin);
            c_begin += CB_ROWV / 2 * CB_W;
        }
    }
    /* column groups of even width too, differing by one vector at most (4 vectors on AVX2:
     * 2 + 2, not 3 + 1, whose group of one vector runs too few chains to hide the FMAs'
     * latency) */
    for (int c0 = c_begin, ncol = 0; c0 < N; c0 += ncol) {
        int left = (N - c0 + CB_W - 1) / CB_W, groups = (left + CB_VT - 1) / CB_VT;
        ncol = (left + groups - 1) / groups * CB_W;
        if (ncol > N - c0) ncol = N - c0;
        if (c0 == 0 && peel) ncol = peel;
        int nv = (ncol + CB_W - 1) / CB_W, full = ncol == nv * CB_W;
        CB_M last = CB_MASK(ncol - (nv - 1) * CB_W);
        CB_T *Cc = C + c0;
        for (int s0 = 0; s0 < S; s0 += s_block) {
            int ns = S - s0 < s_block ? S - s0 : s_block, acc = accumulate || s0 > 0;
            const CB_T *Bc = B + (long)s0 * ldb + c0, *co = coef + (long)s0 * ss;
            for (int t = 0, r0 = 0, nr = 0; t < tiles; t++, r0 += nr) {
                nr = base + (t < taller);
                switch (nr) {
                case 1: CB_TILE_NV(1) break;
                case 2: CB_TILE_NV(2) break;
                case 3: CB_TILE_NV(3) break;
#if CB_RT > 4
                case 4: CB_TILE_NV(4) break;
                case 5: CB_TILE_NV(5) break;
#endif
                default: CB_TILE_NV(CB_RT) break;
                }
            }
        }
    }
}

#undef CB_TILE_ARGS
#undef CB_TILE_NV
#undef CB_TILE_FN
#undef CB_TILE_FNS
#undef CB_TILE_FN4
#undef CB_TILE_CALL
#undef CB_TILE_CALL_

/* out[0:N] = sum over s < S of B[s ldb + 0:N]: a block's bias gradient (delta summed over
 * its rows) in four interleaved partial sums, so that each addition need not wait for the
 * one before (a single chain of additions measured a visible share of a float32 cost
 * and gradient: benchmarks/README.md). */
static void CB_FN(cb_colsum)(int S, int N, const CB_T *B, long ldb, CB_T *out)
{
    for (int c0 = 0; c0 < N; c0 += CB_W) {
        CB_M m = CB_MASK(N - c0 < CB_W ? N - c0 : CB_W);
        CB_V a0 = CB_ZERO(), a1 = CB_ZERO(), a2 = CB_ZERO(), a3 = CB_ZERO();
        const CB_T *b = B + c0;
        int s = 0;
        for (; s + 4 <= S; s += 4, b += 4 * ldb) {
            a0 = CB_ADD(a0, CB_LOADM(b, m));
            a1 = CB_ADD(a1, CB_LOADM(b + ldb, m));
            a2 = CB_ADD(a2, CB_LOADM(b + 2 * ldb, m));
            a3 = CB_ADD(a3, CB_LOADM(b + 3 * ldb, m));
        }
        for (; s < S; s++, b += ldb)
            a0 = CB_ADD(a0, CB_LOADM(b, m));
        CB_STOREM(out + c0, m, CB_ADD(CB_ADD(a0, a1), CB_ADD(a2, a3)));
    }
}

/* y[j] = W[j, 0:n] . x for j < m (row stride ld): one sample's forward product on a small
 * layer, CB_RT rows at a time so that x is loaded once for them and their sums run as
 * independent chains, each reduced across lanes at the end, all CB_RT together
 * (CB_HSUM_RT). A last block of fewer rows repeats its last row in the others' places,
 * so that its chains still run side by side. */
static void CB_FN(cb_matvec_rows)(int m, int n, const CB_T *W, long ld, const CB_T *x,
                                  CB_T *y)
{
    CB_M tail = CB_MASK(n % CB_W ? n % CB_W : CB_W);
    int nfull = n - (n % CB_W ? n % CB_W : CB_W);         /* the last vector is masked */
    for (int j0 = 0; j0 < m; j0 += CB_RT) {
        int nr = m - j0 < CB_RT ? m - j0 : CB_RT;
        /* rows past nr repeat row nr - 1; their sums are dropped */
        const CB_T *w[CB_RT];
        CB_V acc[CB_RT], xv;
        CB_T out[CB_RT];
        for (int r = 0; r < CB_RT; r++) {
            w[r] = W + (long)(j0 + (r < nr ? r : nr - 1)) * ld;
            acc[r] = CB_ZERO();
        }
        for (int i = 0; i < nfull; i += CB_W) {
            xv = CB_LOADU(x + i);
#pragma GCC unroll 8
            for (int r = 0; r < CB_RT; r++)
                acc[r] = CB_FMA(CB_LOADU(w[r] + i), xv, acc[r]);
        }
        xv = CB_LOADM(x + nfull, tail);
#pragma GCC unroll 8
        for (int r = 0; r < CB_RT; r++)
            acc[r] = CB_FMA(CB_LOADM(w[r] + nfull, tail), xv, acc[r]);
        CB_HSUM_RT(acc, out);
        for (int r = 0; r < nr; r++)
            y[j0 + r] = out[r];
    }
}

/* C[r, t] = X[r, 0:S] . Wr[t, 0:S] for r < R, t < T (row strides ldx, ldw, ldc): the
 * forward product's last few columns when they would fill little of a vector in the
 * broadcast form (see _forward_product in products.pxi): cb_matvec_rows with the rows of
 * X as its matrix, CB_RT of them against each row of Wr. */
static void CB_FN(cb_dot_rows)(int R, int T, int S, const CB_T *X, long ldx, const CB_T *Wr,
                               long ldw, CB_T *C, long ldc)
{
    CB_T y[CB_RT];
    for (int r0 = 0; r0 < R; r0 += CB_RT) {
        int nr = R - r0 < CB_RT ? R - r0 : CB_RT;
        for (int t = 0; t < T; t++) {
            CB_FN(cb_matvec_rows)(nr, S, X + (long)r0 * ldx, ldx, Wr + (long)t * ldw, y);
            for (int r = 0; r < nr; r++)
                C[(long)(r0 + r) * ldc + t] = y[r];
        }
    }
}

/* The previous sample's update of the first layer and this sample's product with it in
 * one pass over W, which is read and written once instead of read twice:
 *     W[j, :] = decay W[j, :] + alpha dp[j] xp      (as cb_update_rows rounds it)
 *     y[j] = W[j, :] . x                              (with the updated row)
 * Online training defers each sample's first-layer update to the next sample's forward
 * pass (kernels.pxi, Pending): nothing reads that layer's weights in between. */
static void CB_FN(cb_update_matvec_rows)(int m, int n, CB_T *W, long ld, const CB_T *x,
                                         CB_T *y, CB_T alpha, const CB_T *dp,
                                         const CB_T *xp, CB_T decay)
{
    const CB_V dv = CB_SET1(decay);
    int nfull = n - n % CB_W;                  /* the rest element by element */
    for (int j0 = 0; j0 < m; j0 += CB_RT) {
        int nr = m - j0 < CB_RT ? m - j0 : CB_RT;
        CB_T *w = W + (long)j0 * ld, adj[CB_RT], rest[CB_RT], sums[CB_RT];
        CB_V acc[CB_RT], av[CB_RT];
        for (int r = 0; r < CB_RT; r++) {
            acc[r] = CB_ZERO();
            rest[r] = 0;
            adj[r] = r < nr ? alpha * dp[j0 + r] : 0;
            av[r] = CB_SET1(adj[r]);
        }
        if (nr == CB_RT) {
            if (decay == 1)         /* no weight decay: 1 w is w, one multiply fewer */
                for (int i = 0; i < nfull; i += CB_W) {
                    CB_V xv = CB_LOADU(x + i), pv = CB_LOADU(xp + i);
#pragma GCC unroll 8
                    for (int r = 0; r < CB_RT; r++) {
                        CB_V wv = CB_FMA(av[r], pv, CB_LOADU(w + r * ld + i));
                        CB_STOREU(w + r * ld + i, wv);
                        acc[r] = CB_FMA(wv, xv, acc[r]);
                    }
                }
            else
                for (int i = 0; i < nfull; i += CB_W) {
                    CB_V xv = CB_LOADU(x + i), pv = CB_LOADU(xp + i);
#pragma GCC unroll 8
                    for (int r = 0; r < CB_RT; r++) {
                        CB_V wv = CB_FMA(av[r], pv, CB_MUL(dv, CB_LOADU(w + r * ld + i)));
                        CB_STOREU(w + r * ld + i, wv);
                        acc[r] = CB_FMA(wv, xv, acc[r]);
                    }
                }
        } else {
            for (int r = 0; r < nr; r++)
                for (int i = 0; i < nfull; i += CB_W) {
                    CB_V wv = CB_FMA(av[r], CB_LOADU(xp + i), CB_MUL(dv, CB_LOADU(w + r * ld + i)));
                    CB_STOREU(w + r * ld + i, wv);
                    acc[r] = CB_FMA(wv, CB_LOADU(x + i), acc[r]);
                }
        }
        CB_HSUM_RT(acc, sums);
        for (int r = 0; r < nr; r++) {
            CB_T *row = w + r * ld;
            for (int i = nfull; i < n; i++) {
                row[i] = CB_FMA1(adj[r], xp[i], decay * row[i]);
                rest[r] = CB_FMA1(row[i], x[i], rest[r]);
            }
            y[j0 + r] = sums[r] + rest[r];
        }
    }
}

/* G[j, 0:n] = decay G[j, 0:n] + alpha d[j] x[0:n] for j < m (row stride ld): one sample's
 * update of Theta, decay (weight decay) folded in. Theta's rows are never 64-byte aligned
 * (the bias column shifts each by one element), so full-width stores would each straddle
 * two cache lines: a short scalar first piece brings every row to alignment (faster
 * than masked stores: benchmarks/README.md). Every element is rounded alike (decay y,
 * then one fused multiply-add), in the vector part or not, so that the result does not
 * depend on where the parameters lie in memory. */
static void CB_FN(cb_update_rows)(int m, int n, CB_T alpha, const CB_T *d, const CB_T *x,
                                  CB_T *G, long ld, CB_T decay)
{
    const CB_V dv = CB_SET1(decay);
    for (int j = 0; j < m; j++) {
        CB_T *y = G + (long)j * ld, adj = alpha * d[j];
        const CB_V av = CB_SET1(adj);
        int head = (int)(((64u - ((uintptr_t)y & 63u)) & 63u) / sizeof(CB_T)), i = 0;
        head = head < n ? head : n;
        for (; i < head; i++) y[i] = CB_FMA1(adj, x[i], decay * y[i]);
        if (decay == 1)             /* 1 y is y: the same bits, one multiply fewer */
            for (; i + CB_W <= n; i += CB_W)
                CB_STOREA(y + i, CB_FMA(av, CB_LOADU(x + i), CB_LOADA(y + i)));
        else
            for (; i + CB_W <= n; i += CB_W)
                CB_STOREA(y + i, CB_FMA(av, CB_LOADU(x + i), CB_MUL(dv, CB_LOADA(y + i))));
        if (i < n) {                /* the last few as one masked vector, rounded alike */
            CB_M tail = CB_MASK(n - i);
            CB_STOREM(y + i, tail, CB_FMA(av, CB_LOADM(x + i, tail),
                                          CB_MUL(dv, CB_LOADM(y + i, tail))));
        }
    }
}
/* the per-type definitions, so that the next instance can make its own */
#undef CB_T
#undef CB_V
#undef CB_W
#undef CB_M
#undef CB_FN
#undef CB_ZERO
#undef CB_SET1
#undef CB_LOADU
#undef CB_STOREU
#undef CB_LOADA
#undef CB_STOREA
#undef CB_LOADM
#undef CB_STOREM
#undef CB_FMA
#undef CB_MUL
#undef CB_ADD
#undef CB_MASK
#undef CB_HSUM
#undef CB_HSUM_RT
#undef CB_FMA1
