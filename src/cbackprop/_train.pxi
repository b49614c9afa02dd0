# Compiled training loops: a whole epoch runs in one `nogil` call.
#
# - online_epoch: the derivation's stochastic gradient descent, one sample at a time,
#   Theta updated in place by BLAS level 2 (ger) right after that sample's deltas;
# - minibatch_epoch: batches gathered from shuffled indices into one reused buffer,
#   their gradient by the blocked level-3 kernel, then an SGD (momentum, Nesterov) or
#   Adam update of the flat parameter vector;
# - rprop_update: one iRPROP- step from a full-batch gradient.
#
# Every loop looks for signals (Ctrl-C) every `check_every` samples (the caller picks
# about a millisecond of work) by taking the GIL briefly, and stops before an update
# whose cost is not finite.

from libc.math cimport sqrt, pow, isfinite
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

cdef int _stop_requested = 0


def request_stop():
    """Ask running loops to stop at the end of the current sample or batch (a SIGINT handler's job)."""
    global _stop_requested
    _stop_requested = 1


def clear_stop():
    global _stop_requested
    _stop_requested = 0


cdef inline bint _should_stop() noexcept nogil:
    """Run Python's signal handlers (they may call request_stop, or raise) and report."""
    cdef int rc
    with gil:
        rc = PyErr_CheckSignals()
    return rc != 0 or _stop_requested


cdef int _raise_pending() except -1:
    """Propagate the exception a signal handler left pending."""
    return -1


def online_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
                 floating[::1] params, const Py_ssize_t[::1] order,
                 const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
                 int loss, double step, double decay, Py_ssize_t check_every):
    """For each sample i in order: Theta -= step * w_i dloss_i/dTheta after Theta_W *= decay.

    With J's per-sample gradient (m/W) w_i dloss_i + (lam/W) Theta (W = sum of weights),
    step = rate * m / W and decay = 1 - rate * lam / W (bias never decayed).
    Returns (sum of the samples' weighted losses before their update, samples done, status).
    """
    cdef Net net = make_net(sizes, offsets, acts, loss)
    cdef Py_ssize_t n = order.shape[0], k, i, since_check = 0
    cdef const floating* wp = &w[0] if w.shape[0] > 0 else NULL
    cdef floating[::1] ws = np.zeros(workspace_size(&net, 1), dtype=np.asarray(params).dtype)
    cdef double total = 0, sample_loss
    cdef int status = DONE
    cdef bint pending = False
    with nogil:
        for k in range(n):
            i = order[k]
            sample_loss = block(&net, &X[i, 0], &Y[i, 0], wp + i if wp != NULL else NULL, 1,
                                &params[0], <floating*>NULL, &params[0],
                                <floating>(-step), <floating>decay, &ws[0], 1)
            if not isfinite(sample_loss):
                status = DIVERGED
                break
            total += sample_loss
            since_check += 1
            if since_check >= check_every:
                since_check = 0
                if _should_stop():
                    status = INTERRUPTED
                    k += 1
                    break
        else:
            k = n
    if status == INTERRUPTED and not _stop_requested:
        _raise_pending()
    return total, k, status


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
    cdef Net net = make_net(sizes, offsets, acts, loss)
    cdef Py_ssize_t n = order.shape[0], P = params.shape[0], start, k, j
    cdef int nX = X.shape[1], nY = Y.shape[1]
    cdef int b = min(batch_size, <int>n), nb
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
    cdef bint weighted = w.shape[0] > 0
    cdef double total = 0, batch_loss, norm, lr_t
    cdef floating g, mu = <floating>momentum, lr = <floating>rate, step
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2, eps = <floating>epsilon
    cdef int status = DONE
    cdef Py_ssize_t since_check = 0
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
            batch_loss = rows_cost_grad(&net, &Xb[0, 0], &Yb[0, 0], &wb[0], nb, &params[0],
                                        &grad[0], P, &tgrad[0], &ws[0], ws_size, &losses[0],
                                        mb_max, min(nt, (nb + mb_max - 1) // mb_max))
            norm = nb / scale
            batch_loss = batch_loss / norm + regularize(&net, &params[0], &grad[0], norm, reg)
            if not isfinite(batch_loss):
                status = DIVERGED
                break
            total += nb * batch_loss
            if solver == SGD:
                for k in range(P):
                    state1[k] = mu * state1[k] - lr * grad[k]
                    if nesterov:
                        params[k] += mu * state1[k] - lr * grad[k]
                    else:
                        params[k] += state1[k]
            else:
                adam_t += 1
                lr_t = rate * sqrt(1 - pow(beta2, <double>adam_t)) / (1 - pow(beta1, <double>adam_t))
                step = <floating>lr_t
                for k in range(P):
                    g = grad[k]
                    state1[k] = b1 * state1[k] + (1 - b1) * g
                    state2[k] = b2 * state2[k] + (1 - b2) * g * g
                    params[k] -= step * state1[k] / (sqrt(state2[k]) + eps)
            start += nb
            since_check += nb
            if since_check >= check_every:
                since_check = 0
                if _should_stop():
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
