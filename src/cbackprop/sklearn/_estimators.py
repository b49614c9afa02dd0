"""BackpropClassifier and BackpropRegressor: what differs between the two."""
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from cbackprop import _targets, _validation as v, _weighting, cluster
from cbackprop.sklearn._base import _BaseBackprop
from cbackprop.sklearn._docs import _SHARED_ATTRIBUTES, _SHARED_NOTES, _SHARED_PARAMS


class BackpropClassifier(ClassifierMixin, _BaseBackprop):
    __doc__ = f"""A neural network classifier trained by cbackprop's compiled backpropagation.

    A drop-in for ``sklearn.neural_network.MLPClassifier``: the same parameters under the
    same names and defaults, the same fitted attributes, the same methods. The
    differences are marked **Differs** below.

    Class labels (1-D ``y`` of any sortable type) give softmax outputs, or one logistic
    unit for two classes; a 0/1 indicator matrix gives multi-label classification with one
    logistic unit per label (``predict`` then returns indicator rows). ``y`` with a single
    class trains as in scikit-learn: one logistic unit whose target is 0 for every sample;
    ``predict`` gives that class, ``predict_proba`` two columns, as scikit-learn's.

    Parameters
    ----------
{_SHARED_PARAMS}
    output : {{'auto', 'softmax', 'sigmoid'}}, default='auto'
        cbackprop's. ``'auto'`` is scikit-learn's choice: softmax for several classes, one
        logistic unit for two classes, logistic units for multi-label (and with
        ``loss='squared_error'``). ``'sigmoid'`` gives the course's one-vs-all logistic
        units (``predict_proba`` normalizes their rows); ``'softmax'`` two units for two
        classes.

    class_weight : dict, 'balanced' or None, default=None
        cbackprop's (scikit-learn's MLP has none). Weights of the classes, ``{{label:
        weight}}`` (missing classes weigh 1); ``'balanced'``: ``n_samples / (n_classes *
        np.bincount(y))``. Multiplied into ``sample_weight``, as scikit-learn's linear
        models do, in every solver. ``'balanced'`` is refused by ``partial_fit``.

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
{_SHARED_NOTES}

    **Differs:** ``loss_`` is computed exactly from the pre-activations where scikit-learn
    clips probabilities at machine epsilon.
    """

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 output="auto", loss="cross_entropy", init="glorot", dtype="auto",
                 n_threads=None, class_weight=None, clip_norm=None, weight_decay=0.0,
                 dropout=0.0, input_dropout=0.0):
        self._store_params(locals())

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
        loss = v.check_option("loss", self.loss, ("cross_entropy", "log_loss", "squared_error"))
        loss = "cross_entropy" if loss == "log_loss" else loss
        output = v.check_option("output", self.output, ("auto", "softmax", "sigmoid", "logistic"))
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
            index, unseen = _targets.find_labels(y, all_classes)
            if np.any(unseen):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{all_classes}. 'y' has {np.unique(y[unseen])}.")
            k = len(all_classes)
            if output == "auto":
                output = "softmax" if (k > 2 and loss == "cross_entropy") else "sigmoid"
            if output == "softmax" and loss == "squared_error":
                raise ValueError("loss='squared_error' needs output='sigmoid' (or 'auto')")
            if output == "softmax" and k == 1:
                raise ValueError(f"output='softmax' needs two classes or more; y has one "
                                 f"({all_classes[0]!r}): use output='auto'")
            n_outputs = 1 if (k <= 2 and output == "sigmoid") else k
            # one class, as scikit-learn's LabelBinarizer codes it: one logistic unit whose
            # target is 0 for every sample (_targets.decode: the class whatever h says)
            targets, train_classes = index, np.arange(k)
        fitted = {"classes_": all_classes, "_multilabel": multilabel} if first else {}
        return targets, n_outputs, output, loss, train_classes, fitted

    def _target_options(self, targets, target_attrs, incremental):
        """class_weight as training.fit takes it for the class indices the network is trained
        on: a weight per index, 'balanced' counted on the whole y (before early stopping's
        split, as scikit-learn's linear models count it); on Dask, counted by training.fit."""
        class_weight = _weighting.check_class_weight("class_weight", self.class_weight)
        if class_weight is None:
            return {}
        if target_attrs.get("_multilabel", getattr(self, "_multilabel", None)):
            raise ValueError("class_weight is for class labels (1-D y); not supported for "
                             "multi-label y")
        if isinstance(class_weight, str) and incremental:
            raise ValueError("class_weight 'balanced' is not supported for partial_fit: "
                             "compute the weights from a sample of y (scikit-learn's "
                             "compute_class_weight) and pass them as a dict")
        classes = target_attrs.get("classes_", getattr(self, "classes_", None))
        if isinstance(class_weight, str) and cluster.is_dask(targets):
            return {"class_weight": class_weight}
        counts = (np.bincount(targets, minlength=len(classes))
                  if isinstance(class_weight, str) else None)
        weights = _weighting.class_weight_vector(class_weight, classes, counts)
        return {"class_weight": dict(enumerate(weights.tolist()))}

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of classes_;
        for multi-label y, each label's probability."""
        if cluster.is_dask(X):
            return self._on_dask(X, "predict_proba")
        h = self._forward(X)                    # first: NotFittedError before fit
        return _targets.probabilities(h, self._decoding()[1].kind, self.network_.output)

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        if cluster.is_dask(X):
            return self._on_dask(X, "predict_log_proba")
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels (the most probable class); 0/1 indicator rows for multi-label y.

        The rule of ``Network.predict``, model files and the command line (``_targets.decode``):
        one sigmoid unit (two classes) or a multi-label unit says 1 when ``h >= 0.5``, so a
        tie at exactly 0.5 goes to the second class (or label on); otherwise the argmax."""
        if cluster.is_dask(X):
            return self._on_dask(X, "predict")
        return self._decode(self._forward(X))

    def _decoding(self):
        """(classes, TargetCoding) of predict and predict_proba: the network is trained on
        class indices, the labels are classes_ (none for multi-label indicator rows)."""
        if self._multilabel:
            return None, _targets.TargetCoding(_targets.MATRIX, one_dimensional=False)
        return self.classes_, _targets.TargetCoding(_targets.LABELS, one_dimensional=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BackpropRegressor(RegressorMixin, _BaseBackprop):
    __doc__ = f"""A neural network regressor trained by cbackprop's compiled backpropagation.

    A drop-in for ``sklearn.neural_network.MLPRegressor``: the same parameters under the
    same names and defaults, the same fitted attributes, the same methods. The
    differences are marked **Differs** below. Identity outputs and the squared error, or
    exp outputs and the Poisson loss; a 2-D ``y`` gives one output per column (multi-output
    regression).

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        ``'squared_error'``: ``(1 / 2n) sum_i ||h_i - y_i||^2`` plus the penalty.
        **Differs:** for several outputs ``loss_`` sums over them (scikit-learn reports the
        mean over outputs, while its gradient is that of the sum). ``'poisson'``: exp
        outputs (a log link) and the half Poisson deviance
        ``(1 / n) sum_i sum_k [y log(y / h) - y + h]`` plus the penalty, as scikit-learn
        defines it (the constant ``y log y - y`` included, summed over outputs, so that
        ``loss_`` is scikit-learn's); ``y`` must be ``>= 0``.

{_SHARED_PARAMS}
    Attributes
    ----------
{_SHARED_ATTRIBUTES}
    Notes
    -----
{_SHARED_NOTES}
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 init="glorot", dtype="auto", n_threads=None, clip_norm=None,
                 weight_decay=0.0, dropout=0.0, input_dropout=0.0):
        self._store_params(locals())

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features) and y (n_samples,) or
        (n_samples, n_outputs); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseBackprop._partial_fit_available)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _encode_targets(self, y, first, incremental, classes):
        loss = v.check_option("loss", self.loss, ("squared_error", "poisson"))
        Y = y.reshape(len(y), -1)
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs; the first fit had {self.n_outputs_}")
        output = "exp" if loss == "poisson" else "identity"    # scikit-learn's pairs
        return Y, Y.shape[1], output, loss, None, {}

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        if cluster.is_dask(X):
            return self._on_dask(X, "predict")
        return self._decode(self._forward(X))

    def _decoding(self):
        """(classes, TargetCoding) of predict: values, 1-D for one target."""
        return None, _targets.TargetCoding(_targets.REGRESSION,
                                           one_dimensional=self.n_outputs_ == 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
