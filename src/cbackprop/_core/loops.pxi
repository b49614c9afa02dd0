# Compiled training loops: a whole epoch runs in one `nogil` call.
#
# - online_epoch: the derivation's stochastic gradient descent, one sample at a time,
#   Theta updated in place from that sample's deltas (kernels.pxi: online_sample);
# - minibatch_epoch: batches gathered from shuffled indices into one reused buffer, their
#   gradient by the row blocks (kernels.pxi: gradient_block), then an SGD (momentum,
#   Nesterov) or Adam update of the flat parameter vector with the regularization folded
#   into it (one pass), as a StepRule says, advancing a StepState;
# - rprop_update: one iRPROP- step from a full-batch gradient.
# Either epoch takes a Dropout (kernels.pxi: Drop), its masks drawn per sample by a
# counter-based generator: the same bits for any thread count or block size.
#
# Every loop looks for signals (Ctrl-C) every `check_every` samples (the caller picks
# about a millisecond of work), in the main thread by taking the GIL briefly, and stops
# before an update whose cost is not finite. A stop request belongs to one fit: a fit's
# StopFlag, handed to the loops (`stop`), or, for loops in the main thread that are handed
# none, the flag of the main thread's fit (interrupt.py registers it: the SIGINT handler,
# installed in the main thread only, sets it). A Ctrl-C never ends a fit running in
# another thread. Like every entry point, each checks its buffers against the Layout before
# any nogil code.

import threading

from cpython.pythread cimport PyThread_get_thread_ident
from libc.math cimport sqrt, sqrtf, pow, isfinite
from libc.string cimport memcpy, memset

cdef extern from "Python.h":
    int PyErr_CheckSignals()    # declared without `except`: we look at the result ourselves
    void* PyErr_Occurred()

cdef enum:                      # status returned with an epoch's figures
    DONE = 0
    DIVERGED = 1
    INTERRUPTED = 2

cdef enum:                      # StepRule's solvers
    SGD = 0
    ADAM = 1

STATUS_DONE, STATUS_DIVERGED, STATUS_INTERRUPTED = DONE, DIVERGED, INTERRUPTED
_SOLVER_CODES = {"sgd": SGD, "adam": ADAM}

# request_stop's flag: every loop, in any thread, stops while it is set (for programs and
# tests that stop loops they did not start; signals never set it).
cdef volatile int _stop_requested = 0
cdef unsigned long _main_thread = threading.main_thread().ident


@cython.final
@cython.auto_pickle(False)
cdef class StopFlag:
    """StopFlag(): one fit's stop request, which the epoch loops it is handed poll (without
    the GIL) every check_every samples. `requested` is True once set: by request() (a
    signal handler's job), or by a loop that stopped for request_stop()'s flag, which
    records it there."""
    cdef volatile int value     # volatile: loops read it, GIL-free, while another thread sets it

    @property
    def requested(self):
        return self.value != 0

    @requested.setter
    def requested(self, bint on):
        self.value = on

    def request(self):
        self.value = 1

    def __repr__(self):
        return f"StopFlag(requested={self.value != 0})"


cdef StopFlag _main_fit_flag = None     # the main thread's fit's, while it runs


def set_main_fit_flag(StopFlag flag):
    """Register the flag of the fit the main thread runs (None: none), which loops running
    in the main thread without a flag of their own obey; returns the previous one (fits
    nest: a callback may fit another network)."""
    global _main_fit_flag
    previous = _main_fit_flag
    _main_fit_flag = flag
    return previous


cdef inline StopFlag _flag_for(StopFlag stop, bint main_thread):
    """The flag a loop obeys: its own, else the main thread's fit's in the main thread."""
    if stop is None and main_thread:
        return _main_fit_flag
    return stop


def request_stop():
    """Ask every running loop, in every thread, to stop at the end of its current sample or
    batch, until clear_stop(). (Ctrl-C stops only the fit it interrupted: its StopFlag.)"""
    global _stop_requested
    _stop_requested = 1


def clear_stop():
    global _stop_requested
    _stop_requested = 0


cdef enum:                      # why a loop's check says stop
    GO_ON = 0
    STOP_FLAG = 1               # the fit's StopFlag, or request_stop's
    SIGNAL_ERROR = 2            # a signal handler raised: its exception is pending


cdef inline int _should_stop(bint main_thread, volatile int* flag) noexcept nogil:
    """Run Python's signal handlers (they may set the fit's flag, or raise) and report.
    Only the main thread ever runs them: other threads just read the flags, without
    taking the GIL from threads that need it (several fits at once). A stop for
    request_stop's flag is recorded in the fit's flag, so that the fit knows it stopped."""
    cdef int rc = 0
    if main_thread:
        with gil:
            rc = PyErr_CheckSignals()
    if rc != 0:
        return SIGNAL_ERROR
    if _stop_requested:
        if flag != NULL:
            flag[0] = 1
        return STOP_FLAG
    if flag != NULL and flag[0]:
        return STOP_FLAG
    return GO_ON


cdef inline bint _in_main_thread() noexcept:
    return PyThread_get_thread_ident() == _main_thread


cdef inline volatile int* _flag_of(StopFlag stop) noexcept:
    return &stop.value if stop is not None else NULL


cdef int _raise_pending() except -1:
    """Propagate the exception a signal handler raised (PyErr_CheckSignals left it set on
    this thread); never return an error without one."""
    if PyErr_Occurred() == NULL:
        raise SystemError("cbackprop: a signal handler failed without an exception")
    return -1


cdef int _check_samples(Layout layout, Py_ssize_t m, Py_ssize_t y_rows,
                        Py_ssize_t y_cols, Py_ssize_t n_w, Py_ssize_t n_params,
                        const Py_ssize_t[::1] order, Py_ssize_t check_every) except -1:
    """The checks the two epochs share, X's rows_of aside: Y, w, params, order,
    check_every."""
    check_outputs(layout, "Y", y_rows, y_cols, m)
    check_weights(n_w, m)
    check_params(layout, "params", n_params)
    check_order(order, m)
    check_positive("check_every", check_every)
    return 0


# ------------------------------------------------------------------------ dropout

@cython.final
@cython.auto_pickle(False)
cdef class Dropout:
    """Dropout(layout, rates, seed, epoch=0): the inverted dropout online_epoch and
    minibatch_epoch apply when handed one (kernels.pxi: Drop). rates: one per layer but the
    output, the input first, each in [0, 1) (0: that layer's units always kept); seed: an
    int in [0, 2**64); epoch (settable): whose masks the next epoch draws."""
    cdef readonly tuple rates
    cdef readonly object seed
    cdef public long long epoch
    cdef readonly object thresholds, scales      # uint64 and float64 arrays, a layer each
    cdef unsigned long long seed_value

    def __init__(self, Layout layout, rates, seed, long long epoch=0):
        rates = tuple(float(p) for p in rates)
        if len(rates) != len(layout.sizes) - 1:
            raise ValueError(f"Dropout: {len(layout.sizes) - 1} rates needed (the input and "
                             f"each hidden layer); got {len(rates)}")
        if not all(0 <= p < 1 for p in rates):
            raise ValueError(f"Dropout: every rate must be in [0, 1); got {list(rates)}")
        if not 0 <= seed < 2 ** 64:
            raise ValueError(f"Dropout: seed must be in [0, 2**64); got {seed!r}")
        self.rates, self.seed, self.seed_value, self.epoch = rates, seed, seed, epoch
        # kept where the top 32 bits of a unit's hash are >= p 2^32, rounded down
        self.thresholds = np.array([int(p * 2 ** 32) for p in rates], dtype=np.uint64)
        self.scales = np.array([1 / (1 - p) for p in rates])

    def __repr__(self):
        return f"Dropout(rates={list(self.rates)}, seed={self.seed!r}, epoch={self.epoch})"


cdef int _set_drop(Layout layout, Dropout dropout, Drop* d, floating[::1] ws,
                   floating[::1] input, floating[::1] gains, floating[::1] scratch,
                   bint sparse) except -1:
    """d for one epoch of dropout: its key, the layers' thresholds, its buffers (input: a
    block's dropped rows, gains: one factor per workspace activation, scratch: a block's
    units' bits)."""
    cdef const unsigned long long[::1] thresholds = dropout.thresholds
    cdef const double[::1] scales = dropout.scales
    if len(dropout.rates) != len(layout.sizes) - 1:
        raise ValueError(f"dropout has {len(dropout.rates)} rates; the network needs "
                         f"{len(layout.sizes) - 1}")
    if sparse and dropout.rates[0] > 0:
        raise ValueError("input dropout of sparse X is not supported (the first layer reads "
                         "only its stored entries); dropout of hidden layers is")
    d.epoch_key = mix64(mix64(dropout.seed_value) ^ <unsigned long long>dropout.epoch)
    d.ids = NULL
    d.thresholds = &thresholds[0]
    d.scales = &scales[0]
    d.ws = &ws[0]
    d.gains = &gains[0]
    d.input = &input[0]
    d.scratch = &scratch[0]
    return 0


def _drop_arrays(Layout layout, Dropout dropout, int mb_max, dtype, bint two_rows=False):
    """The buffers _set_drop takes: (input, gains, scratch) for blocks of mb_max rows, or
    with two_rows for online_sample's two dropped input rows (each on a 64-byte boundary)."""
    s1 = layout.sizes[0]
    n_input = 2 * packed_stride(s1, np.dtype(dtype).itemsize) if two_rows else mb_max * s1
    return (aligned_zeros(n_input if dropout.rates[0] > 0 else 1, dtype),
            np.zeros(max(1, mb_max * layout.units), dtype=dtype),
            np.zeros(mb_max * max(s1, layout.widest) + DROP_PAD, dtype=dtype))


def dropout_keep(Dropout dropout, const Py_ssize_t[::1] ids, int layer, int n_units):
    """The masks the epochs draw: (len(ids), n_units) uint8, 1 where unit j of `layer`
    (0: the input) of sample ids[i] is kept in epoch dropout.epoch (for tests and the
    trace; reference.dropout_keep is the NumPy twin)."""
    if not 0 <= layer < len(dropout.rates):
        raise ValueError(f"layer must be in 0..{len(dropout.rates) - 1}; got {layer}")
    check_positive("n_units", n_units)
    cdef const unsigned long long[::1] thresholds = dropout.thresholds
    cdef unsigned int thr = <unsigned int>thresholds[layer]
    cdef unsigned long long key = mix64(mix64(dropout.seed_value)
                                        ^ <unsigned long long>dropout.epoch)
    cdef unsigned char[:, ::1] out = np.zeros((ids.shape[0], n_units), dtype=np.uint8)
    cdef Py_ssize_t i
    cdef int j
    cdef unsigned int row
    for i in range(ids.shape[0]):
        row = drop_row_key(key, ids[i], layer)
        for j in range(n_units):
            out[i, j] = drop_unit_bits(row, j) >= thr
    return np.asarray(out)


# ------------------------------------------------------------------ online epochs

cdef void _copy_thetas(const Net* net, const floating* src, const Py_ssize_t* src_offsets,
                       const int* src_strides, floating* dst, const Py_ssize_t* dst_offsets,
                       const int* dst_strides) noexcept nogil:
    """Copy every Theta(l), row by row, between two layouts of the parameters (where each
    starts, and its row stride)."""
    cdef int l, j
    for l in range(net.n_layers - 1):
        for j in range(net.sizes[l + 1]):
            memcpy(dst + dst_offsets[l] + <Py_ssize_t>j * dst_strides[l],
                   src + src_offsets[l] + <Py_ssize_t>j * src_strides[l],
                   (net.sizes[l] + 1) * sizeof(floating))


def online_epoch(Layout layout, X, const floating[:, ::1] Y, const floating[::1] w,
                 floating[::1] params, const Py_ssize_t[::1] order, double step,
                 double decay, Py_ssize_t check_every, StopFlag stop=None,
                 Dropout dropout=None):
    """For each sample i in order: Theta -= step * w_i dloss_i/dTheta after Theta_W *= decay.

    With J's per-sample gradient (m/W) w_i dloss_i + (lam/W) Theta (W = sum of weights),
    step = rate * m / W and decay = 1 - rate * lam / W (bias never decayed).
    stop: the fit's StopFlag (None: in the main thread, the main thread's fit's; besides
    it, request_stop's flag and, in the main thread, a signal handler that raises stop the
    epoch). X: a C-order matrix of params' dtype, or CSR (rows.pxi). dropout:
    each sample's pass through its masks of dropout.epoch (None: the full network).
    Returns (sum of the samples' weighted losses before their update, samples done, status).
    """
    cdef const Net* net = &layout.net
    cdef Rows rows = rows_of(layout, X, params)
    _check_samples(layout, rows.m, Y.shape[0], Y.shape[1], w.shape[0], params.shape[0],
                   order, check_every)
    cdef bint sparse = rows.indptr != NULL
    cdef Py_ssize_t n = order.shape[0], k, i, since_check = 0
    cdef const floating* wp = &w[0] if w.shape[0] > 0 else NULL
    dtype = np.asarray(params).dtype
    cdef floating[::1] ws = np.zeros(workspace_size(net, 1), dtype=dtype)
    cdef floating[::1] deferred = np.zeros(net.sizes[1], dtype=dtype)
    # the epoch runs on a copy with aligned rows (Layout.aligned), copied back at its end
    padded_offsets, padded_strides, size = layout.aligned(dtype.itemsize)
    cdef Py_ssize_t[::1] p_offsets = padded_offsets
    cdef int[::1] p_strides = padded_strides
    cdef floating[::1] buf = aligned_zeros(size, dtype)
    cdef floating* theta = &buf[0]
    # CSR rows: W(1) kept transposed, as scale * V (kernels.pxi: _sparse_first_update)
    cdef floating[::1] v1t = np.empty(net.sizes[0] * net.sizes[1] if sparse else 1,
                                      dtype=dtype)
    cdef Drop drop
    cdef floating[::1] drop_input, drop_gains, drop_scratch
    if dropout is not None:
        drop_input, drop_gains, drop_scratch = _drop_arrays(layout, dropout, 1, dtype, True)
        _set_drop(layout, dropout, &drop, ws, drop_input, drop_gains, drop_scratch, sparse)
        rows.drop = &drop
    cdef Online o
    o.offsets = &p_offsets[0]
    o.strides = &p_strides[0]
    # defer each first-layer update to the next forward (with input dropout, the dropped
    # rows take turns in two buffers: online_sample)
    o.defer = CB_OWN_GEMM and not sparse
    o.pending = Pending(False, &deferred[0], NULL, 1.0)
    o.half = 0
    o.v1t = &v1t[0] if sparse else NULL
    o.scale = 1
    cdef double total = 0, sample_loss
    cdef int status = DONE, why = GO_ON
    cdef bint main_thread = _in_main_thread()
    stop = _flag_for(stop, main_thread)
    cdef volatile int* flag = _flag_of(stop)
    with nogil:
        _copy_thetas(net, &params[0], net.offsets, net.strides, theta, o.offsets, o.strides)
        if sparse:
            pack_first(net, &params[0], net.offsets, net.strides, 1, &v1t[0], 1)
        for k in range(n):
            i = order[k]
            drop.ids = &order[k]
            sample_loss = online_sample(net, &o, &rows, i, &Y[i, 0],
                                        wp + i if wp != NULL else NULL, theta,
                                        <floating>(-step), <floating>decay, &ws[0])
            if not isfinite(sample_loss):
                status = DIVERGED
                break
            total += sample_loss
            since_check += 1
            if since_check >= check_every:
                since_check = 0
                why = _should_stop(main_thread, flag)
                if why != GO_ON:
                    status = INTERRUPTED
                    k += 1
                    break
        else:
            k = n
        flush_pending(net, &o, theta)
        if sparse:
            unpack_first(net, &v1t[0], <floating>o.scale, theta, o.offsets, o.strides)
        _copy_thetas(net, theta, o.offsets, o.strides, &params[0], net.offsets, net.strides)
    if why == SIGNAL_ERROR:
        _raise_pending()
    return total, k, status


# ------------------------------------------------------------ mini-batch epochs

cdef struct Step:               # one SGD or Adam update's constants
    int solver
    bint nesterov
    double rate                 # SGD: the learning rate; Adam: this step's lr_t
    double momentum
    double beta1, beta2, epsilon
    double clip_norm            # 0: no clipping
    double keep                 # 1 - learning rate * weight_decay: the weights' decoupled decay


@cython.final
@cython.auto_pickle(False)
cdef class StepRule:
    """StepRule(solver, rate, momentum=0, nesterov=False, beta1=0.9, beta2=0.999,
    epsilon=1e-8, clip_norm=0, weight_decay=0): how minibatch_epoch steps from a batch's
    gradient g.

      clip_norm > 0: g *= min(1, clip_norm / ||g||), ||g|| the 2-norm of the whole
                     gradient (every Theta, biases and lam's term included);
      'sgd':  v = momentum v - rate g;  Theta += v  (nesterov: Theta += momentum v - rate g)
      'adam': moments m, v; Theta -= rate sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + epsilon)
      weight_decay: the weights (never the biases) first multiplied by
                     1 - rate * weight_decay (AdamW's decoupled decay; g is taken before it).

    Built once per fit; `rate` may change between epochs (a learning-rate schedule).
    """
    cdef readonly str solver
    cdef public double rate
    cdef readonly double momentum, beta1, beta2, epsilon, clip_norm, weight_decay
    cdef readonly bint nesterov
    cdef int code

    def __init__(self, str solver, double rate, double momentum=0.0, bint nesterov=False,
                 double beta1=0.9, double beta2=0.999, double epsilon=1e-8,
                 double clip_norm=0.0, double weight_decay=0.0):
        if solver not in _SOLVER_CODES:
            raise ValueError(f"StepRule: solver must be one of {', '.join(_SOLVER_CODES)}; "
                             f"got {solver!r}")
        if not (clip_norm >= 0 and weight_decay >= 0):
            raise ValueError(f"StepRule: clip_norm and weight_decay must be >= 0; got "
                             f"{clip_norm!r}, {weight_decay!r}")
        self.solver, self.code = solver, _SOLVER_CODES[solver]
        self.rate, self.momentum, self.nesterov = rate, momentum, nesterov
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.clip_norm, self.weight_decay = clip_norm, weight_decay

    def __repr__(self):
        return (f"StepRule({self.solver!r}, rate={self.rate!r}, momentum={self.momentum!r}, "
                f"nesterov={self.nesterov!r}, beta1={self.beta1!r}, beta2={self.beta2!r}, "
                f"epsilon={self.epsilon!r}, clip_norm={self.clip_norm!r}, "
                f"weight_decay={self.weight_decay!r})")


@cython.final
@cython.auto_pickle(False)
cdef class StepState:
    """StepState(m1, m2, t=0): an optimizer's state across epochs, which minibatch_epoch
    advances in place. m1, m2: arrays of one element per parameter, of the parameters'
    dtype (SGD: the velocity in m1, m2 unused; Adam: the first and second moments);
    t: Adam's step count."""
    cdef readonly object m1, m2
    cdef public long long t

    def __init__(self, m1, m2, long long t=0):
        if not (isinstance(m1, np.ndarray) and isinstance(m2, np.ndarray)):
            raise TypeError("StepState: m1 and m2 must be NumPy arrays (minibatch_epoch "
                            "updates them in place)")
        self.m1, self.m2, self.t = m1, m2, t


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 updates in float lanes (libm's sqrt would widen them to double)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void _step_run(floating* p, const floating* grad, floating* s1, floating* s2,
                           Py_ssize_t n, floating inv, floating r, floating keep,
                           const Step* st) noexcept nogil:
    """The update of n contiguous parameters from g = grad * inv + r * p (p before it), p
    multiplied by keep (1 - rate * weight_decay: weights; 1: biases) before the step."""
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
            p[k] = keep * p[k] - lr * s1[k] / (_sqrt(s2[k]) + eps)
    elif st.nesterov:
        for k in range(n):
            g = grad[k] * inv + r * p[k]
            v = mu * s1[k] - lr * g
            s1[k] = v
            p[k] = keep * p[k] + (mu * v - lr * g)
    else:
        for k in range(n):
            g = grad[k] * inv + r * p[k]
            v = mu * s1[k] - lr * g
            s1[k] = v
            p[k] = keep * p[k] + v


cdef inline double _grad_sumsq(const floating* p, const floating* grad, Py_ssize_t n,
                               floating inv, floating r) noexcept nogil:
    """sum g^2 in double of g = grad * inv + r * p (_step_run's g), over 16 partial sums."""
    cdef double acc[16]
    cdef double total = 0, g
    cdef Py_ssize_t k = 0
    cdef int u
    for u in range(16):
        acc[u] = 0
    while k + 16 <= n:
        for u in range(16):
            g = grad[k + u] * inv + r * p[k + u]
            acc[u] += g * g
        k += 16
    while k < n:
        g = grad[k] * inv + r * p[k]
        total += g * g
        k += 1
    for u in range(16):
        total += acc[u]
    return total


cdef struct FirstApart:
    # A sparse epoch's W(1), kept transposed (s_1 x s_2, floating*) for the whole epoch:
    # the batches' forward pass reads it as it is, their gradient lands in g the same way,
    # and the step runs over the four in one contiguous pass, in parts of FIRST_PART
    # elements that nt threads share (a text model's W(1) is millions of weights: each
    # batch's step on them is most of the batch's time).
    void* w
    void* g
    void* m1
    void* m2
    double* sums                # each part's sum of squared weights (the parts' order: the
    int nt                      # same bits for any nt)


cdef Py_ssize_t FIRST_PART = 1 << 15
cdef Py_ssize_t FIRST_SPAN = 512       # a multiple of 16 (_dot_blocks), 4 x 4 KB in L1


cdef inline void _first_part(const FirstApart* first, Py_ssize_t c, Py_ssize_t n1,
                             floating inv, floating r, bint want_sums,
                             const Step* st) noexcept nogil:
    """The step of part c of the first layer's weights kept apart (update)."""
    cdef Py_ssize_t lo = c * FIRST_PART
    cdef Py_ssize_t n = min(FIRST_PART, n1 - lo), k = 0, span
    cdef floating* w = <floating*>first.w + lo
    cdef floating* g = <floating*>first.g + lo
    cdef double acc[16]
    cdef int u
    for u in range(16):
        acc[u] = 0
    # span by span while the four are in L1: the sum of squares (_sumsq's, the same bits),
    # the step and the gradient's zeroing, not three passes over the part (the step waits
    # on its division and square root: the sum's loads and the zeros' stores come free)
    while k < n:
        span = min(FIRST_SPAN, n - k)
        if want_sums:
            _dot_blocks(acc, w + k, w + k, span)
            if k + span == n:
                first.sums[c] = _dot_end(acc, w, w, n)
        _step_run(w + k, g + k, <floating*>first.m1 + lo + k, <floating*>first.m2 + lo + k,
                  span, inv, r, <floating>st.keep, st)
        memset(g + k, 0, span * sizeof(floating))
        k += span


cdef inline void _first_norm_part(const FirstApart* first, Py_ssize_t c, Py_ssize_t n1,
                                  floating inv, floating r) noexcept nogil:
    """Part c's share of the gradient's squared norm, into first.sums[c] (clip_norm)."""
    cdef Py_ssize_t lo = c * FIRST_PART
    first.sums[c] = _grad_sumsq(<floating*>first.w + lo, <floating*>first.g + lo,
                                min(FIRST_PART, n1 - lo), inv, r)


cdef double _grad_norm(const Net* net, const floating* params, const floating* grad,
                       floating inv, floating r, const FirstApart* first) noexcept nogil:
    """||g||, g = grad * inv + r * W (biases: grad * inv), the first layer's weights from
    first when kept apart (their parts' sums added in order: the same bits for any nt)."""
    cdef int l, j, ldt
    cdef Py_ssize_t base, c, n_parts, n1 = <Py_ssize_t>net.sizes[0] * net.sizes[1]
    cdef double total = 0
    if r == 0 and first == NULL:
        return sqrt(_grad_sumsq(params, grad, net.n_params, inv, 0))
    for l in range(net.n_layers - 1):
        ldt = net.strides[l]
        for j in range(net.sizes[l + 1]):
            base = net.offsets[l] + <Py_ssize_t>j * ldt
            total += _grad_sumsq(params + base, grad + base, 1, inv, 0)
            if not (l == 0 and first != NULL):
                total += _grad_sumsq(params + base + 1, grad + base + 1, ldt - 1, inv, r)
    if first != NULL:
        n_parts = (n1 + FIRST_PART - 1) // FIRST_PART
        if first.nt > 1 and n_parts > 1:
            for c in prange(n_parts, num_threads=first.nt, schedule="static"):
                _first_norm_part(first, c, n1, inv, r)
        else:
            for c in range(n_parts):
                _first_norm_part(first, c, n1, inv, r)
        for c in range(n_parts):
            total += first.sums[c]
    return sqrt(total)


cdef double update(const Net* net, floating* params, const floating* grad, floating* s1,
                   floating* s2, double loss_norm, double reg, const Step* st,
                   const FirstApart* first) noexcept nogil:
    """One SGD or Adam step on g = grad / loss_norm + reg * W (bias column unregularized), in
    a single pass over parameters, gradient and state (clip_norm: one pass before it for
    ||g||, then g scaled). Returns reg/2 sum W^2, from W before the step (the batch's
    regularization cost). first: W(1)'s weights kept apart (NULL: none), whose gradient is
    zeroed after the step."""
    cdef int l, j, ldt, L = net.n_layers
    cdef Py_ssize_t base, c, n_parts, n1 = <Py_ssize_t>net.sizes[0] * net.sizes[1]
    cdef floating inv = <floating>(1.0 / loss_norm), r = <floating>reg
    cdef floating keep = <floating>st.keep, one = 1
    cdef double sumsq = 0, norm
    if st.clip_norm > 0:
        norm = _grad_norm(net, params, grad, inv, r, first)
        if norm > st.clip_norm:              # scaling inv and r scales g
            inv = <floating>(inv * (st.clip_norm / norm))
            r = <floating>(r * (st.clip_norm / norm))
    if reg == 0 and st.keep == 1 and first == NULL:   # no bias apart from weights: one flat run
        _step_run(params, grad, s1, s2, net.n_params, inv, 0, one, st)
        return 0
    for l in range(L - 1):                   # Theta(l) row by row: the bias, then the weights
        ldt = net.strides[l]
        for j in range(net.sizes[l + 1]):
            base = net.offsets[l] + <Py_ssize_t>j * ldt
            _step_run(params + base, grad + base, s1 + base, s2 + base, 1, inv, 0, one, st)
            if l == 0 and first != NULL:
                continue
            if reg != 0:
                sumsq += _sumsq(params + base + 1, ldt - 1)
            _step_run(params + base + 1, grad + base + 1, s1 + base + 1, s2 + base + 1,
                      ldt - 1, inv, r, keep, st)
    if first != NULL:
        n_parts = (n1 + FIRST_PART - 1) // FIRST_PART
        if first.nt > 1 and n_parts > 1:
            for c in prange(n_parts, num_threads=first.nt, schedule="static"):
                _first_part(first, c, n1, inv, r, reg != 0, st)
        else:
            for c in range(n_parts):
                _first_part(first, c, n1, inv, r, reg != 0, st)
        if reg != 0:
            for c in range(n_parts):
                sumsq += first.sums[c]
    return 0.5 * reg * sumsq


# A batch's rows run in blocks of at most this many, on the calling thread: a thread team
# a batch costs more than it gains at batch sizes (benchmarks/README.md, "Measurements
# behind the code's choices"), and fit's Python threads can train networks side by side.
cdef int BATCH_BLOCK_ROWS = 256


def minibatch_epoch(Layout layout, StepRule rule, StepState state, X,
                    const floating[:, ::1] Y, const floating[::1] w, floating[::1] params,
                    const Py_ssize_t[::1] order, int batch_size, double scale, double reg,
                    Py_ssize_t check_every, StopFlag stop=None, int n_threads=1,
                    Dropout dropout=None, dict scratch=None):
    """One epoch of mini-batches of batch_size samples, in the given sample order.

    A batch's gradient is g = scale * (1/b) sum_i w_i dloss_i + reg * Theta (bias
    unregularized), with scale = m / W and reg = lam / W, so that it estimates the
    gradient of the full-data J (docs/design.md, "The math"); then the step `rule` says,
    from and to `state`. stop: the fit's StopFlag, as online_epoch takes it. X: a C-order
    matrix of params' dtype (a batch's rows gathered into one buffer), or CSR (a batch
    reads its rows where they are, through `order`; n_threads share each step of its
    first layer's weights, and a large batch's first-layer gather and scatter (rows.pxi:
    first_threads); the rest of the batch runs on this thread). dropout: each
    sample's pass through its masks of dropout.epoch (None: the full network). scratch:
    a dict kept from epoch to epoch of a fit (or None), holding CSR's transposed W(1)
    buffers (cost_grad's scratch).
    Returns (sum over batches of b * batch cost, samples done, status); state.t counts
    Adam's steps, including this epoch's.
    """
    cdef const Net* net = &layout.net
    cdef Rows rows = rows_of(layout, X, params)
    _check_samples(layout, rows.m, Y.shape[0], Y.shape[1], w.shape[0], params.shape[0],
                   order, check_every)
    check_positive("batch_size", batch_size)
    cdef bint sparse = rows.indptr != NULL
    cdef floating[::1] state1 = state.m1
    cdef floating[::1] state2 = state.m2
    check_params(layout, "state.m1", state1.shape[0])
    check_params(layout, "state.m2", state2.shape[0])
    if order.shape[0] == 0:
        return 0.0, 0, DONE
    cdef Py_ssize_t n = order.shape[0], P = net.n_params, start, k, j
    cdef int nX = net.sizes[0], nY = Y.shape[1]
    cdef int b = min(batch_size, <int>min(n, <Py_ssize_t>INT_MAX)), nb
    cdef int mb_max = min(b, BATCH_BLOCK_ROWS)
    dtype = np.asarray(params).dtype
    cdef floating[:, ::1] Xb = aligned_zeros((1 if sparse else b, nX), dtype)
    # CSR rows: W(1), its gradient and its state transposed for the epoch (FirstApart)
    cdef Py_ssize_t n1 = <Py_ssize_t>nX * net.sizes[1] if sparse else 1
    # (g1t is zero between the batches' steps, so also at the end of an epoch that ran to
    # the end: one that stopped is zeroed there; names of their own: cost_grad's g1t is
    # not kept zero. g1t from a line's boundary: csr_accumulate's threads write whole lines)
    cdef floating[::1] w1t = _reused(scratch, "step_w1t", n1, dtype, np.empty)
    cdef floating[::1] g1t = _reused(scratch, "step_g1t", n1, dtype, aligned_zeros)
    cdef floating[::1] m1t = _reused(scratch, "step_m1t", n1, dtype, np.empty)
    cdef floating[::1] m2t = _reused(scratch, "step_m2t", n1, dtype, np.empty)
    cdef double[::1] part_sums = np.zeros((n1 + FIRST_PART - 1) // FIRST_PART)
    cdef FirstApart first = FirstApart(&w1t[0], &g1t[0], &m1t[0], &m2t[0], &part_sums[0],
                                       1 if _forked else max(1, n_threads))
    cdef const floating* Xp = <const floating*>dense_at(&rows, 0, nX, sizeof(floating))
    cdef Rows batch = rows
    cdef floating[:, ::1] Yb = np.zeros((b, nY), dtype=dtype)
    cdef floating[::1] wb = np.ones(b, dtype=dtype)
    cdef floating[::1] grad = np.zeros(P, dtype=dtype)
    cdef floating[::1] ws = np.zeros(workspace_size(net, mb_max), dtype=dtype)
    cdef floating[::1] wt_buf = packed_buffer(layout, dtype)
    cdef const floating* wt
    cdef bint weighted = w.shape[0] > 0
    cdef double total = 0, batch_loss, norm
    cdef Step st = Step(rule.code, rule.nesterov, rule.rate, rule.momentum, rule.beta1,
                        rule.beta2, rule.epsilon, rule.clip_norm,
                        1 - rule.rate * rule.weight_decay)
    cdef double rate = rule.rate
    cdef long long t = state.t
    cdef int status = DONE, why = GO_ON
    cdef Py_ssize_t since_check = 0
    cdef bint main_thread = _in_main_thread()
    stop = _flag_for(stop, main_thread)
    cdef volatile int* flag = _flag_of(stop)
    if sparse:
        batch.w1t = &w1t[0]
        batch.g1t = &g1t[0]
        batch.first_apart = True
        batch.first_threads = first.nt
    else:
        batch.dense = &Xb[0, 0]
    cdef Drop drop
    cdef floating[::1] drop_input, drop_gains, drop_scratch
    if dropout is not None:
        drop_input, drop_gains, drop_scratch = _drop_arrays(layout, dropout, mb_max, dtype)
        _set_drop(layout, dropout, &drop, ws, drop_input, drop_gains, drop_scratch, sparse)
        batch.drop = &drop
    start = 0
    with nogil:
        if sparse:
            pack_first(net, &params[0], net.offsets, net.strides, 1, &w1t[0], 1)
            pack_first(net, &state1[0], net.offsets, net.strides, 1, &m1t[0], 1)
            pack_first(net, &state2[0], net.offsets, net.strides, 1, &m2t[0], 1)
        while start < n:
            nb = <int>min(<Py_ssize_t>b, n - start)
            for k in range(nb):       # gather the batch: one copy of its rows
                j = order[start + k]
                if not sparse:
                    memcpy(&Xb[k, 0], Xp + j * nX, nX * sizeof(floating))
                memcpy(&Yb[k, 0], &Y[j, 0], nY * sizeof(floating))
                if weighted:
                    wb[k] = w[j]
            batch.m = nb
            drop.ids = &order[start]            # the batch's rows are these samples
            if sparse:
                batch.order = &order[start]
            wt = pack_transposed(net, &params[0], &wt_buf[0], mb_max, sparse,
                                 batch.packed_units)
            batch_loss = rows_serial(net, wt, &batch, &Yb[0, 0], &wb[0], &params[0],
                                     &grad[0], &ws[0], mb_max)
            if not isfinite(batch_loss):     # stop before updating from a non-finite cost
                status = DIVERGED
                break
            if st.solver == ADAM:
                t += 1
                st.rate = (rate * sqrt(1 - pow(st.beta2, <double>t))
                           / (1 - pow(st.beta1, <double>t)))
            norm = nb / scale
            batch_loss = batch_loss / norm + update(net, &params[0], &grad[0], &state1[0],
                                                    &state2[0], norm, reg, &st,
                                                    &first if sparse else NULL)
            if not isfinite(batch_loss):     # only W^2 can overflow here; fit restores W
                status = DIVERGED
                break
            total += nb * batch_loss
            start += nb
            since_check += nb
            if since_check >= check_every:
                since_check = 0
                why = _should_stop(main_thread, flag)
                if why != GO_ON:
                    status = INTERRUPTED
                    break
        if sparse and status != DONE:
            memset(&g1t[0], 0, n1 * sizeof(floating))
        if sparse:
            unpack_first(net, &w1t[0], 1, &params[0], net.offsets, net.strides)
            unpack_first(net, &m1t[0], 1, &state1[0], net.offsets, net.strides)
            unpack_first(net, &m2t[0], 1, &state2[0], net.offsets, net.strides)
    state.t = t
    if why == SIGNAL_ERROR:
        _raise_pending()
    return total, start, status


# ------------------------------------------------------------------------- iRPROP-

def rprop_update(Layout layout, floating[::1] params, const floating[::1] grad,
                 floating[::1] prev_grad, floating[::1] steps, double increase,
                 double decrease, double step_min, double step_max):
    """One iRPROP- step (Igel & Huesken 2000), per parameter, from the full-batch gradient:
    the step grows while the gradient keeps its sign and shrinks when it flips; after a
    flip that parameter does not move and its remembered gradient is zeroed."""
    check_params(layout, "params", params.shape[0])
    check_params(layout, "grad", grad.shape[0])
    check_params(layout, "prev_grad", prev_grad.shape[0])
    check_params(layout, "steps", steps.shape[0])
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
