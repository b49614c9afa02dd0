# The entry points over all rows at once: forward, cost_grad, reg_cost. Each checks its
# buffers against the Layout, allocates one workspace per thread, then runs the row blocks
# (kernels.pxi) without the GIL, split across threads.

from cython.parallel cimport prange, parallel, threadid


def forward(Layout layout, const floating[:, ::1] X, const floating[::1] params,
            floating[:, ::1] out, int block_rows, int n_threads):
    """out (m x s_L) = h(X), in blocks of block_rows rows that n_threads threads share
    out. Returns out."""
    cdef const Net* net = &layout.net
    check_inputs(layout, X.shape[0], X.shape[1])
    check_params(layout, "params", params.shape[0])
    check_outputs(layout, "out", out.shape[0], out.shape[1], X.shape[0])
    check_positive("block_rows", block_rows)
    check_positive("n_threads", n_threads)
    cdef int m = X.shape[0]
    if m == 0:
        return np.asarray(out)
    cdef int mb_max = min(block_rows, m)
    cdef int n_blocks = (m + mb_max - 1) // mb_max
    cdef int nt = min(n_threads, n_blocks)
    cdef int b, r0, mb, tid
    dtype = np.asarray(out).dtype
    cdef floating[:, ::1] ws = np.zeros((nt, workspace_size(net, mb_max)), dtype=dtype)
    cdef floating[::1] wt_buf = np.empty(net.n_weights, dtype=dtype)
    cdef const floating* wt
    with nogil:
        wt = pack_transposed(net, &params[0], &wt_buf[0], mb_max)
        if nt == 1:
            for b in range(n_blocks):
                r0 = b * mb_max
                mb = min(mb_max, m - r0)
                forward_block(net, wt, &X[r0, 0], mb, &params[0], &out[r0, 0], &ws[0, 0],
                              mb_max)
        else:
            with parallel(num_threads=nt):
                for b in prange(n_blocks, schedule="dynamic"):   # rows of their own: any order
                    tid = threadid()
                    r0 = b * mb_max
                    mb = min(mb_max, m - r0)
                    forward_block(net, wt, &X[r0, 0], mb, &params[0], &out[r0, 0],
                                  &ws[tid, 0], mb_max)
    return np.asarray(out)


cdef int chunks_for(int n_blocks, int nt) noexcept nogil:
    """How many chunks cost_grad cuts a call's blocks into: a few a thread, so that a
    thread whose core is busy elsewhere leaves its share to the others."""
    return max(1, min(n_blocks, 4 * nt if nt > 1 else 1))


cdef double rows_serial(const Net* net, const floating* wt, const floating* X,
                        const floating* Y, const floating* w, int m,
                        const floating* params, floating* grad, floating* ws,
                        int mb_max) noexcept nogil:
    """The weighted loss summed over m rows, in blocks of mb_max on this thread, and, when
    grad is not NULL, grad = the sum of their gradients."""
    cdef int n_blocks = (m + mb_max - 1) // mb_max
    cdef int b, r0, mb
    cdef Py_ssize_t k
    cdef int n_in = net.sizes[0], n_out = net.sizes[net.n_layers - 1]
    cdef double total = 0
    if grad != NULL:
        for k in range(net.n_params):
            grad[k] = 0
    for b in range(n_blocks):
        r0 = b * mb_max
        mb = min(mb_max, m - r0)
        if grad != NULL:
            total += gradient_block(net, wt, X + <Py_ssize_t>r0 * n_in,
                                    Y + <Py_ssize_t>r0 * n_out, w + r0 if w != NULL else NULL,
                                    mb, params, grad, ws, mb_max)
        else:
            total += cost_block(net, wt, X + <Py_ssize_t>r0 * n_in, Y + <Py_ssize_t>r0 * n_out,
                                w + r0 if w != NULL else NULL, mb, params, ws, mb_max)
    return total


cdef double rows_cost_grad(const Net* net, const floating* wt, const floating* X,
                           const floating* Y, const floating* w, int m,
                           const floating* params, floating* grad, floating* tgrad,
                           floating* ws, Py_ssize_t ws_size, double* losses, int mb_max,
                           int nt, int n_chunks) noexcept nogil:
    """rows_serial's sums, the blocks of mb_max rows cut into n_chunks runs of consecutive
    blocks, which nt threads take as they come free (dynamic: a thread slowed by other
    work on its core does fewer). Chunk 0 accumulates into grad, chunk c > 0 into
    tgrad[(c-1)P : cP] (P parameters), and the chunks are summed in their order: the bits
    depend on n_chunks, never on which thread ran what. ws holds nt workspaces of ws_size;
    losses, n_chunks sums. The threads zero each chunk's sum as they start it, and add the
    sums up by ranges of elements (each element still in the chunks' order)."""
    cdef int n_blocks = (m + mb_max - 1) // mb_max
    cdef int b, r0, mb, c, tid
    cdef Py_ssize_t k, P = net.n_params
    cdef int n_in = net.sizes[0], n_out = net.sizes[net.n_layers - 1]
    cdef floating* target
    cdef double total = 0
    if n_chunks == 1:
        return rows_serial(net, wt, X, Y, w, m, params, grad, ws, mb_max)
    with parallel(num_threads=nt):
        tid = threadid()
        for c in prange(n_chunks, schedule="dynamic", chunksize=1):
            target = NULL
            if grad != NULL:
                target = grad if c == 0 else tgrad + (c - 1) * P
                for k in range(P):
                    target[k] = 0
            losses[c] = 0
            # chunk c: blocks [c n_blocks / n_chunks, (c + 1) n_blocks / n_chunks)
            for b in range(<int>((<long long>c * n_blocks + n_chunks - 1) // n_chunks),
                           <int>(((<long long>c + 1) * n_blocks + n_chunks - 1) // n_chunks)):
                r0 = b * mb_max
                mb = min(mb_max, m - r0)
                if target != NULL:
                    losses[c] += gradient_block(net, wt, X + <Py_ssize_t>r0 * n_in,
                                                Y + <Py_ssize_t>r0 * n_out,
                                                w + r0 if w != NULL else NULL, mb, params,
                                                target, ws + tid * ws_size, mb_max)
                else:
                    losses[c] += cost_block(net, wt, X + <Py_ssize_t>r0 * n_in,
                                            Y + <Py_ssize_t>r0 * n_out,
                                            w + r0 if w != NULL else NULL, mb, params,
                                            ws + tid * ws_size, mb_max)
    if grad != NULL:
        for k in prange(P, num_threads=nt, schedule="static"):
            for c in range(1, n_chunks):
                grad[k] += tgrad[(c - 1) * P + k]
    for c in range(n_chunks):
        total += losses[c]
    return total


def cost_grad(Layout layout, const floating[:, ::1] X, const floating[:, ::1] Y,
              const floating[::1] w, const floating[::1] params, floating[::1] grad,
              double loss_norm, double reg, int block_rows, int n_threads):
    """J = sum_i w_i loss_i / loss_norm + reg/2 sum W^2, and, when grad is not empty,
    grad = sum_i w_i dloss_i / loss_norm + reg W (bias column unregularized).

    w empty: all weights one. Rows run in blocks of block_rows (1: the per-sample,
    matrix-vector kernel) that n_threads threads share out.
    """
    cdef const Net* net = &layout.net
    check_inputs(layout, X.shape[0], X.shape[1])
    check_outputs(layout, "Y", Y.shape[0], Y.shape[1], X.shape[0])
    check_weights(w.shape[0], X.shape[0])
    check_params(layout, "params", params.shape[0])
    if grad.shape[0] != 0:
        check_params(layout, "grad", grad.shape[0])
    check_positive("block_rows", block_rows)
    check_positive("n_threads", n_threads)
    cdef int m = X.shape[0]
    cdef Py_ssize_t P = net.n_params
    cdef int mb_max = max(1, min(block_rows, m))
    cdef int nt = max(1, min(n_threads, (m + mb_max - 1) // mb_max))
    cdef int n_chunks = chunks_for((m + mb_max - 1) // mb_max, nt)
    cdef bint want_grad = grad.shape[0] > 0
    cdef Py_ssize_t ws_size = workspace_size(net, mb_max)
    cdef double total
    dtype = np.asarray(params).dtype
    cdef floating[::1] ws = np.zeros(nt * ws_size, dtype=dtype)
    cdef floating[::1] tgrad = np.empty(max(1, (n_chunks - 1) * P if want_grad else 1),
                                        dtype=dtype)
    cdef double[::1] losses = np.empty(n_chunks)
    cdef floating[::1] wt_buf = np.empty(net.n_weights, dtype=dtype)
    cdef const floating* wt
    # X and Y have no rows to point at when m = 0: the kernels then read neither
    cdef const floating* Xp = &X[0, 0] if m > 0 else NULL
    cdef const floating* Yp = &Y[0, 0] if m > 0 else NULL
    with nogil:
        wt = pack_transposed(net, &params[0], &wt_buf[0], mb_max)
        total = rows_cost_grad(net, wt, Xp, Yp, &w[0] if w.shape[0] > 0 else NULL, m,
                               &params[0], &grad[0] if want_grad else NULL, &tgrad[0],
                               &ws[0], ws_size, &losses[0], mb_max, nt, n_chunks)
        total = total / loss_norm + regularize(net, &params[0],
                                               &grad[0] if want_grad else NULL,
                                               loss_norm, reg)
    return total


def reg_cost(Layout layout, const floating[::1] params, double reg):
    """reg/2 * the sum of the squared weights (bias column excluded)."""
    check_params(layout, "params", params.shape[0])
    return regularize(&layout.net, &params[0], <floating*>NULL, 1.0, reg)
