# The rows an entry point is given (X): a dense C-order matrix, or a sparse one in CSR
# form, whose first layer's product and gradient run over its stored entries only
# (docs/design.md, "Sparse input"). Every later layer is dense either way.
#
# Rows is what the kernels see of X: the dense rows, or the CSR arrays, and, for a
# mini-batch of sparse rows, the list of the rows it takes (no copy of them is made).
# rows_of builds it from the Python object, checking it against the Layout first.


cdef struct Rows:
    const void* dense           # m x s_1, C order (floating*); NULL for CSR rows
    const void* data            # CSR: the stored values (floating*) ...
    const int* indices          # ... their columns ...
    const Py_ssize_t* indptr    # ... row r's at indptr[r] .. indptr[r + 1] - 1
    const Py_ssize_t* order     # CSR: block row k is row order[k] (NULL: row k)
    Py_ssize_t m
    const void* w1t             # CSR: W(1)^T packed (s_1 x s_2), set by the entry point
    void* g1t                   # CSR: where the first layer's gradient goes, transposed
    bint first_apart            # CSR: the caller reads g1t itself (grad's W(1) untouched)
    const void* c_data          # CSR with X's columns too (CSC: X.columns), for cost_grad:
    const int* c_rows           # in segment s, column j's entries at c_ptr[s (s_1 + 1) + j]
    const Py_ssize_t* c_ptr     # .. c_ptr[s (s_1 + 1) + j + 1] - 1; the first layer's
    int c_segments              # gradient from them and delta(2) of every row, kept in d1
    void* d1                    # (m x s_2) by the blocks
    const void* b_data          # CSR with X in blocks of columns too (X.blocks), for
    const int* b_cols           # cost_grad: block b's entries of row r at b_ptr[b m + r]
    const Py_ssize_t* b_ptr     # .. b_ptr[b m + r + 1] - 1, from which first_products
    int b_blocks                # computes every row's z(2) into z1 (m x s_2) up front,
    void* z1                    # one block of W(1)^T's rows at a time
    const void* drop            # a training pass's dropout (kernels.pxi: Drop); NULL: none
    int first_threads           # CSR: threads that csr_product and csr_accumulate share a
                                # block's units among (1: the calling thread alone)
    int packed_units            # layers of up to this many units have W^T in wt
                                # (pack_transposed); wider ones call BLAS


cdef inline Rows dense_rows(const void* X, Py_ssize_t m) noexcept nogil:
    """Rows for m dense rows at X (C order), every other field empty; packed_units is
    training's (forward passes set FORWARD_PACKED)."""
    cdef Rows rows
    rows.dense = X
    rows.data = NULL
    rows.indices = NULL
    rows.indptr = NULL
    rows.order = NULL
    rows.m = m
    rows.w1t = NULL
    rows.g1t = NULL
    rows.first_apart = False
    rows.c_data = NULL
    rows.c_rows = NULL
    rows.c_ptr = NULL
    rows.c_segments = 0
    rows.d1 = NULL
    rows.b_data = NULL
    rows.b_cols = NULL
    rows.b_ptr = NULL
    rows.b_blocks = 0
    rows.z1 = NULL
    rows.drop = NULL
    rows.first_threads = 1
    rows.packed_units = OWN_MAX_UNITS
    return rows


def is_csr(X):
    """Whether X is the core's CSR form: an object with data, indices and indptr arrays
    and a shape (cbackprop.sparse.CSR)."""
    return (hasattr(X, "indptr") and hasattr(X, "indices") and hasattr(X, "data")
            and hasattr(X, "shape"))


cdef int check_csr(Layout layout, const int[::1] indices, const Py_ssize_t[::1] indptr,
                   Py_ssize_t n_data, tuple shape) except -1:
    """The CSR arrays describe a matrix of shape with the network's inputs: indptr starts
    at 0 and never falls, every stored column is in range. (O(nnz); the kernels then
    read every entry without a check.)"""
    cdef Py_ssize_t m = shape[0], r, p, nnz
    cdef int n_in = layout.sizes[0]
    check_inputs(layout, m, shape[1])
    if indptr.shape[0] != m + 1:
        raise ValueError(f"X.indptr has {indptr.shape[0]} elements; X's {m} rows need {m + 1}")
    nnz = indptr[m]
    if indptr[0] != 0 or nnz > n_data or nnz > indices.shape[0]:
        raise ValueError(f"X.indptr must start at 0 and end at most at the stored entries "
                         f"({min(n_data, indices.shape[0])}); got {indptr[0]} .. {nnz}")
    for r in range(m):
        if indptr[r + 1] < indptr[r]:
            raise ValueError(f"X.indptr decreases at row {r}")
    p = _first_outside(&indices[0] if nnz > 0 else NULL, nnz, n_in)
    if p < nnz:
        raise ValueError(f"X.indices[{p}] is {indices[p]}; X has columns 0 to {n_in - 1}")
    return 0


cdef Py_ssize_t _first_outside(const int* a, Py_ssize_t n, Py_ssize_t bound) noexcept nogil:
    """The first p with a[p] outside 0 .. bound - 1, or n: the range of all of a in one
    vectorized pass (no exit to predict a branch for), then the search only when it
    fails."""
    cdef int lo = 0, hi = 0
    cdef Py_ssize_t p
    if n == 0:
        return 0
    lo = hi = a[0]
    for p in range(n):
        lo = min(lo, a[p])
        hi = max(hi, a[p])
    if lo >= 0 and hi < bound:
        return n
    for p in range(n):
        if a[p] < 0 or a[p] >= bound:
            return p
    return n


cdef Rows rows_of(Layout layout, object X, const floating[::1] like) except *:
    """Rows for X: a C-order matrix of like's dtype, or a CSR object (is_csr) whose data
    has like's dtype, int32 indices and intp indptr. The pointers stay valid while X is
    alive (the caller holds it)."""
    cdef Rows rows = dense_rows(NULL, 0)
    cdef const floating[:, ::1] dense
    cdef const floating[::1] data
    cdef const int[::1] indices
    cdef const Py_ssize_t[::1] indptr
    rows.order = NULL
    if is_csr(X):
        data, indices, indptr = X.data, X.indices, X.indptr
        check_csr(layout, indices, indptr, data.shape[0], tuple(X.shape))
        rows.m = indptr.shape[0] - 1
        rows.dense = NULL
        rows.data = &data[0] if data.shape[0] > 0 else NULL
        rows.indices = &indices[0] if indices.shape[0] > 0 else NULL
        rows.indptr = &indptr[0]
        if getattr(X, "columns", None) is not None:
            _columns_of(layout, X.columns, rows.m, indptr[rows.m], like, &rows)
        if getattr(X, "blocks", None) is not None and rows.m > 0:
            _blocks_of(layout, X.blocks, rows.m, indptr[rows.m], like, &rows)
    else:
        dense = X
        check_inputs(layout, dense.shape[0], dense.shape[1])
        rows.m = dense.shape[0]
        rows.dense = &dense[0, 0] if rows.m > 0 else NULL
        rows.data = NULL
        rows.indices = NULL
        rows.indptr = NULL
    return rows


cdef int _columns_of(Layout layout, tuple columns, Py_ssize_t m, Py_ssize_t nnz,
                     const floating[::1] like, Rows* rows) except -1:
    """X's columns (data, row indices, column pointers: CSC of the same matrix, in
    segments of rows, one after the other: cbackprop._sparse.CSR) into rows, checked as
    check_csr checks rows."""
    cdef const floating[::1] data = columns[0]
    cdef const int[::1] row_of = columns[1]
    cdef const Py_ssize_t[::1] ptr = columns[2]
    cdef int n_in = layout.sizes[0]
    cdef Py_ssize_t j, p, s, n_seg = ptr.shape[0] // (n_in + 1)
    if (n_seg < 1 or ptr.shape[0] != n_seg * (n_in + 1) or ptr[0] != 0
            or ptr[ptr.shape[0] - 1] != nnz or data.shape[0] < nnz or row_of.shape[0] < nnz):
        raise ValueError(f"X.columns must hold X's {nnz} entries by column (segments of "
                         f"{n_in} + 1 column pointers from 0 to {nnz})")
    for s in range(n_seg):
        if s > 0 and ptr[s * (n_in + 1)] != ptr[s * (n_in + 1) - 1]:
            raise ValueError(f"X.columns' segment {s} does not start where {s - 1} ends")
        for j in range(n_in):
            if ptr[s * (n_in + 1) + j + 1] < ptr[s * (n_in + 1) + j]:
                raise ValueError(f"X.columns' pointers decrease at column {j}")
    p = _first_outside(&row_of[0] if nnz > 0 else NULL, nnz, m)
    if p < nnz:
        raise ValueError(f"X.columns' row index {p} is {row_of[p]}; X has rows 0 to {m - 1}")
    if nnz > 0:
        rows.c_data = &data[0]
        rows.c_rows = &row_of[0]
    rows.c_ptr = &ptr[0]
    rows.c_segments = <int>n_seg
    return 0


cdef int _blocks_of(Layout layout, tuple blocks, Py_ssize_t m, Py_ssize_t nnz,
                    const floating[::1] like, Rows* rows) except -1:
    """X in blocks of columns (data, columns, pointers: each block's entries row by row,
    the blocks one after the other: cbackprop._sparse.CSR) into rows, checked as
    check_csr checks rows."""
    cdef const floating[::1] data = blocks[0]
    cdef const int[::1] cols = blocks[1]
    cdef const Py_ssize_t[::1] ptr = blocks[2]
    cdef Py_ssize_t k, p, n_blocks = (ptr.shape[0] - 1) // m
    if (n_blocks < 1 or ptr.shape[0] != n_blocks * m + 1 or ptr[0] != 0
            or ptr[ptr.shape[0] - 1] != nnz or data.shape[0] < nnz or cols.shape[0] < nnz):
        raise ValueError(f"X.blocks must hold X's {nnz} entries in blocks of columns (a "
                         f"block's {m} row pointers after the other's, from 0 to {nnz})")
    for k in range(ptr.shape[0] - 1):
        if ptr[k + 1] < ptr[k]:
            raise ValueError(f"X.blocks' pointers decrease at {k}")
    p = _first_outside(&cols[0] if nnz > 0 else NULL, nnz, layout.sizes[0])
    if p < nnz:
        raise ValueError(f"X.blocks' column {p} is {cols[p]}; X has columns 0 to "
                         f"{layout.sizes[0] - 1}")
    if nnz > 0:
        rows.b_data = &data[0]
        rows.b_cols = &cols[0]
    rows.b_ptr = &ptr[0]
    rows.b_blocks = <int>n_blocks
    return 0


cdef inline const void* dense_at(const Rows* rows, Py_ssize_t r0, int n_in,
                                 size_t itemsize) noexcept nogil:
    """Row r0 of dense rows of elements of itemsize bytes (NULL for CSR rows)."""
    if rows.dense == NULL:
        return NULL
    return <const char*>rows.dense + r0 * n_in * <Py_ssize_t>itemsize


# ------------------------------------------------------- the first layer, from CSR rows
# W(1)^T is packed (s_1 x s_2, a row per input): a stored entry (r, j, v) adds v times
# row j of it to row r's z(2), and, going back, v delta(2)_r to row j of the gradient's
# transpose (G1t), which is added into the gradient's Theta layout once per call.
# Row j is wherever column j says: no hardware prefetcher guesses it, and W(1)^T of a
# text model is larger than the caches, so the row of the entry PREFETCH_AHEAD entries
# on is asked for in advance, across the ends of X's rows (and columns) where the next
# ones follow in memory: most of a text matrix's columns hold only a few entries
# (benchmarks/README.md, "Sparse input").

cdef extern from "gather.h" nogil:
    # out[0:n] += val[p] src[idx[p] ld + 0:n] for p0 <= p < p1; dst[idx[p] ld + 0:n] +=
    # (alpha val[p]) src[0:n]; each element's sum in the entries' order (gather.h)
    void cb_gather_d(double* out, long n, const double* val, const int* idx, long p0,
                     long p1, const double* src, long ld, long ahead, long ahead_n)
    void cb_gather_f(float* out, long n, const float* val, const int* idx, long p0,
                     long p1, const float* src, long ld, long ahead, long ahead_n)
    void cb_scatter_d(double* dst, long n, double alpha, const double* val, const int* idx,
                      long p0, long p1, const double* src, long ld, long ahead, long ahead_n)
    void cb_scatter_f(float* dst, long n, float alpha, const float* val, const int* idx,
                      long p0, long p1, const float* src, long ld, long ahead, long ahead_n)

cdef int PREFETCH_AHEAD = 8


cdef inline void _gather(floating* out, int n, const floating* val, const int* idx,
                         Py_ssize_t p0, Py_ssize_t p1, const floating* src,
                         Py_ssize_t ahead, Py_ssize_t ld) noexcept nogil:
    """out[0:n] += val[p] src[idx[p] ld + 0:n], p0 <= p < p1; the rows of the entries
    PREFETCH_AHEAD on are prefetched while below ahead (0: none)."""
    if floating is double:
        cb_gather_d(out, n, val, idx, p0, p1, src, ld, ahead, PREFETCH_AHEAD)
    else:
        cb_gather_f(out, n, val, idx, p0, p1, src, ld, ahead, PREFETCH_AHEAD)


cdef inline void _scatter(floating* dst, int n, floating alpha, const floating* val,
                          const int* idx, Py_ssize_t p0, Py_ssize_t p1, const floating* src,
                          Py_ssize_t ahead, Py_ssize_t ld) noexcept nogil:
    """dst[idx[p] ld + 0:n] += (alpha val[p]) src[0:n], p0 <= p < p1, prefetched as
    _gather."""
    if floating is double:
        cb_scatter_d(dst, n, alpha, val, idx, p0, p1, src, ld, ahead, PREFETCH_AHEAD)
    else:
        cb_scatter_f(dst, n, alpha, val, idx, p0, p1, src, ld, ahead, PREFETCH_AHEAD)


# A block's gather and scatter are split among rows.first_threads threads by ranges of
# units (whole 64-byte lines of a row: no line is written by two threads), when it has
# this many products or more: below, waking a thread costs more than it saves. Each
# element's sum runs in the entries' order whatever the split: the same bits.
cdef Py_ssize_t FIRST_TEAM_WORK = 1 << 16


cdef int _first_team(const Rows* rows, Py_ssize_t r0, int mb, int s_out) noexcept nogil:
    """How many threads split this block's first layer (1: none)."""
    cdef Py_ssize_t i, r, nnz = 0
    if rows.first_threads <= 1:
        return 1
    for i in range(mb):
        r = _row_index(rows, r0 + i)
        nnz += rows.indptr[r + 1] - rows.indptr[r]
    return rows.first_threads if nnz * s_out >= FIRST_TEAM_WORK else 1


cdef inline int _unit_at(int t, int nt, int s_out, int itemsize) noexcept nogil:
    """Thread t's first unit of nt, at a 64-byte line of the row."""
    cdef int per = 64 // itemsize
    cdef int lines = (s_out + per - 1) // per
    return min(s_out, (t * lines // nt) * per)


cdef inline Py_ssize_t _row_index(const Rows* rows, Py_ssize_t r) noexcept nogil:
    return rows.order[r] if rows.order != NULL else r


cdef void _product_units(const Rows* rows, Py_ssize_t r0, int mb, int s_out,
                         const floating* w1t, floating* Z, int k0, int k1) noexcept nogil:
    """csr_product's units k0 .. k1 - 1."""
    cdef floating* z
    cdef Py_ssize_t i, r, end
    # rows in their order follow one another in memory: prefetch into the next ones
    cdef bint in_order = rows.order == NULL
    cdef int k
    if k1 <= k0:
        return
    for i in range(mb):
        r = _row_index(rows, r0 + i)
        z = Z + i * s_out + k0
        for k in range(k1 - k0):
            z[k] = 0
        end = rows.indptr[r + 1]
        _gather(z, k1 - k0, <const floating*>rows.data, rows.indices, rows.indptr[r], end,
                w1t + k0, rows.indptr[rows.m] if in_order else end, s_out)


cdef void csr_product(const Rows* rows, Py_ssize_t r0, int mb, int s_out,
                      const floating* w1t, floating* Z) noexcept nogil:
    """Z (mb x s_out) = X[rows r0 .. r0 + mb - 1] W(1)^T."""
    cdef int t, nt = _first_team(rows, r0, mb, s_out)
    if nt == 1:
        _product_units(rows, r0, mb, s_out, w1t, Z, 0, s_out)
        return
    for t in prange(nt, num_threads=nt, schedule="static"):
        _product_units(rows, r0, mb, s_out, w1t, Z, _unit_at(t, nt, s_out, sizeof(floating)),
                       _unit_at(t + 1, nt, s_out, sizeof(floating)))


cdef void first_products(const Rows* rows, Py_ssize_t r0, Py_ssize_t r1, int s_out,
                         const floating* w1t, floating* z1) noexcept nogil:
    """z1's rows r0 .. r1 - 1 (m x s_out) = X's rows W(1)^T, from X in blocks of columns
    (rows.b_ptr): a block's rows of W(1)^T stay in cache while every row's entries in it
    are added. Each row's sum runs in the order of its entries (CSR's, where a row's
    columns are sorted): the bits of csr_product."""
    cdef floating* z
    cdef Py_ssize_t r, base
    cdef int b, k
    for r in range(r0, r1):
        z = z1 + r * s_out
        for k in range(s_out):
            z[k] = 0
    for b in range(rows.b_blocks):
        base = <Py_ssize_t>b * rows.m
        for r in range(r0, r1):
            _gather(z1 + r * s_out, s_out, <const floating*>rows.b_data, rows.b_cols,
                    rows.b_ptr[base + r], rows.b_ptr[base + r + 1], w1t, 0, s_out)


cdef void _accumulate_units(const Rows* rows, Py_ssize_t r0, int mb, int s_out,
                            floating alpha, const floating* D, floating* g1t, int k0,
                            int k1) noexcept nogil:
    """csr_accumulate's units k0 .. k1 - 1."""
    cdef Py_ssize_t i, r, end
    cdef bint in_order = rows.order == NULL       # as csr_product
    if k1 <= k0:
        return
    for i in range(mb):
        r = _row_index(rows, r0 + i)
        end = rows.indptr[r + 1]
        _scatter(g1t + k0, k1 - k0, alpha, <const floating*>rows.data, rows.indices,
                 rows.indptr[r], end, D + i * s_out + k0,
                 rows.indptr[rows.m] if in_order else end, s_out)


cdef void csr_accumulate(const Rows* rows, Py_ssize_t r0, int mb, int s_out, floating alpha,
                         const floating* D, floating* g1t) noexcept nogil:
    """G1t (s_1 x s_out) += alpha X[rows r0 .. r0 + mb - 1]^T D (D: mb x s_out)."""
    cdef int t, nt = _first_team(rows, r0, mb, s_out)
    if nt == 1:
        _accumulate_units(rows, r0, mb, s_out, alpha, D, g1t, 0, s_out)
        return
    for t in prange(nt, num_threads=nt, schedule="static"):
        _accumulate_units(rows, r0, mb, s_out, alpha, D, g1t,
                          _unit_at(t, nt, s_out, sizeof(floating)),
                          _unit_at(t + 1, nt, s_out, sizeof(floating)))


cdef void add_transposed(int s_in, int s_out, floating* g1t, floating* tgt,
                         int ldt) noexcept nogil:
    """Theta(1)'s weights (tgt + 1, row stride ldt) += G1t^T, and G1t = 0 again; in tiles
    of 32 inputs, so that G1t's tile stays in cache while its columns are read."""
    cdef int j0, j1, j, k
    cdef floating* row
    for j0 in range(0, s_in, 32):
        j1 = min(j0 + 32, s_in)
        for k in range(s_out):
            row = tgt + 1 + <Py_ssize_t>k * ldt
            for j in range(j0, j1):
                row[j] += g1t[<Py_ssize_t>j * s_out + k]
        for j in range(j0, j1):
            for k in range(s_out):
                g1t[<Py_ssize_t>j * s_out + k] = 0


cdef void first_by_columns(const Net* net, const Rows* rows, floating* grad, int j0,
                           int j1, floating* g1t) noexcept nogil:
    """Theta(1)'s weights in grad, columns j0 .. j1 - 1 = X^T delta(2) over every row,
    from X's columns and the rows' delta(2) in rows.d1, summed into g1t (s_1 x s_2, rows
    j0 .. j1 - 1 its own) one segment of rows after the other: each column's sum in the
    order of its rows, whatever thread runs it or however the columns are cut, then
    written into grad once (no sums there to zero or add)."""
    cdef const Py_ssize_t* ptr
    cdef floating* g
    cdef floating* row
    cdef int j, k, t0, t1, s, s_out = net.sizes[1], ldt = net.strides[0]
    cdef Py_ssize_t ahead = rows.c_ptr[rows.c_segments * (net.sizes[0] + 1) - 1]
    for s in range(rows.c_segments):
        ptr = rows.c_ptr + <Py_ssize_t>s * (net.sizes[0] + 1)
        for j in range(j0, j1):
            g = g1t + <Py_ssize_t>j * s_out
            if s == 0:
                for k in range(s_out):
                    g[k] = 0
            _gather(g, s_out, <const floating*>rows.c_data, rows.c_rows, ptr[j], ptr[j + 1],
                    <const floating*>rows.d1, ahead, s_out)
    for t0 in range(j0, j1, 32):            # tiles of 32 columns, read while in cache
        t1 = min(t0 + 32, j1)
        for k in range(s_out):
            row = grad + net.offsets[0] + 1 + <Py_ssize_t>k * ldt
            for j in range(t0, t1):
                row[j] = g1t[<Py_ssize_t>j * s_out + k]


cdef void pack_first(const Net* net, const floating* params, const Py_ssize_t* offsets,
                     const int* strides, floating scale, floating* w1t,
                     int nt) noexcept nogil:
    """w1t (s_1 x s_2) = scale * W(1)^T, from Theta(1) at params + offsets[0]; in tiles
    of 32 inputs, as add_transposed, which nt threads share."""
    cdef int t
    for t in prange((net.sizes[0] + 31) // 32, num_threads=nt, schedule="static"):
        _pack_tile(net, params, offsets, strides, scale, w1t, 32 * t)


cdef inline void _pack_tile(const Net* net, const floating* params, const Py_ssize_t* offsets,
                            const int* strides, floating scale, floating* w1t,
                            int k0) noexcept nogil:
    cdef int j, k, k1 = min(k0 + 32, net.sizes[0]), s_out = net.sizes[1]
    cdef const floating* w
    for j in range(s_out):
        w = params + offsets[0] + 1 + <Py_ssize_t>j * strides[0]
        for k in range(k0, k1):
            w1t[<Py_ssize_t>k * s_out + j] = scale * w[k]


cdef void unpack_first(const Net* net, const floating* w1t, floating scale,
                       floating* params, const Py_ssize_t* offsets,
                       const int* strides) noexcept nogil:
    """W(1) in Theta(1) at params + offsets[0] = scale * w1t^T (pack_first's inverse)."""
    cdef int j, k, k0, k1, s_in = net.sizes[0], s_out = net.sizes[1]
    cdef floating* w
    for k0 in range(0, s_in, 32):
        k1 = min(k0 + 32, s_in)
        for j in range(s_out):
            w = params + offsets[0] + 1 + <Py_ssize_t>j * strides[0]
            for k in range(k0, k1):
                w[k] = scale * w1t[<Py_ssize_t>k * s_out + j]

