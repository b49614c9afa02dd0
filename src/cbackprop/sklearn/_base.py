"""What the two estimators share: scikit-learn's names, the parameters' checks, the
network, fitting and the fitted attributes."""
import re
import warnings

import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning as _SkConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

import numpy as np

from cbackprop import cluster, modelfile, training, _targets, _validation as v
from cbackprop._core.threads import default_threads
from cbackprop.interop import SK_HIDDEN, SK_OUTPUT
from cbackprop.network import Network
from cbackprop.sklearn import _persist, _report

try:                                         # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:                          # pragma: no cover - scikit-learn 1.3 to 1.5
    _sk_validate_data = None

SKLEARN_VERSION = tuple(int(p) for p in re.findall(r"\d+", sklearn.__version__)[:2])

SOLVERS = ("adam", "sgd", "lbfgs", "online", "cg", "rprop")   # scikit-learn's first
STOCHASTIC = ("adam", "sgd", "online")       # the solvers with partial_fit
SCHEDULED = ("sgd", "online")                # learning_rate (the schedule) applies to these
HIDDEN = {**SK_HIDDEN, **{name: name for name in v.HIDDEN_ACTIVATIONS}}  # both names taken
OUT_NAMES = {ours: theirs for theirs, ours in SK_OUTPUT.items()}
INITS = ("glorot", "ng", "he")
SPARSE = ("csr", "csc")                      # scikit-learn MLP's; other formats become CSR


class ConvergenceWarning(training.ConvergenceWarning, _SkConvergenceWarning):
    """fit stopped at max_iter (or L-BFGS at max_fun) before converging.

    Both cbackprop's and scikit-learn's ConvergenceWarning, so a filter on either applies.
    """


# ----------------------------------------------------------------------------- helpers


def _refuse_text(X):
    """As scikit-learn's MLP predicts: numbers written as text ("0.5") refused with its
    dtype="numeric" error (its fit converts them, as ours does), which our float dtypes
    would skip."""
    dtype = getattr(X, "dtype", None)
    if dtype is None and isinstance(X, (list, tuple)):
        dtype = np.asarray(X).dtype
    if getattr(dtype, "kind", None) in ("U", "S"):
        raise ValueError("dtype='numeric' is not compatible with arrays of bytes/strings."
                         "Convert your data to numeric values explicitly instead.")


def _validate_data(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's validate_data (>= 1.6) or the older estimator._validate_data."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, **kwargs)
    return estimator._validate_data(X, y, **kwargs)  # pragma: no cover


# -------------------------------------------------------------------------- the base


class _BaseBackprop(BaseEstimator):
    """What the classifier and the regressor share: parameters, the network, fitting."""

    _is_classifier = False

    def _store_params(self, arguments):
        """__init__'s whole body, as scikit-learn asks: store every argument as it is."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    # ------------------------------------------------------------- parameters

    def _check_params(self):
        """Every parameter, checked at fit time (scikit-learn's convention); returns the
        options for training.fit and the network's configuration."""
        hidden = self.hidden_layer_sizes
        if v.is_int(hidden):
            hidden = [hidden]
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints; "
                            f"got {self.hidden_layer_sizes!r}")
        hidden = list(hidden)
        for size in hidden:
            if not v.is_int(size):
                raise TypeError(f"hidden_layer_sizes must hold ints; got {hidden!r}")
            if size < 1:
                raise ValueError(f"hidden_layer_sizes must all be >= 1; got {hidden!r}")

        v.check_option("activation", self.activation, tuple(HIDDEN))
        solver = v.check_option("solver", self.solver, SOLVERS)
        alpha = v.check_real("alpha", self.alpha, low=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if not v.is_int(self.batch_size):
                raise ValueError(f"batch_size must be 'auto' or an int >= 1; "
                                 f"got {self.batch_size!r}")
            v.check_int("batch_size", self.batch_size)
        schedule = v.check_option("learning_rate", self.learning_rate,
                                 ("constant", "invscaling", "adaptive"))
        rate = v.check_real("learning_rate_init", self.learning_rate_init, low=0, low_open=True)
        power_t = v.check_real("power_t", self.power_t, low=0)
        max_iter = v.check_int("max_iter", self.max_iter)
        shuffle = v.check_bool("shuffle", self.shuffle)
        tol = v.check_real("tol", self.tol, low=0)
        if not (v.is_int(self.verbose) or isinstance(self.verbose, (bool, np.bool_))
                or (isinstance(self.verbose, str) and self.verbose == "bar")):
            raise TypeError(f"verbose must be a bool, an int or 'bar'; got {self.verbose!r}")
        v.check_bool("warm_start", self.warm_start)
        momentum = v.check_real("momentum", self.momentum, low=0, high=1, high_open=True)
        nesterov = v.check_bool("nesterovs_momentum", self.nesterovs_momentum)
        early = v.check_bool("early_stopping", self.early_stopping)
        fraction = v.check_real("validation_fraction", self.validation_fraction, low=0, high=1,
                               high_open=True)
        if early and fraction == 0:
            raise ValueError("validation_fraction must be > 0 with early_stopping=True")
        for name in ("beta_1", "beta_2"):
            v.check_real(name, getattr(self, name), low=0, high=1, high_open=True)
        v.check_real("epsilon", self.epsilon, low=0, low_open=True)
        if self.n_iter_no_change == np.inf:
            patience = max_iter + 1                  # never reached
        else:
            # scikit-learn stops once more than n_iter_no_change epochs failed to improve;
            # cbackprop's loop once n of them did: n + 1 is scikit-learn's rule.
            patience = v.check_int("n_iter_no_change", self.n_iter_no_change) + 1
        v.check_int("max_fun", self.max_fun)
        init = v.check_option("init", self.init, INITS)
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
            v.check_int("n_threads", self.n_threads)

        options = dict(
            solver=solver, lam=alpha, learning_rate=rate, shuffle=shuffle, tol=tol,
            epochs=max_iter, max_iter=max_iter, n_iter_no_change=patience,
            # scikit-learn applies learning_rate (the schedule) and momentum to sgd only
            schedule=schedule if solver in SCHEDULED else "constant",
            momentum=momentum if solver == "sgd" else 0.9, nesterov=nesterov,
            verbose=self._progress_bar(), beta_1=self.beta_1, beta_2=self.beta_2,
            epsilon=self.epsilon, power_t=power_t, max_fun=self.max_fun,
            clip_norm=self.clip_norm, weight_decay=self.weight_decay, dropout=self.dropout,
            input_dropout=self.input_dropout)
        return hidden, init, dtype, early, fraction, options

    def _progress_bar(self):
        """verbose='bar': Network.fit's progress bar; other true values: scikit-learn's lines."""
        return isinstance(self.verbose, str)

    def _n_threads(self):
        return default_threads() if self.n_threads is None else int(self.n_threads)

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
        if cluster.is_dask(X, y, sample_weight):
            if early:
                raise ValueError("early_stopping=True holds out rows in memory; on Dask data "
                                 "train with early_stopping=False")
            X, y, sample_weight, seen = self._dask_inputs(X, y, sample_weight, first)
        else:
            X, y = _validate_data(self, X, y, reset=first, dtype=X_dtype, order="C",
                                  accept_sparse=SPARSE, multi_output=True, y_numeric=not self._is_classifier)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X)
            seen = y

        targets, n_outputs, output, loss, train_classes, target_attrs = self._encode_targets(
            seen, first, incremental, classes)
        if seen is not y:              # Dask labels, checked through their distinct values
            targets = cluster.label_indices(y, target_attrs.get("classes_", getattr(
                self, "classes_", None)))
        options.update(self._target_options(targets, target_attrs, incremental))
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
            labels = target_attrs.get("classes_", getattr(self, "classes_", None))
            X, targets, sample_weight, validation = self._early_stopping_split(
                X, targets, sample_weight, fraction, rs, labels)
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
        log = _report.EpochLog(bool(self.verbose) and not self._progress_bar(), early,
                               net.params)
        caught, diverged = [], None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    training.fit(
                        net, X, targets, sample_weight, classes=train_classes,
                        reset_optimizer=not incremental, batch_size=batch, random_state=rs,
                        validation_data=validation, early_stopping=early, callback=log,
                        **options)
                except training.DivergenceError as exc:
                    if not early:          # scikit-learn's ValueError, cbackprop's detail
                        raise training.DivergenceError(
                            f"{_report.NON_FINITE} cbackprop: {exc}", exc.epoch,
                            exc.cost) from exc
                    diverged = exc         # scikit-learn ends with a NaN validation score
                    diverged_loss = log.diverged(net, exc)
        finally:
            self._reissue(caught, incremental, options["solver"], options["max_iter"])
        if diverged is not None:
            kept = "the initial" if log.best_score == -np.inf else "the best epoch's"
            warnings.warn(f"training diverged in epoch {diverged.epoch} (validation score NaN); "
                          f"{kept} weights were kept. cbackprop: {diverged}",
                          ConvergenceWarning, stacklevel=3)
        elif log.verbose and self._stopped_by_rule(early, options["solver"], caught):
            print(_report.stop_line(early, self.tol, self.n_iter_no_change,
                                    options["schedule"] == "adaptive"))

        # training succeeded: only now does the estimator change (a failed fit leaves it be)
        for key, value in target_attrs.items():
            setattr(self, key, value)
        self.network_ = net
        self._record(net, first, early, n_train, output)
        if diverged is not None:          # the epoch that diverged, as scikit-learn records it
            self.loss_curve_.append(diverged_loss)
            self.validation_scores_.append(np.nan)
            self.loss_, self.n_iter_, self.t_ = diverged_loss, self.n_iter_ + 1, self.t_ + n_train
        return self

    def _target_options(self, targets, target_attrs, incremental):
        """More of training.fit's options, from the targets (the classifier's class_weight)."""
        return {}

    def _reissue(self, caught, incremental, solver, max_iter):
        """training.fit's warnings, under the caller's filters; ConvergenceWarning as
        scikit-learn's too, in its MLP's words (partial_fit never warns of it, as there)."""
        for w in caught:
            if issubclass(w.category, training.ConvergenceWarning):
                if not incremental:
                    warnings.warn(_report.convergence_message(solver, str(w.message), max_iter),
                                  ConvergenceWarning, stacklevel=4)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    @staticmethod
    def _stopped_by_rule(early, solver, caught):
        """Whether the no-improvement rule (or early stopping) ended the fit, which
        scikit-learn's verbose fit says: neither interrupted nor out of epochs (training's
        warning), and not lbfgs or cg without early stopping (scipy's tolerance stops them)."""
        out = any(issubclass(w.category, training.TrainingInterrupted) or (
            issubclass(w.category, training.ConvergenceWarning)
            and str(w.message).startswith(f"{solver} ran all ")) for w in caught)
        return not out and (early or solver not in ("lbfgs", "cg"))

    def _dask_inputs(self, X, y, sample_weight, first):
        """(X, y, sample_weight, the labels to check): Dask collections with whole rows a
        partition, X's width checked (the values are checked on the workers, partition by
        partition, by cbackprop.cluster); a classifier's distinct labels, computed."""
        columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        X = cluster.as_rows("X", X, ndim=(2,))
        if first:
            self.n_features_in_ = X.shape[1]
            if columns is not None:
                self.feature_names_in_ = np.asarray(columns, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        y = cluster.as_rows("y", y, X.chunks[0], ndim=(1, 2))
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        sample_weight = cluster.as_rows("sample_weight", sample_weight, X.chunks[0], ndim=(1,))
        if not self._is_classifier:
            return X, y, sample_weight, y
        if y.ndim != 1:
            raise ValueError("multi-label y on Dask data is not supported by the estimators; "
                             "train a cbackprop.Network on it (Network.fit takes Dask targets)")
        return X, y, sample_weight, cluster.unique_labels(y)

    def _on_dask(self, X, method):
        """self.<method>(X) over the partitions of a Dask X: a Dask array."""
        check_is_fitted(self)
        return cluster.map_rows(self, X, method, self.n_features_in_, self.network_.dtype)

    def _early_stopping_split(self, X, Y, sample_weight, fraction, rs, classes):
        """scikit-learn's early-stopping split: train_test_split with the same random state,
        stratified for single-label classification (by the labels, classes[Y], so that its
        error for a class with one member names the class)."""
        stratify = classes[Y] if (self._is_classifier and Y.ndim == 1) else None
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
        # scikit-learn's: the best score that is not NaN (-inf when none is)
        self.best_validation_score_ = (
            max((s for s in self.validation_scores_ if not np.isnan(s)), default=-np.inf)
            if early else None)
        self.n_iter_ = int(net.n_iter_)
        self.t_ += self.n_iter_ * n_train
        self.n_outputs_ = net.layer_sizes[-1]
        self.n_layers_ = len(net.layer_sizes)
        self.out_activation_ = OUT_NAMES[output]

    # ------------------------------------------------------------- model files

    def save(self, path):
        """Write a model file (cbackprop.modelfile: plain arrays and JSON, no pickle): the
        network, the parameters, classes_, feature_names_in_ and the fitted attributes.
        ``type(self).load(path)`` gives the estimator back; ``cbackprop.load(path)`` its
        Network (the same predictions). Returns path."""
        check_is_fitted(self)
        return modelfile.save(self, path)

    @classmethod
    def load(cls, path):
        """The estimator of a model file written by ``save``: its parameters, classes_,
        feature_names_in_, loss_curve_, n_iter_, ... and network_, bit for bit. Raises
        cbackprop.ModelFileError for anything else (a Network's file included)."""
        return _persist.load(path, {cls.__name__: cls}, expected=cls)

    def _model_file_state(self):
        return _persist.file_state(self)

    def _forward(self, X):
        check_is_fitted(self)
        _refuse_text(X)
        X = _validate_data(self, X, reset=False, dtype=self.network_.dtype, order="C",
                           accept_sparse=SPARSE)
        self.network_.n_threads = self._n_threads()
        return self.network_.forward(X)

    def _decode(self, h):
        """predict's answer from the network's outputs h (the subclass's _decoding)."""
        classes, coding = self._decoding()
        return _targets.decode(h, classes, coding.kind, self.network_.output,
                               coding.one_dimensional)

    def predictor(self, n_threads=1):
        """A callable for serving loops, faster than ``predict`` on one or a few rows: the
        network's (``Network.predictor``) answering as this estimator does. ``p.predict(X)``
        is ``predict(X)`` (the labels of ``classes_``; a 1-D result for one regression
        target), ``p.predict_proba(X, out=None)`` is the classifier's ``predict_proba``,
        ``p(X)`` (or ``p.forward(X)``) the network's outputs.

        X that is not a ready NumPy array (C order, the network's dtype) is checked and
        converted as ``predict`` does it (feature names and count, dtype); sparse X is
        refused. A ready array is taken as it is, without scikit-learn's warning about
        missing feature names. Unlike ``predict``, one row may be given 1-D: a label
        (scalar) or a 1-D row of probabilities comes back.

        It holds a snapshot of the parameters and ``classes_``: a later fit does not reach
        it. n_threads: 1 (the default) runs every call on the calling thread; None runs
        large batches across the estimator's ``n_threads``. Raises NotFittedError before
        fit."""
        check_is_fitted(self)
        net = self.network_
        net.n_threads = self._n_threads()
        dtype = net.dtype

        def convert(x):              # predict's checks; a 1-D row checked as a 1-row X
            row = np.ndim(x) == 1
            _refuse_text(x)
            X = _validate_data(self, np.reshape(x, (1, -1)) if row else x, reset=False,
                               dtype=dtype, order="C")
            return X[0] if row else X

        return net._snapshot_predictor(n_threads, self._decoding(), convert)

    def _partial_fit_available(self):
        """partial_fit exists for the stochastic solvers, as in scikit-learn."""
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers "
                                 f"({', '.join(STOCHASTIC)}); {self.solver!r} is not stochastic.")
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    if SKLEARN_VERSION < (1, 6):            # pragma: no cover - older scikit-learn tags
        def _more_tags(self):
            return {"multilabel": True} if self._is_classifier else {"multioutput": True}

