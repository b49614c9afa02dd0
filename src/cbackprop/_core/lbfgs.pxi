# The two passes of an L-BFGS iteration over its stored rows (cbackprop._lbfgs): the
# rows are the gradient g and the pairs s_i, y_i, one float64 row each, of n elements.
# At n in the millions the rows are far larger than the caches, so each pass reads every
# row once, a block of elements at a time, and does all of that block's work while it is
# in cache: the direction and its products (lbfgs_direction), the new pair and every
# row's product with the new gradient (lbfgs_accept). The blocks' sums are added in the
# blocks' order: the same bits whatever the thread count.

cdef Py_ssize_t LBFGS_BLOCK = 4096      # elements: 21 rows of a block fit in L2


cdef extern from "lanes.h" nogil:
    # out[q] = w[q]'g for the four rows w[q] = w + q ld, each over 8 partial sums
    void _dot_four "cb_dot_four"(const double* w, long ld, const double* g, long n,
                                 double* out)


cdef inline void _add_four(double* d, const double* w, Py_ssize_t ld, const double* c,
                           Py_ssize_t n) noexcept nogil:
    """d += c[0] w[0] + ... + c[3] w[3], rows w[q] = w + q ld, added in that order."""
    cdef const double* w1 = w + ld
    cdef const double* w2 = w + 2 * ld
    cdef const double* w3 = w + 3 * ld
    cdef double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3]
    cdef Py_ssize_t e
    for e in range(n):
        d[e] = (((d[e] + c0 * w[e]) + c1 * w1[e]) + c2 * w2[e]) + c3 * w3[e]


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n) noexcept nogil:
    return (n + LBFGS_BLOCK - 1) // LBFGS_BLOCK


def lbfgs_direction(const double[:, ::1] rows, const double[::1] c, double[::1] d,
                    const double[::1] x, double[::1] xt, int n_threads):
    """d = c' rows (one coefficient a row) and, when xt is not empty, xt = x + d.
    Returns (d' rows[0], d'd)."""
    cdef Py_ssize_t R = rows.shape[0], n = rows.shape[1]
    if c.shape[0] != R or d.shape[0] != n or R < 1:
        raise ValueError("lbfgs_direction: c must have a coefficient a row, d a row's length")
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
            db = &d[e0]
            cr = c[0]
            w = &rows[0, e0]
            for e in range(length):
                db[e] = cr * w[e]
            r = 1
            while r + 4 <= R:           # four rows a sweep: a quarter of the trips over d
                _add_four(db, &rows[r, e0], rows.shape[1], &c[r], length)
                r = r + 4
            while r < R:
                cr = c[r]
                w = &rows[r, e0]
                for e in range(length):
                    db[e] = db[e] + cr * w[e]
                r = r + 1
            parts[2 * b] = _dot(db, &rows[0, e0], length)
            parts[2 * b + 1] = _dot(db, db, length)
            if step:
                for e in range(length):
                    xt[e0 + e] = x[e0 + e] + db[e]
        for b in range(nb):
            gd += parts[2 * b]
            dtd += parts[2 * b + 1]
    return gd, dtd


def lbfgs_accept(double[:, ::1] W, Py_ssize_t n_rows, const double[::1] g, const double[::1] d,
                 double stp, Py_ssize_t slot, double[::1] v, int n_threads):
    """The step to the new iterate, whose gradient is g: when slot >= 0, the pair
    W[1 + 2 slot] = stp d and W[2 + 2 slot] = g - W[0]; then W[0] = g, and
    v[:n_rows] = W[:n_rows] g (the rows' products with the new gradient). Returns y'y of
    the new pair (0 when slot < 0)."""
    cdef Py_ssize_t n = W.shape[1]
    if g.shape[0] != n or d.shape[0] != n:
        raise ValueError("lbfgs_accept: g and d must have a row's length")
    if not 1 <= n_rows <= W.shape[0] or v.shape[0] < n_rows:
        raise ValueError("lbfgs_accept: n_rows must be between 1 and W's rows, v that long")
    if slot >= 0 and 2 + 2 * slot >= W.shape[0]:
        raise ValueError("lbfgs_accept: slot out of range")
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t nb = _n_blocks(n), b, e0, e, r, length
    cdef Py_ssize_t width = n_rows + 1
    cdef double[::1] parts = np.zeros(width * max(nb, 1))
    cdef double* s
    cdef double* y
    cdef double* g0
    cdef const double* gb
    cdef const double* db
    cdef double rr = 0
    cdef int nt = 1 if _forked else n_threads
    with nogil:
        for b in prange(nb, num_threads=nt, schedule="static"):
            e0 = b * LBFGS_BLOCK
            length = min(LBFGS_BLOCK, n - e0)
            gb = &g[e0]
            g0 = &W[0, e0]
            if slot >= 0:
                s = &W[1 + 2 * slot, e0]
                y = &W[2 + 2 * slot, e0]
                db = &d[e0]
                for e in range(length):
                    s[e] = stp * db[e]
                    y[e] = gb[e] - g0[e]
                parts[width * b + n_rows] = _dot(y, y, length)
            for e in range(length):
                g0[e] = gb[e]
            r = 0
            while r + 4 <= n_rows:      # four rows a sweep: g's block loaded once for them
                _dot_four(&W[r, e0], W.shape[1], gb, length, &parts[width * b + r])
                r = r + 4
            while r < n_rows:
                parts[width * b + r] = _dot(&W[r, e0], gb, length)
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
