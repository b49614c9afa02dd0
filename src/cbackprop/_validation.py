"""Input checks and conversion, done once in Python before any compiled code runs.

Every function raises a ValueError or TypeError that names the offending
argument; the kernels trust what comes out of here.
"""
import numbers

import numpy as np

from cbackprop._core import core as _core

_CORE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# The one table of names: every module, the compiled core's codes and the command line's
# choices take them from here.
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "leaky_relu", "elu", "softplus",
                      "elliott")
OUTPUTS = ("sigmoid", "softmax", "identity", "exp")
LOSSES = ("cross_entropy", "squared_error", "poisson")
VALUE_OUTPUTS = ("identity", "exp")     # outputs of regression values, not of classes
DTYPES = ("float32", "float64")
INITS = ("ng", "he", "debug")
SOLVERS = ("online", "sgd", "adam", "lbfgs", "cg", "rprop")
FULL_BATCH_SOLVERS = ("lbfgs", "cg", "rprop")
SCHEDULES = ("constant", "invscaling", "adaptive")

# BLAS takes C ints: a layer width or a block's element count must stay below 2**31.
MAX_WIDTH = 2**31 - 1 - 1024


def check_option(name, value, allowed):
    """Return value if it is one of the allowed names, else a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def is_int(value):
    """An integer that is not a bool (True is an int to Python, never a size here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name, value, low=1):
    """An int >= low (TypeError for anything but an int, bools included)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def check_real(name, value, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in the interval given (open or closed at either end)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a finite real number; got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    if bad_low or bad_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be in {span}; got {value!r}")
    return float(value)


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_dtype(dtype):
    """'float32'/'float64' (or the numpy types) -> np.dtype."""
    if dtype is None:
        raise TypeError("dtype must be 'float32' or 'float64'; got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64'; got {dtype!r}") from None
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return dt


def check_layer_sizes(layer_sizes):
    """A list of at least two positive ints: input, hidden..., output."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a sequence of ints; got {layer_sizes!r}")
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size; got {sizes!r}")
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise TypeError(f"layer_sizes must hold ints; got {s!r} in {sizes!r}")
        if s < 1:
            raise ValueError(f"layer_sizes must all be >= 1; got {sizes!r}")
        if s > MAX_WIDTH:
            raise ValueError(f"layer_sizes: a layer of {s} units is too wide for BLAS (int sizes)")
    return [int(s) for s in sizes]


def check_activations(activation, n_hidden):
    """One hidden activation name per hidden layer, from a name or a list of names."""
    if isinstance(activation, str):
        check_option("activation", activation, HIDDEN_ACTIVATIONS)
        return [activation] * n_hidden
    if not isinstance(activation, (list, tuple)):
        raise TypeError(f"activation must be a name or a list of names; got {activation!r}")
    if len(activation) != n_hidden:
        raise ValueError(f"activation lists one name per hidden layer ({n_hidden}); "
                         f"got {len(activation)}: {list(activation)!r}")
    for a in activation:
        check_option("activation", a, HIDDEN_ACTIVATIONS)
    return list(activation)


def check_output_and_loss(output, loss, n_outputs):
    check_option("output", output, OUTPUTS)
    check_option("loss", loss, LOSSES)
    if loss == "cross_entropy" and output == "identity":
        raise ValueError("loss='cross_entropy' needs output='sigmoid' or 'softmax'; "
                         "use loss='squared_error' with output='identity'")
    if (loss == "poisson") != (output == "exp"):
        raise ValueError(f"loss='poisson' and output='exp' go together (the half Poisson "
                         f"deviance through its log link); got output={output!r}, loss={loss!r}")
    if output == "softmax" and n_outputs < 2:
        raise ValueError("output='softmax' needs at least 2 output units (its single output "
                         "would always be 1); use output='sigmoid' for one unit")


def check_lam(lam, name="lam"):
    """The course's lambda: a finite real number >= 0."""
    return check_real(name, lam, low=0)


def to_array(name, A):
    """np.asarray with an error that names the argument (ragged lists, say). Masked arrays
    are refused: np.asarray would drop the mask and use the hidden values."""
    if np.ma.isMaskedArray(A):
        raise TypeError(f"{name} is a masked array; its mask would be ignored: fill or drop "
                        "the masked values first (np.ma.filled, np.ma.compress_rows)")
    try:
        return np.asarray(A)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} is not a rectangular array of numbers ({exc})") from None


def all_finite(arr, chunk=1 << 16):
    """np.isfinite(arr).all() without a boolean array the size of arr (a quarter of a
    float32 X during fit): float32 and float64 by the compiled core's test of the exponent
    bits, other dtypes a chunk of elements at a time. (Not np.dot(x, x), though faster
    alone: that wakes OpenBLAS's thread pool, whose spinning then slows the row-split
    kernels right after it; benchmarks/README.md has the figures.)"""
    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")
    if flat.dtype in _CORE_FLOATS and flat.flags.c_contiguous:
        return _core.all_finite(flat)
    if flat.size <= chunk:
        return bool(np.isfinite(flat).all())
    return all(np.isfinite(flat[k:k + chunk]).all() for k in range(0, flat.size, chunk))


def cast_finite(name, arr, dtype, finite=True):
    """arr as a C-contiguous array of dtype, refusing NaN, inf and values dtype cannot hold
    (finite=False: the caller checks that later, see Network._cost)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if finite:
        require_finite(name, arr, out)
    return out


def require_finite(name, given, out):
    """Raise if out (given cast to a float dtype) holds NaN or inf, saying which, or that
    the cast overflowed."""
    if not all_finite(out):
        given = np.asarray(given)
        if given.dtype.kind == "f" and all_finite(given):
            raise ValueError(f"{name} overflows {out.dtype.name} (values too large)")
        bad = "NaN" if np.isnan(out).any() else "inf"
        raise ValueError(f"{name} contains {bad}; remove or impute those values first")


def as_matrix(name, A, dtype, n_cols=None, what="columns", finite=True):
    """A 2-D, finite, non-empty, C-contiguous array of dtype; copies only when needed."""
    if A is None:
        raise TypeError(f"{name} must be a 2-D array; got None")
    if type(A).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a scipy.sparse matrix, which fit, predict and score take "
                        "whole, in memory; blocks, batches and Dask partitions must be dense "
                        "arrays (densify each, or pass the whole sparse matrix)")
    arr = to_array(name, A)
    if arr.dtype.kind == "O":            # pandas' nullable columns (Int64, Float64, boolean)
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold numbers; it holds objects that are not "
                            "(text, or missing values: impute them first)") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = f" (for one sample use {name}.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (samples x {what}); got {arr.ndim}-D with "
                         f"shape {arr.shape}{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} has {arr.shape[1]} {what}, the network expects {n_cols}")
    return cast_finite(name, arr, dtype, finite)


def as_vector(name, a, dtype, size):
    """A finite, C-contiguous 1-D array of dtype with size elements."""
    arr = to_array(name, a)
    if arr.ndim != 1 or arr.shape[0] != size:
        raise ValueError(f"{name} must be 1-D with {size} elements; got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    return cast_finite(name, arr, dtype)


def check_targets(Y, m, n_outputs, loss, dtype, name="Y"):
    """Y as the kernels take it. For cross-entropy the range check also finds NaN and inf
    (NaN makes min and max NaN): two passes over Y, not three."""
    in_range = loss == "cross_entropy"
    Y_given, Y = Y, as_matrix(name, Y, dtype, n_outputs, what="outputs", finite=not in_range)
    if Y.shape[0] != m:
        raise ValueError(f"{name} has {Y.shape[0]} rows but X has {m}")
    if in_range:
        lo, hi = Y.min(), Y.max()
        if not (lo >= 0 and hi <= 1):
            require_finite(name, Y_given, Y)
            raise ValueError(f"{name} must lie in [0, 1] for loss='cross_entropy' (one-hot, "
                             f"multi-label 0/1 or probabilities); got values in [{lo}, {hi}]")
    if loss == "poisson" and (Y < 0).any():
        # scikit-learn's words (its Poisson trees and forests)
        raise ValueError(f"Some value(s) of {name} are negative which is not allowed for "
                         "Poisson regression.")
    return Y


def check_sample_weight(sample_weight, m, dtype, allow_zero_sum=False):
    """None -> an empty array (the kernels' 'all ones'); else a finite, >= 0 vector of m
    (of positive sum, unless allow_zero_sum: one block of many may weigh nothing)."""
    if sample_weight is None:
        return np.empty(0, dtype=dtype)
    w = to_array("sample_weight", sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold numbers; got dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != m:
        raise ValueError(f"sample_weight must be 1-D with one weight per sample ({m}); "
                         f"got shape {w.shape}")
    w = cast_finite("sample_weight", w, dtype)
    if (w < 0).any():
        raise ValueError("sample_weight must be >= 0")
    with np.errstate(over="ignore", invalid="ignore"):
        total, total64 = w.sum(), w.sum(dtype=np.float64)
    if not (np.isfinite(total) and np.isfinite(total64)):
        raise ValueError(f"sample_weight sums to {total} in {w.dtype}: the total weight must be "
                         "finite (scale the weights down; only their ratios matter)")
    if w.sum() <= 0 and not allow_zero_sum:
        raise ValueError("sample_weight sums to 0: at least one sample needs a positive weight")
    return w


def check_random_state(random_state, lazy=False):
    """A numpy Generator (or the RandomState given) from None, an int or a generator.
    lazy: the Generator of None or an int made on first use (LazyGenerator), checked now."""
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, (bool, np.bool_))):
        if random_state is not None and not 0 <= random_state < 2 ** 128:
            raise ValueError(f"random_state must be None, an int in [0, 2**128) or a numpy "
                             f"Generator; got {random_state!r}")
        return LazyGenerator(random_state) if lazy else np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}")


class LazyGenerator:
    """np.random.default_rng(seed), made when first drawn from: a fit that draws nothing
    (no shuffling, no split, no dropout) skips the seeding from the OS's entropy, a
    measurable part of a small fit's time (benchmarks/README.md)."""
    __slots__ = ("_seed", "_rng")

    def __init__(self, seed):
        self._seed, self._rng = seed, None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return getattr(self._rng, name)
