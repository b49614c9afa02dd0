"""Networks to and from other tools: scikit-learn's MLPClassifier/MLPRegressor, PyTorch
state dicts and modules, and the course's .mat weight files.

Exporters read a network's public attributes (``thetas``, ``activation``, ``output``,
``classes_``, ``target_coding_``, ``history_``); importers return a
:class:`~cbackprop._spec.NetworkSpec`, which ``Network``'s ``from_sklearn``,
``from_torch_state_dict`` and ``load_mat`` build from. Each tool is imported only when used.
"""
import os
from collections import OrderedDict

import numpy as np

from cbackprop import _targets, _validation as v
from cbackprop._spec import NetworkSpec
from cbackprop._targets import TargetCoding
from cbackprop.modelfile import ModelFileError

__all__ = ["spec_from_sklearn", "to_sklearn", "read_mat", "save_mat", "to_torch_state_dict",
           "torch_module", "spec_from_torch_state_dict", "unroll", "reshape_unrolled",
           "course_classes"]
ORDERS = ("C", "F")

# scikit-learn's names of the units cbackprop has
SK_HIDDEN = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}
SK_OUTPUT = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity", "exp": "exp"}


# ---------------------------------------------------------------------------- scikit-learn


def spec_from_sklearn(mlp):
    """What a fitted ``MLPClassifier``/``MLPRegressor`` computes, as a NetworkSpec.

    Theta(l) = [intercepts_[l-1], coefs_[l-1]^T]; classes_ come along.
    """
    coefs, intercepts = getattr(mlp, "coefs_", None), getattr(mlp, "intercepts_", None)
    if coefs is None or intercepts is None:
        raise ValueError(f"from_sklearn needs a fitted MLPClassifier or MLPRegressor; got "
                         f"{type(mlp).__name__} without coefs_/intercepts_")
    hidden = getattr(mlp, "activation", None)
    out = getattr(mlp, "out_activation_", None)
    if hidden not in SK_HIDDEN:
        raise ValueError(f"activation={hidden!r} has no cbackprop equivalent "
                         f"(use one of {sorted(SK_HIDDEN)})")
    if out not in SK_OUTPUT:
        raise ValueError(f"output activation {out!r} has no cbackprop equivalent "
                         f"(use one of {sorted(SK_OUTPUT)})")
    thetas = [np.hstack([np.asarray(b)[:, None], np.asarray(W).T])
              for W, b in zip(coefs, intercepts)]
    classifier = hasattr(mlp, "classes_")
    loss = ("cross_entropy" if classifier
            else "poisson" if out == "exp" else "squared_error")     # exp: loss="poisson"
    spec = NetworkSpec(thetas, SK_HIDDEN[hidden], SK_OUTPUT[out], loss)
    if classifier:
        binarizer = getattr(mlp, "_label_binarizer", None)
        if binarizer is not None and binarizer.y_type_ == "multilabel-indicator":
            spec.target_coding = TargetCoding(_targets.MATRIX, False)
        else:
            spec.classes = np.asarray(mlp.classes_)
            spec.target_coding = TargetCoding(_targets.LABELS, True)
    else:
        spec.target_coding = TargetCoding(_targets.REGRESSION, len(thetas[-1]) == 1)
    return spec


def to_sklearn(net):
    """A fitted ``MLPClassifier`` (sigmoid or softmax outputs) or ``MLPRegressor`` (identity
    outputs; exp outputs: ``loss="poisson"``, scikit-learn >= 1.7) that predicts what the
    network predicts.

    Without ``classes_`` (an unfitted network, or a 2-D target matrix) the classes are the
    output indices (softmax) or the output units as multi-label indicators (sigmoid). For
    the course's several sigmoid outputs, scikit-learn's predict_proba gives the raw unit
    outputs where ``Network.predict_proba`` normalizes each row; predictions agree.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import LabelBinarizer

    hidden = set(net.activation)
    if len(hidden) > 1:
        raise ValueError(f"scikit-learn uses one activation for every hidden layer; this "
                         f"network has {net.activation}")
    names = {b: a for a, b in SK_HIDDEN.items()}
    if hidden and net.activation[0] not in names:
        raise ValueError(f"scikit-learn's MLP has no {net.activation[0]!r} hidden units (it has "
                         f"{', '.join(sorted(names))})")
    sk_hidden = names[net.activation[0]] if hidden else "relu"
    sizes = net.layer_sizes
    kwargs = dict(hidden_layer_sizes=tuple(sizes[1:-1]), activation=sk_hidden)
    if net.output == "exp":
        try:
            mlp = MLPRegressor(loss="poisson", **kwargs)
        except TypeError:
            raise ValueError("exp outputs (loss='poisson') need scikit-learn >= 1.7, whose "
                             "MLPRegressor has loss='poisson'") from None
    elif net.output in v.VALUE_OUTPUTS:
        mlp = MLPRegressor(**kwargs)
    else:
        mlp = MLPClassifier(**kwargs)
        binarizer = LabelBinarizer()
        if net.classes_ is not None:
            binarizer.fit(net.classes_)
        elif net.target_coding_.kind == _targets.MATRIX and net.output == "sigmoid":
            binarizer.fit(np.eye(sizes[-1], dtype=int))            # multi-label indicators
        else:
            binarizer.fit(np.arange(max(2, sizes[-1])))            # output indices
        mlp._label_binarizer = binarizer
        mlp.classes_ = binarizer.classes_
    mlp.coefs_ = [np.array(t[:, 1:].T) for t in net.thetas]
    mlp.intercepts_ = [np.array(t[:, 0]) for t in net.thetas]
    mlp.n_features_in_ = sizes[0]
    mlp.n_layers_ = len(sizes)
    mlp.n_outputs_ = sizes[-1]
    mlp.out_activation_ = {b: a for a, b in SK_OUTPUT.items()}[net.output]
    mlp.n_iter_ = getattr(net, "n_iter_", 0)            # fitted attributes: present once fitted
    mlp.t_ = 0
    history = getattr(net, "history_", None)
    mlp.loss_curve_ = list(history["loss"]) if history else []
    mlp.loss_ = mlp.loss_curve_[-1] if mlp.loss_curve_ else None
    mlp.best_loss_ = min(mlp.loss_curve_) if mlp.loss_curve_ else None
    return mlp


# ------------------------------------------------------------------------- the course's .mat


def save_mat(net, path):
    """The course's weight file: ``Theta1``, ``Theta2``, ... (float64) in a MATLAB .mat."""
    from scipy.io import savemat
    savemat(os.fspath(path), {f"Theta{l}": np.asarray(t, dtype=np.float64)
                              for l, t in enumerate(net.thetas, start=1)})
    return path


def read_mat(path):
    """The Theta matrices of a .mat file (``Theta1``, ``Theta2``, ...: the course's
    ex4weights), other variables ignored. MATLAB files are parsed by scipy.io, never
    executed. Raises ModelFileError for a file without them or not a .mat file."""
    from scipy.io import loadmat
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = loadmat(path)
    except Exception as exc:                 # scipy raises many kinds for a bad file
        raise ModelFileError(f"{path}: not a readable .mat file ({exc})") from None
    thetas, l = [], 1
    while f"Theta{l}" in data:
        thetas.append(data[f"Theta{l}"])
        l += 1
    if not thetas:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ModelFileError(f"{path}: no Theta1 (found {found})")
    return thetas


def course_classes(n_outputs):
    """The course's labels of output units: unit k is label k, 1..K (ex4's label 10 is the
    digit 0), as its predict.m's max(h, [], 2) gives; None for one sigmoid unit."""
    return np.arange(1, n_outputs + 1) if n_outputs > 1 else None


def _check_order(order):
    if order not in ORDERS:
        raise ValueError(f"order must be 'C' (row-major, net.params) or 'F' (column-major, the "
                         f"course's Theta1(:)); got {order!r}")


def unroll(thetas, order="C"):
    """The Thetas as one flat vector: 'C' row by row (the layout of ``net.params``), 'F'
    column by column, the course's ``nn_params = [Theta1(:); Theta2(:)]``."""
    _check_order(order)
    return np.concatenate([np.asarray(t).ravel(order=order) for t in thetas])


def reshape_unrolled(flat, layer_sizes, order="C"):
    """The Theta matrices of a flat vector unrolled in the given order (see unroll): the
    course's ``reshape(nn_params(1:s2 * (s1 + 1)), s2, s1 + 1)`` with order='F'."""
    _check_order(order)
    flat = np.asarray(flat)
    shapes = [(b, a + 1) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    if flat.ndim == 2 and 1 in flat.shape:
        flat = flat.reshape(-1)                 # Octave's nn_params is a column
    if flat.ndim != 1 or flat.size != sum(a * b for a, b in shapes):
        raise ValueError(f"an unrolled vector of layers {list(layer_sizes)} has "
                         f"{sum(a * b for a, b in shapes)} values; got shape {flat.shape}")
    ends = np.cumsum([0] + [a * b for a, b in shapes])
    return [flat[s:e].reshape(shape, order=order) for s, e, shape in zip(ends, ends[1:], shapes)]


# ----------------------------------------------------------------------------------- PyTorch


def _torch_names(n_layers):
    """Keys of ``torch.nn.Sequential(Linear, activation, Linear, ...)``: 0, 2, 4, ..."""
    return [(f"{2 * l}.weight", f"{2 * l}.bias") for l in range(n_layers)]


def to_torch_state_dict(net):
    """An ordered state_dict ``{'0.weight', '0.bias', '2.weight', ...}`` (tensors) for
    ``torch.nn.Sequential(Linear(s1, s2), g, Linear(s2, s3), ...)``, as :func:`torch_module`
    builds it. Needs torch."""
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch_state_dict needs PyTorch: pip install torch") from None
    sd = OrderedDict()
    for (wk, bk), t in zip(_torch_names(len(net.thetas)), net.thetas):
        sd[wk] = torch.from_numpy(np.array(t[:, 1:]))
        sd[bk] = torch.from_numpy(np.array(t[:, 0]))
    return sd


def torch_module(net):
    """A ``torch.nn.Sequential`` with the network's layers and parameters (PyTorch's
    Linear stores W (s_out, s_in) and b: Theta(l) = [b, W])."""
    import torch
    from torch import nn
    from cbackprop.reference import ELLIOTT_STEEPNESS, ELU_ALPHA, LEAKY_SLOPE

    class Exp(nn.Module):                  # torch has no module for the exp output
        def forward(self, z):
            return torch.exp(z)

    class Elliott(nn.Module):              # nor for FANN's Elliott unit
        def forward(self, z):
            t = ELLIOTT_STEEPNESS * z
            return t / 2 / (1 + t.abs()) + 0.5

    # identity hidden layers get nn.Identity, so that the Linear layers keep keys 0, 2, 4, ...
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity,
           "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE), "elu": lambda: nn.ELU(ELU_ALPHA),
           "softplus": lambda: nn.Softplus(threshold=1e30), "elliott": Elliott}
    out = {"sigmoid": nn.Sigmoid, "softmax": lambda: nn.Softmax(dim=-1), "identity": None,
           "exp": Exp}
    layers, sizes = [], net.layer_sizes
    for l in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[l], sizes[l + 1]))
        g = act[net.activation[l]] if l < len(sizes) - 2 else out[net.output]
        if g is not None:
            layers.append(g())
    module = nn.Sequential(*layers).to(dtype=getattr(torch, net.dtype.name))
    module.load_state_dict(to_torch_state_dict(net))
    return module


def spec_from_torch_state_dict(state_dict, activation="sigmoid", output="sigmoid",
                               loss="cross_entropy", dtype=None):
    """The NetworkSpec of a stack of Linear layers' state_dict: the ``*.weight`` and
    ``*.bias`` entries in order (other entries are refused). Tensors or arrays."""

    def array(value):
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        return np.asarray(value)

    if not hasattr(state_dict, "items"):
        raise TypeError("state_dict must be a mapping of names to tensors")
    items = list(state_dict.items())
    if not items or len(items) % 2:
        raise ValueError("state_dict must hold pairs of '<layer>.weight' and '<layer>.bias'")
    thetas = []
    for (wk, W), (bk, b) in zip(items[::2], items[1::2]):
        if not (wk.endswith(".weight") and bk == wk[:-len("weight")] + "bias"):
            raise ValueError(f"state_dict entries must come as '<layer>.weight', "
                             f"'<layer>.bias'; got {wk!r}, {bk!r}")
        W, b = array(W), array(b)
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ValueError(f"{wk} {W.shape} and {bk} {b.shape} are not a Linear layer's")
        thetas.append(np.hstack([b[:, None], W]))
    return NetworkSpec(thetas, activation, output, loss, dtype)
