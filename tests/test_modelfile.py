"""Model files (Network.save / cbackprop.load) and the importers and exporters.

Save then load is bit for bit (parameters, classes and their dtype, predictions, history);
loading refuses, with a ModelFileError naming the problem, every file that is not exactly
what save wrote: truncated, corrupted, edited, from a newer format, or carrying objects
(which are never unpickled). The scikit-learn, .mat and PyTorch round trips predict the same.
"""
import json
import os
import zipfile

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import interop, modelfile as cbio
from cbackprop.preprocessing import Scaler

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")


# ----------------------------------------------------------------------------------- helpers


def blobs(rng, m=90, n=4, k=3):
    """Features and labels 0..k-1 a small network learns."""
    X = rng.normal(size=(m, n))
    y = np.argmax(X[:, :k] + 0.3 * rng.normal(size=(m, k)), axis=1)
    y[:k] = np.arange(k)
    return X, y


def fitted(rng, kind, dtype="float64"):
    """(net, X, y) for one kind of target."""
    X, labels = blobs(rng)
    opts = dict(epochs=3, random_state=0, validation_fraction=0.2)
    if kind == "int":
        net, y = cb.Network([4, 5, 3], output="softmax", dtype=dtype, random_state=0), labels
    elif kind == "str":
        net = cb.Network([4, 5, 3], output="softmax", dtype=dtype, random_state=0)
        y = np.array(["cat", "dog", "emu"])[labels]
    elif kind == "object":
        net = cb.Network([4, 5, 3], dtype=dtype, random_state=0)
        y = np.array(["cat", "dog", "emu"], dtype=object)[labels]
    elif kind == "float":
        net, y = cb.Network([4, 5, 3], dtype=dtype, random_state=0), labels * 0.5 - 1.0
    elif kind == "binary":
        net, y = cb.Network([4, 5, 1], dtype=dtype, random_state=0), labels == 1
    elif kind == "multilabel":
        net = cb.Network([4, 5, 3], dtype=dtype, random_state=0)
        y = (X[:, :3] > 0).astype(np.int64)
    elif kind == "regression":
        net = cb.Network([4, 5, 1], activation="tanh", output="identity", loss="squared_error",
                         dtype=dtype, random_state=0)
        y = X @ np.arange(1.0, 5.0)
    elif kind == "regression2":
        net = cb.Network([4, 5, 2], activation=["relu"], output="identity",
                         loss="squared_error", dtype=dtype, random_state=0)
        y = np.column_stack([X.sum(axis=1), X[:, 0]])
    elif kind == "poisson":                 # linear hidden units, exp output: counts
        net = cb.Network([4, 5, 1], activation="identity", output="exp", loss="poisson",
                         dtype=dtype, random_state=0)
        y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    elif kind == "units":                   # issue 16's units, one a hidden layer
        net = cb.Network([4, 5, 4, 5, 3, 3], activation=["leaky_relu", "elu", "softplus",
                                                         "elliott"], dtype=dtype, random_state=0)
        y = labels
    else:
        return cb.Network([4, 6, 5, 3], activation=["tanh", "relu"], dtype=dtype,
                          random_state=0), X, None
    net.fit(X, y, **opts)
    return net, X, y


KINDS = ["int", "str", "object", "float", "binary", "multilabel", "regression", "regression2",
         "poisson", "units", "unfitted"]


def rewrite(path, out, change=None, drop=(), add=None, metadata=None, reseal=True):
    """A copy of a model file with some members changed, dropped or added (a tamperer's).

    reseal: recompute the metadata's own checksum, as a careful tamperer would, so that
    the checks behind it are reached; reseal=False is a plain edit."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["metadata"]))
    if metadata:
        metadata(meta)
    if reseal:
        try:
            meta["metadata_sha256"] = cbio._metadata_digest(meta)
        except ValueError:
            pass
    arrays["metadata"] = np.array(json.dumps(meta))
    for name, value in (change or {}).items():
        arrays[name] = value
    for name in drop:
        del arrays[name]
    with open(out, "wb") as f:
        np.savez(f, **arrays, **(add or {}))
    return out


@pytest.fixture
def model_file(tmp_path, rng):
    net, X, y = fitted(rng, "str")
    path = tmp_path / "model.cbp"
    net.save(path)
    return path, net, X


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_bit_exact(tmp_path, rng, kind, dtype):
    net, X, y = fitted(rng, kind, dtype)
    path = tmp_path / "net.cbp"
    assert net.save(path) == path
    back = cb.load(path)
    assert type(back) is cb.Network
    assert back.params.dtype == net.params.dtype
    np.testing.assert_array_equal(back.params, net.params)
    assert back.layer_sizes == net.layer_sizes and back.activation == net.activation
    assert (back.output, back.loss) == (net.output, net.loss)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.predict(X).dtype == net.predict(X).dtype
    if net.output not in ("identity", "exp"):
        np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    if kind == "unfitted":
        assert back.classes_ is None and not hasattr(back, "history_")
        return
    if net.classes_ is None:
        assert back.classes_ is None
    else:
        np.testing.assert_array_equal(back.classes_, net.classes_)
        assert back.classes_.dtype == net.classes_.dtype
    assert back.history_ == net.history_ and back.n_iter_ == net.n_iter_
    assert back.score(X, y) == net.score(X, y)
    back.save(tmp_path / "again.cbp")                   # a loaded network saves the same
    again = cb.load(tmp_path / "again.cbp")
    np.testing.assert_array_equal(again.params, net.params)


def test_scaler_and_info_round_trip(tmp_path, rng):
    net, X, _ = fitted(rng, "int")
    net.scaler_ = Scaler.fit(X * 10 + 3, "minmax")
    net.info_ = {"features": ["a", "b", "c", "d"], "note": "é", "n": 3, "x": 0.1}
    net.save(tmp_path / "m.cbp")
    back = cb.load(tmp_path / "m.cbp")
    assert back.scaler_.kind == "minmax"
    np.testing.assert_array_equal(back.scaler_.offset, net.scaler_.offset)
    np.testing.assert_array_equal(back.scaler_.scale, net.scaler_.scale)
    np.testing.assert_array_equal(back.scaler_.transform(X), net.scaler_.transform(X))
    assert back.info_ == net.info_
    assert cb.load(tmp_path / "m.cbp").scaler_ is not None
    plain, _, _ = fitted(rng, "unfitted")
    plain.save(tmp_path / "p.cbp")
    assert cb.load(tmp_path / "p.cbp").scaler_ is None and cb.load(tmp_path / "p.cbp").info_ == {}


def test_scaler():
    X = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    standard = Scaler.fit(X, "standard")
    Z = standard.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(Z[:, [0, 2]].std(axis=0), 1)
    assert np.all(Z[:, 1] == 0)                         # a constant column: 0, not NaN
    minmax = Scaler.fit(X, "minmax").transform(X)
    assert minmax.min() == 0 and minmax.max() == 1
    with pytest.raises(ValueError, match="3 feature columns"):
        standard.transform(X[:, :2])
    with pytest.raises(ValueError, match="scale"):
        Scaler.fit(X, "robust")
    with pytest.raises(ValueError):
        Scaler("standard", [0.0, 1.0], [1.0, 0.0])


def test_file_is_plain_npz(model_file):
    """Any NumPy reads a model file without pickle; the metadata is JSON."""
    path, net, _ = model_file
    with np.load(path, allow_pickle=False) as f:
        assert {"metadata", "Theta1", "Theta2", "classes", "history_loss"} <= set(f.files)
        np.testing.assert_array_equal(f["Theta1"], net.thetas[0])
        meta = json.loads(str(f["metadata"]))
    # a Network's file is format version 1, which older cbackprop reads
    assert meta["format"] == "cbackprop-model" and meta["format_version"] == 1
    assert meta["layer_sizes"] == [4, 5, 3] and meta["cbackprop_version"] == cb.__version__
    assert meta["dtype"] == "float64" and meta["output"] == "softmax"
    assert meta["n_iter"] == net.n_iter_
    assert set(meta["arrays"]) == set(f.files) - {"metadata"}


def test_save_is_atomic(tmp_path, rng, monkeypatch):
    """A save that fails half-way leaves the old file as it was, and no temporary file."""
    net, X, _ = fitted(rng, "int")
    path = tmp_path / "m.cbp"
    net.save(path)
    before = path.read_bytes()

    def broken(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cbio.np, "savez", broken)
    other = cb.Network([4, 2, 3], random_state=1)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.cbp"]


def test_saved_file_permissions(tmp_path, rng):
    net, _, _ = fitted(rng, "unfitted")
    net.save(tmp_path / "m.cbp")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "m.cbp").st_mode & 0o777 == 0o666 & ~umask


def test_save_into_a_missing_directory(tmp_path, rng):
    net, _, _ = fitted(rng, "unfitted")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        net.save(tmp_path / "nowhere" / "m.cbp")


def test_whatever_saves_loads(tmp_path, rng):
    """Attributes set by hand (classes_ without a fit) come back as they were."""
    net, X, _ = fitted(rng, "unfitted")
    net.classes_ = np.array([10, 20, 30])
    net.save(tmp_path / "m.cbp")
    back = cb.load(tmp_path / "m.cbp")
    np.testing.assert_array_equal(back.classes_, [10, 20, 30])
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_save_refuses_what_it_cannot_store(tmp_path, rng):
    net, _, _ = fitted(rng, "int")
    net.info_ = {"bad": object()}
    with pytest.raises(TypeError, match="info_"):
        net.save(tmp_path / "m.cbp")
    net.info_ = {"bad": float("nan")}
    with pytest.raises(TypeError, match="finite"):
        net.save(tmp_path / "m.cbp")
    net.info_ = None
    net.classes_ = np.array([(1, 2), "a", 3.0], dtype=object)
    with pytest.raises(TypeError, match="class labels"):
        net.save(tmp_path / "m.cbp")
    with pytest.raises(TypeError, match="Network"):
        cbio.save({"not": "a network"}, tmp_path / "m.cbp")
    assert not (tmp_path / "m.cbp").exists()


def test_estimator_saves_its_network(tmp_path, rng):
    """A scikit-learn estimator of cbackprop.sklearn saves its network_."""
    sk = pytest.importorskip("cbackprop.sklearn")
    X, y = blobs(rng)
    est = sk.BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    cbio.save(est, tmp_path / "est.cbp")
    back = cb.load(tmp_path / "est.cbp")
    np.testing.assert_array_equal(back.params, est.network_.params)
    np.testing.assert_array_equal(back.forward(X), est.network_.forward(X))


# ---------------------------------------------------------------------------- bad files


def test_missing_and_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        cb.load(tmp_path / "nope.cbp")
    with pytest.raises(cb.ModelFileError, match="directory"):
        cb.load(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(cb.ModelFileError, match="not a cbackprop model file"):
        cb.load(tmp_path / "data.csv")
    np.savez(tmp_path / "data.npz", X=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(cb.ModelFileError, match="no metadata"):
        cb.load(tmp_path / "data.npz")
    (tmp_path / "empty.cbp").write_bytes(b"")
    with pytest.raises(cb.ModelFileError):
        cb.load(tmp_path / "empty.cbp")
    assert issubclass(cb.ModelFileError, ValueError)


def test_truncated_files(model_file, tmp_path):
    path, _, _ = model_file
    data = path.read_bytes()
    for size in np.unique(np.linspace(1, len(data) - 1, 40).astype(int)):
        cut = tmp_path / "cut.cbp"
        cut.write_bytes(data[:size])
        with pytest.raises(cb.ModelFileError):
            cb.load(cut)


def test_corrupted_bytes_never_load_wrong(model_file, tmp_path):
    """Flipping any one byte either gives a ModelFileError or (a byte zip does not check, such
    as a timestamp) the very same network: never another network, never another error."""
    path, net, X = model_file
    data = path.read_bytes()
    refused = 0
    for pos in range(0, len(data), max(1, len(data) // 300)):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        corrupt = tmp_path / "bad.cbp"
        corrupt.write_bytes(bytes(bad))
        try:
            back = cb.load(corrupt)
        except cb.ModelFileError:
            refused += 1
            continue
        np.testing.assert_array_equal(back.params, net.params)
        np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert refused > 200


def test_newer_format_version(model_file, tmp_path):
    path, _, _ = model_file

    def newer(meta):
        meta["format_version"] = cbio.FORMAT_VERSION + 1
        meta["cbackprop_version"] = "9.0.0"

    out = rewrite(path, tmp_path / "newer.cbp", metadata=newer)
    with pytest.raises(cb.ModelFileError, match=r"newer cbackprop \(9\.0\.0.*upgrade"):
        cb.load(out)


@pytest.mark.parametrize("case, message", [
    ("checksum", "checksum"),
    ("shape", "shape"),
    ("dtype", "dtype"),
    ("nan", "NaN or inf"),
    ("missing", "missing"),
    ("extra", "unexpected members"),
    ("format", "not a cbackprop model file"),
    ("version", "invalid format version"),
    ("json", "not valid JSON"),
    ("sizes", "invalid architecture"),
    ("activation", "invalid architecture"),
    ("classes_unsorted", "sorted and distinct"),
    ("classes_count", "do not fit"),
    ("kind", "unknown target kind"),
    ("history", "history"),
    ("scaler", "scale"),
])
def test_tampered_files(model_file, tmp_path, case, message):
    path, net, _ = model_file
    out = tmp_path / "tampered.cbp"
    t1 = net.thetas[0].copy()
    t1[0, 0] += 1e-9

    def with_checksums(arrays):
        def fix(meta):
            for name, arr in arrays.items():
                meta["arrays"][name] = {"shape": list(arr.shape), "dtype": arr.dtype.str,
                                        "sha256": cbio._sha256(arr)}
        return fix

    if case == "checksum":
        rewrite(path, out, change={"Theta1": t1})
    elif case == "shape":
        narrow = t1[:, :-1]
        rewrite(path, out, change={"Theta1": narrow}, metadata=with_checksums({"Theta1": narrow}))
    elif case == "dtype":
        t32 = t1.astype(np.float32)
        rewrite(path, out, change={"Theta1": t32}, metadata=with_checksums({"Theta1": t32}))
    elif case == "nan":
        t1[1, 1] = np.nan
        rewrite(path, out, change={"Theta1": t1}, metadata=with_checksums({"Theta1": t1}))
    elif case == "missing":
        rewrite(path, out, drop=["Theta2"])
    elif case == "extra":
        rewrite(path, out, add={"Theta3": np.zeros((2, 4))})
    elif case == "format":
        rewrite(path, out, metadata=lambda m: m.update(format="something-else"))
    elif case == "version":
        rewrite(path, out, metadata=lambda m: m.update(format_version="1"))
    elif case == "json":
        rewrite(path, out, change={"metadata": np.array("{not json")})
    elif case == "sizes":
        rewrite(path, out, metadata=lambda m: m.update(layer_sizes=[4, -5, 3]))
    elif case == "activation":
        rewrite(path, out, metadata=lambda m: m.update(activation=["exec"]))
    elif case == "classes_unsorted":
        c = np.array(["dog", "cat", "emu"])
        rewrite(path, out, change={"classes": c}, metadata=with_checksums({"classes": c}))
    elif case == "classes_count":
        c = np.array(["cat", "dog"])
        rewrite(path, out, change={"classes": c}, metadata=with_checksums({"classes": c}))
    elif case == "kind":
        rewrite(path, out, metadata=lambda m: m["target"].update(kind="oracle"))
    elif case == "history":
        rewrite(path, out, metadata=lambda m: m.update(history=["loss", "__class__"]))
    elif case == "scaler":
        rewrite(path, out, metadata=lambda m: m.update(scaler="robust"))
    with pytest.raises(cb.ModelFileError, match=message) as info:
        cb.load(out)
    assert str(out) in str(info.value)


class _Payload:
    """Unpickling this would create a directory: the proof that nothing was executed."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickled_objects_are_never_executed(model_file, tmp_path):
    path, _, _ = model_file
    target = str(tmp_path / "pwned")
    evil = np.array([_Payload(target), 1], dtype=object)
    out = tmp_path / "evil.cbp"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["classes"] = evil
    with zipfile.ZipFile(out, "w") as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, arr, allow_pickle=True)
    with pytest.raises(cb.ModelFileError, match="Python objects.*never unpickled"):
        cb.load(out)
    assert not os.path.exists(target)


def test_huge_declared_shape_is_refused_before_reading(model_file, tmp_path):
    """A header claiming a huge array fails cleanly, without allocating it."""
    path, net, _ = model_file
    big = (10**6, 10**6)

    def huge(meta):
        meta["layer_sizes"] = [10**6 - 1, 10**6, 3]
        meta["arrays"]["Theta1"]["shape"] = list(big)

    out = rewrite(path, tmp_path / "huge.cbp", metadata=huge)
    with pytest.raises(cb.ModelFileError):
        cb.load(out)


# ------------------------------------------------------------------------- scikit-learn


def _sklearn_has_poisson():
    from sklearn.neural_network import MLPRegressor
    return "loss" in MLPRegressor().get_params()


def _mlp(kind, rng, activation="logistic"):
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    X, labels = blobs(rng, m=80)
    if kind == "multiclass":
        est = MLPClassifier((6,), activation=activation, max_iter=30)
        y = np.array(list("abc"))[labels]
    elif kind == "binary":
        est, y = MLPClassifier((6, 4), activation=activation, max_iter=30), labels == 1
    elif kind == "multilabel":
        est, y = MLPClassifier((6,), activation=activation, max_iter=30), (X[:, :3] > 0).astype(int)
    elif kind == "regression":
        est = MLPRegressor(hidden_layer_sizes=(6,), activation=activation, max_iter=30)
        y = X.sum(axis=1)
    elif kind == "poisson":
        est = MLPRegressor(hidden_layer_sizes=(6,), activation=activation, max_iter=30,
                           loss="poisson")
        y = rng.poisson(np.exp(0.3 * X[:, 0]))
    else:
        est = MLPRegressor(hidden_layer_sizes=(5,), activation=activation, max_iter=30)
        y = X[:, :2] * 2
    est.set_params(random_state=0)
    return est.fit(X, y), X, y


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression",
                                  "regression2", "poisson"])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu", "identity"])
def test_from_sklearn_and_back(rng, kind, activation):
    pytest.importorskip("sklearn")
    if kind == "poisson" and not _sklearn_has_poisson():
        pytest.skip("scikit-learn < 1.7: no MLPRegressor(loss='poisson')")
    mlp, X, y = _mlp(kind, rng, activation)
    net = cb.Network.from_sklearn(mlp)
    same = np.testing.assert_array_equal
    if kind.startswith("regression") or kind == "poisson":  # values: products in another order
        same = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    same(net.predict(X), mlp.predict(X))
    if kind in ("multiclass", "binary"):
        np.testing.assert_allclose(net.predict_proba(X), mlp.predict_proba(X), rtol=1e-12,
                                   atol=1e-14)
        np.testing.assert_array_equal(net.classes_, mlp.classes_)
    for t, W, b in zip(net.thetas, mlp.coefs_, mlp.intercepts_):
        np.testing.assert_array_equal(t[:, 0], b)
        np.testing.assert_array_equal(t[:, 1:], W.T)
    assert (net.output, net.loss) == (("exp", "poisson") if kind == "poisson"
                                      else (net.output, net.loss))
    back = net.to_sklearn()
    assert type(back) is type(mlp) and getattr(back, "loss", None) == getattr(mlp, "loss", None)
    same(back.predict(X), net.predict(X))
    for W0, W1 in zip(mlp.coefs_, back.coefs_):
        np.testing.assert_array_equal(W0, W1)
    assert back.score(X, y) == pytest.approx(mlp.score(X, y), abs=1e-12)


@pytest.mark.parametrize("kind", ["int", "str", "binary", "multilabel", "regression",
                                  "unfitted"])
def test_to_sklearn_predicts_the_same(rng, kind):
    pytest.importorskip("sklearn")
    net, X, y = fitted(rng, kind)
    if kind == "unfitted":                 # sigmoid outputs, no classes: output indices
        net = cb.Network([4, 5, 3], activation="tanh", output="softmax", random_state=0)
    mlp = net.to_sklearn()
    if kind == "regression":
        np.testing.assert_allclose(mlp.predict(X), net.predict(X), rtol=1e-12, atol=1e-13)
    else:
        np.testing.assert_array_equal(mlp.predict(X), net.predict(X))
    if kind in ("int", "str", "binary"):
        np.testing.assert_allclose(mlp.predict_proba(X), net.predict_proba(X), rtol=1e-12,
                                   atol=1e-14)
    again = cb.Network.from_sklearn(mlp)
    np.testing.assert_array_equal(again.params, net.params)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")
def test_sklearn_errors(rng):
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier
    with pytest.raises(ValueError, match="fitted"):
        cb.Network.from_sklearn(MLPClassifier())
    mlp, _, _ = _mlp("multiclass", rng)
    mlp.activation = "swish"
    with pytest.raises(ValueError, match="swish"):
        cb.Network.from_sklearn(mlp)
    mixed = cb.Network([3, 4, 4, 2], activation=["tanh", "relu"])
    with pytest.raises(ValueError, match="one activation"):
        mixed.to_sklearn()


# -------------------------------------------------------------------------- the course's .mat


def test_mat_round_trip(tmp_path, rng):
    net, X, _ = fitted(rng, "int")
    net.save_mat(tmp_path / "w.mat")
    from scipy.io import loadmat
    data = loadmat(tmp_path / "w.mat")
    np.testing.assert_array_equal(data["Theta1"], net.thetas[0])
    back = cb.Network.load_mat(tmp_path / "w.mat", output="softmax", classes=net.classes_)
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert cb.Network.load_mat(tmp_path / "w.mat", classes=None).classes_ is None


def test_mat_with_the_course_labels(tmp_path, rng):
    """The course's network: output unit k is label k, with label 10 for the digit 0.
    Any order of labels given: each unit keeps its label."""
    from scipy.io import savemat
    thetas = [rng.normal(size=(5, 5)), rng.normal(size=(4, 6))]
    savemat(tmp_path / "ex4weights.mat", {"Theta1": thetas[0], "Theta2": thetas[1],
                                          "note": np.array([1.0])})
    X = rng.normal(size=(30, 4))
    h = cb.reference.forward(thetas, X)
    labels = np.array([10, 3, 1, 2])
    net = cb.Network.load_mat(tmp_path / "ex4weights.mat", classes=labels)
    np.testing.assert_array_equal(net.classes_, [1, 2, 3, 10])
    np.testing.assert_array_equal(net.predict(X), labels[np.argmax(h, axis=1)])


def test_mat_errors(tmp_path):
    from scipy.io import savemat
    with pytest.raises(FileNotFoundError):
        cb.Network.load_mat(tmp_path / "none.mat")
    savemat(tmp_path / "other.mat", {"W": np.ones((2, 2))})
    with pytest.raises(cb.ModelFileError, match="no Theta1"):
        cb.Network.load_mat(tmp_path / "other.mat")
    savemat(tmp_path / "bad.mat", {"Theta1": np.ones((3, 4)), "Theta2": np.ones((2, 3))})
    with pytest.raises(cb.ModelFileError, match="columns"):
        cb.Network.load_mat(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(cb.ModelFileError, match="readable"):
        cb.Network.load_mat(tmp_path / "junk.mat")


# ----------------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("activation, output", [("sigmoid", "sigmoid"), ("tanh", "softmax"),
                                                ("relu", "identity"), ("identity", "exp"),
                                                ("leaky_relu", "sigmoid"), ("elu", "sigmoid"),
                                                ("softplus", "softmax"), ("elliott", "softmax")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_round_trip(rng, activation, output, dtype):
    torch = pytest.importorskip("torch")
    loss = {"identity": "squared_error", "exp": "poisson"}.get(output, "cross_entropy")
    net = cb.Network([5, 7, 6, 3], activation=activation, output=output, loss=loss, dtype=dtype,
                     random_state=0)
    sd = net.to_torch_state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    module = interop.torch_module(net)
    X = rng.normal(size=(20, 5)).astype(dtype)
    with torch.no_grad():
        h = module(torch.from_numpy(X)).numpy()
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(h, net.forward(X), rtol=tol, atol=tol)
    back = cb.Network.from_torch_state_dict(module.state_dict(), activation, output, loss)
    assert back.dtype == net.dtype
    np.testing.assert_array_equal(back.params, net.params)


def test_from_a_torch_model(rng):
    torch = pytest.importorskip("torch")
    from torch import nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=-1))
    net = cb.Network.from_torch_state_dict(module.state_dict(), activation="tanh",
                                           output="softmax")
    X = rng.normal(size=(10, 4)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-5, atol=1e-6)


def test_from_state_dict_errors():
    with pytest.raises(TypeError):
        cb.Network.from_torch_state_dict([1, 2])
    with pytest.raises(ValueError, match="pairs"):
        cb.Network.from_torch_state_dict({"0.weight": np.ones((2, 3))})
    with pytest.raises(ValueError, match="weight"):
        cb.Network.from_torch_state_dict({"0.bias": np.ones(2), "0.weight": np.ones((2, 3))})
    with pytest.raises(ValueError, match="Linear"):
        cb.Network.from_torch_state_dict({"0.weight": np.ones((2, 3)), "0.bias": np.ones(3)})
    net = cb.Network.from_torch_state_dict({"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2)})
    assert net.layer_sizes == [3, 2]


@pytest.mark.parametrize("edit", [
    lambda m: m.update(activation=["tanh"] * len(m["activation"])),
    lambda m: m.update(output="sigmoid"),
    lambda m: m.update(loss="squared_error"),
    lambda m: m["target"].update(kind="regression"),
])
def test_a_plain_edit_of_the_metadata_is_refused(model_file, tmp_path, edit):
    """Every field of the metadata is sealed by its checksum, not only the arrays."""
    path, _, _ = model_file
    out = rewrite(path, tmp_path / "edited.cbp", metadata=edit, reseal=False)
    with pytest.raises(cb.ModelFileError, match="metadata was modified"):
        cb.load(out)


# ------------------------------------------------------- estimators' files (issue 13, item 1)


@pytest.fixture
def estimator_file(tmp_path, rng):
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier
    X = rng.normal(size=(40, 3))
    clf = BackpropClassifier((4,), solver="lbfgs", max_iter=20, random_state=0)
    clf.fit(X, np.array([10, 20, 30])[np.argmax(X, axis=1)])
    path = tmp_path / "clf.cbp"
    clf.save(path)
    return path, clf, X


def test_estimator_file_is_plain_npz_of_version_2(estimator_file):
    path, clf, X = estimator_file
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["metadata"]))
        np.testing.assert_array_equal(f["classes"], [10, 20, 30])       # the labels, not 0..2
    assert meta["format_version"] == 2 == cbio.FORMAT_VERSION
    assert meta["estimator"]["class"] == "BackpropClassifier"
    assert meta["estimator"]["params"]["hidden_layer_sizes"] == [4]
    net = cb.load(path)                         # the Network: the estimator's labels
    np.testing.assert_array_equal(net.predict(X), clf.predict(X))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["estimator"].update({"class": "os.system"}), "invalid estimator section"),
    (lambda m: m["estimator"].update({"arrays": ["../x"]}), "invalid estimator section"),
    (lambda m: m["estimator"]["params"].update({"evil": 1}), "unknown parameters"),
    (lambda m: m["estimator"]["fitted"].update({"__class__": 1}), "unknown parameters"),
])
def test_tampered_estimator_sections_are_refused(estimator_file, tmp_path, edit, message):
    from cbackprop.sklearn import BackpropClassifier
    path, _, _ = estimator_file
    bad = rewrite(path, tmp_path / "bad.cbp", metadata=edit)
    with pytest.raises(cb.ModelFileError, match=message):
        BackpropClassifier.load(bad)


def test_estimator_arrays_of_objects_are_refused(estimator_file, tmp_path):
    path, _, _ = estimator_file
    bad = rewrite(path, tmp_path / "bad.cbp",
                  change={"classes": np.array([10, "a", 30], dtype=object)})
    with pytest.raises(cb.ModelFileError, match="Python objects"):
        cb.load(bad)
