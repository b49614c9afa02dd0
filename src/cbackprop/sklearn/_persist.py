"""The estimators in model files: what ``save`` writes besides the network (parameters,
labels, feature names, fitted attributes) and the way back to the estimator (``load``).

The file itself is cbackprop.modelfile's (plain arrays and JSON, nothing unpickled); this
module only turns an estimator into plain values and back.
"""
import math
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from cbackprop import modelfile
from cbackprop.modelfile import ModelFileError
from cbackprop.network import Network

# the fitted attributes besides network_, classes_ and feature_names_in_, all plain values
FITTED = ("loss_curve_", "validation_scores_", "loss_", "best_loss_", "best_validation_score_",
          "n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_", "n_features_in_",
          "_multilabel")


def _plain(value):
    """A parameter or fitted value as JSON holds it (numpy scalars as Python's, tuples as
    lists, infinities and NaN as 'inf', '-inf', 'nan', since JSON has none)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(x) for x in value]
    if isinstance(value, dict):                      # class_weight: JSON keys are only text
        return {"pairs": [[_plain(k), _plain(x)] for k, x in value.items()]}
    return value


def _unplain(name, value):
    if value in ("inf", "-inf", "nan"):              # no estimator parameter takes these strings
        return float(value)
    if name in ("loss_curve_", "validation_scores_") and isinstance(value, list):
        return [_unplain(name, x) for x in value]
    if name == "hidden_layer_sizes" and isinstance(value, list):
        return tuple(value)
    if name == "class_weight" and isinstance(value, dict):
        return {k: x for k, x in value["pairs"]}
    return value


def file_state(est):
    """(JSON state, arrays, class labels of the network's outputs or None) for
    modelfile.save."""
    check_is_fitted(est)
    params = {}
    for name, value in est.get_params(deep=False).items():
        if name == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            warnings.warn(f"random_state={type(value).__name__}(...) cannot be saved in a model "
                          "file: the loaded estimator has random_state=None", UserWarning,
                          stacklevel=6)   # the caller of clf.save
            value = None
        elif name == "dtype" and not isinstance(value, str):
            value = np.dtype(value).name
        params[name] = _plain(value)
    fitted = {k: _plain(getattr(est, k)) for k in FITTED if hasattr(est, k)}
    arrays = {}
    if hasattr(est, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(est.feature_names_in_, dtype=str)
    classes = None
    if getattr(est, "_multilabel", None) is False:
        classes = est.classes_                       # written as the network's labels
    elif hasattr(est, "classes_"):
        arrays["classes"] = np.asarray(est.classes_)  # multi-label: the labels' indices
    state = {"class": type(est).__name__, "params": params, "fitted": fitted}
    return state, arrays, classes


def load(path, classes, expected=None):
    """The estimator a model file holds. classes: {name: estimator class}; expected: the
    class asked for (``BackpropClassifier.load``), or None for whichever the file holds."""
    spec = modelfile.read(path)
    shown = str(path)
    state = spec.estimator
    if state is None:
        raise ModelFileError(f"{shown}: holds a Network (saved by Network.save), not an "
                             "estimator: load it with cbackprop.load")
    name = state["class"]
    if expected is not None and name != expected.__name__:
        raise ModelFileError(f"{shown}: holds a {name}, not a {expected.__name__}: load it "
                             f"with {name}.load or cbackprop.sklearn.load")
    try:
        cls = classes[name]
        est = cls()
        params = {k: _unplain(k, v) for k, v in state["params"].items()}
        unknown = set(params) - set(est.get_params(deep=False))
        fitted = state["fitted"]
        if unknown or not set(fitted) <= set(FITTED):
            raise ValueError(f"unknown parameters or attributes "
                             f"{sorted(unknown | (set(fitted) - set(FITTED)))}")
        est.set_params(**params)
        for key, value in fitted.items():
            setattr(est, key, _unplain(key, value))
        net = Network._from_spec(spec)
        arrays = state["arrays"]
        if "feature_names_in" in arrays:
            est.feature_names_in_ = arrays["feature_names_in"].astype(object)
        if fitted.get("_multilabel") is False:
            est.classes_ = net.classes_
            net.classes_ = np.arange(len(est.classes_))   # the network is trained on indices
        elif "classes" in arrays:
            est.classes_ = arrays["classes"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{shown}: invalid estimator section ({exc})") from None
    est.network_ = net
    return est
