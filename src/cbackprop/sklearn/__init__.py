"""scikit-learn estimators built on cbackprop.Network: BackpropClassifier, BackpropRegressor.

They take MLPClassifier's and MLPRegressor's parameters under the same names wherever the
meaning is the same, so swapping one for the other in a Pipeline, a GridSearchCV or a
cross_val_score changes nothing else. Each class docstring lists every difference.

scikit-learn is an optional dependency: ``pip install "cbackprop[sklearn]"``.
"""
try:
    import sklearn  # noqa: F401
except ImportError as exc:                  # pragma: no cover - exercised in a subprocess
    raise ImportError('cbackprop.sklearn needs scikit-learn; install it with '
                      'pip install "cbackprop[sklearn]"') from exc

from cbackprop.sklearn._base import ConvergenceWarning
from cbackprop.sklearn._estimators import BackpropClassifier, BackpropRegressor
from cbackprop.sklearn import _persist

__all__ = ["BackpropClassifier", "BackpropRegressor", "ConvergenceWarning", "load"]


def load(path):
    """The estimator a model file holds (saved by ``clf.save`` or ``reg.save``), whichever
    of the two it is. ``cbackprop.load`` reads the same file as a Network."""
    return _persist.load(path, {c.__name__: c for c in (BackpropClassifier, BackpropRegressor)})
