"""The one table of fit's options: name, default, check and help.

``Network.fit`` takes them (its signature and docstring are built from the table),
``training.fit`` resolves them (defaults filled in, every value checked, unknown names
refused with the closest known one), the scikit-learn estimators map their parameters
onto them, and the command line builds its training flags' help and checks from them.
"""
import difflib
import inspect
import textwrap
from dataclasses import dataclass

from cbackprop import _validation as v, _weighting


@dataclass(frozen=True)
class FitOption:
    name: str
    default: object
    check: object           # check(name, value) -> the value to use; raises TypeError/ValueError
    help: str
    brief: str = ""         # the command line's help, where it has the option (default: help)


def _choice(allowed):
    return lambda name, value: v.check_option(name, value, allowed)


def _int(low=1):
    return lambda name, value: v.check_int(name, value, low)


def _real(**bounds):
    return lambda name, value: v.check_real(name, value, **bounds)


def _optional(check):
    return lambda name, value: None if value is None else check(name, value)


def _callback(name, value):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable(net, epoch, logs); got {value!r}")
    return value


def _pair(name, value):
    if value is not None and (not isinstance(value, (tuple, list)) or len(value) != 2):
        raise TypeError(f"{name} must be a pair (X_val, y_val)")
    return value


def _verbose(name, value):
    if not (isinstance(value, (bool, v.np.bool_)) or v.is_int(value)):
        raise TypeError(f"{name} must be True, False or an int; got {value!r}")
    return bool(value)


def _random_state(name, value):
    v.check_random_state(value)               # raises for what cannot seed a generator
    return value


def _client(name, value):
    if value is not None and not isinstance(value, str) and not hasattr(value, "submit"):
        raise TypeError(f"{name} must be a distributed.Client, a scheduler address or "
                        f"'local'; got {value!r}")
    return value


_UNIT_RATE = dict(low=0, high=1, high_open=True)


def _dropout(name, value):
    """A rate in [0, 1), or a list of them (one a hidden layer, checked against the
    network in training)."""
    if isinstance(value, (list, tuple, v.np.ndarray)):
        if len(value) == 0:
            raise ValueError(f"{name} must be a rate or a non-empty list of rates (one a "
                             "hidden layer)")
        return [v.check_real(f"{name}[{k}]", p, **_UNIT_RATE) for k, p in enumerate(value)]
    return v.check_real(name, value, **_UNIT_RATE)

FIT_OPTIONS = (
    FitOption("solver", "adam", _choice(v.SOLVERS),
              "'online': the derivation's stochastic gradient descent, Theta updated after "
              "every sample; 'sgd': mini-batches with momentum (Nesterov's by default); "
              "'adam': mini-batches with Adam; 'lbfgs': L-BFGS on the full batch (scipy's "
              "L-BFGS-B path, cbackprop._lbfgs), 'cg': scipy's conjugate gradients (the "
              "course's fmincg role); 'rprop': full-batch iRPROP-.",
              "online (per-sample SGD), sgd, adam (mini-batches), lbfgs, cg, rprop (full batch)"),
    FitOption("lam", 0.0, lambda name, value: v.check_lam(value, name),
              "the course's lambda: J + (lam / 2m) sum of the squared weights (bias excluded); "
              "m is the training set's size (its total sample weight) in every solver, "
              "whatever the batch size.",
              "regularization lambda (bias excluded)"),
    FitOption("epochs", 200, _int(),
              "epochs (passes over the data) of online, sgd and adam; iterations of the "
              "full-batch solvers unless max_iter is set.",
              "epochs, or iterations of lbfgs, cg and rprop"),
    FitOption("batch_size", 200, _int(), "samples a mini-batch (sgd, adam).",
              "samples a mini-batch (sgd, adam)"),
    FitOption("learning_rate", 0.001, _real(low=0, low_open=True),
              "the step size of online, sgd and adam.",
              "step size of online, sgd and adam"),
    FitOption("momentum", 0.9, _real(**_UNIT_RATE), "sgd's momentum, in [0, 1)."),
    FitOption("nesterov", True, v.check_bool, "sgd: Nesterov's momentum."),
    FitOption("schedule", "constant", _choice(v.SCHEDULES),
              "the learning rate over epochs: 'constant'; 'invscaling' (learning_rate / "
              "epoch ** power_t); 'adaptive' (divided by 5 each time the cost fails to "
              "improve by tol for n_iter_no_change epochs)."),
    FitOption("power_t", 0.5, _real(low=0), "invscaling's exponent."),
    FitOption("beta_1", 0.9, _real(**_UNIT_RATE), "Adam's decay of the first moment."),
    FitOption("beta_2", 0.999, _real(**_UNIT_RATE), "Adam's decay of the second moment."),
    FitOption("epsilon", 1e-8, _real(low=0, low_open=True), "Adam's epsilon."),
    FitOption("clip_norm", None, _optional(_real(low=0, low_open=True)),
              "sgd, adam: each batch's gradient g (lam's term included) scaled by "
              "min(1, clip_norm / ||g||), ||g|| its global 2-norm over every Theta, biases "
              "included (Keras' global_clipnorm, PyTorch's clip_grad_norm_). None: no clipping.",
              "sgd, adam: clip each batch's gradient to this global 2-norm"),
    FitOption("weight_decay", 0.0, _real(low=0),
              "sgd, adam: decoupled weight decay (AdamW's rule): before each step the weights "
              "(never the biases) are multiplied by 1 - learning_rate * weight_decay, apart "
              "from the gradient, so that Adam's scaling never touches it. lam instead adds "
              "(lam / 2m) sum W^2 to J, whose gradient Adam rescales with the rest; for sgd "
              "without momentum or clipping the two are the same step (weight_decay = lam / m).",
              "sgd, adam: decoupled (AdamW) weight decay of the weights"),
    FitOption("dropout", 0.0, _dropout,
              "online, sgd, adam: inverted dropout of the hidden layers' units while "
              "training, a rate in [0, 1) for every hidden layer or a list of one a layer: "
              "each unit kept with probability 1 - rate and then divided by it, its delta "
              "too; masks drawn from random_state by a counter-based generator (the same "
              "fit for any thread count). Prediction, cost and validation use the full "
              "network; history_['loss'] is the dropped network's. In memory only.",
              "online, sgd, adam: dropout rate of the hidden units"),
    FitOption("input_dropout", 0.0, _real(**_UNIT_RATE),
              "online, sgd, adam: inverted dropout of the input features while training, as "
              "dropout (dense X only).",
              "online, sgd, adam: dropout rate of the inputs"),
    FitOption("class_weight", None, _weighting.check_class_weight,
              "None, 'balanced' or {label: weight}: each sample's weight multiplied by its "
              "class's, as scikit-learn's linear models do ('balanced': n_samples / "
              "(n_classes * samples of the class)); class labels only. Recorded in info_.",
              "'balanced': weigh each class by n_samples / (n_classes * its samples)"),
    FitOption("label_smoothing", 0.0, _weighting.check_smoothing,
              "eps in [0, 1): class labels' targets (1 - eps) * one-hot + eps / K (K classes; "
              "2 for one sigmoid unit); validation targets too. Recorded in info_.",
              "label smoothing eps in [0, 1) of class labels' targets"),
    FitOption("shuffle", True, v.check_bool,
              "a fresh order of the samples every epoch (online, sgd, adam)."),
    FitOption("random_state", None, _random_state,
              "None, an int or a numpy Generator: the shuffles and the validation split.",
              "seed of the shuffles and the validation split"),
    FitOption("validation_data", None, _pair,
              "(X_val, y_val) scored after every epoch ('val_loss', 'val_score' in history_)."),
    FitOption("validation_fraction", 0.0, _real(**_UNIT_RATE),
              "the fraction of X held out for validation (stratified for labels; 0.1 when "
              "early_stopping is set without validation data).",
              "share of the data held out to validate (stratified for labels)"),
    FitOption("early_stopping", False, v.check_bool,
              "stop when the validation score fails to improve by tol for n_iter_no_change "
              "epochs, and restore the best parameters.",
              "stop when the validation score stops improving; keep the best"),
    FitOption("tol", 1e-4, _real(low=0),
              "without early stopping, stop when the training cost improves by less than tol "
              "for n_iter_no_change epochs (lbfgs, cg: scipy's gradient tolerance)."),
    FitOption("n_iter_no_change", 10, _int(), "the patience of the two stopping rules."),
    FitOption("max_iter", None, _optional(_int()),
              "iterations of the full-batch solvers (default: epochs)."),
    FitOption("max_fun", 15000, _int(), "L-BFGS's bound on cost evaluations."),
    FitOption("callback", None, _callback,
              "callback(net, epoch, logs) after every epoch (iteration); returning False "
              "stops training."),
    FitOption("verbose", False, _verbose, "a progress bar (tqdm if installed)."),
    FitOption("block_rows", None, _optional(_int()),
              "rows read at a time from data out of memory (numpy.memmap, zarr, h5py); "
              "default: about 64 MB of X a block."),
    FitOption("client", None, _client,
              "Dask input: a distributed.Client, a scheduler address ('tcp://host:8786') "
              "or 'local'; default: the current client, else a LocalCluster started for "
              "the fit and closed after it (cbackprop.cluster)."),
    FitOption("dask_training", "sequential", _choice(("sequential", "averaging")),
              "Dask input with online, sgd or adam: 'sequential' moves the model to each "
              "partition in turn (exact: the in-memory fit's batches); 'averaging' trains a "
              "copy on every partition at once and averages them by sample weight each "
              "epoch (data parallel, an approximation)."),
)
BY_NAME = {o.name: o for o in FIT_OPTIONS}
DEFAULTS = {o.name: o.default for o in FIT_OPTIONS}


def resolve(given, caller="fit"):
    """Every option's value: those given, checked, and the defaults for the others.
    An unknown name raises TypeError, as Python does for a function's keywords."""
    for name in given:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, BY_NAME, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{hint}")
    return {o.name: o.check(o.name, given[o.name]) if o.name in given else o.default
            for o in FIT_OPTIONS}


def signature(head):
    """A signature with the parameters of head (a function: self, X, y, ...) and then
    every fit option as a keyword-only parameter with its default."""
    params = [p for p in inspect.signature(head).parameters.values()
              if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default)
               for o in FIT_OPTIONS]
    return inspect.Signature(params)


def docs(indent=8):
    """The options as a docstring section (name (default): help)."""
    lines = []
    for o in FIT_OPTIONS:
        text = textwrap.fill(f"{o.name} ({o.default!r}): {o.help}", width=92 - indent,
                             subsequent_indent="    ")
        lines.append(textwrap.indent(text, " " * indent))
    return "\n".join(lines)
