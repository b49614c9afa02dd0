"""scikit-learn estimators built on cbackprop.Network: BackpropClassifier, BackpropRegressor.

They take MLPClassifier's and MLPRegressor's parameters under the same names wherever the
meaning is the same, so swapping one for the other in a Pipeline, a GridSearchCV or a
cross_val_score changes nothing else. Each class docstring lists every difference.

scikit-learn is an optional dependency: ``pip install "cbackprop[sklearn]"``.
"""
import numbers
import os
import re
import warnings

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning as _SkConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d
except ImportError as exc:                  # pragma: no cover - exercised in a subprocess
    raise ImportError('cbackprop.sklearn needs scikit-learn; install it with '
                      'pip install "cbackprop[sklearn]"') from exc

import numpy as np

from cbackprop import training
from cbackprop._core.threads import default_threads
from cbackprop.network import Network

try:                                         # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:                          # pragma: no cover - scikit-learn 1.3 to 1.5
    _sk_validate_data = None

__all__ = ["BackpropClassifier", "BackpropRegressor", "ConvergenceWarning"]

SKLEARN_VERSION = tuple(int(p) for p in re.findall(r"\d+", sklearn.__version__)[:2])

SOLVERS = ("adam", "sgd", "lbfgs", "online", "cg", "rprop")
STOCHASTIC = ("adam", "sgd", "online")       # the solvers with partial_fit
SCHEDULED = ("sgd", "online")                # learning_rate (the schedule) applies to these
HIDDEN = {"logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
OUT_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity"}
INITS = ("glorot", "ng", "he")


class ConvergenceWarning(training.ConvergenceWarning, _SkConvergenceWarning):
    """fit stopped at max_iter before converging.

    Both cbackprop's and scikit-learn's ConvergenceWarning, so a filter on either applies.
    """


# ----------------------------------------------------------------------------- helpers


def _validate_data(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's validate_data (>= 1.6) or the older estimator._validate_data."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, **kwargs)
    return estimator._validate_data(X, y, **kwargs)  # pragma: no cover


def _auto_threads():
    """cbackprop's default thread count, capped by OMP_NUM_THREADS when it is set.

    joblib's process workers (GridSearchCV(n_jobs=k), cross_val_score(n_jobs=k)) start
    with OMP_NUM_THREADS = cores // k, so the jobs share the cores instead of each
    splitting its rows across all of them.
    """
    n = default_threads()
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) >= 1:
        n = min(n, int(value))
    return n


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_real(name, value, low=None, high=None, low_open=False, high_open=False):
    if not _is_real(value) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number; got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be in {span}; got {value!r}")
    return float(value)


def _check_int(name, value, low=1):
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _check_choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def _pack_network(net):
    """A picklable form of a Network: its Thetas are views into one buffer, which pickle
    would save as separate arrays (so the loaded Thetas would no longer be the parameters)."""
    attrs = {k: v for k, v in vars(net).items() if k not in ("_params", "_thetas")}
    return {"cbackprop.Network": [np.array(t) for t in net.thetas], "attrs": attrs}


def _unpack_network(packed):
    attrs = packed["attrs"]
    net = Network.from_thetas(packed["cbackprop.Network"], attrs["activation"], attrs["output"],
                              attrs["loss"], attrs["dtype"])
    for key, value in attrs.items():
        setattr(net, key, value)
    return net


# -------------------------------------------------------------------------- the base


class _BaseBackprop(BaseEstimator):
    """What the classifier and the regressor share: parameters, the network, fitting."""

    _is_classifier = False

    # ------------------------------------------------------------- parameters

    def _check_params(self):
        """Every parameter, checked at fit time (scikit-learn's convention); returns the
        options for training.fit and the network's configuration."""
        hidden = self.hidden_layer_sizes
        if _is_int(hidden):
            hidden = [hidden]
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints; "
                            f"got {self.hidden_layer_sizes!r}")
        hidden = list(hidden)
        for size in hidden:
            if not _is_int(size):
                raise TypeError(f"hidden_layer_sizes must hold ints; got {hidden!r}")
            if size < 1:
                raise ValueError(f"hidden_layer_sizes must all be >= 1; got {hidden!r}")

        if self.activation == "identity":
            raise ValueError("activation='identity' (linear hidden layers) is not supported: "
                             "cbackprop's hidden layers are 'logistic' (alias 'sigmoid'), "
                             "'tanh' or 'relu'")
        _check_choice("activation", self.activation, tuple(HIDDEN))
        solver = _check_choice("solver", self.solver, SOLVERS)
        alpha = _check_real("alpha", self.alpha, low=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if not _is_int(self.batch_size):
                raise ValueError(f"batch_size must be 'auto' or an int >= 1; "
                                 f"got {self.batch_size!r}")
            _check_int("batch_size", self.batch_size)
        schedule = _check_choice("learning_rate", self.learning_rate,
                                 ("constant", "invscaling", "adaptive"))
        rate = _check_real("learning_rate_init", self.learning_rate_init, low=0, low_open=True)
        power_t = _check_real("power_t", self.power_t, low=0)
        max_iter = _check_int("max_iter", self.max_iter)
        shuffle = _check_bool("shuffle", self.shuffle)
        tol = _check_real("tol", self.tol, low=0)
        if not (_is_int(self.verbose) or isinstance(self.verbose, (bool, np.bool_))):
            raise TypeError(f"verbose must be a bool or an int; got {self.verbose!r}")
        _check_bool("warm_start", self.warm_start)
        momentum = _check_real("momentum", self.momentum, low=0, high=1, high_open=True)
        nesterov = _check_bool("nesterovs_momentum", self.nesterovs_momentum)
        early = _check_bool("early_stopping", self.early_stopping)
        fraction = _check_real("validation_fraction", self.validation_fraction, low=0, high=1,
                               high_open=True)
        if early and fraction == 0:
            raise ValueError("validation_fraction must be > 0 with early_stopping=True")
        for name in ("beta_1", "beta_2"):
            _check_real(name, getattr(self, name), low=0, high=1, high_open=True)
        _check_real("epsilon", self.epsilon, low=0, low_open=True)
        if self.n_iter_no_change == np.inf:
            patience = max_iter + 1                  # never reached
        else:
            # scikit-learn stops once more than n_iter_no_change epochs failed to improve;
            # cbackprop's loop once n of them did: n + 1 is scikit-learn's rule.
            patience = _check_int("n_iter_no_change", self.n_iter_no_change) + 1
        _check_int("max_fun", self.max_fun)
        init = _check_choice("init", self.init, INITS)
        if self.dtype is None or (isinstance(self.dtype, str) and self.dtype == "auto"):
            dtype = None
        else:
            try:
                dtype = np.dtype(self.dtype)
            except TypeError:
                dtype = None
            if dtype is None or dtype.name not in ("float32", "float64"):
                raise ValueError(f"dtype must be 'auto', 'float32' or 'float64'; "
                                 f"got {self.dtype!r}")
        if self.n_threads is not None:
            _check_int("n_threads", self.n_threads)

        options = dict(
            solver=solver, lam=alpha, learning_rate=rate, shuffle=shuffle, tol=tol,
            epochs=max_iter, max_iter=max_iter, n_iter_no_change=patience,
            # scikit-learn applies learning_rate (the schedule) and momentum to sgd only
            schedule=schedule if solver in SCHEDULED else "constant",
            momentum=momentum if solver == "sgd" else 0.9, nesterov=nesterov,
            verbose=bool(self.verbose), betas=(self.beta_1, self.beta_2), epsilon=self.epsilon,
            power_t=power_t, max_fun=self.max_fun)
        return hidden, init, dtype, early, fraction, options

    def _n_threads(self):
        return _auto_threads() if self.n_threads is None else int(self.n_threads)

    # ----------------------------------------------------------- the network

    def _new_network(self, sizes, hidden_act, output, loss, dtype, init, rs):
        if init == "glorot":
            # scikit-learn's MLP initialization, draw for draw (the same random_state gives
            # the same starting weights): uniform +-sqrt(f / (fan_in + fan_out)) for weights
            # and biases, f = 2 for logistic hidden units, else 6.
            factor = 2.0 if hidden_act == "sigmoid" else 6.0
            thetas = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                bound = np.sqrt(factor / (fan_in + fan_out))
                coef = rs.uniform(-bound, bound, (fan_in, fan_out))
                intercept = rs.uniform(-bound, bound, fan_out)
                thetas.append(np.column_stack([intercept, coef.T]))
            return Network.from_thetas(thetas, hidden_act, output, loss, dtype)
        return Network(sizes, hidden_act, output, loss, dtype, init=init, random_state=rs)

    @property
    def coefs_(self):
        """Weights in scikit-learn's layout: coefs_[l] = Theta(l+1)[:, 1:].T, shape
        (fan_in, fan_out). Views into the network's parameters: editing them in place
        edits the model."""
        check_is_fitted(self)
        return [t[:, 1:].T for t in self.network_.thetas]

    @coefs_.setter
    def coefs_(self, values):
        self._set_layer_part("coefs_", values, lambda t: t[:, 1:].T)

    @property
    def intercepts_(self):
        """Biases in scikit-learn's layout: intercepts_[l] = Theta(l+1)[:, 0]. Views into the
        network's parameters."""
        check_is_fitted(self)
        return [t[:, 0] for t in self.network_.thetas]

    @intercepts_.setter
    def intercepts_(self, values):
        self._set_layer_part("intercepts_", values, lambda t: t[:, 0])

    def _set_layer_part(self, name, values, part):
        check_is_fitted(self)
        views = [part(t) for t in self.network_.thetas]
        if not isinstance(values, (list, tuple)) or len(values) != len(views):
            raise ValueError(f"{name} must be a list of {len(views)} arrays")
        arrays = [np.asarray(v) for v in values]
        for l, (view, arr) in enumerate(zip(views, arrays)):
            if arr.shape != view.shape:
                raise ValueError(f"{name}[{l}] must have shape {view.shape}; got {arr.shape}")
            if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all():
                raise ValueError(f"{name}[{l}] must hold finite numbers")
        for view, arr in zip(views, arrays):
            view[...] = arr

    @property
    def thetas_(self):
        """The course's layout: Theta(l) of shape (s_{l+1}, s_l + 1), bias in column 0.
        Copies; edit coefs_, intercepts_ or network_.thetas to change the model."""
        check_is_fitted(self)
        return [t.copy() for t in self.network_.thetas]

    # --------------------------------------------------------------- pickling

    def __getstate__(self):
        state = dict(super().__getstate__())
        if isinstance(state.get("network_"), Network):
            state["network_"] = _pack_network(state["network_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("network_"), dict):
            state["network_"] = _unpack_network(state["network_"])
        super().__setstate__(state)

    # ---------------------------------------------------------------- fitting

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden, init, dtype, early, fraction, options = self._check_params()
        if incremental and early:
            raise ValueError("partial_fit does not support early_stopping=True")
        fitted = hasattr(self, "network_")
        first = not fitted or (not self.warm_start and not incremental)
        if first:
            X_dtype = (np.float64, np.float32) if dtype is None else dtype
        else:
            X_dtype = self.network_.dtype
        X, y = _validate_data(self, X, y, reset=first, dtype=X_dtype, order="C",
                              multi_output=True, y_numeric=not self._is_classifier)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)

        targets, n_outputs, output, loss, train_classes, target_attrs = self._encode_targets(
            y, first, incremental, classes)
        hidden_act = HIDDEN[self.activation]
        sizes = [X.shape[1]] + hidden + [n_outputs]
        rs = check_random_state(self.random_state)
        if first:
            net = self._new_network(sizes, hidden_act, output, loss, X.dtype, init, rs)
        else:
            net = self.network_
            wanted = (sizes, [hidden_act] * len(hidden), output, loss)
            if (net.layer_sizes, net.activation, net.output, net.loss) != wanted:
                raise ValueError(
                    f"{'partial_fit' if incremental else 'warm_start=True'} needs the network "
                    f"of the last fit: it has layers {net.layer_sizes}, activation "
                    f"{net.activation[0] if net.activation else None!r}, output {net.output!r}, "
                    f"loss {net.loss!r}; the parameters now ask for layers {sizes}, activation "
                    f"{hidden_act!r}, output {output!r}, loss {loss!r}"
                    + ("" if incremental else "; set warm_start=False to start afresh"))

        validation = None
        if early:
            X, targets, sample_weight, validation = self._split(X, targets, sample_weight,
                                                                fraction, rs)
        n_train = X.shape[0]
        if isinstance(self.batch_size, str):
            batch = min(200, n_train)
        else:
            if self.batch_size > n_train and options["solver"] in ("adam", "sgd"):
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
            batch = min(self.batch_size, n_train)
        if incremental:
            options["epochs"] = options["max_iter"] = 1

        net.n_threads = self._n_threads()
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                training.fit(
                    net, X, targets, sample_weight=sample_weight, batch_size=batch,
                    random_state=rs, validation_data=validation, validation_fraction=0.0,
                    early_stopping=early, callback=None, classes=train_classes,
                    reset_optimizer=not incremental, **options)
        finally:
            # re-issued under the caller's filters, ConvergenceWarning as scikit-learn's too
            for w in caught:
                if issubclass(w.category, training.ConvergenceWarning):
                    if not incremental:
                        warnings.warn(str(w.message), ConvergenceWarning, stacklevel=3)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

        # training succeeded: only now does the estimator change (a failed fit leaves it be)
        for key, value in target_attrs.items():
            setattr(self, key, value)
        self.network_ = net
        self._record(net, first, early, n_train, output)
        return self

    def _split(self, X, Y, sample_weight, fraction, rs):
        """scikit-learn's early-stopping split: train_test_split with the same random state,
        stratified for single-label classification."""
        stratify = Y if (self._is_classifier and Y.ndim == 1) else None
        arrays = [X, Y] + ([sample_weight] if sample_weight is not None else [])
        parts = train_test_split(*arrays, random_state=rs, test_size=fraction,
                                 stratify=stratify)
        X_train, X_val, Y_train, Y_val = parts[:4]
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        weight_train = parts[4] if sample_weight is not None else None
        return X_train, Y_train, weight_train, (X_val, Y_val)

    def _record(self, net, first, early, n_train, output):
        """The fitted attributes scikit-learn's MLP has, from the network's history."""
        history = net.history_
        if first:
            self.loss_curve_ = []
            self.validation_scores_ = [] if early else None
            self.t_ = 0
        elif early and self.validation_scores_ is None:
            self.validation_scores_ = []
        self.loss_curve_ = self.loss_curve_ + [float(x) for x in history["loss"]]
        if early:
            self.validation_scores_ = self.validation_scores_ + [
                float(x) for x in history.get("val_score", [])]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = None if early else (min(self.loss_curve_) if self.loss_curve_ else None)
        self.best_validation_score_ = (max(self.validation_scores_)
                                       if early and self.validation_scores_ else None)
        self.n_iter_ = int(net.n_iter_)
        self.t_ += self.n_iter_ * n_train
        self.n_outputs_ = net.layer_sizes[-1]
        self.n_layers_ = len(net.layer_sizes)
        self.out_activation_ = OUT_NAMES[output]

    def _forward(self, X):
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=self.network_.dtype, order="C")
        self.network_.n_threads = self._n_threads()
        return self.network_.forward(X)

    def _partial_fit_available(self):
        """partial_fit exists for the stochastic solvers, as in scikit-learn."""
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers "
                                 f"({', '.join(STOCHASTIC)}); {self.solver!r} is not stochastic.")
        return True

    if SKLEARN_VERSION < (1, 6):            # pragma: no cover - older scikit-learn tags
        def _more_tags(self):
            return {"multilabel": True} if self._is_classifier else {"multioutput": True}


_SHARED_PARAMS = """\
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units in each hidden layer (``()`` for none).

    activation : {'logistic', 'tanh', 'relu'}, default='relu'
        Hidden units. ``'sigmoid'`` is accepted as ``'logistic'``. **Differs:**
        ``'identity'`` is not supported (cbackprop's core has no linear hidden layer).

    solver : {'adam', 'sgd', 'lbfgs', 'online', 'cg', 'rprop'}, default='adam'
        scikit-learn's three, plus cbackprop's ``'online'`` (the derivation's per-sample
        gradient descent at rate ``learning_rate_init``; a rate near 0.1 suits it, not the
        default 0.001), ``'cg'`` (scipy's conjugate gradient, the course's fmincg role) and
        ``'rprop'`` (full-batch iRPROP-).

    alpha : float, default=0.0001
        L2 penalty ``alpha / (2 n) * sum of squared weights`` (biases excluded), ``n`` the
        number of training samples (their total weight): the course's ``lambda``, and
        scikit-learn's alpha with ``'lbfgs'``. **Differs:** every solver minimizes this same
        cost; scikit-learn's ``'sgd'`` and ``'adam'`` divide the penalty by the batch size
        instead of ``n``, so there the same alpha regularizes ``n / batch_size`` times more.

    batch_size : int or 'auto', default='auto'
        Mini-batch size of ``'sgd'`` and ``'adam'``; ``'auto'`` is ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of ``'sgd'`` (and ``'online'``); other solvers ignore it, as in
        scikit-learn. **Differs:** ``'invscaling'`` divides by ``epoch ** power_t``, where
        scikit-learn divides by ``(samples seen + 1) ** power_t``.

    learning_rate_init : float, default=0.001

    power_t : float, default=0.5
        The exponent of ``'invscaling'`` (per epoch, see ``learning_rate``).

    max_iter : int, default=200
        Epochs of the stochastic solvers, iterations of the full-batch ones.

    shuffle : bool, default=True

    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (with ``init='glorot'`` the same draws as scikit-learn's
        MLP), the early-stopping split and the order of the samples.

    tol : float, default=1e-4
        The loss (or validation score) must improve by ``tol`` within ``n_iter_no_change``
        epochs; for ``'lbfgs'`` and ``'cg'``, scipy's gradient tolerance.

    verbose : bool, default=False
        **Differs:** a progress bar (tqdm, if installed) rather than a line per epoch.

    warm_start : bool, default=False
        Continue from the last fit's weights (the network must be the same).

    momentum : float, default=0.9
        Momentum of ``'sgd'``, in ``[0, 1)`` (scikit-learn also accepts 1).

    nesterovs_momentum : bool, default=True

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (scikit-learn's split, stratified for
        single-label classification), stop when its score fails to improve and keep the best
        weights. **Differs:** honored by every solver (scikit-learn: ``'sgd'``, ``'adam'``),
        and the validation score is unweighted.

    validation_fraction : float, default=0.1

    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's decay rates and stabilizer, as scikit-learn's.

    n_iter_no_change : int or np.inf, default=10

    max_fun : int, default=15000
        The most cost evaluations ``'lbfgs'`` may make, as scikit-learn's.

    init : {'glorot', 'ng', 'he'}, default='glorot'
        cbackprop's: ``'glorot'`` is scikit-learn's initialization; ``'ng'`` the course's
        (uniform in +-sqrt(6 / (fan_in + fan_out)), biases too); ``'he'`` normal weights of
        std ``sqrt(2 / fan_in)`` and zero biases (for relu).

    dtype : {'auto', 'float32', 'float64'}, default='auto'
        cbackprop's: the precision of the network. ``'auto'`` follows ``X`` in the first
        fit (float32 stays float32, anything else becomes float64), as scikit-learn's MLP
        does. ``predict`` and ``predict_proba`` return the network's dtype.

    n_threads : int or None, default=None
        cbackprop's: threads the full-batch kernels split rows across. None: the usable
        cores (at most 8), capped by ``OMP_NUM_THREADS`` when set, which joblib sets in its
        workers so that ``GridSearchCV(n_jobs=k)`` does not oversubscribe the cores.
"""

_SHARED_ATTRIBUTES = """\
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape ``(fan_in, fan_out)``: ``thetas_[l][:, 1:].T``. Views into
        ``network_``'s parameters (editing them edits the model; assigning a list copies it in).

    intercepts_ : list of ndarray
        ``intercepts_[l] = thetas_[l][:, 0]``, views like ``coefs_``.

    thetas_ : list of ndarray
        The course's ``Theta(l)`` matrices, bias in column 0 (copies).

    network_ : cbackprop.Network
        The trained network (``cost_and_gradient``, ``forward``, ...).

    loss_ : float
        The cost of the last epoch or iteration, regularization included.

    loss_curve_ : list of float
        The cost after every epoch (iteration), across warm-started fits and partial_fit
        calls. **Differs:** kept for every solver (scikit-learn: ``'sgd'`` and ``'adam'``).

    best_loss_ : float or None
        ``min(loss_curve_)``; None with early stopping.

    validation_scores_ : list of float or None
        The held-out score after every epoch, with early stopping; else None.

    best_validation_score_ : float or None

    n_iter_ : int
        Epochs (iterations) run by the last fit.

    t_ : int
        Training samples seen by the solver (an epoch or iteration counts all of them).

    n_features_in_ : int

    feature_names_in_ : ndarray of str
        When ``X`` has string column names (a DataFrame, say).

    n_outputs_ : int
        Output units.

    n_layers_ : int
        Layers, input and output included.

    out_activation_ : {'softmax', 'logistic', 'identity'}
        The output units, in scikit-learn's names.
"""


class BackpropClassifier(ClassifierMixin, _BaseBackprop):
    __doc__ = f"""A neural network classifier trained by cbackprop's compiled backpropagation.

    A drop-in for ``sklearn.neural_network.MLPClassifier``: the same parameters under the
    same names and defaults, the same fitted attributes, the same methods. The
    differences are marked **Differs** below.

    Class labels (1-D ``y`` of any sortable type) give softmax outputs, or one logistic
    unit for two classes; a 0/1 indicator matrix gives multi-label classification with one
    logistic unit per label (``predict`` then returns indicator rows).

    Parameters
    ----------
{_SHARED_PARAMS}
    output : {{'auto', 'softmax', 'sigmoid'}}, default='auto'
        cbackprop's. ``'auto'`` is scikit-learn's choice: softmax for several classes, one
        logistic unit for two classes, logistic units for multi-label (and with
        ``loss='squared_error'``). ``'sigmoid'`` gives the course's one-vs-all logistic
        units (``predict_proba`` normalizes their rows); ``'softmax'`` two units for two
        classes.

    loss : {{'cross_entropy', 'squared_error'}}, default='cross_entropy'
        cbackprop's (scikit-learn's MLP has only the cross-entropy, ``'log_loss'``, which is
        accepted as a name for it). ``'squared_error'`` needs logistic outputs.

    Attributes
    ----------
    classes_ : ndarray
        The class labels; ``arange(n_labels)`` for multi-label ``y``.

{_SHARED_ATTRIBUTES}
    Notes
    -----
    Other differences: sparse ``X`` is refused (cbackprop's kernels are dense); a cost
    that becomes NaN or infinite raises FloatingPointError (scikit-learn: a ValueError);
    Ctrl-C stops fit with a warning and keeps the weights reached; ``loss_`` is computed
    exactly from the pre-activations where scikit-learn clips probabilities at machine
    epsilon.
    """

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 output="auto", loss="cross_entropy", init="glorot", dtype="auto",
                 n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.output = output
        self.loss = loss
        self.init = init
        self.dtype = dtype
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features) and labels y (1-D, or a 0/1
        indicator matrix for multi-label); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseBackprop._partial_fit_available)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        classes, every label of the whole data set, is required on the first call (y need
        not hold all of them) and must not change later; not needed for multi-label y.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _encode_targets(self, y, first, incremental, classes):
        """(targets for training.fit, output units, output, loss, classes for training.fit,
        the fitted attributes to set once training succeeds).

        Labels become indices into classes_ (training.fit gets classes=arange(k)); a
        multi-label indicator matrix goes in as it is."""
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multiclass-multioutput":
            raise ValueError("y is multiclass-multioutput (2-D with more than two values): "
                             "not supported; use a 0/1 indicator matrix for multi-label, or "
                             "sklearn.multioutput.MultiOutputClassifier")
        multilabel = kind == "multilabel-indicator"
        loss = _check_choice("loss", self.loss, ("cross_entropy", "log_loss", "squared_error"))
        loss = "cross_entropy" if loss == "log_loss" else loss
        output = _check_choice("output", self.output, ("auto", "softmax", "sigmoid", "logistic"))
        output = "sigmoid" if output == "logistic" else output

        if first:
            if incremental and not multilabel:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit.")
                all_classes = np.unique(np.asarray(classes))
            elif multilabel:
                all_classes = np.arange(y.shape[1])
            else:
                all_classes = np.unique(y)
            if multilabel and incremental and classes is not None and \
                    len(np.unique(classes)) != y.shape[1]:
                raise ValueError(f"classes has {len(np.unique(classes))} labels but y "
                                 f"{y.shape[1]} columns")
            if len(all_classes) < 2 and not multilabel:
                raise ValueError(f"Classifier can't train when only one class is present: "
                                 f"y has 1 class ({all_classes[0]!r})")
        else:
            all_classes = self.classes_
            if multilabel != (self._multilabel is True):
                raise ValueError("y must be of the kind given to the first fit "
                                 f"({'multi-label indicator' if self._multilabel else 'labels'})")
            if incremental and classes is not None and not np.array_equal(
                    np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                                 f"partial_fit: {self.classes_!r}")
            if multilabel:
                if y.shape[1] != len(all_classes):
                    raise ValueError(f"y has {y.shape[1]} labels; the first fit had "
                                     f"{len(all_classes)}")
            else:
                seen = np.unique(y)
                if self.warm_start and not incremental and (
                        len(seen) != len(all_classes) or not np.all(seen == all_classes)):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {all_classes}, `y` has {seen}")

        if multilabel:
            if output == "softmax":
                raise ValueError("output='softmax' gives one label a sample; multi-label y "
                                 "needs output='sigmoid' (or 'auto')")
            targets, n_outputs, output, train_classes = y.astype(np.float64), y.shape[1], \
                "sigmoid", None
        else:
            index = np.searchsorted(all_classes, y)
            index = np.clip(index, 0, len(all_classes) - 1)
            unseen = all_classes[index] != y
            if np.any(unseen):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{all_classes}. 'y' has {np.unique(y[unseen])}.")
            k = len(all_classes)
            if output == "auto":
                output = "softmax" if (k > 2 and loss == "cross_entropy") else "sigmoid"
            if output == "softmax" and loss == "squared_error":
                raise ValueError("loss='squared_error' needs output='sigmoid' (or 'auto')")
            n_outputs = 1 if (k == 2 and output == "sigmoid") else k
            targets, train_classes = index, np.arange(k)
        fitted = {"classes_": all_classes, "_multilabel": multilabel} if first else {}
        return targets, n_outputs, output, loss, train_classes, fitted

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of classes_;
        for multi-label y, each label's probability."""
        h = self._forward(X)
        if self._multilabel:
            return h
        if h.shape[1] == 1:
            return np.hstack([1 - h, h])
        if self.network_.output == "sigmoid":        # one-vs-all units: normalize each row
            return h / np.maximum(h.sum(axis=1, keepdims=True), np.finfo(h.dtype).tiny)
        return h

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels (the most probable class); 0/1 indicator rows for multi-label y."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BackpropRegressor(RegressorMixin, _BaseBackprop):
    __doc__ = f"""A neural network regressor trained by cbackprop's compiled backpropagation.

    A drop-in for ``sklearn.neural_network.MLPRegressor``: the same parameters under the
    same names and defaults, the same fitted attributes, the same methods. The
    differences are marked **Differs** below. Identity outputs and the squared error;
    a 2-D ``y`` gives one output per column (multi-output regression).

    Parameters
    ----------
    loss : {{'squared_error'}}, default='squared_error'
        ``(1 / 2n) sum_i ||h_i - y_i||^2`` plus the penalty. **Differs:** ``'poisson'`` is
        not supported; for several outputs ``loss_`` sums over them (scikit-learn reports
        the mean over outputs, while its gradient is that of the sum).

{_SHARED_PARAMS}
    Attributes
    ----------
{_SHARED_ATTRIBUTES}
    Notes
    -----
    Other differences: sparse ``X`` is refused (cbackprop's kernels are dense); a cost
    that becomes NaN or infinite raises FloatingPointError (scikit-learn: a ValueError);
    Ctrl-C stops fit with a warning and keeps the weights reached.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 init="glorot", dtype="auto", n_threads=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.init = init
        self.dtype = dtype
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features) and y (n_samples,) or
        (n_samples, n_outputs); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseBackprop._partial_fit_available)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _encode_targets(self, y, first, incremental, classes):
        if self.loss == "poisson":
            raise ValueError("loss='poisson' is not supported by cbackprop: its regressor "
                             "has identity outputs and loss='squared_error'")
        _check_choice("loss", self.loss, ("squared_error",))
        Y = y.reshape(len(y), -1)
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs; the first fit had {self.n_outputs_}")
        return Y, Y.shape[1], "identity", "squared_error", None, {}

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        h = self._forward(X)
        return h[:, 0] if h.shape[1] == 1 else h

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
