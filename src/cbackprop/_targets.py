"""Targets: class labels, label matrices and regression values, to and from the
m x s_L target matrix Y the kernels work with."""
import numpy as np

from cbackprop import _validation as v

LABELS = "labels"          # 1-D class labels, recoded one-hot (or 0/1 for one sigmoid unit)
MATRIX = "matrix"          # a 2-D target matrix given as is: one-hot, multi-label 0/1, soft
REGRESSION = "regression"  # real values through identity outputs


def encode(y, n_outputs, output, loss, dtype, m):
    """(Y, classes, kind) for training targets y of m samples."""
    arr = np.asarray(y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D (labels or values) or 2-D (a target matrix); "
                         f"got shape {arr.shape}")
    if arr.shape[0] != m:
        raise ValueError(f"y has {arr.shape[0]} samples but X has {m}")
    if output == "identity":
        if arr.ndim == 1:
            if n_outputs != 1:
                raise ValueError(f"1-D y gives one value a sample, the network has {n_outputs} "
                                 "outputs; pass a 2-D y with one column per output")
            arr = arr.reshape(-1, 1)
        return v.check_targets(arr, m, n_outputs, loss, dtype, "y"), None, REGRESSION
    if arr.ndim == 2:
        return v.check_targets(arr, m, n_outputs, loss, dtype, "y"), None, MATRIX
    classes = _classes(arr)
    if len(classes) < 2:
        raise ValueError(f"y holds a single class ({classes[0]!r}): a classifier needs at least 2")
    index = np.searchsorted(classes, arr)
    if n_outputs == len(classes):
        Y = np.zeros((m, n_outputs), dtype=dtype)
        Y[np.arange(m), index] = 1
    elif n_outputs == 1 and len(classes) == 2 and output == "sigmoid":
        Y = index.astype(dtype).reshape(-1, 1)
    else:
        raise ValueError(f"y has {len(classes)} classes but the network has {n_outputs} output "
                         f"units; use layer_sizes[-1] = {len(classes)}"
                         + (" (or 1 sigmoid unit for two classes)" if len(classes) == 2 else ""))
    return Y, classes, LABELS


def _classes(labels):
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("y contains NaN labels")
    if labels.dtype.kind == "O" and any(l is None for l in labels):
        raise ValueError("y contains None labels")
    try:
        return np.unique(labels)
    except TypeError:
        raise TypeError("y's labels must be of one sortable type (all numbers or all "
                        "strings)") from None


def label_indices(y, classes):
    """Positions of labels y in classes; an error naming any label unseen in fit."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D labels like those given to fit; got shape {arr.shape}")
    try:
        index = np.searchsorted(classes, arr)
    except TypeError:
        raise TypeError(f"y's labels are not of the type seen in fit ({classes.dtype})") from None
    index = np.clip(index, 0, len(classes) - 1)
    unseen = classes[index] != arr
    if np.any(unseen):
        raise ValueError(f"y has labels unseen in fit: {sorted(set(arr[unseen].tolist()))[:5]} "
                         f"(known: {classes.tolist()[:10]})")
    return index


def decode(h, classes, kind, output, squeeze):
    """Predictions from the outputs h."""
    if kind == REGRESSION or output == "identity":
        return h[:, 0] if squeeze else h
    if kind == MATRIX and output == "sigmoid":
        return (h >= 0.5).astype(np.int64)     # multi-label: every unit on its own
    if h.shape[1] == 1:
        index = (h[:, 0] >= 0.5).astype(np.intp)
    else:
        index = np.argmax(h, axis=1)
    return classes[index] if classes is not None else index


def probabilities(h, kind, output):
    """Class probabilities: rows summing to one for single-label classifiers."""
    if output == "identity":
        raise ValueError("predict_proba is for classifiers; this network has identity outputs")
    if kind == MATRIX:
        return h
    if h.shape[1] == 1:
        return np.hstack([1 - h, h])
    if output == "sigmoid":       # one-vs-all units (the course's): normalize each row
        return h / np.maximum(h.sum(axis=1, keepdims=True), np.finfo(h.dtype).tiny)
    return h
