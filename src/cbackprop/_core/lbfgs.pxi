# The two passes of an L-BFGS iteration over its stored rows (cbackprop._lbfgs): the
# rows are the gradient g and the pairs s_i, y_i, one float64 row each, of n elements,
# wherever the caller keeps them among W's rows (`rows`: their places, in their order).
# The caller moves places rather than rows: the direction is written where the next s
# will be, the trial gradient where the next g will be.
# At n in the millions the rows are far larger than the caches, so each pass reads every
# row once, a block of elements at a time, and does all of that block's work while it is
# in cache: the direction and its products (lbfgs_direction), the new pair and every
# row's product with the new gradient (lbfgs_accept). The blocks' sums are added in the
# blocks' order: the same bits whatever the thread count.

cdef Py_ssize_t LBFGS_BLOCK = 4096      # elements: 21 rows of a block fit in L2


cdef extern from "lanes.h" nogil:
    # out[q] = w_q'g for the four rows w_0 .. w_3, each over 8 partial sums
    void _dot_four "cb_dot_four"(const double* w0, const double* w1, const double* w2,
                                 const double* w3, const double* g, long n, double* out)


cdef inline void _add_four(double* d, const double* w0, const double* w1, const double* w2,
                           const double* w3, const double* c, Py_ssize_t n) noexcept nogil:
    """d += c[0] w0 + ... + c[3] w3, added in that order."""
    cdef double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3]
    cdef Py_ssize_t e
    for e in range(n):
        d[e] = (((d[e] + c0 * w0[e]) + c1 * w1[e]) + c2 * w2[e]) + c3 * w3[e]


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n) noexcept nogil:
    return (n + LBFGS_BLOCK - 1) // LBFGS_BLOCK


cdef _check_places(Py_ssize_t n_W, const Py_ssize_t[::1] rows, Py_ssize_t count, others,
                   str name):
    """rows[:count] and `others` (places in W, of n_W rows) must be different rows."""
    if not 1 <= count <= rows.shape[0]:
        raise ValueError(f"{name}: n_rows must be between 1 and {rows.shape[0]} (the rows' "
                         f"places); got {count}")
    places = [rows[r] for r in range(count)] + list(others)
    if any(not 0 <= p < n_W for p in places) or len(set(places)) < len(places):
        raise ValueError(f"{name}: the rows' places must be different rows of W "
                         f"(0 to {n_W - 1}); got {places}")


def lbfgs_direction(double[:, ::1] W, const Py_ssize_t[::1] rows, const double[::1] c,
                    Py_ssize_t d_row, const double[::1] x, double[::1] xt, int n_threads):
    """W[d_row] = d = sum_r c[r] W[rows[r]] (the stored rows, at their places in W, in
    their order) and, when xt is not empty, xt = x + d. Returns (d' W[rows[0]], d'd)."""
    cdef Py_ssize_t R = c.shape[0], n = W.shape[1]
    _check_places(W.shape[0], rows, R, [d_row], "lbfgs_direction")
    cdef bint step = xt.shape[0] > 0
    if step and (xt.shape[0] != n or x.shape[0] != n):
        raise ValueError("lbfgs_direction: x and xt must have a row's length")
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t nb = _n_blocks(n), b, e0, e, r, length
    cdef double[::1] parts = np.zeros(2 * max(nb, 1))
    cdef double* db
    cdef const double* w
    cdef double cr, gd = 0, dtd = 0
    cdef int nt = 1 if _forked else n_threads
    with nogil:
        for b in prange(nb, num_threads=nt, schedule="static"):
            e0 = b * LBFGS_BLOCK
            length = min(LBFGS_BLOCK, n - e0)
            db = &W[d_row, e0]
            cr = c[0]
            w = &W[rows[0], e0]
            for e in range(length):
                db[e] = cr * w[e]
            r = 1
            while r + 4 <= R:           # four rows a sweep: a quarter of the trips over d
                _add_four(db, &W[rows[r], e0], &W[rows[r + 1], e0], &W[rows[r + 2], e0],
                          &W[rows[r + 3], e0], &c[r], length)
                r = r + 4
            while r < R:
                cr = c[r]
                w = &W[rows[r], e0]
                for e in range(length):
                    db[e] = db[e] + cr * w[e]
                r = r + 1
            parts[2 * b] = _dot(db, &W[rows[0], e0], length)
            parts[2 * b + 1] = _dot(db, db, length)
            if step:
                for e in range(length):
                    xt[e0 + e] = x[e0 + e] + db[e]
        for b in range(nb):
            gd += parts[2 * b]
            dtd += parts[2 * b + 1]
    return gd, dtd


def lbfgs_accept(double[:, ::1] W, const Py_ssize_t[::1] rows, Py_ssize_t n_rows,
                 Py_ssize_t g_old, double stp, Py_ssize_t slot, double[::1] v, int n_threads):
    """The step to the new iterate, on the stored rows at their places in W after it:
    rows[0], the new gradient g; when slot >= 0, rows[1 + 2 slot], the direction d, which
    becomes the pair's s = stp d (scaled in place unless stp is 1), and rows[2 + 2 slot],
    written with the pair's y = g - W[g_old] (the old gradient). Then v[:n_rows] = the
    rows' products with g. Nothing else moves: the caller keeps the places. Returns y'y
    (0 when slot < 0)."""
    cdef Py_ssize_t n = W.shape[1]
    _check_places(W.shape[0], rows, n_rows, [g_old] if slot >= 0 else [], "lbfgs_accept")
    if slot >= 0 and 2 + 2 * slot >= n_rows:
        raise ValueError("lbfgs_accept: slot out of range")
    if v.shape[0] < n_rows:
        raise ValueError("lbfgs_accept: v must have n_rows elements")
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t nb = _n_blocks(n), b, e0, e, r, length
    cdef Py_ssize_t width = n_rows + 1
    cdef double[::1] parts = np.zeros(width * max(nb, 1))
    cdef double* s
    cdef double* y
    cdef const double* g0
    cdef const double* gb
    cdef double rr = 0
    cdef bint scale = stp != 1.0
    cdef int nt = 1 if _forked else n_threads
    with nogil:
        for b in prange(nb, num_threads=nt, schedule="static"):
            e0 = b * LBFGS_BLOCK
            length = min(LBFGS_BLOCK, n - e0)
            gb = &W[rows[0], e0]
            if slot >= 0:
                s = &W[rows[1 + 2 * slot], e0]
                y = &W[rows[2 + 2 * slot], e0]
                g0 = &W[g_old, e0]
                if scale:
                    for e in range(length):
                        s[e] = stp * s[e]
                for e in range(length):
                    y[e] = gb[e] - g0[e]
                parts[width * b + n_rows] = _dot(y, y, length)
            r = 0
            while r + 4 <= n_rows:      # four rows a sweep: g's block loaded once for them
                _dot_four(&W[rows[r], e0], &W[rows[r + 1], e0], &W[rows[r + 2], e0],
                          &W[rows[r + 3], e0], gb, length, &parts[width * b + r])
                r = r + 4
            while r < n_rows:
                parts[width * b + r] = _dot(&W[rows[r], e0], gb, length)
                r = r + 1
        for r in range(n_rows):
            v[r] = 0
        for b in range(nb):
            for r in range(n_rows):
                v[r] += parts[width * b + r]
            rr += parts[width * b + n_rows]
    return rr


def lbfgs_slope(const double[::1] g, const double[::1] d, int n_threads):
    """(g'd, max |g_i|): the line search's slope at a trial and, for the stopping test,
    the gradient's largest element (NaNs skipped, 0 when all are, as L-BFGS-B's projgr)."""
    cdef Py_ssize_t n = g.shape[0]
    if d.shape[0] != n:
        raise ValueError("lbfgs_slope: g and d must have the same length")
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t nb = _n_blocks(n), b, e0, e, length
    cdef double[::1] parts = np.zeros(2 * max(nb, 1))
    cdef double gd = 0, top = 0, a, block_top
    cdef int nt = 1 if _forked else n_threads
    with nogil:
        for b in prange(nb, num_threads=nt, schedule="static"):
            e0 = b * LBFGS_BLOCK
            length = min(LBFGS_BLOCK, n - e0)
            parts[2 * b] = _dot(&g[e0], &d[e0], length)
            block_top = 0
            for e in range(length):
                a = fabs(g[e0 + e])
                if a > block_top:       # false for a NaN: skipped
                    block_top = a
            parts[2 * b + 1] = block_top
        for b in range(nb):
            gd += parts[2 * b]
            if parts[2 * b + 1] > top:
                top = parts[2 * b + 1]
    return gd, top
