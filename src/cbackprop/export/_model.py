"""What an exporter needs of a Network or a fitted estimator, in plain values: the layers,
the feature scaling in front, and what the outputs mean. The meaning follows the one rule
of every front end (_targets.decode, _targets.probabilities), so that an exported model
predicts what ``predict`` and ``predict_proba`` do.

Like the model file, this reads public attributes only and never imports network.py or
the estimators: an estimator is anything with ``network_`` (and ``classes_`` for a
classifier)."""
from dataclasses import dataclass

import numpy as np

from cbackprop import _targets, _validation as v

CLASSES = "classes"          # single-label classification: a label a row, rows summing to one
MULTILABEL = "multilabel"    # a 0/1 decision per sigmoid unit, each unit's probability
VALUES = "values"            # identity and exp outputs: regression values

DTYPES = {"float32": np.float32, "float64": np.float64, "float": np.float32,
          "double": np.float64}


class ExportError(ValueError):
    """A model that the chosen format cannot express."""


@dataclass(frozen=True)
class Layer:
    weights: np.ndarray          # (s_out, s_in): Theta(l)[:, 1:]
    bias: np.ndarray             # (s_out,): Theta(l)[:, 0]
    activation: str              # sigmoid, tanh, relu, identity, softmax, exp


@dataclass(frozen=True)
class Model:
    layers: tuple
    dtype: np.dtype              # the network's own
    task: str                    # CLASSES, MULTILABEL or VALUES
    normalize: bool              # one-vs-all sigmoid units: probabilities divided by their sum
    classes: object              # the labels (ndarray) of a CLASSES model, or None: indices
    scaler: object               # a preprocessing.Scaler applied before the network, or None

    @property
    def n_features(self):
        return self.layers[0].weights.shape[1]

    @property
    def n_units(self):
        """Units of the output layer."""
        return self.layers[-1].weights.shape[0]

    @property
    def binary(self):
        """One sigmoid unit for two classes: probabilities [1 - p, p], class 1 when p >= 0.5."""
        return self.task == CLASSES and self.n_units == 1

    @property
    def n_outputs(self):
        """Columns of predict_proba (or of the values)."""
        return 2 if self.binary else self.n_units

    def folded_layers(self):
        """The layers in float64 with the scaler folded into the first: W (x - o) / s + b is
        (W / s) x + (b - (W / s) o)."""
        layers = [Layer(l.weights.astype(np.float64), l.bias.astype(np.float64), l.activation)
                  for l in self.layers]
        if self.scaler is not None:
            first = layers[0]
            w = first.weights / self.scaler.scale[None, :]
            layers[0] = Layer(w, first.bias - w @ self.scaler.offset, first.activation)
        return layers


def export_dtype(dtype, default):
    """np.float32 or np.float64 from a name (float32, float64, float, double) or None."""
    if dtype is None:
        return np.dtype(default).type
    key = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if key not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return DTYPES[key]


def describe(obj):
    """The Model of a cbackprop.Network or a fitted cbackprop.sklearn estimator."""
    if hasattr(obj, "network_"):
        net = obj.network_
        if hasattr(obj, "classes_"):
            multilabel = bool(getattr(obj, "_multilabel", False))
            kind = _targets.MATRIX if multilabel else _targets.LABELS
            classes = None if multilabel else np.asarray(obj.classes_)
        else:
            kind, classes = _targets.REGRESSION, None
        scaler = None                    # an estimator's predict does not scale its input
    elif hasattr(obj, "thetas") and hasattr(obj, "layer_sizes"):
        net, kind, classes = obj, obj.target_coding_.kind, obj.classes_
        scaler = obj.scaler_
    else:
        raise TypeError(f"export takes a cbackprop.Network or a fitted cbackprop.sklearn "
                        f"estimator (one with network_); got {type(obj).__name__}"
                        + (" (not fitted?)" if hasattr(obj, "get_params") else ""))
    acts = list(net.activation) + [net.output]
    layers = tuple(Layer(np.array(t[:, 1:]), np.array(t[:, 0]), a)
                   for t, a in zip(net.thetas, acts))
    if net.output in v.VALUE_OUTPUTS or kind == _targets.REGRESSION:
        task = VALUES
    elif kind == _targets.MATRIX and net.output == "sigmoid":
        task = MULTILABEL
    else:
        task = CLASSES
    normalize = task == CLASSES and net.output == "sigmoid" and layers[-1].weights.shape[0] > 1
    if task != CLASSES:
        classes = None
    return Model(layers, np.dtype(net.dtype), task, normalize, classes, scaler)


def label_values(classes):
    """(kind, values) of class labels as the exports hold them: 'int64', 'double', 'bool'
    or 'string' (a list of str). Other labels cannot be exported."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind == "b":
        return "bool", classes.astype(bool)
    if kind in "iu":
        if kind == "u" and classes.size and classes.max() > np.iinfo(np.int64).max:
            raise ExportError("class labels beyond the int64 range cannot be exported")
        return "int64", classes.astype(np.int64)
    if kind == "f":
        return "double", classes.astype(np.float64)
    if kind in "US" or (kind == "O" and all(isinstance(c, (str, bytes)) for c in classes)):
        return "string", [c.decode() if isinstance(c, bytes) else str(c) for c in classes]
    raise ExportError(f"class labels of dtype {classes.dtype} cannot be exported (labels "
                      "must be integers, floats, booleans or strings)")
