# The row-block pass: forward, output error and backward for a block of rows while it is
# in cache (docs/design.md: "The math" for the formulas, "Architecture" for the data flow).
#
# One plain function per mode, each built from the same pieces (_forward_layers, the
# output layer's two forms, _delta_step, _accumulate_bias, _accumulate_weights):
#   forward_block    h = a(L) of the block's rows, written to the caller's rows (forward);
#   cost_block       the block's weighted loss (cost_grad without a gradient);
#   gradient_block   its loss, and its gradient summed into a buffer (cost_grad and the
#                    mini-batches of minibatch_epoch);
#   online_sample    one sample's loss, and its update of Theta in place (online_epoch).
# The last two take dropout's masks (Rows.drop: Drop) for training passes.
# A block of one row runs matrix-vector products (the derivation's per-sample loop); larger
# blocks run matrix products (products.pxi: our own loops on thin layers, else BLAS). The
# functions here trust their arguments: the entry points (batch.pxi, loops.pxi) check every
# buffer against the Layout, and allocate one workspace per thread, before any nogil code.

from libc.math cimport log, logf, exp, expf, fabs, fabsf
from libc.string cimport memcpy


# ---------------------------------------------------------------- scalar math
# fastmath.h: branch-free exp/expm1/log1p on the ranges needed here, which the compiler
# vectorizes (libm's are opaque calls that keep loops scalar).

cdef extern from "fastmath.h" nogil:
    double cb_exp_neg(double x)
    double cb_expm1_neg(double x)
    double cb_log1p_unit(double u)
    float cb_exp_neg_f(float x)
    float cb_expm1_neg_f(float x)
    float cb_log1p_unit_f(float u)

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

cdef inline floating _exp(floating x) noexcept nogil:
    """exp(x) for any x (inf past the range: a diverging fit's cost says so). libm's: only
    the exp output calls it, on s_L elements a row."""
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating _xlogx(floating y) noexcept nogil:
    """y log y, 0 at y = 0 (scipy's xlogy(y, y))."""
    cdef floating one = 1
    cdef floating pos = y if y > 0 else one
    if floating is float:
        return y * logf(pos)
    else:
        return y * log(pos)

# Selects below choose between values computed on both paths: a branch with arithmetic
# in it would keep the compiler from turning it into a vector blend.

cdef inline floating _abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)

# Constants of the element's own type (`one`, `two`) wherever a float32 lane meets them:
# Cython writes 1 - x and 1 / x as 1.0 - x and 1.0 / x, double arithmetic, which would make
# float32's activations and derivatives convert every lane to double and back.

cdef inline floating _sigmoid_from(floating z, floating e) noexcept nogil:
    """sigmoid(z) given e = exp(-|z|): never overflows, for any z."""
    cdef floating one = 1
    cdef floating s = one / (one + e)
    cdef floating es = e * s
    return s if z >= 0 else es

cdef inline floating _sigmoid(floating z) noexcept nogil:
    return _sigmoid_from(z, _exp_neg(-_abs(z)))

# The units of issue 16, their constants fixed (the kernels get a layer's code only):
# leaky_relu's slope 0.01 (PyTorch's default), elu's alpha 1, FANN's Elliott steepness 0.5;
# reference.py has the same. C constants, so that a float32 lane meets a float literal.
cdef extern from *:
    """
    #define CB_LEAKY_SLOPE 0.01
    #define CB_ELLIOTT_STEEPNESS 0.5
    """
    const double LEAKY_SLOPE "CB_LEAKY_SLOPE"
    const double ELLIOTT_STEEPNESS "CB_ELLIOTT_STEEPNESS"

cdef inline floating _softplus(floating z) noexcept nogil:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): never overflows."""
    cdef floating zero = 0
    return (z if z > 0 else zero) + _log1p_unit(_exp_neg(-_abs(z)))

cdef inline floating _elliott(floating z) noexcept nogil:
    """FANN_ELLIOT: (t / 2) / (1 + |t|) + 1/2 with t = s z (s = 0.5), in (0, 1)."""
    cdef floating one = 1, half = 0.5, s = <floating>ELLIOTT_STEEPNESS
    cdef floating t = s * z
    return half * t / (one + _abs(t)) + half

cdef inline floating _tanh(floating z) noexcept nogil:
    # tanh|z| = -expm1(-2|z|) / (2 + expm1(-2|z|)), accurate for small |z| too
    cdef floating two = 2
    cdef floating q = _expm1_neg(-two * _abs(z))
    cdef floating t = -q / (two + q)
    cdef floating neg = q / (two + q)
    return t if z >= 0 else neg


# ---------------------------------------------------------- elementwise layers

cdef enum:
    BIAS_ROWS = 16              # rows of b repeated in the bias scratch


cdef void _bias_activate(floating* Z, int mb, int s, const floating* theta, int ldt,
                         int act, floating* bias) noexcept nogil:
    """Z (mb x s) = g(Z + b) in place; b is column 0 of Theta (row stride ldt), first
    copied into the contiguous scratch `bias`, BIAS_ROWS times over, so that b is added
    to that many rows at a time as one flat loop (row by row, a short row of 30 units
    leaves 14 elements that run one at a time). g runs over the block as one flat array
    too: a remainder would run one element at a time through the exp, as slow as a
    whole vector each."""
    cdef int i, j, rows = min(mb, <int>BIAS_ROWS)
    cdef Py_ssize_t k, n = <Py_ssize_t>mb * s, r0, span, chunk = <Py_ssize_t>rows * s
    cdef floating* part
    cdef floating e, zero = 0, slope = <floating>LEAKY_SLOPE
    for j in range(s):
        bias[j] = theta[<Py_ssize_t>j * ldt]
    for i in range(1, rows):
        for j in range(s):
            bias[<Py_ssize_t>i * s + j] = bias[j]
    r0 = 0
    while r0 < n:
        span = min(chunk, n - r0)
        part = Z + r0
        for k in range(span):
            part[k] = part[k] + bias[k]
        r0 += span
    if act == SIGMOID:
        for k in range(n):
            Z[k] = _sigmoid(Z[k])
    elif act == TANH:
        for k in range(n):
            Z[k] = _tanh(Z[k])
    elif act == RELU:
        for k in range(n):
            Z[k] = Z[k] if Z[k] > 0 else 0
    elif act == LEAKY_RELU:
        for k in range(n):
            Z[k] = Z[k] if Z[k] > 0 else slope * Z[k]
    elif act == ELU:
        # expm1 of min(z, 0) on both paths, then a select: the loop stays a vector loop
        for k in range(n):
            e = _expm1_neg(Z[k] if Z[k] < 0 else zero)
            Z[k] = Z[k] if Z[k] > 0 else e
    elif act == SOFTPLUS:
        for k in range(n):
            Z[k] = _softplus(Z[k])
    elif act == ELLIOTT:
        for k in range(n):
            Z[k] = _elliott(Z[k])
    # IDENTITY (a linear hidden layer, and the output layer's z): g(z) = z, nothing to do


cdef void _mul_derivative(floating* D, const floating* A, Py_ssize_t n, int act) noexcept nogil:
    """D *= g'(z), with g' computed from the activation a = g(z)."""
    cdef Py_ssize_t k
    cdef floating one = 1, half = 0.5, two = 2, slope = <floating>LEAKY_SLOPE
    cdef floating hs = <floating>(0.5 * ELLIOTT_STEEPNESS), u
    if act == SIGMOID:
        for k in range(n):
            D[k] = D[k] * (A[k] * (one - A[k]))
    elif act == TANH:
        for k in range(n):
            D[k] = D[k] * (one - A[k] * A[k])
    elif act == RELU:
        for k in range(n):
            D[k] = D[k] if A[k] > 0 else 0
    elif act == LEAKY_RELU:             # a > 0 exactly when z > 0
        for k in range(n):
            D[k] = D[k] if A[k] > 0 else slope * D[k]
    elif act == ELU:                    # z < 0: a = exp(z) - 1, g' = exp(z) = a + 1
        for k in range(n):
            D[k] = D[k] if A[k] > 0 else D[k] * (A[k] + one)
    elif act == SOFTPLUS:               # g' = sigmoid(z) = 1 - exp(-a), accurate for small a
        for k in range(n):
            D[k] = D[k] * -_expm1_neg(-A[k])
    elif act == ELLIOTT:
        # 1 - 2|a - 1/2| = 1 / (1 + |s z|), so g' = s / (2 (1 + |s z|)^2) = (s/2) (that)^2
        for k in range(n):
            u = one - two * _abs(A[k] - half)
            D[k] = D[k] * (hs * u * u)
    # IDENTITY: g' = 1, D stays


# ---------------------------------------------------------------- the output layer
# Each case is one loop free of branches, so that each vectorizes.

cdef inline floating _row_max(const floating* z, int K) noexcept nogil:
    """max z[0:K] in four interleaved chains of comparisons, not one (the max is the
    same whatever the order: one element of z)."""
    cdef floating m0 = z[0], m1 = z[0], m2 = z[0], m3 = z[0]
    cdef int c = 1
    while c + 4 <= K:
        m0 = z[c] if z[c] > m0 else m0
        m1 = z[c + 1] if z[c + 1] > m1 else m1
        m2 = z[c + 2] if z[c + 2] > m2 else m2
        m3 = z[c + 3] if z[c + 3] > m3 else m3
        c += 4
    while c < K:
        m0 = z[c] if z[c] > m0 else m0
        c += 1
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


cdef inline double _softmax_row(const floating* z, floating* h, int K,
                                floating* zmax_out) noexcept nogil:
    """h = softmax(z) for one row of K; returns the normalizer sum exp(z - max z) and sets
    *zmax_out = max z (together: logsumexp(z) = max z + log(normalizer))."""
    cdef int c
    cdef floating zmax = _row_max(z, K)
    cdef double norm = 0, inv
    for c in range(K):
        h[c] = _exp_neg(z[c] - zmax)
        norm += h[c]
    inv = 1 / norm              # one division a row, not K (benchmarks/README.md)
    for c in range(K):
        h[c] = <floating>(h[c] * inv)
    zmax_out[0] = zmax
    return norm


cdef void _softmax_rows(const floating* Z, floating* H, int mb, int K) noexcept nogil:
    """H = softmax of each of Z's mb rows of K, the forward pass's: the rows' z - max z
    first, then their exp over the block as one flat loop, which vectorizes (row by row,
    ten outputs run one at a time through the exp), then each row times its sum's
    reciprocal: the same operations as _softmax_row's, so the same bits."""
    cdef int i, c
    cdef Py_ssize_t k
    cdef const floating* z
    cdef floating* h
    cdef floating zmax
    cdef double norm, inv
    for i in range(mb):
        z = Z + <Py_ssize_t>i * K
        h = H + <Py_ssize_t>i * K
        zmax = _row_max(z, K)
        for c in range(K):
            h[c] = z[c] - zmax
    for k in range(<Py_ssize_t>mb * K):
        H[k] = _exp_neg(H[k])
    for i in range(mb):
        h = H + <Py_ssize_t>i * K
        norm = 0
        for c in range(K):
            norm += h[c]
        inv = 1 / norm
        for c in range(K):
            h[c] = <floating>(h[c] * inv)


cdef void _output_activate(const Net* net, const floating* Z, floating* H,
                           int mb) noexcept nogil:
    """h = g_out(z) for the block's mb rows: the forward pass's end."""
    cdef int K = net.sizes[net.n_layers - 1]
    cdef int act = net.acts[net.n_layers - 2]
    cdef Py_ssize_t n = <Py_ssize_t>mb * K, k
    if act == SIGMOID:
        for k in range(n):
            H[k] = _sigmoid(Z[k])
    elif act == IDENTITY:
        for k in range(n):
            H[k] = Z[k]
    elif act == EXP:
        for k in range(n):
            H[k] = _exp(Z[k])
    else:
        _softmax_rows(Z, H, mb, K)


cdef double _output_error(const Net* net, floating* Z, floating* H, const floating* Y,
                          const floating* w, int mb, floating* D) noexcept nogil:
    """h = g_out(z) into H, delta(L) = dJ_i/dz into D and the loss summed over the block
    (returned), each sample's loss and delta weighted by w (NULL: weights one). Log terms
    come from z, never from h. Z is scratch afterwards (it ends holding each element's loss
    term)."""
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

    if act == SIGMOID and net.loss == CROSS_ENTROPY:
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
    elif act == EXP:
        # half Poisson deviance, scikit-learn's: y log(y / h) - y + h, with log h = z;
        # dJ_i/dz = h - y (the canonical link)
        for k in range(n):
            zk = Z[k]
            hz = _exp(zk)
            H[k] = hz
            D[k] = hz - Y[k]
            Z[k] = hz - Y[k] * zk + (_xlogx(Y[k]) - Y[k])
    elif act == IDENTITY:
        for k in range(n):
            H[k] = Z[k]
        for k in range(n):
            r = Z[k] - Y[k]
            D[k] = r
            Z[k] = <floating>0.5 * r * r
    else:
        for i in range(mb):
            z = Z + <Py_ssize_t>i * K
            h = H + <Py_ssize_t>i * K
            norm = _softmax_row(z, h, K, &zmax)
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


# ------------------------------------------------------------------------ dropout
# Inverted dropout of a training pass (online and mini-batch epochs; never a prediction):
# unit j of layer k (0: the input, 1 .. L-2: the hidden layers) of the sample with index n
# is kept when fmix32(row_key ^ j 0x9E3779B9) >= round-down(p_k 2^32), with the 32-bit
# row_key = mix64(mix64(epoch_key ^ n) ^ k) >> 32 and epoch_key = mix64(mix64(seed) ^ epoch)
# (mix64: SplitMix64's step; fmix32: MurmurHash3's finalizer, a bijection of 32-bit words:
# AVX2 multiplies 32-bit lanes in one instruction and has none for mix64's 64-bit ones):
# a counter-based generator, so a mask depends on (seed, epoch, sample, layer, unit) alone,
# never on threads, blocks or the order rows are visited in (reference.dropout_keep is the
# same in NumPy). A kept unit's activation is divided by 1 - p_k, a dropped one is 0, and
# the backward pass multiplies by the same factor.

cdef extern from *:
    """
    #define CB_GOLDEN 0x9E3779B97F4A7C15ULL
    #define CB_MIX1 0xBF58476D1CE4E5B9ULL
    #define CB_MIX2 0x94D049BB133111EBULL
    #define CB_GOLDEN32 0x9E3779B9U
    #define CB_FMIX1 0x85EBCA6BU
    #define CB_FMIX2 0xC2B2AE35U
    """
    const unsigned long long CB_GOLDEN
    const unsigned long long CB_MIX1
    const unsigned long long CB_MIX2
    const unsigned int CB_GOLDEN32
    const unsigned int CB_FMIX1
    const unsigned int CB_FMIX2


cdef inline unsigned long long mix64(unsigned long long x) noexcept nogil:
    """SplitMix64's step: x plus its increment, through its output function."""
    x = x + CB_GOLDEN
    x = (x ^ (x >> 30)) * CB_MIX1
    x = (x ^ (x >> 27)) * CB_MIX2
    return x ^ (x >> 31)


cdef inline unsigned int drop_row_key(unsigned long long epoch_key, Py_ssize_t n,
                                      int k) noexcept nogil:
    return <unsigned int>(mix64(mix64(epoch_key ^ <unsigned long long>n)
                                ^ <unsigned long long>k) >> 32)


cdef inline unsigned int drop_unit_bits(unsigned int key, int j) noexcept nogil:
    """Unit j's 32 bits in the row of key: fmix32(key ^ j 0x9E3779B9), modulo 2^32."""
    cdef unsigned int h = key ^ (<unsigned int>j * CB_GOLDEN32)
    h = (h ^ (h >> 16)) * CB_FMIX1
    h = (h ^ (h >> 13)) * CB_FMIX2
    return h ^ (h >> 16)


cdef enum:
    DROP_PAD = 16               # a row's units are hashed in multiples of this many


cdef struct Drop:
    unsigned long long epoch_key            # mix64(mix64(seed) ^ epoch)
    const Py_ssize_t* ids                   # the sample index of the pass's row r: ids[r]
    const unsigned long long* thresholds    # layer k's round-down(p_k 2^32); 0: no dropout
    const double* scales                    # layer k's 1 / (1 - p_k)
    const void* ws                          # the pass's workspace: a hidden layer's slot ...
    void* gains                             # ... s in ws, its M g'(a) at gains + (s - ws)
    void* input                             # mb_max x s_1: the input rows after dropout
                                            # (online: two rows in turn, 64-byte aligned)
    void* scratch                           # mb_max rows of max(s_1, widest) units' bits
                                            # (32-bit words), and DROP_PAD more


cdef inline void _drop_layer(const Drop* d, int k, int mb, int s, const floating* src,
                             floating* A, floating* G, int act) noexcept nogil:
    """Layer k's dropout of the pass's first mb rows (d.ids): A (mb x s) = src M, M = 1/(1-p)
    where the unit is kept, else 0 (src may be A); G (mb x s, NULL for the input) = M g'(a),
    a from src, the factor the backward pass multiplies delta by. The bits of all the rows
    first, each row's hashed in whole vectors (DROP_PAD units: a row of 30 would leave 14 to
    run one at a time), its last ones spilling into the next row's place, which that row
    then overwrites (the scratch has DROP_PAD more); then each product over the block as one
    flat loop."""
    cdef int i, j, s_pad = (s + DROP_PAD - 1) // DROP_PAD * DROP_PAD
    cdef Py_ssize_t r, n = <Py_ssize_t>mb * s
    cdef unsigned int key, thr = <unsigned int>d.thresholds[k]
    cdef floating kept = <floating>d.scales[k], zero = 0
    cdef unsigned int* bits = <unsigned int*>d.scratch
    cdef unsigned int* brow
    for i in range(mb):
        key = drop_row_key(d.epoch_key, d.ids[i], k)
        brow = bits + <Py_ssize_t>i * s
        for j in range(s_pad):
            brow[j] = drop_unit_bits(key, j)
    if G != NULL:
        for r in range(n):
            G[r] = kept if bits[r] >= thr else zero
        _mul_derivative(G, src, n, act)
    for r in range(n):
        A[r] = src[r] * (kept if bits[r] >= thr else zero)


cdef inline const floating* _drop_input(const Drop* d, int mb, int s,
                                        const floating* X) noexcept nogil:
    """The block's input rows after dropout (d.input), or X itself without input dropout."""
    if d == NULL or d.thresholds[0] == 0:
        return X
    _drop_layer(d, 0, mb, s, X, <floating*>d.input, <floating*>NULL, IDENTITY)
    return <floating*>d.input


cdef inline floating* _gain_of(const Drop* d, int k, const floating* slot) noexcept nogil:
    """Hidden layer k's M g'(a) for its activations at slot, or NULL without its dropout."""
    if d == NULL or d.thresholds[k] == 0:
        return NULL
    return <floating*>d.gains + (slot - <const floating*>d.ws)


# ------------------------------------------------- the pieces every mode is built from

cdef inline void _layer_product(int mb, int s_in, int s_out, const floating* a,
                                const floating* theta, int ldt, const floating* wt,
                                int packed_units, floating* z) noexcept nogil:
    """z (mb x s_out) = a W^T, W = Theta's weights (theta + 1, row stride ldt): one row's
    matrix-vector product; a block's through our products where wt holds W^T packed (the
    layers of up to packed_units units: pack_transposed), else BLAS."""
    cdef bint packed = wt != NULL and s_out <= packed_units
    if mb == 1 and not (packed and s_out > OWN_MAX_UNITS):
        _matvec(s_out, s_in, theta + 1, ldt, a, z)
    elif packed:            # one row of a wide layer too: its packed W^T is read in rows
        _forward_product(mb, s_out, s_in, a, wt, packed_stride(s_out, sizeof(floating)),
                         theta + 1, ldt, z)
    else:
        gemm_nt(mb, s_out, s_in, 1, a, s_in, theta + 1, ldt, 0, z, s_out)


cdef inline floating* _forward_layers(const Net* net, const Py_ssize_t* offsets,
                                      const int* strides, const floating* params,
                                      const floating* wt, int packed_units, int l0,
                                      const floating* a_in,
                                      floating* slot, int mb, int mb_max, floating* Z,
                                      floating* bias, const Drop* drop) noexcept nogil:
    """The forward pass through the layers' parameters from index l0 on (l0 = 0: all of
    them, a_in = X; online_sample starts at 1 after applying a pending update to the
    first): z(l+1) = [1 a(l)] Theta(l)^T, a(l+1) = g(z(l+1)), each hidden layer's
    activations into the workspace from `slot` on (mb_max rows a layer), the output
    layer's z(L) into Z (its g comes with the loss). The parameters with index l lie at
    params + offsets[l], rows strides[l] apart; wt holds the packed W^T of index l0 and
    those after it, or is NULL. drop: the hidden layers' dropout (NULL: none). Returns
    where a(L) goes in the workspace."""
    cdef int L = net.n_layers
    cdef int l, s_in, s_out, ldt
    cdef const floating* theta
    cdef floating* a_out
    for l in range(l0, L - 1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        ldt = strides[l]
        theta = params + offsets[l]
        a_out = Z if l == L - 2 else slot
        _layer_product(mb, s_in, s_out, a_in, theta, ldt, wt, packed_units, a_out)
        _bias_activate(a_out, mb, s_out, theta, ldt, net.acts[l] if l < L - 2 else IDENTITY,
                       bias)
        if l < L - 2:
            if drop != NULL and drop.thresholds[l + 1] != 0:
                _drop_layer(drop, l + 1, mb, s_out, a_out, a_out, _gain_of(drop, l + 1, a_out),
                            net.acts[l])
            a_in = a_out
            slot += <Py_ssize_t>mb_max * s_out
        if wt != NULL:
            wt += <Py_ssize_t>s_in * packed_stride(s_out, sizeof(floating))
    return slot


cdef inline floating* _first_slot(const Net* net, floating* ws, floating* Z) noexcept nogil:
    """Where z(2) goes: the workspace's first slot, or Z without hidden layers."""
    return Z if net.n_layers == 2 else ws


cdef inline floating* _finish_forward(const Net* net, const Py_ssize_t* offsets,
                                      const int* strides, const floating* params,
                                      const floating* wt, int packed_units, floating* first,
                                      floating* ws, int mb, int mb_max, floating* Z,
                                      floating* bias, const Drop* drop) noexcept nogil:
    """The forward pass on from z(2) = [1 a(1)] Theta(1)^T less its bias, computed by the
    caller into `first` (_first_slot): its bias and g, then the layers after it (wt: the
    packed W^T of layers 2 .. L - 1, or NULL; drop: as _forward_layers). Returns where
    a(L) goes."""
    _bias_activate(first, mb, net.sizes[1], params + offsets[0], strides[0],
                   net.acts[0] if net.n_layers > 2 else IDENTITY, bias)
    if net.n_layers == 2:
        return ws
    if drop != NULL and drop.thresholds[1] != 0:
        _drop_layer(drop, 1, mb, net.sizes[1], first, first, _gain_of(drop, 1, first),
                    net.acts[0])
    return _forward_layers(net, offsets, strides, params, wt, packed_units, 1, first,
                           ws + <Py_ssize_t>mb_max * net.sizes[1], mb, mb_max, Z, bias, drop)


cdef inline floating* _forward_of(const Net* net, const floating* wt, const Rows* rows,
                                  Py_ssize_t r0, int mb, const floating* X,
                                  const floating* params, floating* ws, int mb_max,
                                  floating* Z, floating* bias, const Drop* drop) noexcept nogil:
    """The forward pass of the block of mb rows from r0 (_forward_layers): dense rows from
    X (the block's rows, after any input dropout), CSR rows running their first layer's
    product over their stored entries (rows.w1t: W(1)^T)."""
    cdef floating* first
    if rows.indptr == NULL:
        return _forward_layers(net, net.offsets, net.strides, params, wt, rows.packed_units,
                               0, X, ws, mb, mb_max, Z, bias, drop)
    first = _first_slot(net, ws, Z)
    if rows.z1 != NULL:                 # computed up front (first_products; rows in order)
        memcpy(first, <const floating*>rows.z1 + r0 * net.sizes[1],
               <size_t>mb * net.sizes[1] * sizeof(floating))
    else:
        csr_product(rows, r0, mb, net.sizes[1], <const floating*>rows.w1t, first)
    return _finish_forward(net, net.offsets, net.strides, params,
                           wt + <Py_ssize_t>net.sizes[0]
                           * packed_stride(net.sizes[1], sizeof(floating))
                           if wt != NULL else NULL,
                           rows.packed_units, first, ws, mb, mb_max, Z, bias, drop)


cdef inline const floating* _output_input(const Net* net, const floating* X,
                                          const floating* H, int mb_max) noexcept nogil:
    """a(L-1), the output layer's input: the last hidden layer's slot, just before a(L)'s
    (H), or X itself without hidden layers."""
    if net.n_layers == 2:
        return X
    return H - <Py_ssize_t>mb_max * net.sizes[net.n_layers - 2]


cdef inline void _delta_step(int mb, int s_in, int s_out, const floating* D,
                             const floating* theta, int ldt, bint own, const floating* a,
                             int act, const floating* gain, floating* Dn) noexcept nogil:
    """delta(l) = delta(l+1) W * g'(a(l)) into Dn (mb x s_in), from D = delta(l+1)
    (mb x s_out) and W = Theta(l)'s weights (theta + 1, row stride ldt) before any update
    to them; `own`: blocks run our products. gain: layer l's dropout factor M g'(a(l))
    instead of g'(a(l)) (NULL: none)."""
    cdef Py_ssize_t k
    if mb == 1:
        _matvec_t(s_out, s_in, theta + 1, ldt, D, Dn)                  # d = W^T d
    elif own and s_out <= OWN_MAX_UNITS:
        _gemm(mb, s_in, s_out, 1, D, s_out, 1, theta + 1, ldt, False, Dn, s_in, 0)
    else:
        gemm_nn(mb, s_in, s_out, 1, D, s_out, theta + 1, ldt, 0, Dn, s_in)    # Dn = D W
    if gain == NULL:
        _mul_derivative(Dn, a, <Py_ssize_t>mb * s_in, act)
    else:
        for k in range(<Py_ssize_t>mb * s_in):
            Dn[k] = Dn[k] * gain[k]


cdef inline void _accumulate_bias(int mb, int s_out, floating alpha, const floating* D,
                                  floating* tgt, int ldt, bint own,
                                  floating* bias) noexcept nogil:
    """Theta's bias column (tgt, row stride ldt) += alpha * delta summed over the block's
    mb rows (bias: scratch of s_out)."""
    cdef int i, j
    cdef const floating* row
    if mb == 1:
        for j in range(s_out):
            tgt[<Py_ssize_t>j * ldt] += alpha * D[j]
        return
    if own:                             # builds with our own loops (gemm.h)
        _colsum(mb, s_out, D, s_out, bias)
    else:                               # row by row, so that it vectorizes
        for j in range(s_out):
            bias[j] = 0
        for i in range(mb):
            row = D + <Py_ssize_t>i * s_out
            for j in range(s_out):
                bias[j] += row[j]
    for j in range(s_out):
        tgt[<Py_ssize_t>j * ldt] += alpha * bias[j]


cdef inline void _accumulate_weights(int mb, int s_in, int s_out, floating alpha,
                                     floating decay, const floating* D, const floating* a,
                                     floating* tgt, int ldt, bint own) noexcept nogil:
    """Theta's weights (tgt + 1, row stride ldt) += alpha * delta^T a summed over the
    block's mb rows; one row scales them by decay first (weight decay of online updates),
    blocks take decay = 1."""
    if mb == 1:
        _outer(s_out, s_in, alpha, D, a, tgt + 1, ldt, decay)      # G = decay G + d a^T
    elif own and s_out <= OWN_MAX_UNITS:
        _gemm(s_out, s_in, mb, alpha, D, 1, s_out, a, s_in, True, tgt + 1, ldt,
              GRADIENT_SLICE)
    else:
        gemm_tn(s_out, s_in, mb, alpha, D, s_out, a, s_in, 1, tgt + 1, ldt)  # G += D^T A


cdef floating* _backward(const Net* net, const Py_ssize_t* offsets, const int* strides,
                        const floating* params, floating* target, floating* D, floating* Dn,
                        const floating* a_in, const floating* X, int mb, int mb_max,
                        bint own, floating alpha, floating decay, floating* bias,
                        int l_end, const Drop* drop) noexcept nogil:
    """Backpropagation from delta(L) in D down to the parameters with index l_end: for
    each l from L - 2 down, delta(l) = delta(l+1) W(l) g'(a(l)) from Theta(l) before its
    update (into Dn, D and Dn then swap), then target's Theta(l) += alpha delta(l+1)^T
    [1 a(l)] after its weights *= decay. params (read) and target (written: a gradient,
    or params themselves) share the layout offsets/strides; a_in is a(L-1), X a(1).
    Returns delta(l_end + 1): l_end = 1 leaves the first layer's update to the caller.
    drop: the forward pass's dropout, whose factors the deltas take (X: the input after it)."""
    cdef int l, s_in, s_out, ldt
    cdef floating* tmp
    for l in range(net.n_layers - 2, l_end - 1, -1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        ldt = strides[l]
        if l > 0:
            _delta_step(mb, s_in, s_out, D, params + offsets[l], ldt, own, a_in,
                        net.acts[l - 1], _gain_of(drop, l, a_in), Dn)
        _accumulate_bias(mb, s_out, alpha, D, target + offsets[l], ldt, own, bias)
        _accumulate_weights(mb, s_in, s_out, alpha, decay, D, a_in, target + offsets[l], ldt,
                            own)
        if l > 1:
            a_in = a_in - <Py_ssize_t>mb_max * net.sizes[l - 1]
        else:
            a_in = X
        tmp = D
        D = Dn
        Dn = tmp
    return D


# ------------------------------------------------------------------ the workspace

cdef Py_ssize_t workspace_size(const Net* net, int mb_max) noexcept nogil:
    """Activations of layers 2..L, z(L), two delta buffers (mb_max rows each) and
    BIAS_ROWS rows of scratch for biases: a(2) .. a(L) | z(L) | D | Dn | bias (a(1) is X
    itself)."""
    return (mb_max * (net.units + net.sizes[net.n_layers - 1] + 2 * <Py_ssize_t>net.widest)
            + BIAS_ROWS * <Py_ssize_t>net.widest)

cdef inline floating* _z_of(const Net* net, floating* ws, int mb_max) noexcept nogil:
    return ws + <Py_ssize_t>mb_max * net.units

cdef inline floating* _d_of(const Net* net, floating* ws, int mb_max) noexcept nogil:
    return _z_of(net, ws, mb_max) + <Py_ssize_t>mb_max * net.sizes[net.n_layers - 1]

cdef inline floating* _bias_of(const Net* net, floating* ws, int mb_max) noexcept nogil:
    return _d_of(net, ws, mb_max) + 2 * <Py_ssize_t>mb_max * net.widest


cdef void _transpose(int rows, int cols, const floating* src, int lds,
                     floating* dst, int ldd) noexcept nogil:
    """dst (cols x rows, row stride ldd) = src (rows x cols, row stride lds)^T, in square
    tiles: both sides then touch few cache lines at a time (element by element along one
    side, the other side's writes stride a whole row apart)."""
    cdef int j0 = 0, k0, j, k, j1, k1, tile = 16
    while j0 < rows:
        j1 = min(j0 + tile, rows)
        k0 = 0
        while k0 < cols:
            k1 = min(k0 + tile, cols)
            for k in range(k0, k1):
                for j in range(j0, j1):
                    dst[<Py_ssize_t>k * ldd + j] = src[<Py_ssize_t>j * lds + k]
            k0 = k1
        j0 = j1


# The packed W^T's rows start on 64-byte boundaries (a cache line; AVX-512's vector), in a
# buffer that does (packed_buffer): the forward product's loads of them then never
# straddle two cache lines (benchmarks/README.md, "Measurements behind the code's choices").
cdef enum:
    PACK_ALIGN = 64


cdef inline int packed_stride(int s_out, Py_ssize_t itemsize) noexcept nogil:
    """The row stride of a layer's packed W^T: s_out rounded up to PACK_ALIGN bytes."""
    cdef int lanes = <int>(PACK_ALIGN // itemsize)
    return (s_out + lanes - 1) // lanes * lanes


cdef Py_ssize_t packed_size(const Net* net, Py_ssize_t itemsize) noexcept nogil:
    """Elements of the packed W^T of every layer (pack_transposed's wt)."""
    cdef Py_ssize_t total = 0
    cdef int l
    for l in range(net.n_layers - 1):
        total += <Py_ssize_t>net.sizes[l] * packed_stride(net.sizes[l + 1], itemsize)
    return total


def aligned_zeros(shape, dtype):
    """Zeros of shape and dtype from a PACK_ALIGN-byte boundary (the buffers whose rows
    our products load as vectors: the packed W^T, a mini-batch's rows, the online epoch's
    copy of the parameters). The boundary is found in bytes of a larger buffer, never by
    a negated address's remainder (negative in C)."""
    dtype = np.dtype(dtype)
    cdef Py_ssize_t n = 1, nbytes
    for k in (shape if isinstance(shape, (tuple, list)) else (shape,)):
        n *= k
    nbytes = n * dtype.itemsize
    cdef cnp.ndarray buf = np.zeros(nbytes + PACK_ALIGN, dtype=np.uint8)
    # the address read directly: buf.ctypes builds a ctypes object, tens of microseconds
    # on a call after a pause, as much as a small forward pass itself
    cdef Py_ssize_t skip = ((PACK_ALIGN - <Py_ssize_t>cnp.PyArray_DATA(buf) % PACK_ALIGN)
                            % PACK_ALIGN)
    return buf[skip:skip + nbytes].view(dtype).reshape(shape)


def packed_buffer(Layout layout, dtype):
    """A buffer for pack_transposed's wt."""
    dtype = np.dtype(dtype)
    return aligned_zeros(max(1, packed_size(&layout.net, dtype.itemsize)), dtype)


cdef const floating* pack_transposed(const Net* net, const floating* params, floating* wt,
                                     int mb_max, bint sparse, int packed_units) noexcept nogil:
    """W(l)^T of each layer of up to packed_units units (the layers our products serve:
    Rows.packed_units), packed into wt (packed_size elements, layer after layer, rows
    packed_stride apart; the others' places left as they are) for blocks of rows:
    returns wt, or NULL when blocks call BLAS instead (a build or setting without our
    products, or blocks of one row). sparse: CSR rows, whose first layer reads the W(1)^T
    the caller packs (rows.w1t): that layer's place in wt is left as it is."""
    cdef int l, s_in, s_out, ld
    cdef const floating* w
    cdef floating* dst = wt
    if not _own_products or mb_max < 2:
        return NULL
    for l in range(net.n_layers - 1):
        s_in = net.sizes[l]
        s_out = net.sizes[l + 1]
        ld = packed_stride(s_out, sizeof(floating))
        w = params + net.offsets[l] + 1
        if s_out <= packed_units and not (l == 0 and sparse):
            _transpose(s_out, s_in, w, net.strides[l], dst, ld)
        dst += <Py_ssize_t>s_in * ld
    return wt


# ------------------------------------------------------------------ the four modes

cdef void forward_block(const Net* net, const floating* wt, const Rows* rows,
                        Py_ssize_t r0, int mb, const floating* params, floating* H,
                        floating* ws, int mb_max) noexcept nogil:
    """H (mb x s_L) = h(X) for the mb rows from row r0; wt from pack_transposed."""
    cdef floating* Z = _z_of(net, ws, mb_max)
    _forward_of(net, wt, rows, r0, mb,
                <const floating*>dense_at(rows, r0, net.sizes[0], sizeof(floating)), params,
                ws, mb_max, Z, _bias_of(net, ws, mb_max), NULL)
    _output_activate(net, Z, H, mb)


cdef double cost_block(const Net* net, const floating* wt, const Rows* rows, Py_ssize_t r0,
                       const floating* Y, const floating* w, int mb, const floating* params,
                       floating* ws, int mb_max) noexcept nogil:
    """The weighted loss summed over the mb rows from row r0 (targets Y, weights w or
    NULL: the block's own)."""
    cdef floating* Z = _z_of(net, ws, mb_max)
    cdef floating* H = _forward_of(net, wt, rows, r0, mb,
                                   <const floating*>dense_at(rows, r0, net.sizes[0],
                                                             sizeof(floating)),
                                   params, ws, mb_max, Z, _bias_of(net, ws, mb_max), NULL)
    return _output_error(net, Z, H, Y, w, mb, _d_of(net, ws, mb_max))


cdef double gradient_block(const Net* net, const floating* wt, const Rows* rows,
                           Py_ssize_t r0, const floating* Y, const floating* w, int mb,
                           const floating* params, floating* grad, floating* ws,
                           int mb_max) noexcept nogil:
    """The weighted loss summed over the mb rows from row r0 (returned), and their
    gradient added to grad: grad(l) += delta(l+1)^T [1 a(l)] for every layer; for CSR
    rows, the first layer's weights' into rows.g1t, transposed (add_transposed). With
    rows.drop, the pass of the dropped network (its rows' masks: rows.drop.ids from r0)."""
    cdef bint sparse = rows.indptr != NULL
    cdef floating* Z = _z_of(net, ws, mb_max)
    cdef floating* D = _d_of(net, ws, mb_max)
    cdef floating* bias = _bias_of(net, ws, mb_max)
    cdef const floating* X = <const floating*>dense_at(rows, r0, net.sizes[0], sizeof(floating))
    cdef Drop block_drop
    cdef const Drop* drop = NULL
    if rows.drop != NULL:
        block_drop = (<const Drop*>rows.drop)[0]
        block_drop.ids = block_drop.ids + r0
        drop = &block_drop
        if not sparse:
            X = _drop_input(drop, mb, net.sizes[0], X)
    cdef floating* H = _forward_of(net, wt, rows, r0, mb, X, params, ws, mb_max, Z, bias,
                                   drop)
    cdef double loss = _output_error(net, Z, H, Y, w, mb, D)
    D = _backward(net, net.offsets, net.strides, params, grad, D,
                  D + <Py_ssize_t>mb_max * net.widest, _output_input(net, X, H, mb_max), X,
                  mb, mb_max, wt != NULL, 1, 1, bias, 1 if sparse else 0, drop)
    if sparse:
        _accumulate_bias(mb, net.sizes[1], 1, D, grad, net.strides[0], wt != NULL, bias)
        if rows.d1 != NULL:             # kept for first_by_columns (rows in order: r0 is X's)
            memcpy(<floating*>rows.d1 + r0 * net.sizes[1], D,
                   <Py_ssize_t>mb * net.sizes[1] * sizeof(floating))
        else:
            csr_accumulate(rows, r0, mb, net.sizes[1], 1, D, <floating*>rows.g1t)
    return loss


cdef struct Pending:
    # One sample's update of W(1) = Theta(1)[:, 1:], deferred to the next sample's forward
    # pass, which applies it while it reads W(1) anyway (gemm.h: cb_update_matvec_rows).
    # Nothing reads W(1) in between: the backward pass stops at delta(2).
    bint active
    void* d                     # alpha delta(2) of that sample (floating*, s_2 of them)
    const void* x               # its input row
    double decay


cdef struct Online:
    # online_epoch's own state. The epoch runs on a copy of the parameters whose every
    # weight row starts on a 64-byte boundary (Layout.aligned): Theta(l) at offsets[l],
    # rows strides[l] apart (padded). On builds with our own loops (defer), each sample's
    # first-layer update waits in `pending` for the next sample's forward pass.
    const Py_ssize_t* offsets
    const int* strides
    bint defer
    Pending pending
    int half                    # the row of Drop.input the next dropped input goes to
    void* v1t                   # CSR rows: V (s_1 x s_2), W(1) = scale V^T during the epoch
    double scale


cdef inline void _apply_pending_matvec(const Net* net, Online* o, floating* W, int ld,
                                       const floating* x, floating* z) noexcept nogil:
    """W(1) = decay W(1) + d x_prev^T (the pending update), then z = W(1) x (without its
    bias)."""
    cdef Pending* p = &o.pending
    _update_matvec_rows(net.sizes[1], net.sizes[0], W, ld, x, z, <const floating*>p.d,
                        <const floating*>p.x, <floating>p.decay)
    p.active = False


cdef inline void _defer_update(const Net* net, Online* o, const floating* D,
                               const floating* x, floating alpha,
                               floating decay) noexcept nogil:
    cdef Pending* p = &o.pending
    cdef floating* d = <floating*>p.d
    cdef int j
    for j in range(net.sizes[1]):
        d[j] = alpha * D[j]
    p.x = x
    p.decay = decay
    p.active = True


cdef void flush_pending(const Net* net, Online* o, floating* theta) noexcept nogil:
    """Apply a deferred first-layer update (at the end of an online epoch)."""
    cdef Pending* p = &o.pending
    if not p.active:
        return
    _outer(net.sizes[1], net.sizes[0], 1, <const floating*>p.d, <const floating*>p.x,
           theta + o.offsets[0] + 1, o.strides[0], <floating>p.decay)
    p.active = False


cdef inline void _sparse_first_update(const Net* net, Online* o, const Rows* rows,
                                      Py_ssize_t i, const floating* D, floating alpha,
                                      floating decay) noexcept nogil:
    """W(1) = decay W(1) + alpha delta(2) x^T for CSR row i, on W(1) = c V^T (o.v1t: V,
    o.scale: c): the decay is c's alone, so only the row's stored columns of V change.
    V is rescaled before c could underflow."""
    cdef floating* V = <floating*>o.v1t
    cdef Py_ssize_t k, n = <Py_ssize_t>net.sizes[0] * net.sizes[1]
    o.scale = o.scale * decay
    if o.scale < 1e-30:
        for k in range(n):
            V[k] = <floating>o.scale * V[k]
        o.scale = 1
    csr_accumulate(rows, i, 1, net.sizes[1], <floating>(alpha / o.scale), D, V)


cdef double online_sample(const Net* net, Online* o, const Rows* rows, Py_ssize_t i,
                          const floating* y, const floating* w, floating* theta,
                          floating alpha, floating decay, floating* ws) noexcept nogil:
    """One sample, row i (targets y, weight w or NULL), on the parameters theta laid out as
    o says: returns its weighted loss before the update, and updates Theta in place,
    Theta(l) += alpha delta(l+1)^T [1 a(l)] after its weights *= decay (alpha = -step).
    ws: a workspace of one row. CSR rows keep W(1) in o.v1t (_sparse_first_update)."""
    cdef int k, s1 = net.sizes[1]
    cdef bint sparse = rows.indptr != NULL
    cdef const floating* x = <const floating*>dense_at(rows, i, net.sizes[0], sizeof(floating))
    cdef floating* Z = _z_of(net, ws, 1)
    cdef floating* D = _d_of(net, ws, 1)
    cdef floating* bias = _bias_of(net, ws, 1)
    cdef floating* first = _first_slot(net, ws, Z)
    cdef floating* H
    cdef floating scale
    cdef double loss
    cdef const Drop* drop = <const Drop*>rows.drop     # its ids: this sample's (online_epoch)
    cdef Drop halves
    if drop != NULL and not sparse:
        if o.defer and drop.thresholds[0] != 0:
            # Drop.input's two rows take turns: the pending update's x, the last sample's
            # dropped row, stays until this sample's forward pass applies it
            halves = drop[0]
            halves.input = <floating*>drop.input + o.half * packed_stride(net.sizes[0],
                                                                          sizeof(floating))
            o.half = 1 - o.half
            drop = &halves
        x = _drop_input(drop, 1, net.sizes[0], x)

    # forward; a pending first-layer update is applied as its product is computed
    if sparse:
        csr_product(rows, i, 1, s1, <const floating*>o.v1t, first)
        scale = <floating>o.scale
        for k in range(s1):
            first[k] = scale * first[k]
    elif o.pending.active:
        _apply_pending_matvec(net, o, theta + o.offsets[0] + 1, o.strides[0], x, first)
    if sparse or o.pending.active:
        H = _finish_forward(net, o.offsets, o.strides, theta, <const floating*>NULL,
                            OWN_MAX_UNITS, first, ws, 1, 1, Z, bias, drop)
    else:
        H = _forward_layers(net, o.offsets, o.strides, <const floating*>theta,
                            <const floating*>NULL, OWN_MAX_UNITS, 0, x, ws, 1, 1, Z, bias,
                            drop)
    loss = _output_error(net, Z, H, y, w, 1, D)

    # backward, from the output layer down; the first layer's weights last, when deferred
    # to the next forward pass or kept apart for CSR rows
    D = _backward(net, o.offsets, o.strides, theta, theta, D, D + net.widest,
                  _output_input(net, x, H, 1), x, 1, 1, False, alpha, decay, bias,
                  1 if (sparse or o.defer) else 0, drop)
    if sparse or o.defer:
        _accumulate_bias(1, s1, alpha, D, theta + o.offsets[0], o.strides[0], False, bias)
        if sparse:
            _sparse_first_update(net, o, rows, i, D, alpha, decay)
        else:
            _defer_update(net, o, D, x, alpha, decay)       # applied by the next forward
    return loss


# ---------------------------------------------------------------- regularization

cdef inline void _dot_blocks(double* acc, const floating* a, const floating* b,
                             Py_ssize_t n) noexcept nogil:
    """acc[u] += a[k + u] b[k + u] over the whole blocks of 16 in n (_dot's partial sums; a
    caller may feed one a's blocks run after run, in order, and end with _dot_end)."""
    cdef Py_ssize_t k = 0
    cdef int u
    while k + 16 <= n:
        for u in range(16):
            acc[u] += <double>a[k + u] * b[k + u]
        k += 16


cdef inline double _dot_end(const double* acc, const floating* a, const floating* b,
                            Py_ssize_t n) noexcept nogil:
    """_dot's total: the n % 16 elements past n's whole blocks, then the 16 partial sums."""
    cdef double total = 0
    cdef Py_ssize_t k = n - n % 16
    cdef int u
    while k < n:
        total += <double>a[k] * b[k]
        k += 1
    for u in range(16):
        total += acc[u]
    return total


cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """a'b in double, over 16 partial sums: the compiler keeps them in vector registers
    (a single running sum is a chain of dependent adds it may not reorder)."""
    cdef double acc[16]
    cdef int u
    for u in range(16):
        acc[u] = 0
    _dot_blocks(acc, a, b, n)
    return _dot_end(acc, a, b, n)


cdef inline double _sumsq(const floating* x, Py_ssize_t n) noexcept nogil:
    """sum x^2 in double (_dot)."""
    return _dot(x, x, n)


def theta_rows(Layout layout):
    """Theta's rows over all layers: the length of regularize's sums."""
    return max(1, sum(layout.sizes[1:]))


cdef double regularize(const Net* net, const floating* params, floating* grad,
                       double loss_norm, double reg, int nt, double* sums) noexcept nogil:
    """grad = grad / loss_norm + reg * W (bias column excluded), when grad is not NULL;
    returns reg/2 * sum W^2. nt threads share Theta's rows, each row's sum of squares
    going to sums (theta_rows of them), which are added in their order: the same bits
    on any nt."""
    cdef int l, j, L = net.n_layers, n_rows = 0
    cdef Py_ssize_t k
    cdef double sumsq = 0
    cdef floating inv = <floating>(1.0 / loss_norm)
    if reg == 0:
        if grad != NULL:
            for k in prange(net.n_params, num_threads=nt, schedule="static"):
                grad[k] = grad[k] * inv      # one flat, vectorized pass when lam = 0
        return 0
    for l in range(L - 1):
        n_rows += net.sizes[l + 1]
    for j in prange(n_rows, num_threads=nt, schedule="static"):
        sums[j] = _regularize_row(net, params, grad, inv, reg, j)
    for j in range(n_rows):
        sumsq += sums[j]
    return 0.5 * reg * sumsq


cdef struct ThetaRow:
    Py_ssize_t base             # where its bias is, its weights after it
    int n                       # its elements, the bias included


cdef inline ThetaRow theta_row(const Net* net, int row) noexcept nogil:
    """Theta's row `row`, counted over the layers."""
    cdef int l = 0
    cdef ThetaRow t
    while row >= net.sizes[l + 1]:
        row -= net.sizes[l + 1]
        l += 1
    t.n = net.strides[l]
    t.base = net.offsets[l] + <Py_ssize_t>row * t.n
    return t


cdef inline double _regularize_row(const Net* net, const floating* params, floating* grad,
                                   floating inv, double reg, int row) noexcept nogil:
    """regularize's work on Theta's row `row` (counted over the layers): its gradient
    scaled and regularized, and its weights' sum of squares."""
    cdef ThetaRow t = theta_row(net, row)
    cdef int i, ldt = t.n
    cdef Py_ssize_t base = t.base
    cdef floating r = <floating>reg
    if grad != NULL:
        for i in range(ldt):                # scaled first, as when lam = 0
            grad[base + i] = grad[base + i] * inv
        for i in range(1, ldt):
            grad[base + i] = grad[base + i] + r * params[base + i]
    return _sumsq(params + base + 1, ldt - 1)
