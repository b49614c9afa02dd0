"""The estimators warn, print and raise as scikit-learn's MLP does where user code depends on
it (issue 15): each test runs scikit-learn's MLPClassifier / MLPRegressor on the same input
and compares the warning's class and text, the printed lines, the exception."""
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris                                 # noqa: E402
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor         # noqa: E402
from sklearn.preprocessing import StandardScaler                       # noqa: E402

import cbackprop                                                       # noqa: E402
from cbackprop.sklearn import BackpropClassifier, BackpropRegressor, load  # noqa: E402

PAIRS = {"classifier": (MLPClassifier, BackpropClassifier),
         "regressor": (MLPRegressor, BackpropRegressor)}
SPLIT_ERROR = r"The least populated class(es)? in y ha(s|ve) only 1 member"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _fit(make, X, y, **params):
    """(the fitted estimator, its warnings (category, text)); params as both take them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = make(hidden_layer_sizes=(5,), random_state=0, **params).fit(X, y)
    return est, [(w.category, str(w.message)) for w in caught]


def _convergence_warnings(caught):
    return [text for category, text in caught if issubclass(category, SkConvergenceWarning)]


def _both(kind, X, y, **params):
    """scikit-learn's and ours, fitted alike: [(estimator, ConvergenceWarning texts), ...]."""
    results = []
    for make in PAIRS[kind]:
        est, caught = _fit(make, X, y, **params)
        results.append((est, _convergence_warnings(caught)))
    return results


# ---------------------------------------------------------------- 1. ConvergenceWarning

@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("limit", [dict(max_iter=3), dict(max_iter=300, max_fun=5)],
                         ids=["max_iter", "max_fun"])
def test_lbfgs_limits_warn_as_sklearn(kind, limit, iris):
    """L-BFGS stopped by max_iter or max_fun: scikit-learn's ConvergenceWarning, word for
    word (the same random_state follows the same path, so the iteration counts agree)."""
    X, y = iris
    (mlp, theirs), (ours_est, ours) = _both(kind, X, y, solver="lbfgs", **limit)
    assert len(theirs) == len(ours) == 1 and theirs[0].startswith("lbfgs failed to converge")
    assert ours == theirs
    assert ours_est.n_iter_ == mlp.n_iter_


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_stochastic_max_iter_warns_as_sklearn(kind, solver, iris):
    X, y = iris
    (_, theirs), (_, ours) = _both(kind, X, y, solver=solver, max_iter=3)
    assert ours == theirs == ["Stochastic Optimizer: Maximum iterations (3) reached and the "
                              "optimization hasn't converged yet."]


def test_convergence_warning_is_both_kinds(iris):
    X, y = iris
    _, caught = _fit(BackpropClassifier, X, y, solver="lbfgs", max_iter=2)
    category = next(c for c, _ in caught if issubclass(c, SkConvergenceWarning))
    assert issubclass(category, cbackprop.ConvergenceWarning)
    # scikit-learn has no words for cbackprop's own solvers: cbackprop's stay
    _, caught = _fit(BackpropClassifier, X, y, solver="rprop", max_iter=2)
    assert any("rprop ran all 2 iterations" in t for t in _convergence_warnings(caught))


# ------------------------------------------------------------------------ 2. verbose

def _printed(make, X, y, capsys, **params):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make(hidden_layer_sizes=(5,), random_state=0, learning_rate_init=0.01, **params).fit(X, y)
    return capsys.readouterr()


@pytest.mark.parametrize("params", [dict(max_iter=12),
                                    dict(max_iter=30, early_stopping=True, n_iter_no_change=3),
                                    dict(solver="sgd", max_iter=40, tol=1.0, n_iter_no_change=2),
                                    dict(solver="sgd", max_iter=4, tol=1.0, n_iter_no_change=2)],
                         ids=["adam", "early_stopping", "sgd_stops", "stops_in_last_epoch"])
def test_verbose_prints_sklearns_lines(params, iris, capsys):
    """verbose=True prints scikit-learn's lines, the same (two classes: both split the same
    way for early stopping), and no progress bar."""
    X, y = iris
    theirs = _printed(MLPClassifier, X, y > 0, capsys, verbose=True, **params)
    ours = _printed(BackpropClassifier, X, y > 0, capsys, verbose=2, **params)   # any int
    assert re.match(r"Iteration 1, loss = \d\.\d{8}\n", ours.out)
    if params.get("early_stopping"):
        assert re.search(r"\nValidation score: \d\.\d{6}\n", ours.out)
    assert ours.out == theirs.out
    assert ours.err == ""


def test_verbose_bar_is_the_progress_bar(iris, capsys):
    X, y = iris
    shown = _printed(BackpropClassifier, X, y, capsys, verbose="bar", max_iter=3)
    assert "Iteration" not in shown.out and (shown.out + shown.err).strip()
    net = cbackprop.Network([4, 3, 3], random_state=0)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, epochs=3, verbose=True)                  # Network.fit: still the bar
    shown = capsys.readouterr()
    assert "Iteration" not in shown.out and (shown.out + shown.err).strip()
    with pytest.raises(TypeError, match="verbose must be a bool, an int or 'bar'"):
        BackpropClassifier(verbose="yes").fit(X, y)


# ------------------------------------------------------------ 3. non-finite weights

@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_non_finite_weights_raise_sklearns_value_error(solver, iris):
    """Inputs near the float range: scikit-learn's ValueError and message; the error is
    also a FloatingPointError (cbackprop's), with cbackprop's detail after the message."""
    X, y = iris
    message = ("Solver produced non-finite parameter weights. The input data may contain "
               "large values and need to be preprocessed.")
    for make in PAIRS["regressor"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match=re.escape(message)) as info:
                make(hidden_layer_sizes=(5,), solver=solver, max_iter=5,
                     random_state=0).fit(X * 1e200, y)
    assert isinstance(info.value, FloatingPointError)
    assert isinstance(info.value, cbackprop.DivergenceError)
    assert "cbackprop: training diverged in epoch 1" in str(info.value)


def test_network_fit_raises_the_same_class(iris):
    X, y = iris
    with pytest.raises(cbackprop.DivergenceError, match="diverged") as info:
        cbackprop.Network([4, 5, 1], activation="relu", output="identity", loss="squared_error",
                          random_state=0).fit(X * 1e200, y.astype(float), epochs=3)
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, ValueError)
    assert info.value.epoch == 1


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_divergence_with_early_stopping_ends_like_sklearn(solver, iris, tmp_path):
    """scikit-learn goes on with NaN validation scores and restores its best weights (here
    the initial ones, which both draw alike); cbackprop stops at the epoch that diverged,
    records it with a NaN score, and keeps the same weights. Both warn ConvergenceWarning."""
    X, y = iris
    params = dict(solver=solver, max_iter=5, early_stopping=True)
    (mlp, theirs), (ours, warned) = _both("regressor", X * 1e200, y, **params)
    for est in (mlp, ours):
        assert np.isnan(est.validation_scores_[-1]) and est.best_validation_score_ == -np.inf
        assert np.isnan(est.loss_) and len(est.loss_curve_) == est.n_iter_
    assert theirs and warned and "diverged in epoch 1" in warned[0]
    for a, b in zip(ours.coefs_ + ours.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), mlp.predict(X), rtol=1e-10)
    back = load(ours.save(tmp_path / "diverged.cbp"))          # NaN survives a model file
    assert np.isnan(back.validation_scores_[-1]) and np.isnan(back.loss_)


# ------------------------------------------------------------------- 4. one class

@pytest.mark.parametrize("label", [0, "a"])
def test_single_class_trains_like_sklearn(label, iris, tmp_path):
    """One class: scikit-learn trains one logistic unit toward 0 and predicts the class;
    with lbfgs the same path; with early stopping a validation score of 1 every epoch."""
    X, _ = iris
    y = np.full(len(X), label)
    mlp, _ = _fit(MLPClassifier, X, y, solver="lbfgs", max_iter=30)
    ours, _ = _fit(BackpropClassifier, X, y, solver="lbfgs", max_iter=30)
    assert list(ours.classes_) == list(mlp.classes_) == [label]
    assert (ours.n_outputs_, ours.out_activation_) == (mlp.n_outputs_, mlp.out_activation_)
    np.testing.assert_array_equal(ours.predict(X), mlp.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), mlp.predict_proba(X), atol=1e-8)
    assert ours.score(X, y) == mlp.score(X, y) == 1.0
    part = BackpropClassifier((5,), random_state=0).partial_fit(X, y, classes=[label])
    assert list(part.predict(X[:3])) == [label] * 3
    early = [_fit(make, X, y, early_stopping=True, max_iter=50)[0] for make in PAIRS["classifier"]]
    assert early[0].validation_scores_ == early[1].validation_scores_ == [1.0] * 12
    ours.intercepts_[-1][...] = 10.0                           # the unit says "the class"
    assert list(ours.predict(X)) == [label] * len(X)
    net = cbackprop.load(ours.save(tmp_path / "one.cbp"))      # its Network: the class too
    assert list(net.predict(X)) == [label] * len(X)


def test_early_stopping_split_error_is_sklearns(iris):
    """A class with one member: train_test_split's stratified error, in both; cbackprop's
    names the class by its label (scikit-learn's, its binarized 'False')."""
    X, y = iris
    labels = np.where(y > 0, "dog", "cat")
    labels[1:50] = "dog"                                        # one cat
    for make in PAIRS["classifier"]:
        with pytest.raises(ValueError, match=SPLIT_ERROR) as info:
            make(hidden_layer_sizes=(5,), early_stopping=True, random_state=0).fit(X, labels)
    assert "['cat']" in str(info.value)
    # **Differs**: several classes are stratified too (scikit-learn's MLP stratifies two)
    y = y.copy()
    y[0] = 7
    with pytest.raises(ValueError, match=SPLIT_ERROR + r".*\[7\]"):
        BackpropClassifier((5,), early_stopping=True, random_state=0).fit(X, y)


# ------------------------------------------------------------------ 5. Poisson loss

@pytest.mark.skipif("loss" not in MLPRegressor().get_params(),
                    reason="scikit-learn < 1.7: no MLPRegressor(loss='poisson')")
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_poisson_regressor_warns_and_raises_as_sklearn(solver, iris):
    """loss='poisson' (iris's labels 0, 1, 2 as counts): L-BFGS out of iterations warns in
    scikit-learn's words after the same path; inputs near the float range raise its
    ValueError."""
    X, y = iris
    (mlp, theirs), (ours, warned) = _both("regressor", X, y, solver=solver, max_iter=3,
                                          loss="poisson")
    assert warned == theirs and len(theirs) == 1
    assert ours.out_activation_ == mlp.out_activation_ == "exp"
    if solver == "lbfgs":
        assert ours.n_iter_ == mlp.n_iter_
        assert ours.loss_ == pytest.approx(mlp.loss_, rel=1e-9)
        np.testing.assert_allclose(ours.predict(X), mlp.predict(X), rtol=1e-8)
    message = "Solver produced non-finite parameter weights"
    for make in PAIRS["regressor"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match=message):
                make(hidden_layer_sizes=(5,), solver="adam", max_iter=5, loss="poisson",
                     random_state=0).fit(X * 1e200, y)
