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

__all__ = ["BackpropClassifier", "BackpropRegressor", "ConvergenceWarning"]
