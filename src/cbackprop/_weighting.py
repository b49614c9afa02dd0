"""Class weights and label smoothing: what fit does to the coded targets Y and the sample
weights w of every source (in memory, blocks, Dask partitions) before the solvers see them.

Class weights become per-sample weights (multiplied into sample_weight, as scikit-learn's
linear models do), so every solver gets them through the one weighted J of docs/design.md.
"""
from dataclasses import dataclass

import numpy as np

from cbackprop import _targets, _validation as v


def check_class_weight(name, value):
    """None, 'balanced' or a dict {label: weight} of finite weights >= 0."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be None, 'balanced' or a dict {{label: weight}}; "
                        f"got {value!r}")
    for label, weight in value.items():
        v.check_real(f"{name}[{label!r}]", weight, low=0)
    return dict(value)


def check_smoothing(name, value):
    return v.check_real(name, value, low=0, high=1, high_open=True)


def class_weight_vector(class_weight, classes, counts):
    """The weight of each class, in the order of classes (float64), as scikit-learn's
    compute_class_weight: 'balanced' is n_samples / (n_classes * count of the class);
    a dict's missing classes weigh 1, a label of it that is not a class is an error."""
    classes = np.asarray(classes)
    if isinstance(class_weight, str):
        counts = np.asarray(counts)
        if (counts == 0).any():
            raise ValueError(f"class_weight='balanced' needs every class in y; the classes "
                             f"{classes[counts == 0].tolist()} have no samples")
        return int(counts.sum()) / (len(classes) * counts.astype(np.float64))
    known = set(classes.tolist())
    foreign = [label for label in class_weight if label not in known]
    if foreign:
        raise ValueError(f"The classes, {foreign}, of class_weight are not in y's classes "
                         f"({classes.tolist()[:10]})")
    weight = np.ones(len(classes), dtype=np.float64)
    for k, c in enumerate(classes.tolist()):
        if c in class_weight:
            weight[k] = float(class_weight[c])
    return weight


def class_index(Y):
    """Each row's class from its one-hot code (or the 0/1 column of one sigmoid unit)."""
    if Y.shape[1] == 1:
        return Y[:, 0].astype(np.intp)
    return np.argmax(Y, axis=1)


def smooth_labels(Y, eps):
    """(1 - eps) * Y + eps / K, K the classes (2 for one sigmoid unit), computed in float64
    (cbackprop.reference.smooth_labels, the same rule)."""
    k = max(2, Y.shape[1])
    return ((1 - eps) * Y.astype(np.float64) + eps / k).astype(Y.dtype)


@dataclass(frozen=True)
class Targets:
    """What fit does to coded labels: weights a class (None, or one per class in the order
    of classes_) and label smoothing (0: none)."""
    class_weights: object = None
    smoothing: float = 0.0

    def training(self, Y, sample_weight, m, dtype, allow_zero_sum=False):
        """(Y, w) for the core from coded targets Y and the sample weights as given."""
        w = v.check_sample_weight(sample_weight, m, dtype, allow_zero_sum)  # errors as given
        if self.class_weights is not None:
            per_sample = self.class_weights[class_index(Y)]
            if sample_weight is not None:       # in float64 before the cast: as one weight
                per_sample = np.asarray(sample_weight, dtype=np.float64) * per_sample
            w = v.check_sample_weight(per_sample, m, dtype, allow_zero_sum)
        return self.targets(Y), w

    def targets(self, Y):
        return smooth_labels(Y, self.smoothing) if self.smoothing else Y

    def record(self, info):
        """Note the class weights and smoothing in a network's info_ (the model file)."""
        info.pop("class_weight", None)
        info.pop("label_smoothing", None)
        if self.class_weights is not None:
            info["class_weight"] = [float(x) for x in self.class_weights]
        if self.smoothing:
            info["label_smoothing"] = float(self.smoothing)


NONE = Targets()


def targets_for(o, kind, classes, counts=None):
    """The Targets of fit's options o for targets of kind (class_weight and label_smoothing
    are for class labels); counts: each class's samples, for 'balanced'."""
    class_weight, smoothing = o.get("class_weight"), o.get("label_smoothing", 0.0)
    if class_weight is None and not smoothing:
        return NONE
    if kind != _targets.LABELS:
        raise ValueError("class_weight and label_smoothing are for class labels (1-D y); "
                         f"y here is {'a target matrix' if kind == _targets.MATRIX else 'values'}")
    vector = None if class_weight is None else class_weight_vector(class_weight, classes, counts)
    return Targets(vector, smoothing)


def count_classes(labels, counts, classes):
    """Samples a class, in the order of classes, from pieces' (distinct labels, counts)."""
    total = np.zeros(len(classes), dtype=np.int64)
    for u, c in zip(labels, counts):
        index, unseen = _targets.find_labels(u, classes)
        np.add.at(total, index[~unseen], np.asarray(c)[~unseen])
    return total
