# The entry points over all rows at once: forward, cost_grad, reg_cost. Each checks its
# buffers against the Layout, allocates one workspace per thread, then runs the row blocks
# (kernels.pxi) without the GIL, split across threads.
#
# Rows are counted in Py_ssize_t (a call may have 2**31 rows or more); a block's rows, and
# every size BLAS is given, in C ints (a block has at most block_rows rows).
#
# A forked child runs on one thread: libgomp's thread pool does not survive fork() (the
# parent's workers are gone, and the child's first parallel region waits for them
# forever), so after a fork no parallel region is entered, as PyTorch does.

import os
import threading


cdef bint _forked = False


def _note_fork():
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_note_fork)


# Whether the C compiler built this with OpenMP (setup.py probes it). Without it Cython's
# prange is a serial loop and threadid() is 0: every call runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
    #define CBACKPROP_HAS_OPENMP 1
    #else
    #define CBACKPROP_HAS_OPENMP 0
    #endif
    """
    const int CBACKPROP_HAS_OPENMP

HAS_OPENMP = bool(CBACKPROP_HAS_OPENMP)


def forked_child():
    """Whether this process is a fork of the one that imported the core: then forward and
    cost_grad run on one thread, whatever n_threads says."""
    return bool(_forked)


# Threads woken after a pause, placed off the calling thread's core. A sleeping libgomp
# thread, woken, may be put on the core of the thread that woke it (Linux places a woken
# thread near its waker); on the KVM guests here it then waits there until that thread's
# own spin at the region's end runs out, milliseconds later (7.8 ms; benchmarks/README.md,
# "Measurements behind the code's choices"). So a region's worker that finds itself on the
# caller's core (Caller: taken by the caller before the region) moves to the caller's
# other allowed cores, its affinity set to them, as ONNX Runtime's pool pins its threads.
# forward's blocks check at each block, so that the caller works while they wake;
# place_workers runs a region of nothing but the check, for the other entry points.
cdef extern from *:
    """
    #if defined(_OPENMP) && defined(__linux__)
    #include <omp.h>
    #include <sched.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    typedef struct { int cpu; pid_t tid; } cbackprop_caller;
    static cbackprop_caller cbackprop_this_caller(void) {
        cbackprop_caller c = {sched_getcpu(), (pid_t)syscall(SYS_gettid)};
        return c;
    }
    static void cbackprop_leave_callers_core(const cbackprop_caller* c) {
        cpu_set_t others;
        if (c->cpu < 0 || omp_get_thread_num() == 0 || sched_getcpu() != c->cpu
                || sched_getaffinity(c->tid, sizeof others, &others) != 0)
            return;
        CPU_CLR(c->cpu, &others);
        if (CPU_COUNT(&others) > 0)
            sched_setaffinity(0, sizeof others, &others);
    }
    static void cbackprop_place_workers(int n_threads) {
        cbackprop_caller c = cbackprop_this_caller();
        #pragma omp parallel num_threads(n_threads)
        cbackprop_leave_callers_core(&c);
    }
    #else
    typedef struct { int cpu; } cbackprop_caller;
    static cbackprop_caller cbackprop_this_caller(void) { cbackprop_caller c = {-1}; return c; }
    static void cbackprop_leave_callers_core(const cbackprop_caller* c) { (void)c; }
    static void cbackprop_place_workers(int n_threads) { (void)n_threads; }
    #endif
    """
    ctypedef struct Caller "cbackprop_caller":
        pass
    Caller this_caller "cbackprop_this_caller"() noexcept nogil
    void leave_callers_core "cbackprop_leave_callers_core"(const Caller* caller) noexcept nogil
    void cbackprop_place_workers(int n_threads) noexcept nogil


def place_workers(int n_threads):
    """Wakes the n_threads - 1 threads of this thread's next parallel regions and moves
    those on this thread's core to its other allowed cores (nothing in a forked child,
    without OpenMP, or off Linux)."""
    if n_threads > 1 and not _forked:
        with nogil:
            cbackprop_place_workers(n_threads)


# forward's workspace and packed W^T, kept from call to call on each thread (a call may
# run while another thread's runs): allocating them anew took a small call's time again
# after a pause (benchmarks/README.md). Buffers above FORWARD_KEEP bytes are made each call.
_forward_scratch = threading.local()
FORWARD_KEEP = 1 << 22


cdef dict _kept(Py_ssize_t nbytes):
    """This thread's scratch dict for forward's buffers of nbytes, or None (too large)."""
    if nbytes > FORWARD_KEEP:
        return None
    kept = getattr(_forward_scratch, "buffers", None)
    if kept is None:
        kept = _forward_scratch.buffers = {}
    return kept


def forward(Layout layout, X, const floating[::1] params, floating[:, ::1] out,
            int block_rows, int n_threads, bint check_finite=False):
    """out (m x s_L) = h(X), in blocks of block_rows rows that n_threads threads share
    out. X: a C-order matrix of params' dtype, or CSR (rows.pxi). Returns out, or None
    when check_finite finds a NaN or inf in dense X (each block's rows are tested just
    before the block runs, while they are in cache: X is read once; out is then partly
    written)."""
    cdef const Net* net = &layout.net
    cdef Rows rows = rows_of(layout, X, params)
    check_params(layout, "params", params.shape[0])
    check_outputs(layout, "out", out.shape[0], out.shape[1], rows.m)
    check_positive("block_rows", block_rows)
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t m = rows.m
    if m == 0:
        return np.asarray(out)
    cdef int mb_max = <int>min(<Py_ssize_t>block_rows, m)
    cdef Py_ssize_t n_blocks = (m + mb_max - 1) // mb_max
    cdef int nt = 1 if _forked else <int>min(<Py_ssize_t>n_threads, n_blocks)
    cdef Py_ssize_t b, ws_size = workspace_size(net, mb_max)
    cdef Py_ssize_t wt_size = max(1, packed_size(net, sizeof(floating)))
    cdef int bad = 0
    cdef int* flag = &bad if check_finite and rows.indptr == NULL else NULL
    dtype = np.asarray(out).dtype
    cdef floating[:, ::1] ws = _zeroed(_kept(nt * ws_size * sizeof(floating)), "forward ws",
                                       nt * ws_size, dtype).reshape(nt, ws_size)
    cdef floating[::1] wt_buf = _reused(_kept(wt_size * sizeof(floating)), "forward wt",
                                        wt_size, dtype, aligned_zeros)
    cdef const floating* wt
    cdef Caller caller
    rows.w1t = &wt_buf[0]
    rows.packed_units = FORWARD_PACKED
    with nogil:
        if rows.indptr != NULL:
            pack_first(net, &params[0], net.offsets, net.strides, 1, &wt_buf[0], nt)
        wt = pack_transposed(net, &params[0], &wt_buf[0], mb_max, rows.indptr != NULL,
                             rows.packed_units)
        if nt == 1:
            for b in range(n_blocks):
                _forward_rows(net, wt, &rows, b, &params[0], &out[0, 0], &ws[0, 0], mb_max,
                              flag)
        else:
            caller = this_caller()
            for b in prange(n_blocks, num_threads=nt, schedule="dynamic"):   # any order
                leave_callers_core(&caller)
                _forward_rows(net, wt, &rows, b, &params[0], &out[0, 0],
                              &ws[threadid(), 0], mb_max, flag)
    return None if bad else np.asarray(out)


cdef inline void _forward_rows(const Net* net, const floating* wt, const Rows* rows,
                               Py_ssize_t b, const floating* params, floating* out,
                               floating* ws, int mb_max, int* bad) noexcept nogil:
    """forward's block b (rows b mb_max on, at most mb_max of m): a function of its own, so
    that the parallel loop's body has no variables of its own to keep private. bad (or
    NULL): set, and the block skipped, when its dense rows hold a NaN or inf."""
    cdef Py_ssize_t r0 = b * mb_max
    cdef int mb = <int>min(<Py_ssize_t>mb_max, rows.m - r0)
    cdef Py_ssize_t n_in = net.sizes[0]
    if bad != NULL and not _finite_rows(<const floating*>rows.dense + r0 * n_in, mb * n_in):
        bad[0] = 1
        return
    forward_block(net, wt, rows, r0, mb, params, out + r0 * net.sizes[net.n_layers - 1], ws,
                  mb_max)


# first_by_columns' ranges of columns a thread: enough to even out the threads' shares,
# few enough that each range's pass over a segment of rows reads its delta(2) many times
cdef int COLUMN_CHUNKS = 8


cdef int chunks_for(Py_ssize_t n_blocks, int nt) noexcept nogil:
    """How many chunks cost_grad cuts a call's blocks into: a few a thread, so that a
    thread whose core is busy elsewhere leaves its share to the others."""
    return <int>max(1, min(n_blocks, <Py_ssize_t>(4 * nt if nt > 1 else 1)))


cdef double rows_serial(const Net* net, const floating* wt, const Rows* rows,
                        const floating* Y, const floating* w, const floating* params,
                        floating* grad, floating* ws, int mb_max) noexcept nogil:
    """The weighted loss summed over all rows, in blocks of mb_max on this thread, and, when
    grad is not NULL, grad = the sum of their gradients."""
    return _chunk_sum(net, wt, rows, Y, w, params, grad, ws, mb_max, 0,
                      (rows.m + mb_max - 1) // mb_max)


cdef double _chunk_sum(const Net* net, const floating* wt, const Rows* rows,
                       const floating* Y, const floating* w, const floating* params,
                       floating* target, floating* ws, int mb_max, Py_ssize_t b0,
                       Py_ssize_t b1) noexcept nogil:
    """The weighted loss of blocks b0 .. b1 - 1 (returned), and, when target is not NULL,
    target = the sum of their gradients (zeroed first; CSR rows' first layer through
    rows.g1t, zero before and after). One chunk of rows_cost_grad, as a function of its
    own: the parallel loop's body then has no variables to keep private."""
    cdef Py_ssize_t b, r0, k
    cdef int mb
    cdef int n_out = net.sizes[net.n_layers - 1]
    cdef double total = 0
    if target != NULL:
        _zero_sums(net, target, rows.first_apart)
    for b in range(b0, b1):
        r0 = b * mb_max
        mb = <int>min(<Py_ssize_t>mb_max, rows.m - r0)
        if target != NULL:
            total += gradient_block(net, wt, rows, r0, Y + r0 * n_out,
                                    w + r0 if w != NULL else NULL, mb, params, target, ws,
                                    mb_max)
        else:
            total += cost_block(net, wt, rows, r0, Y + r0 * n_out,
                                w + r0 if w != NULL else NULL, mb, params, ws, mb_max)
    if target != NULL and rows.indptr != NULL and not rows.first_apart:
        add_transposed(net.sizes[0], net.sizes[1], <floating*>rows.g1t,
                       target + net.offsets[0], net.strides[0])
    return total


cdef void _zero_sums(const Net* net, floating* target, bint first_apart) noexcept nogil:
    """target = 0, all but W(1)'s weights when the caller keeps their sums apart."""
    cdef Py_ssize_t k, start = 0
    cdef int j
    if first_apart:
        for j in range(net.sizes[1]):
            target[net.offsets[0] + <Py_ssize_t>j * net.strides[0]] = 0
        start = net.offsets[1] if net.n_layers > 2 else net.n_params
    for k in range(start, net.n_params):
        target[k] = 0


cdef double _chunk_of(const Net* net, const floating* wt, const Rows* rows,
                      const floating* Y, const floating* w, const floating* params,
                      floating* target, floating* ws, floating* g1t, int mb_max,
                      Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """_chunk_sum on this thread's own copy of rows, its g1t this thread's."""
    cdef Rows mine = rows[0]
    mine.g1t = g1t
    return _chunk_sum(net, wt, &mine, Y, w, params, target, ws, mb_max, b0, b1)


cdef inline Py_ssize_t _chunk_start(Py_ssize_t c, Py_ssize_t n_blocks,
                                    int n_chunks) noexcept nogil:
    """The first block of chunk c: blocks [c n_blocks / n_chunks, (c + 1) n_blocks / n_chunks)
    (rounded up), so that the chunks' sizes differ by one at most."""
    return (c * n_blocks + n_chunks - 1) // n_chunks


cdef double rows_cost_grad(const Net* net, const floating* wt, const Rows* rows,
                           const floating* Y, const floating* w, const floating* params,
                           floating* grad, floating* tgrad, floating* ws, Py_ssize_t ws_size,
                           floating* g1t, double* losses, int mb_max, int nt,
                           int n_chunks) noexcept nogil:
    """rows_serial's sums, the blocks of mb_max rows cut into n_chunks runs of consecutive
    blocks, which nt threads take as they come free (dynamic: a thread slowed by other
    work on its core does fewer). Chunk 0 accumulates into grad, chunk c > 0 into
    tgrad[(c-1)P : cP] (P parameters), and the chunks are summed in their order: the bits
    depend on n_chunks, never on which thread ran what. ws holds nt workspaces of ws_size;
    losses, n_chunks sums. The threads zero each chunk's sum as they start it, and add the
    sums up by ranges of elements (each element still in the chunks' order). CSR rows: g1t
    holds nt transposed first-layer gradients, one a thread; with X's columns (rows.d1
    set), the first layer's weights come from first_by_columns instead, COLUMN_CHUNKS
    ranges of columns a thread, taken as they come free (g1t: one transposed gradient,
    each range its rows of it)."""
    cdef Py_ssize_t n_blocks = (rows.m + mb_max - 1) // mb_max
    cdef Py_ssize_t n_g1t = (<Py_ssize_t>net.sizes[0] * net.sizes[1]
                             if g1t != NULL and rows.d1 == NULL else 0)
    cdef Py_ssize_t c, k, start, P = net.n_params
    cdef Py_ssize_t n_ranges = COLUMN_CHUNKS * nt
    cdef int i, j
    cdef double total = 0
    if n_chunks == 1:
        total = _chunk_of(net, wt, rows, Y, w, params, grad, ws, g1t, mb_max, 0, n_blocks)
        if grad != NULL and rows.d1 != NULL:
            first_by_columns(net, rows, grad, 0, net.sizes[0], g1t)
        return total
    for c in prange(n_chunks, num_threads=nt, schedule="dynamic", chunksize=1):
        losses[c] = _chunk_of(net, wt, rows, Y, w, params,
                              NULL if grad == NULL else (grad if c == 0 else tgrad + (c - 1) * P),
                              ws + threadid() * ws_size,
                              g1t + threadid() * n_g1t if g1t != NULL else NULL, mb_max,
                              _chunk_start(c, n_blocks, n_chunks),
                              _chunk_start(c + 1, n_blocks, n_chunks))
    if grad != NULL:
        # W(1)'s weights kept apart (first_by_columns writes them below) are left out
        start = 0
        if rows.first_apart:
            start = net.offsets[1] if net.n_layers > 2 else P
            for j in range(net.sizes[1]):
                for i in range(1, n_chunks):
                    grad[j * net.strides[0]] += tgrad[(i - 1) * P + j * net.strides[0]]
        for k in prange(start, P, num_threads=nt, schedule="static"):
            for i in range(1, n_chunks):
                grad[k] += tgrad[(i - 1) * P + k]
        if rows.d1 != NULL:
            for c in prange(n_ranges, num_threads=nt, schedule="dynamic", chunksize=1):
                first_by_columns(net, rows, grad, <int>(c * net.sizes[0] // n_ranges),
                                 <int>((c + 1) * net.sizes[0] // n_ranges), g1t)
    for i in range(n_chunks):
        total += losses[i]
    return total


def _reused(dict scratch, str name, Py_ssize_t size, dtype, make):
    """make(size, dtype), or the buffer of that name, size and dtype that scratch (a dict
    the caller keeps from call to call, or None) holds from an earlier call: a fit's calls
    on one X then fault in and clear no fresh pages for their large buffers."""
    if scratch is None:
        return make(size, dtype)
    buf = scratch.get(name)
    if buf is None or buf.shape[0] != size or buf.dtype != dtype:
        buf = scratch[name] = make(size, dtype)
    return buf


def _zeroed(dict scratch, str name, Py_ssize_t size, dtype):
    """_reused's buffer of np.zeros, zeroed again when it comes from scratch."""
    buf = _reused(scratch, name, size, dtype, np.zeros)
    if scratch is not None:
        buf.fill(0)
    return buf


def cost_grad(Layout layout, X, const floating[:, ::1] Y, const floating[::1] w,
              const floating[::1] params, floating[::1] grad, double loss_norm, double reg,
              int block_rows, int n_threads, dict scratch=None):
    """J = sum_i w_i loss_i / loss_norm + reg/2 sum W^2, and, when grad is not empty,
    grad = sum_i w_i dloss_i / loss_norm + reg W (bias column unregularized).

    X: a C-order matrix of params' dtype, or CSR (rows.pxi). w empty: all weights one.
    Rows run in blocks of block_rows (1: the per-sample, matrix-vector kernel) that
    n_threads threads share out (CSR rows: in one chunk a thread, each summing its first
    layer's gradient apart, transposed). scratch: a dict that keeps the large buffers for
    the next call (a fit's), or None.
    """
    cdef const Net* net = &layout.net
    cdef Rows rows = rows_of(layout, X, params)
    check_outputs(layout, "Y", Y.shape[0], Y.shape[1], rows.m)
    check_weights(w.shape[0], rows.m)
    check_params(layout, "params", params.shape[0])
    if grad.shape[0] != 0:
        check_params(layout, "grad", grad.shape[0])
    check_positive("block_rows", block_rows)
    check_positive("n_threads", n_threads)
    cdef Py_ssize_t m = rows.m
    cdef Py_ssize_t P = net.n_params
    cdef bint sparse = rows.indptr != NULL
    cdef int mb_max = <int>max(1, min(<Py_ssize_t>block_rows, m))
    cdef int nt = 1 if _forked else <int>max(1, min(<Py_ssize_t>n_threads,
                                                      (m + mb_max - 1) // mb_max))
    cdef int n_chunks = nt if sparse else chunks_for((m + mb_max - 1) // mb_max, nt)
    cdef bint want_grad = grad.shape[0] > 0
    cdef Py_ssize_t ws_size = workspace_size(net, mb_max)
    cdef double total
    dtype = np.asarray(params).dtype
    cdef floating[::1] ws = _zeroed(scratch, "ws", nt * ws_size, dtype)
    cdef floating[::1] tgrad = _reused(scratch, "tgrad",
                                       max(1, (n_chunks - 1) * P if want_grad else 1), dtype,
                                       np.empty)
    cdef double[::1] losses = np.empty(n_chunks)
    cdef double[::1] row_sums = np.empty(theta_rows(layout))
    cdef floating[::1] wt_buf = _reused(scratch, "wt", max(1, packed_size(net, dtype.itemsize)),
                                        dtype, aligned_zeros)
    cdef bint by_columns = sparse and want_grad and rows.c_ptr != NULL and m > 0
    cdef floating[::1] d1 = _reused(scratch, "d1", m * net.sizes[1] if by_columns else 1,
                                    dtype, np.empty)
    # by columns: one transposed gradient, which first_by_columns writes before it reads
    cdef floating[::1] g1t = (
        _reused(scratch, "g1t", <Py_ssize_t>net.sizes[0] * net.sizes[1], dtype, np.empty)
        if by_columns else
        _zeroed(scratch, "g1t", <Py_ssize_t>nt * net.sizes[0] * net.sizes[1]
                if sparse and want_grad else 1, dtype))
    cdef floating[::1] z1 = _reused(scratch, "z1", m * net.sizes[1] if rows.b_ptr != NULL
                                    else 1, dtype, np.empty)
    cdef int t
    cdef const floating* wt
    # Y has no rows to point at when m = 0: the kernels then read neither it nor X
    cdef const floating* Yp = &Y[0, 0] if m > 0 else NULL
    rows.w1t = &wt_buf[0]
    if by_columns:
        rows.d1 = &d1[0]
        rows.first_apart = True
    with nogil:
        if sparse:
            pack_first(net, &params[0], net.offsets, net.strides, 1, &wt_buf[0], nt)
        if rows.b_ptr != NULL:
            rows.z1 = &z1[0]
            for t in prange(nt, num_threads=nt, schedule="static"):
                first_products(&rows, t * m // nt, (t + 1) * m // nt, net.sizes[1],
                               &wt_buf[0], &z1[0])
        wt = pack_transposed(net, &params[0], &wt_buf[0], mb_max, sparse, rows.packed_units)
        total = rows_cost_grad(net, wt, &rows, Yp, &w[0] if w.shape[0] > 0 else NULL,
                               &params[0], &grad[0] if want_grad else NULL, &tgrad[0],
                               &ws[0], ws_size, &g1t[0] if sparse and want_grad else NULL,
                               &losses[0], mb_max, nt, n_chunks)
        total = total / loss_norm + regularize(net, &params[0],
                                               &grad[0] if want_grad else NULL,
                                               loss_norm, reg, nt, &row_sums[0])
    return total


def epoch_check(Layout layout, floating[::1] params, const floating[::1] src,
                floating[::1] keep, int n_threads=1):
    """fit's test of the parameters at the end of an epoch, in one pass over them:
    params = src first, when src is not empty (L-BFGS's iterate, kept apart during its
    line search), and keep = params, when keep is not empty (the copy that divergence
    restores: the caller's spare, since this one is written before the test ends). Returns
    (whether every parameter is finite, the weights' sum of squares, bias excluded, with
    reg_cost's bits). Theta's rows are shared by n_threads threads."""
    cdef const Net* net = &layout.net
    check_params(layout, "params", params.shape[0])
    cdef bint copy = src.shape[0] > 0, keeping = keep.shape[0] > 0
    if copy:
        check_params(layout, "src", src.shape[0])
    if keeping:
        check_params(layout, "keep", keep.shape[0])
    check_positive("n_threads", n_threads)
    cdef int n_rows = theta_rows(layout), j
    cdef double[::1] sums = np.empty(n_rows)
    cdef unsigned char[::1] finite = np.empty(n_rows, dtype=np.uint8)
    cdef ThetaRow t
    cdef double total = 0
    cdef bint ok = True
    cdef int nt = 1 if _forked else n_threads
    with nogil:
        for j in prange(n_rows, num_threads=nt, schedule="static"):
            t = theta_row(net, j)
            if copy:
                memcpy(&params[t.base], &src[t.base], t.n * sizeof(floating))
            if keeping:
                memcpy(&keep[t.base], &params[t.base], t.n * sizeof(floating))
            finite[j] = _finite_rows(&params[t.base], t.n)
            sums[j] = _sumsq(&params[t.base + 1], t.n - 1)
        for j in range(n_rows):
            ok = ok and finite[j]
            total += sums[j]
    return bool(ok), total


def reg_cost(Layout layout, const floating[::1] params, double reg, int n_threads=1):
    """reg/2 * the sum of the squared weights (bias column excluded), the rows shared by
    n_threads threads (the same bits on any number)."""
    check_params(layout, "params", params.shape[0])
    check_positive("n_threads", n_threads)
    cdef double[::1] row_sums = np.empty(theta_rows(layout))
    return regularize(&layout.net, &params[0], <floating*>NULL, 1.0, reg,
                      1 if _forked else n_threads, &row_sums[0])
