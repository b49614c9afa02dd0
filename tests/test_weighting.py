"""Issue 16's parts without compiled code: class_weight, label_smoothing, Network.summary.

A class weight is a per-sample weight: a fit with class_weight must give the bits of the fit
given those weights as sample_weight, in every solver and from every source."""
import logging

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import reference
from cbackprop.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")
SOLVERS = ["online", "sgd", "adam", "lbfgs", "cg", "rprop"]


def data(m=240, n=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = rng.choice(np.array(["ant", "bee", "cat"]), size=m, p=[0.6, 0.3, 0.1])
    return X, y, rng.uniform(0.5, 2.0, size=m)


def net(k=3, dtype="float64"):
    return cb.Network([4, 5, k], activation="tanh", output="softmax" if k > 1 else "sigmoid",
                      dtype=dtype, random_state=0)


FIT = dict(epochs=4, batch_size=50, learning_rate=0.01, random_state=3)


# ------------------------------------------------------------------ class_weight

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_class_weight_is_the_fit_with_the_equivalent_sample_weight(solver, dtype):
    X, y, sw = data()
    for class_weight in ("balanced", {"ant": 0.5, "cat": 4}):
        for given in (None, sw):
            a, b = net(dtype=dtype), net(dtype=dtype)
            a.fit(X, y, given, class_weight=class_weight, solver=solver, **FIT)
            b.fit(X, y, reference.class_sample_weights(y, class_weight, given), solver=solver,
                  **FIT)
            np.testing.assert_array_equal(a.params, b.params)
            assert a.history_["loss"] == b.history_["loss"]


def test_balanced_is_scikit_learns_compute_class_weight():
    compute_class_weight = pytest.importorskip("sklearn.utils.class_weight").compute_class_weight
    X, y, _ = data()
    a = net().fit(X, y, class_weight="balanced", epochs=1)
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_array_equal(a.info_["class_weight"], expected)
    index = np.searchsorted(np.unique(y), y)
    np.testing.assert_array_equal(reference.class_sample_weights(y, "balanced"), expected[index])


def test_one_sigmoid_unit_and_class_weight_of_two_classes():
    X, y, _ = data()
    y2 = np.where(y == "ant", "ant", "other")
    a, b = net(1), net(1)
    a.fit(X, y2, class_weight={"other": 3.0}, solver="lbfgs", **FIT)
    b.fit(X, y2, np.where(y2 == "other", 3.0, 1.0), solver="lbfgs", **FIT)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.info_["class_weight"] == [1.0, 3.0]


def test_class_weight_errors():
    X, y, _ = data()
    with pytest.raises(ValueError, match=r"The classes, \['dog'\], of class_weight are not"):
        net().fit(X, y, class_weight={"dog": 2})
    with pytest.raises(TypeError, match="class_weight must be None, 'balanced' or a dict"):
        net().fit(X, y, class_weight="balance")
    with pytest.raises(ValueError, match=r"class_weight\['ant'\]"):
        net().fit(X, y, class_weight={"ant": -1})
    with pytest.raises(ValueError, match="are for class labels"):
        cb.Network([4, 3], output="identity", loss="squared_error").fit(
            X, X[:, :3], class_weight="balanced")
    with pytest.raises(ValueError, match="needs every class in y"):
        net().fit(X, np.where(y == "cat", "ant", y), classes=["ant", "bee", "cat"],
                  class_weight="balanced")


def test_a_fit_without_class_weight_forgets_the_last_ones():
    X, y, _ = data()
    a = net().fit(X, y, class_weight="balanced", label_smoothing=0.1, epochs=1)
    assert set(a.info_) == {"class_weight", "label_smoothing"}
    a.info_["note"] = "kept"
    a.fit(X, y, epochs=1)
    assert a.info_ == {"note": "kept"}


def test_class_weight_is_saved_and_loaded(tmp_path):
    X, y, _ = data()
    a = net().fit(X, y, class_weight={"cat": 5}, epochs=2)
    b = cb.load(a.save(tmp_path / "m.cbp"))
    assert b.info_["class_weight"] == [1.0, 1.0, 5.0]
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


def memmap_of(tmp_path, X):
    path = tmp_path / "X.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    mm[...] = X
    mm.flush()
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("solver", ["sgd", "lbfgs", "online"])
def test_class_weight_on_blocks_is_the_weighted_blocked_fit(tmp_path, solver):
    X, y, sw = data()
    Xm = memmap_of(tmp_path, X)
    for class_weight in ("balanced", {"bee": 2.5}):
        a, b = net(), net()
        a.fit(Xm, y, sw, class_weight=class_weight, solver=solver, block_rows=70, **FIT)
        b.fit(Xm, y, reference.class_sample_weights(y, class_weight, sw), solver=solver,
              block_rows=70, **FIT)
        np.testing.assert_array_equal(a.params, b.params)
    # batches from a function: the weights inside them, the counts of the first pass
    batches = [(X[i:i + 80], y[i:i + 80]) for i in range(0, len(y), 80)]
    c, d = net(), net()
    c.fit(batches, None, class_weight="balanced", solver=solver, **FIT)
    w = reference.class_sample_weights(y, "balanced")
    d.fit([(Xb, yb, w[i * 80:(i + 1) * 80]) for i, (Xb, yb) in enumerate(batches)], None,
          solver=solver, **FIT)
    np.testing.assert_array_equal(c.params, d.params)


def test_class_weight_and_smoothing_on_dask():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    X, y, sw = data()
    Xd, yd, swd = (da.from_array(a, chunks=60 if a.ndim == 1 else (60, 4)) for a in (X, y, sw))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as lc:
        with distributed.Client(lc) as client:
            weighted = da.from_array(reference.class_sample_weights(y, "balanced", sw),
                                     chunks=60)
            for solver in ("adam", "lbfgs"):
                a, b = net(), net()
                a.fit(Xd, yd, swd, class_weight="balanced", label_smoothing=0.1,
                      solver=solver, client=client, **FIT)
                b.fit(Xd, yd, weighted, label_smoothing=0.1, solver=solver, client=client,
                      **FIT)
                np.testing.assert_array_equal(a.params, b.params)
            # the counts of the partitions are those of the whole y
            assert a.info_["class_weight"] == net().fit(
                X, y, class_weight="balanced", epochs=1).info_["class_weight"]


# ------------------------------------------------------------------ label smoothing

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("k", [3, 1])
def test_label_smoothing_is_the_fit_on_the_references_smoothed_targets(k, dtype):
    X, y, sw = data()
    if k == 1:
        y = np.where(y == "ant", "ant", "other")
    index = np.searchsorted(np.unique(y), y)
    onehot = np.eye(3)[index] if k == 3 else index.reshape(-1, 1).astype(float)
    for solver in ("adam", "lbfgs"):
        a, b = net(k, dtype), net(k, dtype)
        a.fit(X, y, sw, label_smoothing=0.2, solver=solver, **FIT)
        b.fit(X, reference.smooth_labels(onehot, 0.2), sw, solver=solver, **FIT)
        np.testing.assert_array_equal(a.params, b.params)
    assert a.info_["label_smoothing"] == 0.2
    np.testing.assert_array_equal(a.predict(X[:3]).dtype.kind, "U")


def test_smooth_labels_rule():
    Y = np.eye(4)[[0, 3]]
    np.testing.assert_allclose(reference.smooth_labels(Y, 0.2), 0.8 * Y + 0.05)
    np.testing.assert_allclose(reference.smooth_labels([[0.0], [1.0]], 0.2), [[0.1], [0.9]])


def test_label_smoothing_validation_targets_are_smoothed_too():
    X, y, _ = data()
    a = net().fit(X[:200], y[:200], label_smoothing=0.3, validation_data=(X[200:], y[200:]),
                  epochs=1)
    index = np.searchsorted(np.unique(y), y[200:])
    smoothed = reference.smooth_labels(np.eye(3)[index], 0.3)
    assert a.history_["val_loss"][-1] == pytest.approx(a.cost(X[200:], smoothed), rel=1e-12)


def test_label_smoothing_errors():
    X, y, _ = data()
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="label_smoothing"):
            net().fit(X, y, label_smoothing=bad)
    with pytest.raises(ValueError, match="are for class labels"):
        net().fit(X, np.eye(3)[np.searchsorted(np.unique(y), y)], label_smoothing=0.1)


# ------------------------------------------------------------------ the estimator

def test_the_classifier_takes_class_weight_as_scikit_learn_parameters():
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    from cbackprop.sklearn import BackpropClassifier
    X, y, sw = data()
    clf = BackpropClassifier((5,), max_iter=5, random_state=0, class_weight="balanced")
    assert clf.get_params()["class_weight"] == "balanced"
    assert clone(clf).class_weight == "balanced"
    for class_weight in ("balanced", {"ant": 0.5, "cat": 4.0}):
        for solver in ("adam", "lbfgs"):
            a = clone(clf).set_params(class_weight=class_weight, solver=solver).fit(X, y, sw)
            b = clone(clf).set_params(class_weight=None, solver=solver).fit(
                X, y, reference.class_sample_weights(y, class_weight, sw))
            np.testing.assert_array_equal(a.network_.params, b.network_.params)
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        clone(clf).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="of class_weight are not in"):
        clone(clf).set_params(class_weight={"dog": 1}).fit(X, y)


def test_the_classifiers_class_weight_is_saved_and_loaded(tmp_path):
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier, load
    X, y, _ = data()
    clf = BackpropClassifier((5,), max_iter=5, random_state=0,
                             class_weight={"ant": 0.5, "cat": 4.0}).fit(X, y)
    back = load(clf.save(tmp_path / "clf.cbp"))
    assert back.class_weight == {"ant": 0.5, "cat": 4.0}
    assert back.network_.info_["class_weight"] == [0.5, 1.0, 4.0]
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


# ------------------------------------------------------------------ summary

def test_summary_is_a_table_of_the_layers_returned_not_printed(capsys):
    n = cb.Network([4, 8, 6, 3], activation=["relu", "tanh"], output="softmax",
                   dtype="float32")
    text = n.summary()
    assert capsys.readouterr().out == ""
    lines = text.splitlines()
    assert lines[0] == "Network 4 -> 8 -> 6 -> 3, loss cross_entropy"
    assert lines[1].split() == ["layer", "units", "activation", "Theta", "parameters"]
    assert lines[3].split() == ["input", "4", "-", "-", "0"]
    assert lines[4].split() == ["hidden", "1", "8", "relu", "Theta(1)", "8", "x", "5", "40"]
    assert lines[5].split() == ["hidden", "2", "6", "tanh", "Theta(2)", "6", "x", "9", "54"]
    assert lines[6].split() == ["output", "3", "softmax", "Theta(3)", "3", "x", "7", "21"]
    assert f"total parameters: {n.params.size}" in text and "(98 weights, 17 biases)" in text
    assert "dtype float32: 460 bytes of parameters" in text
    assert "KiB" in cb.Network([400, 25, 10]).summary()


def test_inspect_shows_the_summary_and_the_class_weights(tmp_path, capsys):
    X, y, _ = data()
    path = net().fit(X, y, class_weight={"cat": 5}, label_smoothing=0.1, epochs=1).save(
        tmp_path / "m.cbp")
    assert main(["inspect", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "  layer" in shown and "Theta(1) 5 x 5" in shown
    assert "class weights: ant 1, bee 1, cat 5" in shown
    assert "label smoothing: 0.1" in shown


def test_train_with_class_weight_balanced(tmp_path, monkeypatch, capsys):
    X, y, _ = data()
    with open(tmp_path / "d.csv", "w") as f:
        f.write("a,b,c,d,kind\n")
        f.writelines(",".join(map(str, r)) + f",{label}\n" for r, label in zip(X, y))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "d.csv", "--target", "kind", "--class-weight", "balanced",
                 "--label-smoothing", "0.1", "--epochs", "3", "--quiet"]) == 0
    with pytest.raises(SystemExit):
        main(["train", "d.csv", "--class-weight", "uniform"])
    assert "invalid choice: 'uniform'" in capsys.readouterr().err
    saved = cb.load(tmp_path / "model.cbp")
    assert len(saved.info_["class_weight"]) == 3 and saved.info_["label_smoothing"] == 0.1
    assert saved.info_["trained_with"] == "cbackprop train"
