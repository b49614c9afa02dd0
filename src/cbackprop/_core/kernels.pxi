# The compiled core: forward pass, cost and backpropagation (DESIGN.md section 1).
#
# Python (network.py, _validation.py) checks and converts every input once; the
# functions here trust their arguments. Each works on row blocks of X: forward,
# output error and backward for a block while it is in cache, with one
# workspace per thread allocated before any `nogil` code. A block of one row uses
# matrix-vector products (the derivation's per-sample loop); larger blocks use matrix
# products. Both run through _gemm.h's loops on thin layers where built, else BLAS.

import numpy as np

from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport log, fabs, fabsf

from cbackprop._blas cimport gemm_nt, gemm_tn, gemm_nn, gemv_n, gemv_t, ger


cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    IDENTITY = 3
    SOFTMAX = 4

cdef enum:
    CROSS_ENTROPY = 0
    SQUARED_ERROR = 1

cdef struct Net:
    int n_layers                # L, input layer included
    const int* sizes            # s_1 .. s_L
    const Py_ssize_t* offsets   # where Theta(l) starts in the flat parameters
    const int* ldt              # row stride of each Theta(l), or NULL: s_l + 1 (the flat
                                # layout; online training pads rows, see aligned_layout)
    const int* acts             # activation of layers 2 .. L (the last is the output's)
    int loss
    int widest                  # the widest of layers 2 .. L
    Py_ssize_t units            # s_2 + ... + s_L: a row of activations in the workspace
    const void* wt              # W(l)^T of every layer packed by pack_transposed (floating*),
                                # or NULL: blocks of rows then use BLAS, not _gemm.h
    Pending* pending            # online training's deferred first-layer update, or NULL


cdef struct Pending:
    # One sample's update of W(1) = Theta(1)[:, 1:], deferred to the next sample's forward
    # pass, which applies it while it reads W(1) anyway (_gemm.h: cb_update_matvec_rows).
    # Nothing reads W(1) in between: the backward pass stops at delta(2).
    bint active
    void* d                     # alpha delta(2) of that sample (floating*, s_2 of them)
    const void* x               # its input row
    double decay


cdef inline int row_stride(const Net* net, int l) noexcept nogil:
    """Elements from one row of Theta(l) to the next (bias, then the weights)."""
    return net.ldt[l] if net.ldt != NULL else net.sizes[l] + 1


ACTIVATION_CODES = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
                    "identity": IDENTITY, "softmax": SOFTMAX}
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "squared_error": SQUARED_ERROR}


# ---------------------------------------------------------------- scalar math
# _fastmath.h: branch-free exp/expm1/log1p on the ranges needed here, which the
# compiler vectorizes (libm's are opaque calls that keep loops scalar).

cdef extern from "_fastmath.h" nogil:
    double cb_exp_neg(double x)
    double cb_expm1_neg(double x)
    double cb_log1p_unit(double u)
    float cb_exp_neg_f(float x)
    float cb_expm1_neg_f(float x)
    float cb_log1p_unit_f(float u)

cdef extern from "_gemm.h" nogil:
    const bint CB_OWN_GEMM
    void cb_gemm_d(int R, int N, int S, double alpha, const double* coef, long rs, long ss,
                   const double* B, long ldb, int accumulate, double* C, long ldc,
                   int s_block)
    void cb_gemm_f(int R, int N, int S, float alpha, const float* coef, long rs, long ss,
                   const float* B, long ldb, int accumulate, float* C, long ldc,
                   int s_block)
    const int CB_LANES_D, CB_LANES_F
    void cb_dot_rows_d(int R, int T, int S, const double* X, long ldx, const double* Wr,
                       long ldw, double* C, long ldc)
    void cb_dot_rows_f(int R, int T, int S, const float* X, long ldx, const float* Wr,
                       long ldw, float* C, long ldc)
    void cb_colsum_d(int S, int N, const double* B, long ldb, double* out)
    void cb_colsum_f(int S, int N, const float* B, long ldb, float* out)
    void cb_matvec_rows_d(int m, int n, const double* W, long ld, const double* x, double* y)
    void cb_matvec_rows_f(int m, int n, const float* W, long ld, const float* x, float* y)
    void cb_update_matvec_rows_d(int m, int n, double* W, long ld, const double* x, double* y,
                                 double alpha, const double* dp, const double* xp,
                                 double decay)
    void cb_update_matvec_rows_f(int m, int n, float* W, long ld, const float* x, float* y,
                                 float alpha, const float* dp, const float* xp, float decay)
    void cb_update_rows_d(int m, int n, double alpha, const double* d, const double* x,
                          double* G, long ld, double decay)
    void cb_update_rows_f(int m, int n, float alpha, const float* d, const float* x,
                          float* G, long ld, float decay)

cdef bint _own_products = CB_OWN_GEMM
# Our products serve layers up to this many units; wider ones go to BLAS, whose cache
# blocking wins there (measured on Zen 5, AVX-512: ours 1.3x faster at 48-96 units, even at
# 128-256, 0.85x at 512-1024).
cdef int OWN_MAX_UNITS = 128


def use_own_products(bint on):
    """Blocks of rows through _gemm.h (True, where built) or through BLAS (False): for
    tests and benchmarks that compare the two. Returns the previous setting."""
    global _own_products
    previous = _own_products
    _own_products = on and CB_OWN_GEMM
    return previous


def own_products_for(int units):
    """Whether blocks of rows run a layer of this many units through _gemm.h's products
    (which never skip a zero factor, unlike some BLAS: a NaN or inf in the layer's input
    always reaches its gradient)."""
    return bool(_own_products and units <= OWN_MAX_UNITS)

# The gradient product sums over a block's rows in slices of this many (cb_gemm's s_block:
# a slice of A's panel stays in L1 for every row tile): float64 46 -> 40 us a block of
# 250 x 400 -> 25 on Zen 5, measured alone; a whole call 6% faster in float64, 9% in float32.
cdef int GRADIENT_SLICE = 96

cdef inline void _gemm(int R, int N, int S, floating alpha, const floating* coef, long rs,
                       long ss, const floating* B, long ldb, bint accumulate, floating* C,
                       long ldc, int s_block) noexcept nogil:
    """C (R x N) (+)= alpha sum_s coef[r rs + s ss] B[s, :]: _gemm.h's one product form."""
    if floating is float:
        cb_gemm_f(R, N, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, s_block)
    else:
        cb_gemm_d(R, N, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, s_block)

cdef inline void _forward_product(int mb, int s_out, int s_in, const floating* A,
                                  const floating* wt, const floating* W, int ldw,
                                  floating* Z) noexcept nogil:
    """Z (mb x s_out) = A W^T, W^T packed in wt (s_in x s_out). The broadcast form fills
    vectors along a row of Z; when the last vector would hold a quarter of its lanes or
    fewer (25 units in float64's vectors of 8: 3 full and 1), those columns are dot
    products of A's rows with W's instead: 48 -> 42 us a block of 250 x 400 -> 25 on Zen 5.
    (float32's remainder there, 9 of 16, measured faster in the broadcast form.)"""
    cdef int lanes = CB_LANES_F if floating is float else CB_LANES_D
    cdef int tail = s_out % lanes
    if tail == 0 or tail * 4 > lanes or tail == s_out:
        _gemm(mb, s_out, s_in, 1, A, s_in, 1, wt, s_out, False, Z, s_out, 0)
        return
    _gemm(mb, s_out - tail, s_in, 1, A, s_in, 1, wt, s_out, False, Z, s_out, 0)
    if floating is float:
        cb_dot_rows_f(mb, tail, s_in, A, s_in, W + <Py_ssize_t>(s_out - tail) * ldw, ldw,
                      Z + s_out - tail, s_out)
    else:
        cb_dot_rows_d(mb, tail, s_in, A, s_in, W + <Py_ssize_t>(s_out - tail) * ldw, ldw,
                      Z + s_out - tail, s_out)

# Up to this many weights a layer's per-sample products run in _gemm.h's loops (on builds
# that have them): there a BLAS call costs more than its arithmetic. One sample's update of
# Theta runs there at any size (aligned stores, weight decay folded in).
cdef int SMALL_LAYER = 4096

def per_sample_calls_blas(const int[::1] sizes):
    """Whether one sample's products call BLAS (layers too wide for our loops, or a build
    without them): fit holds BLAS to one thread only then."""
    cdef int l
    if not CB_OWN_GEMM:
        return True
    for l in range(sizes.shape[0] - 1):
        if sizes[l] * sizes[l + 1] > SMALL_LAYER:
            return True
    return False

def blocks_call_blas(const int[::1] sizes):
    """Whether blocks of rows call BLAS (a layer too wide for our products, or a build or
    setting without them): cost, gradient and forward hold BLAS to one thread only then
    (holding it takes four threadpoolctl calls, about 4 us)."""
    cdef int l
    for l in range(1, sizes.shape[0]):
        if not own_products_for(sizes[l]):
            return True
    return False

cdef inline void _matvec(int M, int N, const floating* W, int ld, const floating* x,
                         floating* y) noexcept nogil:
    """y (M) = W (M x N, row stride ld) @ x."""
    if not CB_OWN_GEMM or M * N > SMALL_LAYER:
        gemv_n(M, N, 1, W, ld, x, 0, y)
    elif floating is float:
        cb_matvec_rows_f(M, N, W, ld, x, y)
    else:
        cb_matvec_rows_d(M, N, W, ld, x, y)

cdef inline void _matvec_t(int M, int N, const floating* W, int ld, const floating* d,
                           floating* y) noexcept nogil:
    """y (N) = W (M x N, row stride ld)^T @ d."""
    if not CB_OWN_GEMM or M * N > SMALL_LAYER:
        gemv_t(M, N, 1, W, ld, d, 0, y)
    else:       # the broadcast form with one row: y stays in registers over W's rows
        _gemm(1, N, M, 1, d, 0, 1, W, ld, False, y, N, 0)

cdef inline void _outer(int M, int N, floating alpha, const floating* d, const floating* x,
                        floating* G, int ld, floating decay) noexcept nogil:
    """G (M x N, row stride ld) = decay G + alpha d x^T."""
    cdef int j, i
    cdef floating* row
    if CB_OWN_GEMM:
        if floating is float:
            cb_update_rows_f(M, N, alpha, d, x, G, ld, decay)
        else:
            cb_update_rows_d(M, N, alpha, d, x, G, ld, decay)
        return
    if decay != 1:
        for j in range(M):
            row = G + <Py_ssize_t>j * ld
            for i in range(N):
                row[i] *= decay
    ger(M, N, alpha, d, x, G, ld)

cdef inline floating _exp_neg(floating x) noexcept nogil:
    """exp(x) for x <= 0."""
    if floating is float:
        return cb_exp_neg_f(x)
    else:
        return cb_exp_neg(x)

cdef inline floating _expm1_neg(floating x) noexcept nogil:
    """exp(x) - 1 for x <= 0, accurate near 0."""
    if floating is float:
        return cb_expm1_neg_f(x)
    else:
        return cb_expm1_neg(x)

cdef inline floating _log1p_unit(floating u) noexcept nogil:
    """log(1 + u) for u in [0, 1]."""
    if floating is float:
        return cb_log1p_unit_f(u)
    else:
        return cb_log1p_unit(u)

# Selects below choose between values computed on both paths: a branch with arithmetic
# in it would keep the compiler from turning it into a vector blend.

cdef inline floating _abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)

# Constants of the element's own type (`one`, `two`) wherever a float32 lane meets them:
# Cython writes 1 - x and 1 / x as 1.0 - x and 1.0 / x, double arithmetic, which made
# float32's activations and derivatives convert to double and back (2x slower there).

cdef inline floating _sigmoid_from(floating z, floating e) noexcept nogil:
    """sigmoid(z) given e = exp(-|z|): never overflows, for any z."""
    cdef floating one = 1
    cdef floating s = one / (one + e)
    cdef floating es = e * s
    return s if z >= 0 else es

cdef inline floating _sigmoid(floating z) noexcept nogil:
    return _sigmoid_from(z, _exp_neg(-_abs(z)))

cdef inline floating _tanh(floating z) noexcept nogil:
    # tanh|z| = -expm1(-2|z|) / (2 + expm1(-2|z|)), accurate for small |z| too
    cdef floating two = 2
    cdef floating q = _expm1_neg(-two * _abs(z))
    cdef floating t = -q / (two + q)
    cdef floating neg = q / (two + q)
    return t if z >= 0 else neg


# ---------------------------------------------------------- elementwise layers

cdef void _bias_activate(floating* Z, int mb, int s, const floating* theta, int ldt,
                         int act, floating* bias) noexcept nogil:
    """Z (mb x s) = g(Z + b) in place; b is column 0 of Theta (row stride ldt), first
    copied into the contiguous scratch `bias` so that the row loops vectorize. g runs over
    the block as one flat array: row by row, a short row (25 units) leaves a remainder of
    elements that run one at a time through the exp, as slow as a whole vector each."""
    cdef int i, j
    cdef Py_ssize_t k, n = <Py_ssize_t>mb * s
    cdef floating* row
    for j in range(s):
        bias[j] = theta[<Py_ssize_t>j * ldt]
    for i in range(mb):
        row = Z + <Py_ssize_t>i * s
        for j in range(s):
            row[j] = row[j] + bias[j]
    if act == SIGMOID:
        for k in range(n):
            Z[k] = _sigmoid(Z[k])
    elif act == TANH:
        for k in range(n):
            Z[k] = _tanh(Z[k])
    elif act == RELU:
        for k in range(n):
            Z[k] = Z[k] if Z[k] > 0 else 0


cdef void _mul_derivative(floating* D, const floating* A, Py_ssize_t n, int act) noexcept nogil:
    """D *= g'(z), with g' computed from the activation a = g(z)."""
    cdef Py_ssize_t k
    cdef floating one = 1
    if act == SIGMOID:
        for k in range(n):
            D[k] = D[k] * (A[k] * (one - A[k]))
    elif act == TANH:
        for k in range(n):
            D[k] = D[k] * (one - A[k] * A[k])
    elif act == RELU:
        for k in range(n):
            D[k] = D[k] if A[k] > 0 else 0


cdef double _output_layer(const Net* net, floating* Z, floating* H, const floating* Y,
                          const floating* w, int mb, floating* D) noexcept nogil:
    """h = g_out(z); with targets Y also delta(L) into D and the loss (returned), each
    sample's weighted by w. Log terms come from z, never from h. Z is scratch afterwards
    (it ends holding each element's loss term)."""
    cdef int K = net.sizes[net.n_layers - 1]
    cdef int act = net.acts[net.n_layers - 2]
    cdef Py_ssize_t n = <Py_ssize_t>mb * K, k
    cdef int i, c
    cdef floating e, r, hz, zk
    cdef floating* z
    cdef floating* h
    cdef const floating* y
    cdef floating* d
    cdef floating zmax, wi, one = 1
    cdef double total = 0, row_loss, norm, lse, ysum, dot

    # one loop per case, each free of branches, so that each vectorizes
    if act == SIGMOID and Y == NULL:
        for k in range(n):
            H[k] = _sigmoid(Z[k])
    elif act == SIGMOID and net.loss == CROSS_ENTROPY:
        # one exp per element serves h and the loss:
        # -[y log h + (1-y) log(1-h)] = softplus(z) - y z = max(z, 0) + log1p(e) - y z
        for k in range(n):
            zk = Z[k]
            e = _exp_neg(-_abs(zk))
            hz = _sigmoid_from(zk, e)
            H[k] = hz
            D[k] = hz - Y[k]                                # dJ_i/dz = h - y
            Z[k] = (zk if zk > 0 else 0) + _log1p_unit(e) - Y[k] * zk
    elif act == SIGMOID:
        for k in range(n):
            hz = _sigmoid(Z[k])
            H[k] = hz
            r = hz - Y[k]
            D[k] = r * (hz * (one - hz))                    # (h - y) g'(z)
            Z[k] = <floating>0.5 * r * r
    elif act == IDENTITY:
        for k in range(n):
            H[k] = Z[k]
        if Y != NULL:
            for k in range(n):
                r = Z[k] - Y[k]
                D[k] = r
                Z[k] = <floating>0.5 * r * r
    else:
        for i in range(mb):
            z = Z + <Py_ssize_t>i * K
            h = H + <Py_ssize_t>i * K
            zmax = z[0]
            for c in range(1, K):
                zmax = z[c] if z[c] > zmax else zmax
            norm = 0
            for c in range(K):
                h[c] = _exp_neg(z[c] - zmax)
                norm += h[c]
            for c in range(K):
                h[c] = <floating>(h[c] / norm)
            if Y == NULL:
                continue
            y = Y + <Py_ssize_t>i * K
            d = D + <Py_ssize_t>i * K
            if net.loss == CROSS_ENTROPY:
                # J_i = sum_k y_k (logsumexp(z) - z_k); dJ_i/dz = h sum(y) - y, which is
                # the usual h - y when the targets of a row sum to one.
                lse = zmax + log(norm)
                ysum = 0
                for c in range(K):
                    ysum += y[c]
                for c in range(K):
                    d[c] = h[c] * <floating>ysum - y[c]
                    z[c] = <floating>(y[c] * (lse - z[c]))
            else:
                # squared error through the softmax Jacobian: dJ_i/dz = h (r - r.h), r = h - y
                dot = 0
                for c in range(K):
                    dot += (h[c] - y[c]) * h[c]
                for c in range(K):
                    r = h[c] - y[c]
                    d[c] = h[c] * (r - <floating>dot)
                    z[c] = <floating>0.5 * r * r
    if Y == NULL:
        return 0

    # per sample: sum the loss terms in double, and weight loss and delta
    for i in range(mb):
        z = Z + <Py_ssize_t>i * K
        row_loss = 0
        for c in range(K):
            row_loss += z[c]
        if w != NULL:
            wi = w[i]
            d = D + <Py_ssize_t>i * K
            for c in range(K):
                d[c] = wi * d[c]
            row_loss *= wi
        total += row_loss
    return total


# ------------------------------------------------------------------ one block

cdef inline void _update_matvec(const Net* net, floating* W, int ld, const floating* x,
                                floating* z) noexcept nogil:
    """W(1) = decay W(1) + d x_prev^T (the pending update), then z = W(1) x."""
    cdef Pending* p = net.pending
    if floating is float:
        cb_update_matvec_rows_f(net.sizes[1], net.sizes[0], W, ld, x, z, 1, <const float*>p.d,
                                <const float*>p.x, <float>p.decay)
    else:
        cb_update_matvec_rows_d(net.sizes[1], net.sizes[0], W, ld, x, z, 1, <const double*>p.d,
                                <const double*>p.x, p.decay)
    p.active = False


cdef inline void _defer_update(const Net* net, const floating* D, const floating* x,
                               floating alpha, floating decay) noexcept nogil:
    cdef Pending* p = net.pending
    cdef floating* d = <floating*>p.d
    cdef int j
    for j in range(net.sizes[1]):
        d[j] = alpha * D[j]
    p.x = x
    p.decay = decay
    p.active = True


cdef void flush_pending(const Net* net, floating* params) noexcept nogil:
    """Apply a deferred first-layer update (at the end of an online epoch)."""
    cdef Pending* p = net.pending
    if p == NULL or not p.active:
        return
    _outer(net.sizes[1], net.sizes[0], 1, <const floating*>p.d, <const floating*>p.x,
           params + net.offsets[0] + 1, row_stride(net, 0), <floating>p.decay)
    p.active = False


cdef Py_ssize_t workspace_size(const Net* net, int mb_max) noexcept nogil:
    """Activations of layers 2..L, z(L), two delta buffers (mb_max rows each) and a row
    of scratch for biases."""
    return (mb_max * (net.units + net.sizes[net.n_layers - 1] + 2 * <Py_ssize_t>net.widest)
            + net.widest)


cdef double block(const Net* net, const floating* X, const floating* Y, const floating* w,
                   int mb, const floating* params, floating* H_out,
                   floating* target, floating alpha, floating decay,
                   floating* ws, int mb_max) noexcept nogil:
    """Forward, output error and backward for the mb rows starting at X.

    H_out: where to write the outputs h (NULL: into the workspace).
    Y: targets (NULL: forward only; returns 0).
    target: where the backward pass accumulates alpha * delta(l+1) [1 a(l)]^T
            (the gradient sum with alpha = 1, or the parameters themselves with
            alpha = -learning_rate for online updates; NULL: no backward pass).
            Blocks of one row (online updates) scale a layer's weights by decay before
            accumulating into them (1 - rate * lambda / m); larger blocks take decay = 1.
    Returns the weighted loss summed over the block.
    """
    cdef int L = net.n_layers
    cdef int l, j, i, s_in, s_out, ldt
    cdef const floating* a_in = X
    cdef const floating* theta
    cdef floating* a_out
    cdef floating* slot
    cdef floating* Z
    cdef floating* H
    cdef floating* D
    cdef floating* Dn
    cdef floating* tmp
    cdef floating* tgt
    cdef floating* row
    cdef floating* bias
    cdef const floating* wt = <const floating*>net.wt    # W(l)^T, layer after layer
    cdef double loss

    # workspace: a(2) .. a(L) | z(L) | D | Dn | bias   (a(1) is X itself)
    Z = ws + mb_max * net.units
    D = Z + <Py_ssize_t>mb_max * net.sizes[L - 1]
    Dn = D + <Py_ssize_t>mb_max * net.widest
    bias = Dn + <Py_ssize_t>mb_max * net.widest

    # forward: z(l+1) = [1 a(l)] Theta(l)^T, a(l+1) = g(z(l+1))
    slot = ws
    for l in range(L - 1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        ldt = row_stride(net, l)
        theta = params + net.offsets[l]
        a_out = Z if l == L - 2 else slot
        if mb == 1 and l == 0 and net.pending != NULL and net.pending.active:
            _update_matvec(net, target + net.offsets[0] + 1, ldt, a_in, a_out)   # update, z
        elif mb == 1:
            _matvec(s_out, s_in, theta + 1, ldt, a_in, a_out)             # z = W a
        elif wt != NULL and s_out <= OWN_MAX_UNITS:
            _forward_product(mb, s_out, s_in, a_in, wt, theta + 1, ldt, a_out)
        else:
            gemm_nt(mb, s_out, s_in, 1, a_in, s_in, theta + 1, ldt, 0, a_out, s_out)  # Z = A W^T
        _bias_activate(a_out, mb, s_out, theta, ldt, net.acts[l] if l < L - 2 else IDENTITY,
                       bias)
        if l < L - 2:
            a_in = a_out
            slot += <Py_ssize_t>mb_max * s_out
        if wt != NULL:
            wt += <Py_ssize_t>s_in * s_out

    H = H_out if H_out != NULL else slot      # slot is now a(L)'s
    loss = _output_layer(net, Z, H, Y, w, mb, D)
    if target == NULL or Y == NULL:
        return loss

    # backward, from the output layer down; a_in is a(l) at step l.
    for l in range(L - 2, -1, -1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        ldt = row_stride(net, l)
        theta = params + net.offsets[l]
        tgt = target + net.offsets[l]
        if l > 0:
            # delta(l) = delta(l+1) W * g'(a(l)), from W before any update to it
            if mb == 1:
                _matvec_t(s_out, s_in, theta + 1, ldt, D, Dn)              # d = W^T d
            elif wt != NULL and s_out <= OWN_MAX_UNITS:
                _gemm(mb, s_in, s_out, 1, D, s_out, 1, theta + 1, ldt, False, Dn, s_in, 0)
            else:
                gemm_nn(mb, s_in, s_out, 1, D, s_out, theta + 1, ldt, 0, Dn, s_in)  # Dn = D W
            _mul_derivative(Dn, a_in, <Py_ssize_t>mb * s_in, net.acts[l - 1])
        # bias column: sum of delta over the block's rows
        if mb == 1:
            for j in range(s_out):
                tgt[<Py_ssize_t>j * ldt] += alpha * D[j]
        else:
            if wt != NULL:                  # builds with our own loops (_gemm.h)
                if floating is float:
                    cb_colsum_f(mb, s_out, D, s_out, bias)
                else:
                    cb_colsum_d(mb, s_out, D, s_out, bias)
            else:                           # row by row, so that it vectorizes
                for j in range(s_out):
                    bias[j] = 0
                for i in range(mb):
                    row = D + <Py_ssize_t>i * s_out
                    for j in range(s_out):
                        bias[j] += row[j]
            for j in range(s_out):
                tgt[<Py_ssize_t>j * ldt] += alpha * bias[j]
        if mb == 1 and l == 0 and net.pending != NULL:
            _defer_update(net, D, a_in, alpha, decay)       # applied by the next forward
        elif mb == 1:
            _outer(s_out, s_in, alpha, D, a_in, tgt + 1, ldt, decay)     # G = decay G + d a^T
        elif wt != NULL and s_out <= OWN_MAX_UNITS:
            _gemm(s_out, s_in, mb, alpha, D, 1, s_out, a_in, s_in, True, tgt + 1, ldt,
                  GRADIENT_SLICE)
        else:
            gemm_tn(s_out, s_in, mb, alpha, D, s_out, a_in, s_in, 1, tgt + 1, ldt)  # G += D^T A
        if l > 1:
            a_in = a_in - <Py_ssize_t>mb_max * net.sizes[l - 1]
        else:
            a_in = X
        tmp = D
        D = Dn
        Dn = tmp
    return loss


# ------------------------------------------------------------- entry points

cdef Net make_net(const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
              int loss) noexcept:
    cdef Net net
    cdef int l
    net.n_layers = sizes.shape[0]
    net.sizes = &sizes[0]
    net.offsets = &offsets[0]
    net.acts = &acts[0]
    net.loss = loss
    net.widest = 0
    net.units = 0
    net.wt = NULL
    net.pending = NULL
    net.ldt = NULL
    for l in range(1, net.n_layers):
        net.widest = max(net.widest, sizes[l])
        net.units += sizes[l]
    return net


cdef Py_ssize_t transposed_size(const Net* net) noexcept nogil:
    """Elements of every W(l)^T (the weights without the bias column)."""
    cdef Py_ssize_t size = 0
    cdef int l
    for l in range(net.n_layers - 1):
        size += <Py_ssize_t>net.sizes[l] * net.sizes[l + 1]
    return size


cdef void pack_transposed(Net* net, const floating* params, floating* wt,
                          int mb_max) noexcept nogil:
    """Point net at our own products (_gemm.h), which take W(l)^T packed in wt
    (transposed_size elements), when this build has them and blocks have several rows."""
    cdef int l, j, k, s_in, s_out
    cdef const floating* w
    cdef floating* dst = wt
    net.wt = NULL
    if not _own_products or mb_max < 2:
        return
    for l in range(net.n_layers - 1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        w = params + net.offsets[l] + 1
        if s_out <= OWN_MAX_UNITS:                     # the layers block() runs through ours
            for j in range(s_out):
                for k in range(s_in):
                    dst[<Py_ssize_t>k * s_out + j] = w[<Py_ssize_t>j * row_stride(net, l) + k]
        dst += <Py_ssize_t>s_in * s_out
    net.wt = wt


cdef inline double _sumsq(const floating* x, Py_ssize_t n) noexcept nogil:
    """sum x^2 in double, over 16 partial sums: the compiler keeps them in vector registers
    (a single running sum is a chain of dependent adds it may not reorder)."""
    cdef double acc[16]
    cdef double total = 0
    cdef Py_ssize_t k = 0
    cdef int u
    for u in range(16):
        acc[u] = 0
    while k + 16 <= n:
        for u in range(16):
            acc[u] += <double>x[k + u] * x[k + u]
        k += 16
    while k < n:
        total += <double>x[k] * x[k]
        k += 1
    for u in range(16):
        total += acc[u]
    return total


cdef double regularize(const Net* net, const floating* params, floating* grad,
                        double loss_norm, double reg) noexcept nogil:
    """grad = grad / loss_norm + reg * W (bias column excluded); returns reg/2 * sum W^2."""
    cdef int l, j, i, ldt, L = net.n_layers
    cdef Py_ssize_t base, k
    cdef Py_ssize_t P = net.offsets[L - 2] + <Py_ssize_t>net.sizes[L - 1] * (net.sizes[L - 2] + 1)
    cdef double sumsq = 0
    cdef floating inv = <floating>(1.0 / loss_norm)
    cdef floating r = <floating>reg
    if grad != NULL:
        for k in range(P):                   # one flat, vectorized pass when lam = 0
            grad[k] = grad[k] * inv
    if reg == 0:
        return 0
    for l in range(L - 1):
        ldt = net.sizes[l] + 1
        for j in range(net.sizes[l + 1]):
            base = net.offsets[l] + <Py_ssize_t>j * ldt
            if grad != NULL:
                for i in range(1, ldt):
                    grad[base + i] = grad[base + i] + r * params[base + i]
            sumsq += _sumsq(params + base + 1, ldt - 1)
    return 0.5 * reg * sumsq


def forward(const floating[:, ::1] X, const floating[::1] params, floating[:, ::1] out,
            const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
            int block_rows=256, int n_threads=1):
    """out (m x s_L) = h(X)."""
    cdef Net net = make_net(sizes, offsets, acts, CROSS_ENTROPY)
    cdef int m = X.shape[0], n = X.shape[1], K = out.shape[1]
    cdef int mb_max = min(block_rows, m)
    cdef int n_blocks = (m + mb_max - 1) // mb_max
    cdef int nt = max(1, min(n_threads, n_blocks))
    cdef int b, r0, mb, tid
    cdef floating[:, ::1] ws = np.zeros((nt, workspace_size(&net, mb_max)),
                                        dtype=np.asarray(out).dtype)
    cdef floating[::1] wt = np.empty(transposed_size(&net), dtype=np.asarray(out).dtype)
    pack_transposed(&net, &params[0], &wt[0], mb_max)
    if nt == 1:
        with nogil:
            for b in range(n_blocks):
                r0 = b * mb_max
                mb = min(mb_max, m - r0)
                block(&net, &X[r0, 0], <floating*>NULL, <floating*>NULL, mb, &params[0],
                       &out[r0, 0], <floating*>NULL, 1, 1, &ws[0, 0], mb_max)
    else:
        with nogil, parallel(num_threads=nt):
            for b in prange(n_blocks, schedule="dynamic"):   # rows of their own: any order
                tid = threadid()
                r0 = b * mb_max
                mb = min(mb_max, m - r0)
                block(&net, &X[r0, 0], <floating*>NULL, <floating*>NULL, mb, &params[0],
                       &out[r0, 0], <floating*>NULL, 1, 1, &ws[tid, 0], mb_max)
    return np.asarray(out)


cdef int chunks_for(int n_blocks, int nt) noexcept nogil:
    """How many chunks cost_grad cuts a call's blocks into: a few a thread, so that a
    thread whose core is busy elsewhere leaves its share to the others."""
    return max(1, min(n_blocks, 4 * nt if nt > 1 else 1))


cdef double rows_cost_grad(const Net* net, const floating* X, const floating* Y,
                           const floating* w, int m, const floating* params, floating* grad,
                           Py_ssize_t P, floating* tgrad, floating* ws, Py_ssize_t ws_size,
                           double* losses, int mb_max, int nt, int n_chunks) noexcept nogil:
    """The weighted loss summed over m rows and, when grad is not NULL, grad = the sum of
    their gradients. The blocks of mb_max rows are cut into n_chunks runs of consecutive
    blocks, which nt threads take as they come free (dynamic: a thread slowed by other
    work on its core does fewer). Chunk 0 accumulates into grad, chunk c > 0 into
    tgrad[(c-1)P : cP], and the chunks are summed in their order: the bits depend on
    n_chunks, never on which thread ran what. ws holds nt workspaces of ws_size; losses,
    n_chunks sums. The threads zero each chunk's sum as they start it, and add the sums up
    by ranges of elements (each element still in the chunks' order)."""
    cdef int n_blocks = (m + mb_max - 1) // mb_max
    cdef int b, r0, mb, c, tid
    cdef Py_ssize_t k
    cdef floating* target
    cdef double total = 0
    if n_chunks == 1:
        if grad != NULL:
            for k in range(P):
                grad[k] = 0
        losses[0] = 0
        for b in range(n_blocks):
            r0 = b * mb_max
            mb = min(mb_max, m - r0)
            losses[0] += block(net, X + <Py_ssize_t>r0 * net.sizes[0],
                               Y + <Py_ssize_t>r0 * net.sizes[net.n_layers - 1],
                               w + r0 if w != NULL else NULL, mb, params, <floating*>NULL,
                               grad, 1, 1, ws, mb_max)
        return losses[0]
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
                losses[c] += block(net, X + <Py_ssize_t>r0 * net.sizes[0],
                                   Y + <Py_ssize_t>r0 * net.sizes[net.n_layers - 1],
                                   w + r0 if w != NULL else NULL, mb, params,
                                   <floating*>NULL, target, 1, 1, ws + tid * ws_size,
                                   mb_max)
    if grad != NULL:
        for k in prange(P, num_threads=nt, schedule="static"):
            for c in range(1, n_chunks):
                grad[k] += tgrad[(c - 1) * P + k]
    for c in range(n_chunks):
        total += losses[c]
    return total


def cost_grad(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
              const floating[::1] params, floating[::1] grad,
              const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
              int loss, double loss_norm, double reg, int block_rows=256, int n_threads=1):
    """J = sum_i w_i loss_i / loss_norm + reg/2 sum W^2, and, when grad is not empty,
    grad = sum_i w_i dloss_i / loss_norm + reg W (bias column unregularized).

    w empty: all weights one. block_rows=1 gives the per-sample (matrix-vector) kernel.
    """
    cdef Net net = make_net(sizes, offsets, acts, loss)
    cdef int m = X.shape[0]
    cdef Py_ssize_t P = params.shape[0]
    cdef int mb_max = min(block_rows, m)
    cdef int nt = max(1, min(n_threads, (m + mb_max - 1) // mb_max))
    cdef int n_chunks = chunks_for((m + mb_max - 1) // mb_max, nt)
    cdef bint want_grad = grad.shape[0] > 0
    cdef Py_ssize_t ws_size = workspace_size(&net, mb_max)
    cdef double total
    dtype = np.asarray(params).dtype
    cdef floating[::1] ws = np.zeros(nt * ws_size, dtype=dtype)
    cdef floating[::1] tgrad = np.empty(max(1, (n_chunks - 1) * P if want_grad else 1),
                                        dtype=dtype)
    cdef double[::1] losses = np.empty(n_chunks)
    cdef floating[::1] wt = np.empty(transposed_size(&net), dtype=dtype)
    with nogil:
        pack_transposed(&net, &params[0], &wt[0], mb_max)
        total = rows_cost_grad(&net, &X[0, 0], &Y[0, 0], &w[0] if w.shape[0] > 0 else NULL,
                               m, &params[0], &grad[0] if want_grad else NULL, P, &tgrad[0],
                               &ws[0], ws_size, &losses[0], mb_max, nt, n_chunks)
        total = total / loss_norm + regularize(&net, &params[0],
                                                &grad[0] if want_grad else NULL,
                                                loss_norm, reg)
    return total
