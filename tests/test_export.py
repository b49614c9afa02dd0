"""cbackprop.export: the ONNX model (run by ONNX Runtime) and the C header (compiled by the
system's C compiler) predict what predict and predict_proba do, for every kind of output,
hidden unit and target, with and without the model's feature scaling."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cbackprop as cb
from cbackprop.export import ExportError, to_c

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")
TOL = {"float32": 1e-6, "float64": 1e-12}
C_TOL = {"float": 1e-6, "double": 1e-12}
N_FEATURES = 5


def _data(seed=0, m=120):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(m, N_FEATURES))
    return score * [1.0, 3.0, 0.5, 10.0, 1.0] + [0, 5, 0, -20, 1], score


def _fitted(layer_sizes, y, **kwargs):
    X, _ = _data()
    net = cb.Network(layer_sizes, random_state=0, **kwargs)
    net.fit(X, y, solver="lbfgs", max_iter=30)
    return net


def _case(name, dtype):
    """A fitted network of the named kind, in dtype (its scaler left to the test)."""
    s = _data()[1]
    hidden = [N_FEATURES, 6]
    if name == "softmax_tanh":          # text labels
        y = np.array(["iris", "lily", "rose"])[np.argmax(s[:, :3], axis=1)]
        return _fitted(hidden + [3], y, activation="tanh", output="softmax", dtype=dtype)
    if name == "binary_relu":           # one sigmoid unit for two integer labels
        y = np.where(s[:, 0] + s[:, 1] > 0, 7, 3)
        return _fitted(hidden + [1], y, activation="relu", dtype=dtype)
    if name == "one_vs_all":            # the course's sigmoid units, rows normalized
        y = np.argmax(s[:, :4], axis=1) + 1
        return _fitted(hidden + [4], y, dtype=dtype)
    if name == "multilabel":
        Y = (s[:, :3] > 0).astype(int)
        return _fitted(hidden + [3], Y, activation="tanh", dtype=dtype)
    if name == "regression":
        Y = np.column_stack([s @ [1.0, 2.0, -1.0, 0.5, 0.0], 3 * s[:, 1]]) * 10 + 100
        return _fitted(hidden + [2], Y, activation="tanh", output="identity",
                       loss="squared_error", dtype=dtype)
    if name == "linear":                # identity hidden units: a linear regression
        Y = (s @ [1.0, 2.0, -1.0, 0.5, 0.0]).reshape(-1, 1) * 10 + 100
        return _fitted(hidden + [1], Y, activation="identity", output="identity",
                       loss="squared_error", dtype=dtype)
    if name == "poisson":               # counts: exp output, identity then tanh units
        y = np.random.default_rng(2).poisson(np.exp(0.5 * s[:, 0] + 1)).astype(float)
        return _fitted([N_FEATURES, 6, 4, 1], y, activation=["identity", "tanh"], output="exp",
                       loss="poisson", dtype=dtype)
    if name == "issue16_units":         # leaky_relu, elu, softplus, FANN's elliott
        y = np.argmax(s[:, :3], axis=1)
        return _fitted([N_FEATURES, 6, 5, 6, 4, 3], y,
                       activation=["leaky_relu", "elu", "softplus", "elliott"],
                       output="softmax", dtype=dtype)
    if name == "deep_mixed":            # two hidden layers, relu then tanh
        y = np.argmax(s[:, :3], axis=1)
        return _fitted([N_FEATURES, 6, 4, 3], y, activation=["relu", "tanh"], output="softmax",
                       dtype=dtype)
    if name == "no_hidden":
        y = np.argmax(s[:, :3], axis=1) * 10
        return _fitted([N_FEATURES, 3], y, output="softmax", dtype=dtype)
    assert name == "unfitted"           # labels are output indices
    return cb.Network(hidden + [3], output="softmax", dtype=dtype, random_state=1)


CASES = ["softmax_tanh", "binary_relu", "one_vs_all", "multilabel", "regression", "linear",
         "poisson", "issue16_units", "deep_mixed", "no_hidden", "unfitted"]


def _scaled(net, scaled):
    if scaled:
        net.scaler_ = cb.Scaler.fit(_data()[0], "standard")
    return net


def _expected(net, X):
    """(predict, predict_proba or None) of the model file's meaning: the scaler in front."""
    Xs = net.scaler_.transform(X) if net.scaler_ is not None else X
    proba = None if net.output in ("identity", "exp") else net.predict_proba(Xs)
    return net.predict(Xs), proba


def _same_values(got, expected, tol):
    """Regression values to tol of their scale (float32 rounds the scaled inputs, which
    large weights carry into the values)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol * scale)


# ----------------------------------------------------------------------------------- ONNX


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _run(ort, proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


@pytest.mark.parametrize("scaled", [False, True], ids=["raw", "scaler"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_onnx_predicts_as_the_network(ort, name, dtype, scaled):
    net = _scaled(_case(name, dtype), scaled)
    proto = cb.export.to_onnx(net)
    X = _data(seed=1, m=37)[0].astype(dtype)
    got = _run(ort, proto, X)
    pred, proba = _expected(net, X)
    tol = TOL[dtype]
    if proba is None:
        assert list(got) == ["variable"]
        _same_values(got["variable"], pred.reshape(len(X), -1), tol)
        assert got["variable"].dtype == dtype
        return
    assert list(got) == ["label", "probabilities"]
    np.testing.assert_allclose(got["probabilities"], proba, rtol=tol, atol=tol)
    assert got["probabilities"].dtype == dtype
    np.testing.assert_array_equal(got["label"], pred)
    assert got["label"].shape == pred.shape


def test_onnx_graph(ort, tmp_path):
    """One Gemm a layer (transB, the bias as C), the scaler as Sub and Div in front, a
    dynamic batch dimension; the saved file passes the checker and runs on any batch."""
    import onnx
    net = _scaled(_case("deep_mixed", "float32"), True)
    path = tmp_path / "deep.onnx"
    cb.export.to_onnx(net, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert ops[:2] == ["Sub", "Div"]
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 3 and all(len(n.input) == 3 for n in gemms)
    assert all(a.name == "transB" and a.i == 1 for n in gemms for a in n.attribute)
    assert {"Relu", "Tanh", "Softmax", "ArgMax"} <= set(ops)
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value")
    for m in (1, 300):
        X = _data(seed=2, m=m)[0].astype(np.float32)
        got = _run(ort, proto, X)
        np.testing.assert_array_equal(got["label"], _expected(net, X)[0])


def test_onnx_dtype_choice(ort):
    net = _case("softmax_tanh", "float64")
    proto = cb.export.to_onnx(net, dtype="float32")
    X = _data(seed=1, m=20)[0].astype(np.float32)
    got = _run(ort, proto, X)
    np.testing.assert_allclose(got["probabilities"], _expected(net, X)[1], atol=1e-5)
    with pytest.raises(ValueError, match="dtype must be one of"):
        cb.export.to_onnx(net, dtype="float16")


def test_onnx_tie_goes_to_class_one(ort):
    """One sigmoid unit at exactly 0.5 says class 1, as predict does."""
    net = cb.Network.from_thetas([np.zeros((1, N_FEATURES + 1))])
    X = np.ones((3, N_FEATURES))
    got = _run(ort, cb.export.to_onnx(net), X)
    np.testing.assert_array_equal(got["label"], net.predict(X))
    assert got["label"].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(got["probabilities"], [[0.5, 0.5]] * 3)


def test_onnx_of_estimators(ort, tmp_path):
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier, BackpropRegressor
    X, s = _data()
    X32 = X.astype(np.float32)
    targets = {"labels": np.array(["a", "b", "c"])[np.argmax(s[:, :3], axis=1)],
               "multilabel": (s[:, :3] > 0).astype(int)}
    for what, y in targets.items():
        clf = BackpropClassifier((6,), solver="lbfgs", max_iter=50, random_state=0,
                                 dtype="float32").fit(X32, y)
        got = _run(ort, cb.export.to_onnx(clf), X32)
        np.testing.assert_array_equal(got["label"], clf.predict(X32), err_msg=what)
        np.testing.assert_allclose(got["probabilities"], clf.predict_proba(X32), atol=1e-6)
        # its model file, as `cbackprop export` reads it
        clf.save(tmp_path / f"{what}.cbp")
        got = _run(ort, cb.export.to_onnx(cb.load(tmp_path / f"{what}.cbp")), X32)
        np.testing.assert_array_equal(got["label"], clf.predict(X32), err_msg=what)
    reg = BackpropRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=50,
                            random_state=0).fit(X, s[:, 0])
    got = _run(ort, cb.export.to_onnx(reg), X)
    np.testing.assert_allclose(got["variable"][:, 0], reg.predict(X), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="not fitted"):
        cb.export.to_onnx(BackpropClassifier())


def test_skl2onnx_converts_to_sklearn(ort):
    """skl2onnx's conversion of to_sklearn()'s MLP gives our probabilities (to float32)."""
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    net = _case("softmax_tanh", "float32")
    mlp = net.to_sklearn()
    proto = skl2onnx.convert_sklearn(mlp, initial_types=[("X", FloatTensorType([None, 5]))],
                                     options={id(mlp): {"zipmap": False}})
    X = _data(seed=1, m=37)[0].astype(np.float32)
    got = _run(ort, proto, X)
    np.testing.assert_array_equal(got["label"], net.predict(X))
    np.testing.assert_allclose(got["probabilities"], net.predict_proba(X), atol=1e-5)


def test_export_errors(ort, monkeypatch):
    with pytest.raises(TypeError, match="cbackprop.Network or a fitted"):
        cb.export.to_onnx(object())
    net = _case("softmax_tanh", "float64")
    net.classes_ = np.array([(1, 2), (3,), None], dtype=object)
    with pytest.raises(ExportError, match="cannot be exported"):
        cb.export.to_onnx(net)
    with pytest.raises(ExportError, match="cannot be exported"):
        to_c(net)
    for bad in ("1x", "my-model", "int", "__x", "_Model", "", 3):
        with pytest.raises(ValueError, match="C"):
            to_c(_case("unfitted", "float64"), name=bad)
    monkeypatch.setitem(sys.modules, "onnx", None)        # onnx not installed
    with pytest.raises(ImportError, match=r"cbackprop\[onnx\]"):
        cb.export.to_onnx(_case("unfitted", "float64"))


# -------------------------------------------------------------------------------------- C

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")

MAIN = r"""
#include <stdio.h>
#include "%(name)s.h"
%(other)s
int main(void)
{
    int n, i, j;
    %(t)s x[%(NAME)s_N_FEATURES], out[%(NAME)s_N_OUTPUTS];
    if (scanf("%%d", &n) != 1)
        return 1;
    for (i = 0; i < n; ++i) {
        for (j = 0; j < %(NAME)s_N_FEATURES; ++j) {
            double value;
            if (scanf("%%lf", &value) != 1)
                return 1;
            x[j] = (%(t)s)value;
        }
        %(call)s
        for (j = 0; j < %(NAME)s_N_OUTPUTS; ++j)
            printf(" %%.17g", (double)out[j]);
        printf("\n");
    }
    return 0;
}
"""

CALLS = {   # predictions first, then the outputs
    "classes": "printf(\"%%d\", %(name)s_predict(x)); %(name)s_predict_proba(x, out);",
    "multilabel": "{ int on[%(NAME)s_N_OUTPUTS]; %(name)s_predict_labels(x, on); "
                  "for (j = 0; j < %(NAME)s_N_OUTPUTS; ++j) printf(\"%%d,\", on[j]); } "
                  "%(name)s_predict_proba(x, out);",
    "values": "printf(\"-\"); %(name)s_predict_values(x, out);",
}


def _compile(tmp_path, header, name, t, task, second_file=False):
    """A program reading rows on stdin, printing predictions and outputs a row; built with
    -std=c99 -Wall -Werror -pedantic. second_file: the header in another file too (static
    inline functions), and once with external functions (NAME_API defined empty)."""
    (tmp_path / f"{name}.h").write_text(header)
    keys = {"name": name, "NAME": name.upper(), "t": t}
    keys["call"] = CALLS[task] % keys
    sources = [tmp_path / "main.c"]
    keys["other"] = ""
    if second_file:
        (tmp_path / "other.c").write_text(f'#include "{name}.h"\n'
                                          f"int other(void) {{ return {name.upper()}"
                                          f"_N_FEATURES; }}\n")
        (tmp_path / "api.c").write_text(f'#define {name.upper()}_API\n#include "{name}.h"\n')
        sources += [tmp_path / "other.c"]
        keys["other"] = "int other(void);"
    (tmp_path / "main.c").write_text(MAIN % keys)
    exe = tmp_path / "predict"
    flags = [CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
    proc = subprocess.run([*flags, "-o", str(exe), *map(str, sources), "-lm"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if second_file:
        proc = subprocess.run([*flags, "-c", "-o", str(tmp_path / "api.o"),
                               str(tmp_path / "api.c")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    return exe


def _run_c(exe, X):
    rows = "\n".join(" ".join(repr(float(v)) for v in row) for row in X)
    proc = subprocess.run([str(exe)], input=f"{len(X)}\n{rows}\n", capture_output=True,
                          text=True, check=True)
    lines = [line.split(" ", 1) for line in proc.stdout.splitlines()]
    outputs = np.array([[float(v) for v in rest.split()] for _, rest in lines])
    return [p for p, _ in lines], outputs


@needs_cc
@pytest.mark.parametrize("scaled", [False, True], ids=["raw", "scaler"])
@pytest.mark.parametrize("ctype", ["float", "double"])
@pytest.mark.parametrize("name", CASES)
def test_c_predicts_as_the_network(tmp_path, name, ctype, scaled):
    dtype = "float32" if ctype == "float" else "float64"
    net = _scaled(_case(name, dtype), scaled)
    header = to_c(net, name="net_" + name, dtype=ctype)
    task = "values" if net.output in ("identity", "exp") else (
        "multilabel" if name == "multilabel" else "classes")
    exe = _compile(tmp_path, header, "net_" + name, ctype, task, second_file=name == "deep_mixed")
    X = _data(seed=1, m=37)[0].astype(dtype)
    labels, outputs = _run_c(exe, X)
    pred, proba = _expected(net, X)
    tol = C_TOL[ctype]
    if task == "values":
        _same_values(outputs, pred.reshape(len(X), -1), tol)
        return
    np.testing.assert_allclose(outputs, proba, rtol=tol, atol=tol)
    if task == "multilabel":
        np.testing.assert_array_equal([[int(v) for v in p.strip(",").split(",")]
                                       for p in labels], pred)
    else:
        classes = net.classes_ if net.classes_ is not None else np.arange(proba.shape[1])
        np.testing.assert_array_equal(classes[[int(p) for p in labels]], pred)


@needs_cc
def test_c_of_an_estimator(tmp_path):
    """An estimator's header predicts its labels; dtype None is the network's (float32)."""
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier
    X, s = _data()
    y = np.array([10, 20, 30])[np.argmax(s[:, :3], axis=1)]
    clf = BackpropClassifier((6,), solver="lbfgs", max_iter=50, random_state=0,
                             dtype="float32").fit(X, y)
    header = to_c(clf, name="clf", dtype=None)
    assert "static const float clf_theta1" in header
    exe = _compile(tmp_path, header, "clf", "float", "classes")
    X32 = X.astype(np.float32)
    labels, outputs = _run_c(exe, X32)
    np.testing.assert_array_equal(clf.classes_[[int(p) for p in labels]], clf.predict(X32))
    np.testing.assert_allclose(outputs, clf.predict_proba(X32), rtol=1e-6, atol=1e-6)


@needs_cc
def test_c_text_labels_and_names(tmp_path):
    """Labels needing escapes are C string literals; the header holds one name prefix."""
    net = _case("softmax_tanh", "float64")
    net.classes_ = np.array(['a "quoted" one', "back\\slash", "caf\u00e9?"])
    header = to_c(net, name="flowers")
    assert "static const char *const flowers_classes[3]" in header
    assert "\\303\\251" in header and "static const float flowers_theta1" in header
    _compile(tmp_path, header, "flowers", "float", "classes")


# ---------------------------------------------------------------------------- command line


def test_cli_export(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(cb.__file__).resolve().parent.parent))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cbackprop", "export", *map(str, args)],
                              cwd=tmp_path, env=env, capture_output=True, text=True)

    net = _scaled(_case("binary_relu", "float64"), True)
    net.save(tmp_path / "m.cbp")
    proc = run("m.cbp", "--format", "c", "--out", "m.h", "--name", "binary", "--dtype", "double")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.h").read_text() == to_c(net, name="binary", dtype="double")
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropRegressor
    X, s = _data()
    reg = BackpropRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20,
                            random_state=0).fit(X, s[:, 0])
    reg.save(tmp_path / "reg.cbp")
    proc = run("reg.cbp", "--format", "c", "--dtype", "float64")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model.h").read_text() == to_c(reg, dtype="double")
    proc = run("m.cbp", "--format", "c", "--name", "9lives")
    assert proc.returncode == 2 and "C identifier" in proc.stderr
    proc = run("missing.cbp", "--format", "c")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    pytest.importorskip("onnx")
    proc = run("m.cbp", "--format", "onnx", "--out", "m.onnx")
    assert proc.returncode == 0, proc.stderr
    assert "outputs label, probabilities" in proc.stdout
    import onnx
    assert onnx.load(str(tmp_path / "m.onnx")) == cb.export.to_onnx(net)
