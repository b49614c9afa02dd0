# Compiled training loops: a whole epoch runs in one `nogil` call.
#
# - online_epoch: the derivation's stochastic gradient descent, one sample at a time,
#   Theta updated in place from that sample's deltas (BLAS level 2 ger, or _gemm.h's
#   loops, which apply the first layer's update in the next sample's forward pass);
# - minibatch_epoch: batches gathered from shuffled indices into one reused buffer,
#   their gradient by the blocked kernel (rows_cost_grad), then an SGD (momentum, Nesterov) or
#   Adam update of the flat parameter vector, regularization folded into it (one pass);
# - rprop_update: one iRPROP- step from a full-batch gradient.
#
# Every loop looks for signals (Ctrl-C) every `check_every` samples (the caller picks
# about a millisecond of work), in the main thread by taking the GIL briefly, and stops
# before an update whose cost is not finite.

import threading

from cpython.pythread cimport PyThread_get_thread_ident
from libc.math cimport sqrt, sqrtf, pow, isfinite
from libc.string cimport memcpy

cdef extern from "Python.h":
    int PyErr_CheckSignals()    # declared without `except`: we look at the result ourselves

cdef enum:                      # status returned with an epoch's figures
    DONE = 0
    DIVERGED = 1
    INTERRUPTED = 2

cdef enum:
    SGD = 0
    ADAM = 1

STATUS_DONE, STATUS_DIVERGED, STATUS_INTERRUPTED = DONE, DIVERGED, INTERRUPTED
SOLVER_CODES = {"sgd": SGD, "adam": ADAM}

cdef volatile int _stop_requested = 0   # volatile: loops off the main thread poll it, GIL-free
cdef unsigned long _main_thread = threading.main_thread().ident


def request_stop():
    """Ask running loops to stop at the end of the current sample or batch (a SIGINT handler's job)."""
    global _stop_requested
    _stop_requested = 1


def clear_stop():
    global _stop_requested
    _stop_requested = 0


cdef inline bint _should_stop(bint main_thread) noexcept nogil:
    """Run Python's signal handlers (they may call request_stop, or raise) and report.
    Only the main thread ever runs them: other threads just read the flag, without
    taking the GIL from threads that need it (several fits at once)."""
    cdef int rc = 0
    if main_thread:
        with gil:
            rc = PyErr_CheckSignals()
    return rc != 0 or _stop_requested


cdef inline bint _in_main_thread() noexcept:
    return PyThread_get_thread_ident() == _main_thread


cdef int _raise_pending() except -1:
    """Propagate the exception a signal handler left pending."""
    return -1


def aligned_layout(const int[::1] sizes, int itemsize):
    """Offsets and row strides of a copy of the parameters whose every weight row starts
    64 bytes after the copy's start, so on a 64-byte boundary when the copy is: each row
    padded to a multiple of 64 bytes, bias just before its weights. Online training
    updates every weight of a layer each sample, and full-width stores of unaligned rows
    each straddle two cache lines. Returns (offsets, strides, elements the copy needs)."""
    cdef int lanes = 64 // itemsize, l
    cdef Py_ssize_t pos = lanes - 1          # the first row's weights at `lanes`
    offsets = np.empty(sizes.shape[0] - 1, dtype=np.intp)
    strides = np.empty(sizes.shape[0] - 1, dtype=np.intc)
    for l in range(sizes.shape[0] - 1):
        offsets[l] = pos
        strides[l] = (sizes[l] + 1 + lanes - 1) // lanes * lanes
        pos += <Py_ssize_t>strides[l] * sizes[l + 1]
    return offsets, strides, pos


cdef void copy_layout(const Net* src_net, const floating* src, const Net* dst_net,
                      floating* dst) noexcept nogil:
    """Copy every Theta(l) from src, laid out as src_net says (offsets, row strides), to
    dst, laid out as dst_net says."""
    cdef int l, j
    for l in range(src_net.n_layers - 1):
        for j in range(src_net.sizes[l + 1]):
            memcpy(dst + dst_net.offsets[l] + <Py_ssize_t>j * row_stride(dst_net, l),
                   src + src_net.offsets[l] + <Py_ssize_t>j * row_stride(src_net, l),
                   (src_net.sizes[l] + 1) * sizeof(floating))


def online_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
                 floating[::1] params, const Py_ssize_t[::1] order,
                 const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
                 int loss, double step, double decay, Py_ssize_t check_every):
    """For each sample i in order: Theta -= step * w_i dloss_i/dTheta after Theta_W *= decay.

    With J's per-sample gradient (m/W) w_i dloss_i + (lam/W) Theta (W = sum of weights),
    step = rate * m / W and decay = 1 - rate * lam / W (bias never decayed).
    Returns (sum of the samples' weighted losses before their update, samples done, status).
    """
    cdef Net flat = make_net(sizes, offsets, acts, loss)
    cdef Net net = flat         # the same network, on the copy with aligned rows below
    cdef Py_ssize_t n = order.shape[0], k, i, since_check = 0
    cdef const floating* wp = &w[0] if w.shape[0] > 0 else NULL
    dtype = np.asarray(params).dtype
    cdef floating[::1] ws = np.zeros(workspace_size(&net, 1), dtype=dtype)
    cdef floating[::1] deferred = np.zeros(sizes[1], dtype=dtype)
    cdef Pending pending = Pending(False, &deferred[0], NULL, 1.0)
    if CB_OWN_GEMM:             # defer each first-layer update to the next forward pass
        net.pending = &pending
    # the epoch runs on a copy with aligned rows (aligned_layout), copied back at its end
    padded_offsets, padded_ldt, size = aligned_layout(sizes, dtype.itemsize)
    cdef Py_ssize_t[::1] p_offsets = padded_offsets
    cdef int[::1] p_ldt = padded_ldt
    cdef floating[::1] buf = np.zeros(size + 64 // dtype.itemsize, dtype=dtype)
    cdef floating* theta = &buf[(-<Py_ssize_t>&buf[0]) % 64 // dtype.itemsize]
    cdef double total = 0, sample_loss
    cdef int status = DONE
    cdef bint main_thread = _in_main_thread()
    net.offsets = &p_offsets[0]
    net.ldt = &p_ldt[0]
    with nogil:
        copy_layout(&flat, &params[0], &net, theta)
        for k in range(n):
            i = order[k]
            sample_loss = block(&net, &X[i, 0], &Y[i, 0], wp + i if wp != NULL else NULL, 1,
                                theta, <floating*>NULL, theta,
                                <floating>(-step), <floating>decay, &ws[0], 1)
            if not isfinite(sample_loss):
                status = DIVERGED
                break
            total += sample_loss
            since_check += 1
            if since_check >= check_every:
                since_check = 0
                if _should_stop(main_thread):
                    status = INTERRUPTED
                    k += 1
                    break
        else:
            k = n
        flush_pending(&net, theta)
        copy_layout(&net, theta, &flat, &params[0])
    if status == INTERRUPTED and not _stop_requested:
        _raise_pending()
    return total, k, status


cdef struct Step:               # one SGD or Adam update's constants
    int solver
    bint nesterov
    double rate                 # SGD: the learning rate; Adam: this step's lr_t
    double momentum
    double beta1, beta2, epsilon


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 updates in float lanes (libm's sqrt would widen them to double)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void _step_run(floating* p, const floating* grad, floating* s1, floating* s2,
                           Py_ssize_t n, floating inv, floating r, const Step* st) noexcept nogil:
    """The update of n contiguous parameters from g = grad * inv + r * p (p before it)."""
    cdef Py_ssize_t k
    cdef floating g, v
    cdef floating lr = <floating>st.rate, mu = <floating>st.momentum
    cdef floating b1 = <floating>st.beta1, b2 = <floating>st.beta2, eps = <floating>st.epsilon
    cdef floating c1 = 1 - b1, c2 = 1 - b2     # typed: a literal 1 would widen float32 to double
    # one branch-free loop per case, so that each vectorizes
    if st.solver == ADAM:
        for k in range(n):
            g = grad[k] * inv + r * p[k]
            s1[k] = b1 * s1[k] + c1 * g
            s2[k] = b2 * s2[k] + c2 * g * g
            p[k] -= lr * s1[k] / (_sqrt(s2[k]) + eps)
    elif st.nesterov:
        for k in range(n):
            g = grad[k] * inv + r * p[k]
            v = mu * s1[k] - lr * g
            s1[k] = v
            p[k] += mu * v - lr * g
    else:
        for k in range(n):
            g = grad[k] * inv + r * p[k]
            v = mu * s1[k] - lr * g
            s1[k] = v
            p[k] += v


cdef double update(const Net* net, floating* params, const floating* grad, floating* s1,
                   floating* s2, double loss_norm, double reg, const Step* st) noexcept nogil:
    """One SGD or Adam step on g = grad / loss_norm + reg * W (bias column unregularized), in
    a single pass over parameters, gradient and state. Returns reg/2 sum W^2, from W before
    the step (the batch's regularization cost)."""
    cdef int l, j, ldt, L = net.n_layers
    cdef Py_ssize_t base
    cdef Py_ssize_t P = net.offsets[L - 2] + <Py_ssize_t>net.sizes[L - 1] * (net.sizes[L - 2] + 1)
    cdef floating inv = <floating>(1.0 / loss_norm), r = <floating>reg
    cdef double sumsq = 0
    if reg == 0:                             # nothing to tell bias from weights: one flat run
        _step_run(params, grad, s1, s2, P, inv, 0, st)
        return 0
    for l in range(L - 1):                   # Theta(l) row by row: the bias, then the weights
        ldt = net.sizes[l] + 1
        for j in range(net.sizes[l + 1]):
            base = net.offsets[l] + <Py_ssize_t>j * ldt
            sumsq += _sumsq(params + base + 1, ldt - 1)
            _step_run(params + base, grad + base, s1 + base, s2 + base, 1, inv, 0, st)
            _step_run(params + base + 1, grad + base + 1, s1 + base + 1, s2 + base + 1,
                      ldt - 1, inv, r, st)
    return 0.5 * reg * sumsq


def reg_cost(const floating[::1] params, const int[::1] sizes, const Py_ssize_t[::1] offsets,
             const int[::1] acts, double reg):
    """reg/2 * the sum of the squared weights (bias column excluded)."""
    cdef Net net = make_net(sizes, offsets, acts, CROSS_ENTROPY)
    return regularize(&net, &params[0], <floating*>NULL, 1.0, reg)


def minibatch_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
                    floating[::1] params, const Py_ssize_t[::1] order, int batch_size,
                    const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
                    int loss, double scale, double reg,
                    int solver, double rate, double momentum, bint nesterov,
                    double beta1, double beta2, double epsilon, long long adam_t,
                    floating[::1] state1, floating[::1] state2, Py_ssize_t check_every,
                    int block_rows=256, int n_threads=1):
    """One epoch of mini-batches in the given sample order.

    A batch's gradient is g = scale * (1/b) sum_i w_i dloss_i + reg * Theta (bias
    unregularized), with scale = m / W and reg = lam / W, so that it estimates the
    gradient of the full-data J (DESIGN.md section 1). Then:
      SGD:  v = momentum v - rate g;  Theta += v  (Nesterov: Theta += momentum v - rate g)
      Adam: moments m, v; Theta -= rate sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + epsilon)
    state1/state2 hold v (SGD) or the two moments (Adam) across epochs. A batch's rows run
    in blocks of block_rows, which n_threads threads could share out as cost_grad's do;
    fit keeps one (a thread team a batch was 90x slower with the cores busy elsewhere).
    Returns (sum over batches of b * batch cost, samples done, status, adam_t).
    """
    if order.shape[0] == 0:
        return 0.0, 0, DONE, adam_t
    cdef Net net = make_net(sizes, offsets, acts, loss)
    cdef Py_ssize_t n = order.shape[0], P = params.shape[0], start, k, j
    cdef int nX = X.shape[1], nY = Y.shape[1]
    cdef int b = min(batch_size, <int>n), nb, nt_b
    cdef int mb_max = min(b, block_rows)
    cdef int nt = max(1, min(n_threads, (b + mb_max - 1) // mb_max))
    dtype = np.asarray(params).dtype
    cdef floating[:, ::1] Xb = np.zeros((b, nX), dtype=dtype)
    cdef floating[:, ::1] Yb = np.zeros((b, nY), dtype=dtype)
    cdef floating[::1] wb = np.ones(b, dtype=dtype)
    cdef floating[::1] grad = np.zeros(P, dtype=dtype)
    cdef Py_ssize_t ws_size = workspace_size(&net, mb_max)
    cdef floating[::1] ws = np.zeros(nt * ws_size, dtype=dtype)
    cdef floating[::1] tgrad = np.zeros(max(1, (nt - 1) * P), dtype=dtype)
    cdef double[::1] losses = np.zeros(nt)
    cdef floating[::1] wt = np.empty(transposed_size(&net), dtype=dtype)
    cdef bint weighted = w.shape[0] > 0
    cdef double total = 0, batch_loss, norm
    cdef Step st = Step(solver, nesterov, rate, momentum, beta1, beta2, epsilon)
    cdef int status = DONE
    cdef Py_ssize_t since_check = 0
    cdef bint main_thread = _in_main_thread()
    start = 0
    with nogil:
        while start < n:
            nb = <int>min(<Py_ssize_t>b, n - start)
            for k in range(nb):       # gather the batch: one copy of its rows
                j = order[start + k]
                memcpy(&Xb[k, 0], &X[j, 0], nX * sizeof(floating))
                memcpy(&Yb[k, 0], &Y[j, 0], nY * sizeof(floating))
                if weighted:
                    wb[k] = w[j]
            pack_transposed(&net, &params[0], &wt[0], mb_max)   # W^T for our products
            nt_b = min(nt, (nb + mb_max - 1) // mb_max)     # a chunk a thread
            batch_loss = rows_cost_grad(&net, &Xb[0, 0], &Yb[0, 0], &wb[0], nb, &params[0],
                                        &grad[0], P, &tgrad[0], &ws[0], ws_size, &losses[0],
                                        mb_max, nt_b, nt_b)
            if not isfinite(batch_loss):     # stop before updating from a non-finite cost
                status = DIVERGED
                break
            if solver == ADAM:
                adam_t += 1
                st.rate = (rate * sqrt(1 - pow(beta2, <double>adam_t))
                           / (1 - pow(beta1, <double>adam_t)))
            norm = nb / scale
            batch_loss = batch_loss / norm + update(&net, &params[0], &grad[0], &state1[0],
                                                    &state2[0], norm, reg, &st)
            if not isfinite(batch_loss):     # only W^2 can overflow here; fit restores W
                status = DIVERGED
                break
            total += nb * batch_loss
            start += nb
            since_check += nb
            if since_check >= check_every:
                since_check = 0
                if _should_stop(main_thread):
                    status = INTERRUPTED
                    break
    if status == INTERRUPTED and not _stop_requested:
        _raise_pending()
    return total, start, status, adam_t


def rprop_update(floating[::1] params, const floating[::1] grad, floating[::1] prev_grad,
                 floating[::1] steps, double increase, double decrease,
                 double step_min, double step_max):
    """One iRPROP- step (Igel & Huesken 2000), per parameter, from the full-batch gradient:
    the step grows while the gradient keeps its sign and shrinks when it flips; after a
    flip that parameter does not move and its remembered gradient is zeroed."""
    cdef Py_ssize_t k, P = params.shape[0]
    cdef floating g, s
    with nogil:
        for k in range(P):
            g = grad[k]
            s = g * prev_grad[k]
            if s > 0:
                steps[k] = min(steps[k] * <floating>increase, <floating>step_max)
            elif s < 0:
                steps[k] = max(steps[k] * <floating>decrease, <floating>step_min)
                g = 0
            if g > 0:
                params[k] -= steps[k]
            elif g < 0:
                params[k] += steps[k]
            prev_grad[k] = g
