"""Feature scaling kept with a model: what `cbackprop train` fits on the training rows and
`predict`/`evaluate` apply to new data before the network sees it."""
import numpy as np

from cbackprop import _validation as v

__all__ = ["SCALERS", "Scaler"]

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
        X = np.asarray(X, dtype=np.float64)
        if kind == "standard":
            offset, scale = X.mean(axis=0), X.std(axis=0)
        else:
            v.check_option("scale", kind, SCALERS)
            offset, scale = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
        return cls(kind, offset, np.where(scale > 0, scale, 1.0))

    @property
    def n_features(self):
        return self.offset.shape[0]

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"the scaler expects {self.n_features} feature columns; "
                             f"got shape {X.shape}")
        return (X - self.offset) / self.scale

    def __repr__(self):
        return f"Scaler({self.kind!r}, {self.n_features} features)"
