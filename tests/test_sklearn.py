"""cbackprop.sklearn: BackpropClassifier and BackpropRegressor (issue 4).

First scikit-learn's own estimator checks, then what a user swapping MLPClassifier for ours
relies on: the same fit as MLPClassifier/MLPRegressor for the same parameters (init, alpha,
loss, lbfgs), Pipeline/GridSearchCV/cross_val_score, pickling, float32, the coefs_/thetas_
layouts, warm_start and partial_fit, multi-label and multi-output targets, and clear errors
for bad parameters at fit time.
"""
import copy
import inspect
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone                                         # noqa: E402
from sklearn.datasets import (load_digits, load_iris, make_multilabel_classification,  # noqa: E402
                              make_regression)
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score     # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor         # noqa: E402
from sklearn.pipeline import make_pipeline                             # noqa: E402
from sklearn.preprocessing import StandardScaler                       # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks    # noqa: E402

import cbackprop                                                       # noqa: E402
from cbackprop import sklearn as cbs                                   # noqa: E402
from cbackprop._core import threads                                    # noqa: E402
from cbackprop.sklearn import BackpropClassifier, BackpropRegressor    # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Tiny networks, so that the ~130 estimator checks take seconds: lbfgs is deterministic
# and converges on the checks' small problems; adam covers partial_fit's checks.
LBFGS = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=100, random_state=0)
ADAM = dict(hidden_layer_sizes=(5,), solver="adam", learning_rate_init=0.05, max_iter=60,
            random_state=0)


# ----------------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=3,
                                          random_state=0)
    return StandardScaler().fit_transform(X), Y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=120, n_features=5, n_targets=3, random_state=0)
    return X, y / y.std(axis=0)


def _expected_failed_checks(estimator):
    # Every check applies and passes; an entry here would name a check that cannot apply
    # to these estimators, with the reason beside it.
    return {}


# scikit-learn >= 1.6 takes the expected failures as an argument
_SIGNATURE = inspect.signature(parametrize_with_checks).parameters
CHECK_OPTIONS = ({"expected_failed_checks": _expected_failed_checks}
                 if "expected_failed_checks" in _SIGNATURE else {})


# --------------------------------------------------------------- 1. scikit-learn's checks


@parametrize_with_checks([BackpropClassifier(**LBFGS), BackpropRegressor(**LBFGS),
                          BackpropClassifier(**ADAM), BackpropRegressor(**ADAM)],
                         **CHECK_OPTIONS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_dataframe_column_names(iris):
    """feature_names_in_ from a DataFrame, and scikit-learn's check of name consistency
    (not among parametrize_with_checks' checks; needs pandas)."""
    pd = pytest.importorskip("pandas")
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

    X, y = iris
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    clf = BackpropClassifier(**LBFGS).fit(pd.DataFrame(X, columns=names), y)
    assert list(clf.feature_names_in_) == names
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)                                 # fitted with names, given none
    for est in (BackpropClassifier(**LBFGS), BackpropRegressor(**LBFGS)):
        check_dataframe_column_names_consistency(type(est).__name__, est)


# ----------------------------------------------------- 2. the same fit as scikit-learn's MLP


def _sklearn_has_poisson():
    return "loss" in MLPRegressor().get_params()            # scikit-learn >= 1.7


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression",
                                    "poisson", "poisson2"])
def test_lbfgs_matches_sklearn_mlp(activation, target, iris, multilabel, regression):
    """Same parameters and random_state as MLPClassifier/MLPRegressor with lbfgs: the same
    initial weights (drawn alike), the same cost (alpha / 2n * ||W||^2, biases excluded,
    the same cross-entropy, half squared error or half Poisson deviance: mean over samples,
    sum over outputs, scikit-learn's constant y log y - y included), so the same L-BFGS
    path to ~1e-10 and the same loss_."""
    X, y = iris
    if target == "binary":
        y = (y == 1).astype(int)
    elif target == "multilabel":
        X, y = multilabel
    elif target == "regression":
        X, y = regression[0], regression[1][:, 0]
    elif target.startswith("poisson"):
        if not _sklearn_has_poisson():
            pytest.skip("scikit-learn < 1.7: no MLPRegressor(loss='poisson')")
        rng = np.random.default_rng(5)
        X = regression[0] / regression[0].std(axis=0)
        y = rng.poisson(np.exp(0.4 * X[:, :2] + 0.5)).astype(float)    # counts, some 0
        y = y[:, 0] if target == "poisson" else y
    params = dict(hidden_layer_sizes=(7,), activation=activation, solver="lbfgs", alpha=0.5,
                  max_iter=20, random_state=3)
    if target.startswith("poisson"):
        ours = BackpropRegressor(loss="poisson", **params)
        theirs = MLPRegressor(loss="poisson", **params)
    elif target == "regression":
        ours, theirs = BackpropRegressor(**params), MLPRegressor(**params)
    else:
        ours, theirs = BackpropClassifier(**params), MLPClassifier(**params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.n_layers_ == theirs.n_layers_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    if target == "regression" or target.startswith("poisson"):
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-8)
        assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-8)
    else:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "softplus", "elliott"])
def test_units_scikit_learn_lacks(activation, iris):
    """cbackprop's additions train in both estimators, and are saved and reloaded;
    to_sklearn refuses them, naming the unit."""
    X, y = iris
    clf = BackpropClassifier((8,), activation=activation, solver="lbfgs", max_iter=200,
                             random_state=0).fit(X, y)
    assert clf.network_.activation == [activation] and clf.score(X, y) > 0.9
    reg = BackpropRegressor(hidden_layer_sizes=(8,), activation=activation, solver="lbfgs",
                            max_iter=200,
                            random_state=0).fit(X[:, :3], X[:, 3])
    assert reg.score(X[:, :3], X[:, 3]) > 0.8
    with pytest.raises(ValueError, match=f"no {activation!r} hidden units"):
        clf.network_.to_sklearn()


def test_alpha_is_sklearn_regularization(iris):
    """alpha is our lam: the network's cost with lam=alpha at MLPClassifier's fitted weights is
    MLPClassifier's loss_, and at ours it is scikit-learn's formula computed by hand."""
    X, y = iris
    alpha = 3.0
    mlp = MLPClassifier((6,), activation="tanh", solver="lbfgs", alpha=alpha, max_iter=30,
                        random_state=0).fit(X, y)
    thetas = [np.column_stack([b, W.T]) for W, b in zip(mlp.coefs_, mlp.intercepts_)]
    net = cbackprop.Network.from_thetas(thetas, activation="tanh", output="softmax")
    Y = np.eye(3)[y]
    assert net.cost(X, Y, lam=alpha) == pytest.approx(mlp.loss_, rel=1e-12)
    assert net.cost(X, Y, lam=0) < mlp.loss_           # the penalty is there, and only once

    ours = BackpropClassifier((6,), activation="tanh", solver="lbfgs", alpha=alpha, max_iter=30,
                              random_state=1).fit(X, y)
    p = ours.predict_proba(X)
    by_hand = (-np.mean(np.log(p[np.arange(len(y)), y]))
               + alpha / (2 * len(y)) * sum(np.sum(W ** 2) for W in ours.coefs_))
    assert ours.loss_ == pytest.approx(by_hand, rel=1e-10)


def test_multi_output_regression_loss_sums_over_outputs(regression):
    """For several outputs loss_ is the half squared error summed over outputs (the cost
    whose gradient both libraries follow) plus the penalty."""
    X, Y = regression
    reg = BackpropRegressor(hidden_layer_sizes=(6,), solver="lbfgs", alpha=2.0, max_iter=30,
                            random_state=0)
    reg.fit(X, Y)
    n = len(X)
    by_hand = (0.5 * np.sum((reg.predict(X) - Y) ** 2) / n
               + 2.0 / (2 * n) * sum(np.sum(W ** 2) for W in reg.coefs_))
    assert reg.loss_ == pytest.approx(by_hand, rel=1e-10)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == Y.shape
    assert reg.score(X, Y) > 0.9


# ---------------------------------------------- 3. Pipeline, GridSearchCV, cross_val_score


def test_grid_search_pipeline_on_digits(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(),
                         BackpropClassifier((20,), solver="lbfgs", max_iter=60, random_state=0))
    grid = GridSearchCV(pipe, {"backpropclassifier__alpha": [1e-4, 1.0],
                               "backpropclassifier__activation": ["logistic", "relu"]},
                        cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    assert set(grid.best_params_) == {"backpropclassifier__alpha",
                                      "backpropclassifier__activation"}
    best = grid.best_estimator_[-1]
    assert best.n_features_in_ == 64 and best.coefs_[0].shape == (64, 20)
    assert grid.score(X, y) > 0.95


def test_cross_val_score(digits):
    X, y = digits
    scores = cross_val_score(BackpropClassifier((20,), solver="lbfgs", max_iter=60,
                                                random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_worker_threads_follow_omp_num_threads(monkeypatch, iris):
    """joblib's worker processes start with OMP_NUM_THREADS = cores // n_jobs: n_threads=None
    keeps to it, so parallel jobs do not oversubscribe the cores."""
    X, y = iris
    monkeypatch.setattr(threads, "_OMP_AT_IMPORT", "1")
    assert BackpropClassifier(**LBFGS).fit(X, y).network_.n_threads == 1
    monkeypatch.setattr(threads, "_OMP_AT_IMPORT", "1,2")            # OpenMP's nested form: the first
    assert BackpropClassifier(**LBFGS).fit(X, y).network_.n_threads == 1
    monkeypatch.setattr(threads, "_OMP_AT_IMPORT", "")
    clf = BackpropClassifier(**LBFGS, n_threads=3).fit(X, y)
    assert clf.network_.n_threads == 3


# ---------------------------------------------------------------- 4. pickling and copies


@pytest.mark.parametrize("make", ["classifier", "regressor"])
def test_pickle_round_trip(make, iris, regression):
    if make == "classifier":
        X, y = iris
        est = BackpropClassifier((6,), solver="adam", max_iter=5, random_state=0).fit(X, y)
        predict = est.predict_proba
    else:
        X, y = regression
        est = BackpropRegressor(hidden_layer_sizes=(6,), solver="adam", max_iter=5,
                                random_state=0).fit(X, y)
        predict = est.predict
    for loaded in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        method = getattr(loaded, predict.__name__)
        np.testing.assert_array_equal(method(X), predict(X))
        if make == "classifier":
            np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
            np.testing.assert_array_equal(loaded.classes_, est.classes_)
        # the loaded network's Thetas are its parameters again (pickle alone would split them)
        net = loaded.network_
        assert all(np.shares_memory(t, net.params) for t in net.thetas)
        loaded.coefs_[0][...] = 0
        assert np.all(net.thetas[0][:, 1:] == 0)
        assert not np.array_equal(method(X), predict(X))
        # and training goes on from the loaded state (Adam's moments included)
        loaded.partial_fit(X, y)
        assert loaded.t_ == est.t_ + len(X)
    assert np.all(est.coefs_[0] != 0)                   # the original is untouched


def test_clone_and_params(iris):
    X, y = iris
    est = BackpropClassifier((4,), activation="tanh", solver="lbfgs", alpha=0.1, max_iter=10,
                             dtype="float32", random_state=0).fit(X, y)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coefs_") and not hasattr(twin, "network_")
    twin.set_params(alpha=1.0, hidden_layer_sizes=(3, 2))
    twin.fit(X, y)
    assert [c.shape for c in twin.coefs_] == [(4, 3), (3, 2), (2, 3)]
    assert set(BackpropClassifier().get_params()) >= set(MLPClassifier().get_params())
    assert set(BackpropRegressor().get_params()) >= set(MLPRegressor().get_params())


# --------------------------------------------------------------------- 5. dtypes and layouts


@pytest.mark.parametrize("dtype", ["auto", "float32", "float64"])
@pytest.mark.parametrize("X_dtype", [np.float32, np.float64])
def test_float32_stays_float32(dtype, X_dtype, iris, regression):
    want = np.dtype(X_dtype if dtype == "auto" else dtype)
    X, y = iris
    clf = BackpropClassifier((5,), solver="adam", max_iter=3, dtype=dtype, random_state=0)
    clf.fit(X.astype(X_dtype), y)
    assert clf.network_.dtype == want
    assert all(c.dtype == want for c in clf.coefs_ + clf.intercepts_ + clf.thetas_)
    for X_pred in (X.astype(np.float32), X):
        assert clf.predict_proba(X_pred).dtype == want
        assert clf.predict_log_proba(X_pred).dtype == want
    Xr, Y = regression
    reg = BackpropRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=3, dtype=dtype,
                            random_state=0)
    reg.fit(Xr.astype(X_dtype), Y.astype(X_dtype))
    assert reg.predict(Xr).dtype == want and reg.predict(Xr.astype(np.float32)).dtype == want


def test_coefs_and_intercepts_are_thetas_in_sklearn_layout(iris):
    X, y = iris
    clf = BackpropClassifier((6, 4), solver="lbfgs", max_iter=20, random_state=0).fit(X, y)
    thetas = clf.thetas_
    assert [t.shape for t in thetas] == [(6, 5), (4, 7), (3, 5)]
    assert [c.shape for c in clf.coefs_] == [(4, 6), (6, 4), (4, 3)]
    for theta, coef, intercept in zip(thetas, clf.coefs_, clf.intercepts_):
        np.testing.assert_array_equal(coef, theta[:, 1:].T)
        np.testing.assert_array_equal(intercept, theta[:, 0])
    # thetas_ are copies; coefs_ and intercepts_ are the model (as scikit-learn's are)
    clf.thetas_[0][...] = 0
    assert np.any(clf.thetas_[0] != 0)
    before = clf.predict_proba(X)
    clf.intercepts_[-1][...] += 1.0          # the same shift on every softmax input: no change
    np.testing.assert_allclose(clf.predict_proba(X), before, rtol=1e-12)
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(4, 6\)"):
        clf.coefs_ = [np.zeros((6, 4))] + clf.coefs_[1:]


# ------------------------------------------------------------- 6. warm_start and partial_fit


def test_warm_start_continues(iris):
    """With 'online' (no optimizer state) and a constant rate, fitting 3 epochs and then 2 more
    with warm_start is fitting 5 epochs."""
    X, y = iris
    params = dict(hidden_layer_sizes=(5,), solver="online", learning_rate_init=0.05,
                  shuffle=False, tol=0.0, random_state=0)
    whole = BackpropClassifier(**params, max_iter=5).fit(X, y)
    warm = BackpropClassifier(**params, max_iter=3, warm_start=True).fit(X, y)
    warm.set_params(max_iter=2).fit(X, y)
    np.testing.assert_allclose(warm.network_.params, whole.network_.params, rtol=1e-12)
    assert len(warm.loss_curve_) == 5 and warm.n_iter_ == 2
    np.testing.assert_allclose(warm.loss_curve_, whole.loss_curve_, rtol=1e-12)
    assert warm.t_ == whole.t_ == 5 * len(X)
    # without warm_start, fit starts afresh
    cold = BackpropClassifier(**params, max_iter=3).fit(X, y)
    first = cold.network_.params.copy()
    cold.fit(X, y)
    np.testing.assert_array_equal(cold.network_.params, first)
    assert len(cold.loss_curve_) == 3


def test_warm_start_refuses_another_problem(iris):
    X, y = iris
    clf = BackpropClassifier(**LBFGS, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="warm_start=True needs the network of the last fit"):
        clf.set_params(hidden_layer_sizes=(4,)).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.set_params(hidden_layer_sizes=(5,)).fit(X[:, :3], y)


@pytest.mark.parametrize("solver", ["adam", "sgd", "online"])
def test_partial_fit_continues_like_fit(solver, iris):
    """partial_fit is one epoch that keeps the optimizer's state (momentum, Adam's moments):
    three calls make the same steps as fit with max_iter=3."""
    X, y = iris
    params = dict(hidden_layer_sizes=(5,), solver=solver, learning_rate_init=0.01,
                  batch_size=32, shuffle=False, tol=0.0, random_state=0)
    whole = BackpropClassifier(**params, max_iter=3).fit(X, y)
    parts = BackpropClassifier(**params)
    for _ in range(3):
        parts.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(parts.network_.params, whole.network_.params, rtol=1e-12)
    np.testing.assert_allclose(parts.loss_curve_, whole.loss_curve_, rtol=1e-12)
    assert parts.n_iter_ == 1 and parts.t_ == 3 * len(X)


def test_partial_fit_classes(iris):
    X, y = iris
    clf = BackpropClassifier(**ADAM)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    first = y < 2                                      # the first batch holds two classes
    clf.partial_fit(X[first], y[first], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict_proba(X).shape == (150, 3) and clf.out_activation_ == "softmax"
    clf.partial_fit(X[~first], y[~first])
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 1)
    assert not hasattr(BackpropClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(BackpropRegressor(solver="cg"), "partial_fit")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        BackpropClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_partial_fit_regressor(regression):
    X, Y = regression
    reg = BackpropRegressor(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    for _ in range(30):
        reg.partial_fit(X, Y)
    assert reg.n_outputs_ == 3 and len(reg.loss_curve_) == 30
    assert reg.loss_curve_[-1] < 0.5 * reg.loss_curve_[0]
    with pytest.raises(ValueError, match="y has 1 outputs; the first fit had 3"):
        reg.partial_fit(X, Y[:, 0])


# ------------------------------------------------------------- 7. the kinds of targets


def test_multilabel(multilabel):
    X, Y = multilabel
    clf = BackpropClassifier((10,), solver="lbfgs", max_iter=100, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    pred, proba = clf.predict(X), clf.predict_proba(X)
    assert pred.shape == Y.shape and pred.dtype.kind == "i" and set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert clf.score(X, Y) == np.mean(np.all(pred == Y, axis=1)) > 0.6
    with pytest.raises(ValueError, match="multi-label y needs output='sigmoid'"):
        BackpropClassifier(output="softmax").fit(X, Y)


def test_labels_of_any_type_and_outputs(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = BackpropClassifier(**LBFGS).fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    assert clf.predict(X).dtype == names.dtype and clf.score(X, names) > 0.9
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))
    # two classes: one logistic unit, as scikit-learn; or two softmax units on request
    binary = names != "setosa"
    clf.fit(X, binary)
    assert clf.n_outputs_ == 1 and clf.predict(X).dtype == bool
    assert clf.predict_proba(X).shape == (150, 2)
    clf.set_params(output="softmax").fit(X, binary)
    assert clf.n_outputs_ == 2 and clf.out_activation_ == "softmax"
    # the course's one-vs-all logistic units, and its squared-error cost
    for params in (dict(output="sigmoid"), dict(loss="squared_error")):
        clf = BackpropClassifier(**LBFGS, **params).fit(X, y)
        assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1)
        np.testing.assert_array_equal(clf.predict(X), np.argmax(proba, axis=1))
        assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "online", "cg", "rprop"])
def test_every_solver(solver, digits):
    X, y = digits
    rate = {"online": 0.05, "sgd": 0.1, "adam": 0.01}.get(solver, 0.001)
    clf = BackpropClassifier((16,), solver=solver, learning_rate_init=rate, max_iter=30,
                             random_state=0).fit(X[:1000], y[:1000])
    assert clf.score(X[1000:], y[1000:]) > 0.8
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.best_loss_ == min(clf.loss_curve_)


def test_early_stopping(digits):
    X, y = digits
    clf = BackpropClassifier((16,), early_stopping=True, learning_rate_init=0.01,
                             n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    assert clf.best_loss_ is None
    assert clf.t_ == clf.n_iter_ * (len(X) - round(0.1 * len(X)))
    reg = BackpropRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100,
                            early_stopping=True, random_state=0)
    reg.fit(*make_regression(200, 4, random_state=0))
    assert len(reg.validation_scores_) == reg.n_iter_


def test_stopping_rule_and_progress(iris, capsys):
    """n_iter_no_change as scikit-learn counts it (np.inf: never stop early); verbose shows
    the progress."""
    X, y = iris
    params = dict(hidden_layer_sizes=(5,), learning_rate_init=0.01, random_state=0)
    clf = BackpropClassifier(**params, max_iter=40, n_iter_no_change=np.inf, tol=10.0).fit(X, y)
    assert clf.n_iter_ == 40
    for patience in (1, 3):
        clf = BackpropClassifier(**params, max_iter=40, n_iter_no_change=patience, tol=10.0)
        mlp = MLPClassifier(**params, max_iter=40, n_iter_no_change=patience, tol=10.0)
        assert clf.fit(X, y).n_iter_ == mlp.fit(X, y).n_iter_ == patience + 2
    capsys.readouterr()
    BackpropClassifier(**params, max_iter=3, verbose=True).fit(X, y)
    shown = capsys.readouterr()
    assert "loss" in shown.out + shown.err


def test_convergence_warning_is_sklearns(iris):
    X, y = iris
    with pytest.warns(SkConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        BackpropClassifier(hidden_layer_sizes=(5,), max_iter=2).fit(X, y)
    with pytest.warns(cbackprop.ConvergenceWarning):
        BackpropClassifier(hidden_layer_sizes=(5,), max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # partial_fit never warns of it
        BackpropClassifier(hidden_layer_sizes=(5,)).partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------------------------- 8. bad input


BAD_PARAMS = [
    (dict(hidden_layer_sizes=(5, 0)), ValueError, "hidden_layer_sizes must all be >= 1"),
    (dict(hidden_layer_sizes="5"), TypeError, "hidden_layer_sizes must be an int or a sequence"),
    (dict(hidden_layer_sizes=(5.5,)), TypeError, "hidden_layer_sizes must hold ints"),
    (dict(activation="swish"), ValueError, "activation must be one of"),
    (dict(solver="newton"), ValueError, "solver must be one of"),
    (dict(alpha=-1.0), ValueError, r"alpha must be in \[0, inf\]"),
    (dict(alpha="big"), TypeError, "alpha must be a finite real number"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size="all"), ValueError, "batch_size must be 'auto' or an int"),
    (dict(learning_rate="optimal"), ValueError, "learning_rate must be one of"),
    (dict(learning_rate_init=0.0), ValueError, r"learning_rate_init must be in \(0, inf\]"),
    (dict(max_iter=0), ValueError, "max_iter must be >= 1"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (dict(validation_fraction=1.0), ValueError, r"validation_fraction must be in \[0, 1\)"),
    (dict(validation_fraction=0.0, early_stopping=True), ValueError,
     "validation_fraction must be > 0 with early_stopping"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change must be >= 1"),
    (dict(max_fun=0), ValueError, "max_fun must be >= 1"),
    (dict(beta_2=1.5, solver="lbfgs"), ValueError, r"beta_2 must be in \[0, 1\)"),
    (dict(init="xavier"), ValueError, "init must be one of"),
    (dict(dtype="int32"), ValueError, "dtype must be 'auto', 'float32' or 'float64'"),
    (dict(n_threads=0), ValueError, "n_threads must be >= 1"),
    (dict(output="identity"), ValueError, "output must be one of"),
    (dict(loss="hinge"), ValueError, "loss must be one of"),
    (dict(output="softmax", loss="squared_error"), ValueError, "needs output='sigmoid'"),
    (dict(random_state="seed"), ValueError, "cannot be used to seed"),
]


@pytest.mark.parametrize("params, error, match", BAD_PARAMS,
                         ids=[",".join(p) for p, _, _ in BAD_PARAMS])
def test_bad_parameters_fail_at_fit(params, error, match, iris):
    X, y = iris
    clf = BackpropClassifier(**params)                 # scikit-learn's rule: __init__ accepts
    assert clf.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "network_")


def test_regressor_bad_parameters(regression):
    X, Y = regression
    with pytest.raises(ValueError, match=r"Some value\(s\) of y are negative which is not "
                                         "allowed for Poisson regression"):
        BackpropRegressor(loss="poisson").fit(X, Y)
    with pytest.raises(ValueError, match="loss must be one of 'squared_error', 'poisson'"):
        BackpropRegressor(loss="huber").fit(X, Y)
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        BackpropClassifier().fit(X, np.round(Y).astype(int) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        BackpropClassifier().fit(X, Y[:, 0])


def test_divergence_is_reported(iris):
    X, y = iris
    with pytest.raises(FloatingPointError, match="learning_rate"):
        BackpropClassifier((5,), solver="sgd", learning_rate_init=1e12, momentum=0.0,
                           random_state=0).fit(X * 1e3, y)


# -------------------------------------------------------------- 9. scikit-learn is optional


def test_import_without_sklearn():
    """`import cbackprop` works without scikit-learn; `import cbackprop.sklearn` says how to
    install it."""
    code = ("import sys\n"
            "sys.modules['sklearn'] = None\n"          # makes `import sklearn` fail
            "import cbackprop\n"
            "try:\n"
            "    import cbackprop.sklearn\n"
            "except ImportError as exc:\n"
            "    print('ImportError:', exc)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(cbackprop.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "cbackprop[sklearn]"' in out.stdout


@pytest.mark.parametrize("option", [dict(beta_1=0.5), dict(beta_2=0.9), dict(epsilon=1e-2),
                                    dict(solver="sgd", learning_rate="invscaling", power_t=0.1),
                                    dict(solver="lbfgs", max_fun=5)])
def test_optimizer_options_reach_the_solver(option):
    """Adam's betas and epsilon, invscaling's power_t and L-BFGS's max_fun change the fit."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    base = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, solver="adam")
    base.update({k: v for k, v in option.items() if k in ("solver", "learning_rate")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = BackpropClassifier(**base).fit(X, y)
        changed = BackpropClassifier(**{**base, **option}).fit(X, y)
    assert not np.array_equal(plain.coefs_[0], changed.coefs_[0])


# ------------------------------------------------------- model files (issue 13, item 1)


@pytest.mark.parametrize("labels", [np.array(["setosa", "versicolor", "virginica"]),
                                    np.array([10, 20, 30])], ids=["text", "integers"])
def test_saved_estimator_comes_back_as_the_estimator(iris, tmp_path, labels):
    """clf.save, then BackpropClassifier.load: the same estimator, the same predictions;
    cbackprop.load reads the same file as a Network that predicts the same labels."""
    pd = pytest.importorskip("pandas")
    X, y = iris
    X = pd.DataFrame(X, columns=["sepal length", "sepal width", "petal length", "petal width"])
    clf = BackpropClassifier(**LBFGS, alpha=0.5).fit(X, labels[y])
    clf.save(tmp_path / "iris.cbp")
    back = BackpropClassifier.load(tmp_path / "iris.cbp")
    assert type(back) is BackpropClassifier and back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.classes_.dtype.kind == clf.classes_.dtype.kind
    np.testing.assert_array_equal(back.feature_names_in_, clf.feature_names_in_)
    np.testing.assert_array_equal(back.network_.params, clf.network_.params)
    assert back.loss_curve_ == clf.loss_curve_ and back.n_iter_ == clf.n_iter_
    assert back.network_.history_ == clf.network_.history_
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.score(X, labels[y]) == clf.score(X, labels[y])
    assert type(cbs.load(tmp_path / "iris.cbp")) is BackpropClassifier
    net = cbackprop.load(tmp_path / "iris.cbp")
    np.testing.assert_array_equal(net.classes_, labels)
    np.testing.assert_array_equal(net.predict(X.values), clf.predict(X))
    assert net.info_["features"] == list(X.columns)
    back.set_params(warm_start=True).fit(X, labels[y])         # and it trains on


def test_saved_regressor_and_multilabel(regression, multilabel, tmp_path):
    X, y = regression
    reg = BackpropRegressor(**LBFGS, n_iter_no_change=np.inf).fit(X, y)
    reg.save(tmp_path / "reg.cbp")
    back = cbs.load(tmp_path / "reg.cbp")
    assert type(back) is BackpropRegressor and back.n_iter_no_change == np.inf
    assert back.hidden_layer_sizes == (5,)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    X, Y = multilabel
    clf = BackpropClassifier(**LBFGS).fit(X, Y)
    clf.save(tmp_path / "ml.cbp")
    back = BackpropClassifier.load(tmp_path / "ml.cbp")
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.classes_, clf.classes_)


def test_loading_the_wrong_kind_of_file(iris, regression, tmp_path):
    X, y = regression
    BackpropRegressor(**LBFGS).fit(X, y).save(tmp_path / "reg.cbp")
    with pytest.raises(cbackprop.ModelFileError, match="holds a BackpropRegressor"):
        BackpropClassifier.load(tmp_path / "reg.cbp")
    cbackprop.Network([4, 3]).save(tmp_path / "net.cbp")
    with pytest.raises(cbackprop.ModelFileError, match="holds a Network"):
        cbs.load(tmp_path / "net.cbp")
    with pytest.raises(Exception, match="not fitted"):
        BackpropClassifier().save(tmp_path / "unfitted.cbp")


def test_random_state_of_a_generator_is_not_saved(iris, tmp_path):
    X, y = iris
    clf = BackpropClassifier(**{**LBFGS, "random_state": np.random.RandomState(0)}).fit(X, y)
    with pytest.warns(UserWarning, match="random_state"):
        clf.save(tmp_path / "c.cbp")
    assert BackpropClassifier.load(tmp_path / "c.cbp").random_state is None


@pytest.mark.parametrize("make", [lambda X: X.astype(str), lambda X: X.astype(bytes),
                                  lambda X: X.astype(str).tolist()])
def test_text_is_taken_and_refused_where_scikit_learn_does(make):
    """Numbers written as text ("0.5"): fit converts them and predict refuses them with
    scikit-learn's own error, in both estimators, so that the two agree on every call."""
    X, y = load_iris(return_X_y=True)
    ours = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    theirs = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    for est in (ours, theirs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(make(X), y)
        with pytest.raises(ValueError, match="not compatible with arrays of bytes/strings"):
            est.predict(make(X))
    with pytest.raises(ValueError, match="not compatible with arrays of bytes/strings"):
        ours.predictor()(make(X[:2]))
