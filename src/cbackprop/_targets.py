"""Targets: class labels, label matrices and regression values, to and from the
m x s_L target matrix Y the kernels work with; what a network's outputs mean
(TargetCoding); the validation split."""
from dataclasses import dataclass

import numpy as np

from cbackprop import _validation as v
from cbackprop._core import core

Proba = core.Proba

LABELS = "labels"          # 1-D class labels, recoded one-hot (or 0/1 for one sigmoid unit)
MATRIX = "matrix"          # a 2-D target matrix given as is: one-hot, multi-label 0/1, soft
REGRESSION = "regression"  # real values through identity (or exp) outputs
KINDS = (LABELS, MATRIX, REGRESSION)


@dataclass(frozen=True)
class TargetCoding:
    """What a network's outputs mean, as fit learned it from y (a Network's
    ``target_coding_``; its class labels are ``classes_``).

    kind: None (not fitted: outputs are read as class indices, or values for identity
    outputs), 'labels' (1-D class labels), 'matrix' (a 2-D target matrix given as is) or
    'regression'; one_dimensional: whether y was 1-D, so that predict returns 1-D.
    """
    kind: object = None
    one_dimensional: bool = True

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"target kind must be None or one of {', '.join(map(repr, KINDS))}; "
                             f"got {self.kind!r}")
        if not isinstance(self.one_dimensional, (bool, np.bool_)):
            raise TypeError(f"one_dimensional must be True or False; got {self.one_dimensional!r}")
        object.__setattr__(self, "one_dimensional", bool(self.one_dimensional))


def check_label_types(y, name="y"):
    """Refuse labels that mix text and numbers (NumPy would silently make '1' of 1, or fail
    deep inside a sort), as scikit-learn does."""
    if isinstance(y, np.ndarray) and y.dtype.kind != "O":
        return
    if isinstance(y, (list, tuple)) or (isinstance(y, np.ndarray) and y.dtype.kind == "O"):
        cells = [c for c in np.asarray(y, dtype=object).ravel() if c is not None]  # None: _classes
        text = [isinstance(c, (str, bytes)) for c in cells]
        if any(text) and not all(text):
            number = next(c for c, t in zip(cells, text) if not t)
            string = next(c for c, t in zip(cells, text) if t)
            raise ValueError(f"Mix of label input types (string and number) in {name}: "
                             f"for example {string!r} and {number!r}; use one type for all labels")


def label_column(y, n_outputs, output):
    """Labels given as an (m, 1) column (the course's ex4data1.mat y) as 1-D labels, for a
    network of several class outputs; anything else as it is."""
    if output not in v.VALUE_OUTPUTS and n_outputs > 1 and np.ndim(y) == 2 and np.shape(y)[1] == 1:
        return np.asarray(y).reshape(-1)
    return y


def labels_as_matrix(Y, classes, n_outputs, output, dtype, name="Y"):
    """Class labels (1-D, or an (m, 1) column for several outputs) one-hot coded by classes
    (a fitted network's classes_); a target matrix as it is."""
    if output in v.VALUE_OUTPUTS or (classes is None and not (n_outputs > 1 and np.ndim(Y) == 2
                                                         and np.shape(Y)[1] == 1)):
        return Y
    arr = label_column(Y, n_outputs, output)
    if np.ndim(arr) != 1:
        return Y
    if classes is None:
        raise ValueError(f"{name} holds labels (one a sample) but the network has no classes_ "
                         "to code them: fit it on labels, pass classes= to load_mat, or give "
                         f"a target matrix (the course's labels 1..K: np.eye(K)[{name} - 1])")
    return _one_hot(label_indices(arr, classes, name), n_outputs, dtype)


def _as_targets(y, m, n_outputs, output, loss, dtype, name):
    """Shape checks common to training and validation targets: a 1-D or 2-D array of m."""
    check_label_types(y, name)
    arr = v.to_array(name, y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (labels or values) or 2-D (a target matrix); "
                         f"got shape {arr.shape}")
    if arr.shape[0] != m:
        raise ValueError(f"{name} has {arr.shape[0]} samples but its X has {m}")
    if output in v.VALUE_OUTPUTS and arr.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"1-D {name} gives one value a sample, the network has {n_outputs} "
                             "outputs; pass a 2-D array with one column per output")
        arr = arr.reshape(-1, 1)
    return arr


def _one_hot(index, n_outputs, dtype):
    """Rows of one-hot codes, or the 0/1 column of a single sigmoid unit."""
    if n_outputs == 1:
        return index.astype(dtype).reshape(-1, 1)
    Y = np.zeros((len(index), n_outputs), dtype=dtype)
    Y[np.arange(len(index)), index] = 1
    return Y


def encode(y, n_outputs, output, loss, dtype, m):
    """(Y, classes, kind) for training targets y of m samples."""
    arr = _as_targets(y, m, n_outputs, output, loss, dtype, "y")
    if output in v.VALUE_OUTPUTS:
        return v.check_targets(arr, m, n_outputs, loss, dtype, "y"), None, REGRESSION
    if arr.ndim == 2:
        return v.check_targets(arr, m, n_outputs, loss, dtype, "y"), None, MATRIX
    classes = _classes(arr)
    if len(classes) < 2:
        raise ValueError(f"y holds a single class ({classes[0]!r}): a classifier needs at least 2")
    if not (n_outputs == len(classes)
            or (n_outputs == 1 and len(classes) == 2 and output == "sigmoid")):
        raise ValueError(f"y has {len(classes)} classes but the network has {n_outputs} output "
                         f"units; use layer_sizes[-1] = {len(classes)}"
                         + (" (or 1 sigmoid unit for two classes)" if len(classes) == 2 else ""))
    return _one_hot(np.searchsorted(classes, arr), n_outputs, dtype), classes, LABELS


def encode_like(y, classes, kind, n_outputs, output, loss, dtype, m, name):
    """Targets coded as those of fit were (validation data): labels must be known classes."""
    arr = _as_targets(y, m, n_outputs, output, loss, dtype, name)
    if kind == LABELS:
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D labels like the y given to fit")
        return _one_hot(label_indices(arr, classes, name), n_outputs, dtype)
    if arr.ndim != 2 and kind == MATRIX:
        raise ValueError(f"{name} must be a 2-D target matrix like the y given to fit")
    return v.check_targets(arr, m, n_outputs, loss, dtype, name)


def _classes(labels):
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("y contains NaN labels")
    if labels.dtype.kind == "O" and any(l is None for l in labels):
        raise ValueError("y contains None labels")
    try:
        return np.unique(labels)
    except TypeError:
        raise ValueError("y's labels must be of one sortable type (all numbers or all "
                         "strings)") from None


def find_labels(labels, classes):
    """(positions of labels in the sorted classes, mask of the labels not among them)."""
    text = [np.asarray(a).dtype.kind in "USO" for a in (labels, classes)]
    try:
        index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    except TypeError:              # NumPy's UFuncTypeError: labels of another type than classes
        index = None
    if index is None or text[0] != text[1]:
        raise ValueError(f"Mix of label input types (string and number): labels of dtype "
                         f"{np.asarray(labels).dtype}, classes {np.asarray(classes).dtype}")
    return index, classes[index] != labels


def label_indices(y, classes, name="y"):
    """Positions of labels y in classes; an error naming any label unseen in fit."""
    check_label_types(y, name)
    arr = v.to_array(name, y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels like those given to fit; got shape {arr.shape}")
    try:
        index, unseen = find_labels(arr, classes)
    except ValueError:
        raise ValueError(f"{name}'s labels are not of the type seen in fit ({classes.dtype}): "
                         "Mix of label input types (string and number)") from None
    if np.any(unseen):
        raise ValueError(f"{name} has labels unseen in fit: "
                         f"{sorted(set(arr[unseen].tolist()))[:5]} (known: {classes.tolist()[:10]})")
    return index


def decode(h, classes, kind, output, squeeze):
    """Predictions from the outputs h: the one rule of every front end (Network.predict,
    the estimators, model files, the command line). A sigmoid unit that stands for a class
    or a label says 1 when h >= 0.5 (a tie at exactly 0.5 is 1, the second class); several
    single-label units: the argmax (ties: the first)."""
    if kind == REGRESSION or output in v.VALUE_OUTPUTS:
        return h[:, 0] if squeeze else h
    if kind == MATRIX and output == "sigmoid":
        return (h >= 0.5).astype(np.int64)     # multi-label: every unit on its own
    if h.shape[1] == 1:
        index = (h[:, 0] >= 0.5).astype(np.intp)
        if classes is not None and len(classes) == 1:
            index[:] = 0               # scikit-learn's classifier of one class: always it
    else:
        index = np.argmax(h, axis=1)
    return classes[index] if classes is not None else index


def proba_mode(kind, output, width):
    """The Proba code (cbackprop._core's, serve.pxi) of predict_proba for outputs of this
    kind, output activation and width: the one rule of Network.predict_proba, the
    estimators' and every predictor's. Value outputs have none; a target matrix and
    softmax rows are probabilities as they are; one sigmoid unit gives [1 - h, h];
    one-vs-all sigmoid units (the course's) each row over its sum."""
    if output in v.VALUE_OUTPUTS:
        return Proba.PROBA_NONE
    if kind == MATRIX:
        return Proba.PROBA_AS_IS
    if width == 1:
        return Proba.PROBA_TWO
    return Proba.PROBA_NORMALIZED if output == "sigmoid" else Proba.PROBA_AS_IS


def probabilities(h, kind, output):
    """Class probabilities of the outputs h (2-D): rows summing to one for single-label
    classifiers; computed by the compiled rule a predictor applies in place."""
    return core.probabilities(h, proba_mode(kind, output, h.shape[1]))


def validation_split(n, labels, fraction, rng):
    """Indices (train, validation); stratified by class when there are labels, and never
    taking a class's last training sample (training on fewer classes than y has would be
    a silent, different problem)."""
    if n < 2:
        raise ValueError(f"validation needs at least 2 samples (one to train on, one to "
                         f"validate); got {n}")
    order = rng.permutation(n)
    if labels is None:
        n_val = min(n - 1, max(1, int(round(fraction * n))))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val = []
    for c in np.unique(labels):
        members = order[labels[order] == c]
        val.append(members[:min(len(members) - 1, int(round(fraction * len(members))))])
    val = np.concatenate(val)
    if val.size == 0:
        raise ValueError(f"validation_fraction={fraction} leaves no validation samples "
                         "(each class keeps at least one sample for training)")
    train = np.setdiff1d(np.arange(n), val)
    return train, np.sort(val)
