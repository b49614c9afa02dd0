"""Scaling around a network: the feature scaling kept with a model (what `cbackprop train`
fits on the training rows and `predict`/`evaluate` apply to new data before the network sees
it), and the standardization of regression targets, folded into the network after training."""
import numpy as np

from cbackprop import _validation as v

__all__ = ["SCALERS", "Scaler", "TargetScaler"]

SCALERS = ("standard", "minmax")


class Scaler:
    """Feature scaling kept with a model: ``transform(X) = (X - offset) / scale``.

    kind 'standard': offset the column means, scale their standard deviations;
    kind 'minmax': offset the minima, scale the ranges (columns are mapped to [0, 1]).
    Constant columns get scale 1, so they become 0 rather than NaN.
    """

    def __init__(self, kind, offset, scale):
        v.check_option("scaler kind", kind, SCALERS)
        self.kind = kind
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        if (self.offset.ndim != 1 or self.scale.shape != self.offset.shape
                or not np.isfinite(self.offset).all() or not np.isfinite(self.scale).all()
                or (self.scale <= 0).any()):
            raise ValueError("a scaler needs 1-D finite offset and scale of one length, scale > 0")

    @classmethod
    def fit(cls, X, kind="standard"):
        """The scaler of X's columns; a Dask X's statistics are computed where it lies."""
        X = _as_float(X)
        if kind == "standard":
            offset, scale = _computed(X.mean(axis=0), X.std(axis=0))
        else:
            v.check_option("scale", kind, SCALERS)
            offset, high = _computed(X.min(axis=0), X.max(axis=0))
            scale = high - offset
        bad = np.flatnonzero(~(np.isfinite(offset) & np.isfinite(scale)))
        if bad.size:
            raise ValueError(f"X's column(s) {bad[:10].tolist()} (from 0) hold NaN or inf, or "
                             "values too large to scale: remove or impute them first")
        return cls(kind, offset, np.where(scale > 0, scale, 1.0))

    @property
    def n_features(self):
        return self.offset.shape[0]

    def transform(self, X):
        X = _as_float(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"the scaler expects {self.n_features} feature columns; "
                             f"got shape {X.shape}")
        return (X - self.offset) / self.scale

    def __repr__(self):
        return f"Scaler({self.kind!r}, {self.n_features} features)"


class TargetScaler:
    """Standardization of regression targets: ``transform(y) = (y - mean) / std``.

    A network learns the standardized targets (a cost and learning rate that do not depend
    on the targets' units); ``fold_into(net)`` then scales its last Theta so that it predicts
    in the targets' own units. Identity outputs are linear in the last Theta, so the folded
    network's outputs are exactly ``std * h + mean``. One mean and std per output column; a
    constant column gets std 1.
    """

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if (self.mean.ndim != 1 or self.std.shape != self.mean.shape
                or not np.isfinite(self.mean).all() or not np.isfinite(self.std).all()
                or (self.std <= 0).any()):
            raise ValueError("a target scaler needs finite mean and std of one length, std > 0")

    @classmethod
    def fit(cls, y):
        """The scaler of training targets y: 1-D (a value a sample) or 2-D (a column an output)."""
        y = _as_float(y)
        if y.ndim not in (1, 2) or y.shape[0] == 0:
            raise ValueError(f"y must be a non-empty 1-D or 2-D array of values; "
                             f"got shape {y.shape}")
        mean, std = _computed(y.mean(axis=0), y.std(axis=0))
        return cls(mean, np.where(std > 0, std, 1.0))

    @property
    def n_outputs(self):
        return self.mean.shape[0]

    def transform(self, y):
        """The standardized targets, in y's shape."""
        y = _as_float(y)
        one_value = y.ndim == 1 and self.n_outputs == 1
        if not (one_value or (y.ndim == 2 and y.shape[1] == self.n_outputs)):
            raise ValueError(f"the target scaler expects {self.n_outputs} value(s) a sample; "
                             f"got shape {y.shape}")
        return (y - self.mean) / self.std

    def fold_into(self, net):
        """Scale the last Theta of net, trained on transform(y), to predict y itself:
        row k times std_k, then mean_k added to its bias. Changes net in place; returns it."""
        if net.output != "identity" or net.layer_sizes[-1] != self.n_outputs:
            raise ValueError(f"folding a target scaling needs a network with {self.n_outputs} "
                             f"identity output(s); got {net.layer_sizes[-1]} {net.output!r}")
        last = net.thetas[-1]                  # a view into net.params
        # in the network's own dtype: a float32 network is scaled in float32
        last *= self.std[:, None].astype(last.dtype)
        last[:, 0] += self.mean.astype(last.dtype)
        return net

    def __repr__(self):
        return f"TargetScaler({self.n_outputs} output{'s' if self.n_outputs != 1 else ''})"


def _is_dask(a):
    return type(a).__module__.split(".")[0] == "dask"


def _as_float(a):
    """a as float64: a NumPy array, or a Dask array left lazy (scaled where it lies)."""
    return a.astype(np.float64) if _is_dask(a) else np.asarray(a, dtype=np.float64)


def _computed(*arrays):
    """NumPy arrays of the given ones, Dask's computed in one pass."""
    if any(_is_dask(a) for a in arrays):
        import dask
        arrays = dask.compute(*arrays)
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)
