"""The reference's pieces (cbackprop.reference imports them; read them there): the units and
their derivatives, the losses and output errors, the checks of its arguments, dropout's masks
and their counter-based generator (the compiled core's, bit for bit).

Only NumPy and the standard library are used (and the package's input checks).
"""
import numpy as np

from cbackprop import _validation as v

# the names of the package's one table (hidden layers, output layer, losses)
ACTIVATIONS, OUTPUTS, LOSSES = v.HIDDEN_ACTIVATIONS, v.OUTPUTS, v.LOSSES

# ----------------------------------------------------------------------------------------------
# Activations and their derivatives
# ----------------------------------------------------------------------------------------------


def sigmoid(z):
    """g(z) = 1 / (1 + exp(-z)), computed without overflow for any z.

    g(z) = exp(-log(1 + exp(-z))), and np.logaddexp(0, -z) = log(1 + exp(-z)) never
    overflows: it is -z + log1p(exp(z)) for z < 0.
    """
    return np.exp(-np.logaddexp(0.0, -np.asarray(z)))[()]


def sigmoid_gradient(z):
    """g'(z) = g(z) (1 - g(z)), the derivative of the sigmoid."""
    g = sigmoid(z)
    return g * (1 - g)


def debug_initialize_weights(fan_out, fan_in):
    """The course's debugInitializeWeights: a fixed (fan_out, 1 + fan_in) matrix for checks.

    Octave's reshape(sin(1:numel(W)), size(W)) / 10 fills it column by column (Fortran order).
    """
    shape = (fan_out, 1 + fan_in)
    return np.sin(np.arange(1, shape[0] * shape[1] + 1)).reshape(shape, order="F") / 10


def _softplus(z):
    """softplus(z) = log(1 + exp(z)), without overflow (np.logaddexp(0, z))."""
    return np.logaddexp(0.0, z)


def _logsumexp(z):
    """log sum_k exp(z_k) over the last axis, shifted by the maximum so that exp never overflows."""
    zmax = np.max(z, axis=-1, keepdims=True)
    return zmax + np.log(np.sum(np.exp(z - zmax), axis=-1, keepdims=True))


def _softmax(z):
    """h_k = exp(z_k) / sum_j exp(z_j) over the last axis, shifted by the maximum."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


# The constants of issue 16's units (fixed: no option sets them)
LEAKY_SLOPE = 0.01        # leaky_relu: z for z > 0, else 0.01 z (PyTorch's default slope)
ELU_ALPHA = 1.0           # elu: z for z > 0, else alpha (exp(z) - 1)
ELLIOTT_STEEPNESS = 0.5   # elliott: FANN_ELLIOT, (s z / 2) / (1 + |s z|) + 1/2, FANN's default s

# g(z) for every layer type
_G = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "softmax": _softmax,
    "identity": lambda z: z,
    "exp": np.exp,  # the poisson loss's output (log link): inf past exp's range
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
    "elu": lambda z: np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: _softplus(z),
    "elliott": lambda z: ELLIOTT_STEEPNESS * z / 2 / (1 + np.abs(ELLIOTT_STEEPNESS * z)) + 0.5,
}

# g'(z) of the hidden activations, written in terms of a = g(z)
_G_PRIME = {
    "sigmoid": lambda a: a * (1 - a),
    "tanh": lambda a: 1 - a * a,
    "relu": lambda a: (a > 0).astype(a.dtype),  # [z > 0]: a = max(z, 0) > 0 exactly when z > 0
    "identity": lambda a: np.ones_like(a),      # a linear layer: g(z) = z
    "leaky_relu": lambda a: np.where(a > 0, 1.0, LEAKY_SLOPE).astype(a.dtype),  # a > 0 iff z > 0
    "elu": lambda a: np.where(a > 0, 1.0, a + ELU_ALPHA),  # z <= 0: alpha exp(z) = a + alpha
    "softplus": lambda a: -np.expm1(-a),                   # sigmoid(z) = 1 - exp(-a)
    # elliott: g' = s / (2 (1 + |s z|)^2), and 1 - 2 |a - 1/2| = 1 / (1 + |s z|)
    "elliott": lambda a: ELLIOTT_STEEPNESS / 2 * (1 - 2 * np.abs(a - 0.5)) ** 2,
}


# ----------------------------------------------------------------------------------------------
# Loss per sample and output error delta(L)
# ----------------------------------------------------------------------------------------------


def _xlogx(y):
    """y log y, 0 at y = 0 (scipy.special.xlogy(y, y))."""
    return y * np.log(np.where(y > 0, y, 1))


def _sample_loss(z, h, y, output, loss):
    """Loss of each sample (summed over the output units k), from z = z(L) and h = a(L).

    Works on a single sample (1-D) or on one sample per row (2-D): sums run over the last axis.
    """
    if loss == "poisson":
        # half Poisson deviance, as scikit-learn's MLPRegressor(loss="poisson"):
        # y log(y / h) - y + h with log h = z (the exp output), so h - y z + (y log y - y)
        return np.sum(h - y * z + (_xlogx(y) - y), axis=-1)
    if loss == "squared_error":
        return 0.5 * np.sum((h - y) ** 2, axis=-1)  # (1/2) ||h - y||^2
    if output == "sigmoid":
        # -[y log h + (1 - y) log(1 - h)], with log h = -softplus(-z) and log(1 - h) = -softplus(z),
        # is y softplus(-z) + (1 - y) softplus(z) = softplus(z) - y z,
        # since softplus(-z) = softplus(z) - z
        return np.sum(_softplus(z) - y * z, axis=-1)
    # softmax: -sum_k y_k log h_k with log h_k = z_k - logsumexp(z)
    return np.sum(y * (_logsumexp(z) - z), axis=-1)


def _output_delta(h, y, output, loss):
    """delta(L) = dJ_i/dz(L), the error of the output layer, for one sample or one per row."""
    if loss == "poisson":
        return h - y  # d/dz [exp(z) - y z] = h - y
    if loss == "cross_entropy":
        if output == "sigmoid":
            return h - y  # d/dz [softplus(z) - y z] = g(z) - y
        # softmax: d/dz_k sum_j y_j (logsumexp(z) - z_j) = h_k sum_j y_j - y_k.
        # This is h - y when each row of Y sums to 1 (one-hot or probabilities), and the exact
        # gradient for any other targets.
        return h * np.sum(y, axis=-1, keepdims=True) - y
    r = h - y  # squared error: dJ_i/dh = h - y, then the chain rule through the output g
    if output == "identity":
        return r
    if output == "sigmoid":
        return r * h * (1 - h)  # g'(z) = h (1 - h)
    # softmax: the Jacobian dh_j/dz_k = h_j ([j = k] - h_k) is symmetric; applied to r it gives
    # h_k (r_k - sum_j r_j h_j)
    return h * (r - np.sum(r * h, axis=-1, keepdims=True))


# ----------------------------------------------------------------------------------------------
# Input checks (the reference checks only what it needs to give a clear error)
# ----------------------------------------------------------------------------------------------


def _layer_names(activation, output, n_layers):
    """The name of g after each of the n_layers = L - 1 weight matrices: hidden, then output."""
    v.check_option("output", output, OUTPUTS)
    return v.check_activations(activation, n_layers - 1) + [output]


def _check_loss(output, loss):
    v.check_option("loss", loss, LOSSES)
    if loss == "cross_entropy" and output == "identity":
        raise ValueError("loss='cross_entropy' needs output='sigmoid' or 'softmax', not 'identity'")
    if (loss == "poisson") != (output == "exp"):
        raise ValueError(f"loss='poisson' and output='exp' go together; got output={output!r}, "
                         f"loss={loss!r}")


def _as_arrays(thetas, X):
    """Convert thetas and X to arrays of one floating dtype (the result type of the inputs).
    A sparse X (scipy.sparse) means the matrix it stores: here, plainly, its dense copy."""
    thetas = [np.asarray(theta) for theta in thetas]
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    if not thetas:
        raise ValueError("thetas must hold at least one matrix")
    dtype = np.result_type(np.float32, X, *thetas)  # float32 stays float32, ints become float64
    thetas = [theta.astype(dtype, copy=False) for theta in thetas]
    X = X.astype(dtype, copy=False)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (m, n), got shape {X.shape}")
    s = X.shape[1]
    for l, theta in enumerate(thetas, start=1):
        if theta.ndim != 2 or theta.shape[1] != s + 1:
            raise ValueError(f"Theta({l}) must have shape (s_{l + 1}, {s + 1}), got {theta.shape}")
        s = theta.shape[0]
    return thetas, X


def _as_targets(thetas, X, Y, sample_weight):
    """Convert Y (m, s_L) and the sample weights (m,) to the dtype of X; default weights are 1."""
    m = X.shape[0]
    Y = np.asarray(Y, dtype=X.dtype)
    if Y.shape != (m, thetas[-1].shape[0]):
        raise ValueError(f"Y must have shape {(m, thetas[-1].shape[0])}, got {Y.shape}")
    if sample_weight is None:
        w = np.ones(m, dtype=X.dtype)
    else:
        w = np.asarray(sample_weight, dtype=X.dtype)
        if w.shape != (m,):
            raise ValueError(f"sample_weight must have shape ({m},), got {w.shape}")
    if not np.sum(w) > 0:
        raise ValueError("the sample weights must have a positive sum")
    return Y, w



def _check_masks(masks, thetas, X):
    """masks as a list of one factor array (or None) per layer but the output."""
    if masks is None:
        return [None] * len(thetas)
    masks = list(masks)
    if len(masks) != len(thetas):
        raise ValueError(f"masks must hold {len(thetas)} arrays (or None): the input and "
                         f"each hidden layer; got {len(masks)}")
    sizes = [X.shape[1]] + [theta.shape[0] for theta in thetas[:-1]]
    for k, (mask, s) in enumerate(zip(masks, sizes)):
        if mask is not None and np.shape(mask) != (X.shape[0], s):
            raise ValueError(f"masks[{k}] must have shape {(X.shape[0], s)}; got "
                             f"{np.shape(mask)}")
    return [None if mask is None else np.asarray(mask, dtype=X.dtype) for mask in masks]


# ----------------------------------------------------------------------------------------------
# Dropout's masks: a counter-based generator (the compiled core's, bit for bit)
# ----------------------------------------------------------------------------------------------

_U64 = np.uint64
_U32 = np.uint32


def _mix64(x):
    """SplitMix64's step on uint64 values (Steele, Lea and Flood 2014): x plus its increment
    0x9E3779B97F4A7C15, then its output function; arithmetic modulo 2**64."""
    x = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _fmix32(h):
    """MurmurHash3's 32-bit finalizer on uint32 values (a bijection); arithmetic modulo 2**32."""
    h = np.asarray(h, dtype=_U32)
    h = (h ^ (h >> _U32(16))) * _U32(0x85EBCA6B)
    h = (h ^ (h >> _U32(13))) * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


def dropout_keep(seed, epoch, samples, layer, n_units, rate):
    """Which units dropout keeps: a (len(samples), n_units) bool array, True where unit j of
    `layer` (0: the input, k: hidden layer k) of sample n is kept in `epoch`:

        epoch_key = mix64(mix64(seed) ^ epoch)
        row_key   = mix64(mix64(epoch_key ^ n) ^ layer) >> 32           (its top 32 bits)
        kept      = fmix32(row_key ^ (j * 0x9E3779B9 mod 2**32)) >= floor(rate * 2**32)

    so that a mask depends on (seed, epoch, sample, layer, unit) alone: never on threads,
    blocks or the order the samples are visited in. A unit is kept with probability
    1 - floor(rate 2^32) / 2^32 (1 - rate to within 2^-32)."""
    samples = np.asarray(samples, dtype=np.int64).astype(_U64).reshape(-1)
    with np.errstate(over="ignore"):
        epoch_key = _mix64(_mix64(np.array([seed], dtype=_U64)) ^ _U64(epoch))
        rows = (_mix64(_mix64(epoch_key ^ samples) ^ _U64(layer)) >> _U64(32)).astype(_U32)
        units = np.arange(n_units, dtype=_U32) * _U32(0x9E3779B9)
        bits = _fmix32(rows[:, None] ^ units[None, :])
    return bits >= _U32(int(rate * 2 ** 32))


def dropout_masks(seed, epoch, samples, rates, sizes):
    """The factors of inverted dropout for the given samples: one (len(samples), s_k) array
    a layer but the output (rates[0] and sizes[0]: the input; then the hidden layers),
    1 / (1 - p_k) where the unit is kept and 0 where it is dropped, None where p_k = 0
    (forward_all's and cost_and_gradient's masks)."""
    return [None if p == 0 else dropout_keep(seed, epoch, samples, k, s, p) / (1 - p)
            for k, (p, s) in enumerate(zip(rates, sizes))]
