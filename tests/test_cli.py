"""The `cbackprop` command, end to end: `python -m cbackprop ...` in a subprocess, on files
in a temporary directory. Every command works; every error gives its exit status (1 for
data and model errors, 2 for usage) and one line on stderr, with no traceback."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cbackprop as cb

PACKAGE_ROOT = Path(cb.__file__).resolve().parent.parent   # the cbackprop these tests import


def run(*args, cwd, pythonpath=(), timeout=180):
    """`python -m cbackprop ARGS` with the same cbackprop as this test process."""
    env = dict(os.environ, MPLBACKEND="Agg", COLUMNS="100",
               PYTHONPATH=os.pathsep.join([*map(str, pythonpath), str(PACKAGE_ROOT)]))
    return subprocess.run([sys.executable, "-m", "cbackprop", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def error_line(proc):
    """stderr of a failed command: exactly one line, 'cbackprop: error: ...'."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cbackprop: error: ") and "Traceback" not in proc.stderr
    return lines[0]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with data files: 'flowers.csv' (3 text classes, an id column), its
    features alone, a regression .npy and a classification .npz."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    m = 150
    X = rng.normal(size=(m, 4)) * [1.0, 10.0, 0.1, 100.0] + [0, 50, 0, -500]
    score = (X - X.mean(0)) / X.std(0)
    y = np.array(["iris", "lily", "rose"])[np.argmax(score[:, :3], axis=1)]
    header = ["id", "petal", "stem", "leaf", "height", "kind"]
    write_csv(d / "flowers.csv", header,
              [[f"p{i}", *X[i].tolist(), y[i]] for i in range(m)])
    write_csv(d / "features.csv", ["height", "leaf", "stem", "petal"],
              [[X[i, 3], X[i, 2], X[i, 1], X[i, 0]] for i in range(m)])  # other order, no target
    np.save(d / "values.npy", np.column_stack([X, score @ [1.0, 2.0, -1.0, 0.5]]))
    np.savez(d / "labels.npz", X=X, y=(score[:, 0] > 0).astype(np.int64))
    (d / "X").mkdir()
    np.save(d / "X" / "features.npy", X)
    return d


@pytest.fixture(scope="module")
def model(work):
    """flowers.csv trained once: (path, the command's result)."""
    proc = run("train", "flowers.csv", "--target", "kind", "--drop", "id", "--hidden", "8",
               "--epochs", "60", "--out", "flowers.cbp", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work / "flowers.cbp", proc


# ------------------------------------------------------------------------------ commands


def test_demo_quick(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    proc = run("demo", "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "300 training and 360 test images" in out
    assert "test accuracy:" in out
    assert "  digit  samples  correct  recall  precision" in out
    assert sum(line.strip().startswith(tuple("0123456789")) for line in out.splitlines()) >= 10
    assert "cbackprop (compiled per-sample loop" in out and "NumPy (the same loop" in out
    difference = float(out.split("weights is ")[1].split()[0])
    assert difference < 1e-9                             # the same work, the same result
    assert "NumPy (same work)" in proc.stderr            # the progress bars
    from matplotlib.image import imread
    pixels = imread(tmp_path / "cbackprop-demo.png")
    assert pixels.shape[:2] == (500, 1500) and pixels.std() > 0


def test_demo_without_its_extras(tmp_path):
    """Without scikit-learn: one line naming the extra to install, exit status 1."""
    blocker = tmp_path / "blocker" / "sklearn"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named sklearn')\n")
    proc = run("demo", "--quick", cwd=tmp_path, pythonpath=[blocker.parent])
    assert proc.returncode == 1
    assert error_line(proc) == ('cbackprop: error: the demo needs scikit-learn: '
                                'pip install "cbackprop[demo]"')
    assert not (tmp_path / "cbackprop-demo.png").exists()


def test_train_classification(model):
    path, proc = model
    out = proc.stdout
    assert "task: classification of kind (inferred" in out and "3 classes (iris, lily, rose)" in out
    assert "Network([4, 8, 3], activation='sigmoid', output='softmax'" in out
    assert "136 samples (+ 14 for validation)" in out      # 10% of each class held out
    assert "final cost J = " in out
    assert "training accuracy" in out and "validation accuracy" in out
    assert f"saved {path.name}" in out
    assert "fit (adam)" in proc.stderr                  # the progress bar
    net = cb.load(path)
    assert net.layer_sizes == [4, 8, 3] and net.classes_.tolist() == ["iris", "lily", "rose"]
    assert net.scaler_.kind == "standard" and net.n_iter_ == 60
    info = net.info_
    assert info["features"] == ["petal", "stem", "leaf", "height"] and info["target"] == "kind"
    assert info["solver"] == "adam" and info["n_train"] == 136 and info["validation_score"] > 0.6


def test_predict_matches_python(model, work):
    path, _ = model
    proc = run("predict", path, "flowers.csv", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 151
    net = cb.load(path)
    with open(work / "flowers.csv") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in ("petal", "stem", "leaf", "height")] for r in rows])
    expected = net.predict(net.scaler_.transform(X))     # the scaling travels with the model
    assert lines[1:] == expected.tolist()
    assert np.mean(expected == [r["kind"] for r in rows]) > 0.8

    # the features found by name in another order, no target column; --out writes a file
    proc = run("predict", path, "features.csv", "--proba", "--out", "p.csv", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 150 predictions to p.csv" in proc.stderr
    with open(work / "p.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["prediction", "p_iris", "p_lily", "p_rose"]
    assert [r[0] for r in table[1:]] == expected.tolist()
    proba = np.array([[float(v) for v in r[1:]] for r in table[1:]])
    np.testing.assert_array_equal(proba, net.predict_proba(net.scaler_.transform(X)))


def test_evaluate(model, work):
    path, _ = model
    proc = run("evaluate", path.name, "flowers.csv", cwd=work)   # target: the model's 'kind'
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("flowers.cbp on flowers.csv: 150 samples")
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 80
    assert "cost J = " in out and "most often mistaken for" in out
    assert "true \\ predicted" in out
    same = run("evaluate", path.name, "flowers.csv", "--target", "kind", cwd=work)
    assert same.stdout == out


def test_inspect(model, work):
    path, _ = model
    proc = run("inspect", path, cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "cbackprop model, format version 1" in out
    assert "network: 4 -> 8 -> 3" in out and "67 parameters" in out
    assert "Theta(1): 8 x 5" in out and "Theta(2): 3 x 9" in out
    assert "classes: 3 (iris, lily, rose)" in out
    assert "features: 4 (petal, stem, leaf, height); target: kind" in out
    assert "feature scaling: standard" in out and "final cost" in out
    meta = json.loads(run("inspect", path, "--json", cwd=work).stdout)
    assert meta["layer_sizes"] == [4, 8, 3] and meta["format_version"] == 1


def test_regression_npy(work, tmp_path):
    proc = run("train", work / "values.npy", "--hidden", "none", "--epochs", "150",
               "--learning-rate", "0.05", "--lam", "0", "--out", tmp_path / "v.cbp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "task: regression of column 4 (inferred" in proc.stdout
    assert "(on the standardized target)" in proc.stdout
    r2 = float(proc.stdout.split("training R^2 ")[1].split(",")[0])
    assert r2 > 0.99                                   # a linear target, a linear network
    ev = run("evaluate", tmp_path / "v.cbp", work / "values.npy", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert float(ev.stdout.split("R^2 ")[1].split(",")[0]) > 0.99 and "RMSE" in ev.stdout
    # the target is folded back into original units: predictions are values, not z-scores
    pred = run("predict", tmp_path / "v.cbp", work / "X" / "features.npy", cwd=tmp_path)
    values = np.array(pred.stdout.split()[1:], dtype=float)
    truth = np.load(work / "values.npy")[:, -1]
    assert np.corrcoef(values, truth)[0, 1] > 0.99 and abs(values.std() - truth.std()) < 0.1
    # the training file itself, target column and all, predicts the same
    again = run("predict", tmp_path / "v.cbp", work / "values.npy", cwd=tmp_path)
    assert again.stdout == pred.stdout


def test_npz_and_task_override(work, tmp_path):
    proc = run("train", work / "labels.npz", "--epochs", "20", "--quiet", "--solver", "lbfgs",
               "--out", tmp_path / "l.cbp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "task: classification of y (inferred" in proc.stdout
    assert "2 classes (0, 1)" in proc.stdout
    assert "output='sigmoid'" in proc.stdout and "Network([4, 25, 1]" in proc.stdout
    assert "fit (" not in proc.stderr                  # --quiet: no progress bar
    forced = run("train", work / "labels.npz", "--task", "regress", "--epochs", "2", "--quiet",
                 "--out", tmp_path / "r.cbp", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "task: regression of y\n" in forced.stdout
    assert cb.load(tmp_path / "r.cbp").output == "identity"


def test_poisson_regression_of_counts(work, tmp_path):
    """--output exp: the half Poisson deviance with identity hidden units, the counts not
    standardized (predictions are counts' means, > 0); negative targets are refused."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    counts = rng.poisson(np.exp(0.5 * X[:, 0] + 1))
    np.savez(tmp_path / "counts.npz", X=X, y=counts)
    proc = run("train", "counts.npz", "--task", "regress", "--output", "exp", "--activation",
               "identity", "--hidden", "4", "--solver", "lbfgs", "--epochs", "50", "--quiet",
               "--out", "c.cbp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "activation='identity', output='exp', loss='poisson'" in proc.stdout
    assert "(on the standardized target)" not in proc.stdout
    net = cb.load(tmp_path / "c.cbp")
    assert (net.activation, net.output, net.loss) == (["identity"], "exp", "poisson")
    assert net.info_["target_scaling"] is None
    predicted = net.predict(net.scaler_.transform(X))
    assert (predicted > 0).all() and abs(predicted.mean() - counts.mean()) < 0.2 * counts.mean()
    shown = run("inspect", "c.cbp", cwd=tmp_path)
    assert "predicts: values (regression), the Poisson loss" in shown.stdout, shown.stderr
    np.savez(tmp_path / "negative.npz", X=X, y=counts - 3.5)
    bad = run("train", "negative.npz", "--output", "exp", "--epochs", "2", "--quiet",
              "--out", "n.cbp", cwd=tmp_path)
    assert bad.returncode == 1 and "negative" in error_line(bad)
    wrong = run("train", work / "flowers.csv", "--target", "kind", "--drop", "id", "--output",
                "exp", "--epochs", "2", "--out", "f.cbp", cwd=tmp_path)
    assert wrong.returncode != 0 and "--output exp is for regression" in error_line(wrong)


def test_check():
    proc = run("check", cwd=PACKAGE_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "The course's gradient check" in proc.stdout
    assert proc.stdout.rstrip().endswith("all checks passed")


def test_bench_quick(tmp_path):
    proc = run("bench", "--quick", "--repeats", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.rstrip().endswith("x")]
    assert len(rows) == 3 and "cost+gradient, float64" in rows[0]
    assert all(float(row.split()[-1][:-1]) >= 0 for row in rows)     # a ratio; never asserted
    from cbackprop._core import BUILD, HAS_OPENMP
    head = proc.stdout.splitlines()[0]
    assert f"build {BUILD} ({'OpenMP' if HAS_OPENMP else 'no OpenMP'}" in head
    assert " threads for 1000 rows" in head and "BLAS: " in head
    assert re.search(r"\d \[[\d.e+-]+-[\d.e+-]+\] ms", rows[0])         # median [min-max]


@pytest.mark.parametrize("command", ["check", "bench"])
def test_check_and_bench_describe_themselves(command, tmp_path):
    proc = run(command, "-h", cwd=tmp_path)
    assert proc.returncode == 0
    description = proc.stdout.split("\n\n")[1]        # after the usage lines
    assert len(description.split()) > 15 and not description.startswith("options")


def test_console_script_and_version(tmp_path):
    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"cbackprop {cb.__version__}"
    script = shutil.which("cbackprop", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the cbackprop console script is not installed (source tree)")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"cbackprop {cb.__version__}"


# --------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def bad_files(work, model):
    """Broken data and model files, each named after what is wrong with it."""
    d = work / "bad"
    d.mkdir()
    write_csv(d / "nan.csv", ["a", "b", "t"], [[1, 2, "x"], [3, "nan", "y"], [5, 6, "x"]])
    write_csv(d / "blank.csv", ["a", "b", "t"], [[1, 2, "x"], [3, "", "y"]])
    write_csv(d / "text.csv", ["a", "b", "t"], [[1, 2, "x"], [3, "big", "y"]])
    write_csv(d / "one_class.csv", ["a", "b", "t"], [[1, 2, "x"], [3, 4, "x"]])
    (d / "ragged.csv").write_text("a,b,t\n1,2,x\n3,4\n")
    (d / "quote.csv").write_text('a,b,t\n1,2,x\n3,"4,y\n')
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("a,b,t\n")
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage\x80\x81")
    np.save(d / "vector.npy", np.arange(5.0))
    np.savez(d / "noy.npz", features=np.zeros((3, 2)), other=np.zeros((3, 2)))
    path, _ = model
    data = path.read_bytes()
    (d / "truncated.cbp").write_bytes(data[:len(data) // 2])
    corrupt = bytearray(data)
    start = data.find(b"Theta1.npy") + 200
    corrupt[start:start + 8] = b"\x00" * 8
    (d / "corrupted.cbp").write_bytes(bytes(corrupt))
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["metadata"]))
    meta["format_version"] = 99
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(d / "newer.cbp", "wb") as f:
        np.savez(f, **arrays)
    return d


ERRORS = [
    # (arguments, the words the one-line message must hold)
    (["train", "missing.csv", "--target", "t"], "missing.csv: no such file"),
    (["train", "bad/ragged.csv", "--target", "t"], "line 3 has 2 fields but the header has 3"),
    (["train", "bad/quote.csv", "--target", "t"], "bad CSV at line"),
    (["train", "bad/empty.csv", "--target", "t"], "empty file"),
    (["train", "bad/header.csv", "--target", "t"], "no data rows"),
    (["train", "bad/binary.csv", "--target", "t"], "not a text CSV file"),
    (["train", "flowers.csv", "--target", "colour"],
     "no target column 'colour'; the columns are: id, petal"),
    (["train", "flowers.csv"], "--target COLUMN is needed"),
    (["train", "bad/nan.csv", "--target", "t"], "line 3, column 'b' is nan: NaN and inf"),
    (["train", "bad/blank.csv", "--target", "t"], "line 3, column 'b' is empty"),
    (["train", "bad/text.csv", "--target", "t"], "line 3, column 'b' is 'big', not a number"),
    (["train", "bad/one_class.csv", "--target", "t"], "a single value ('x')"),
    (["train", "flowers.csv", "--target", "kind"], "column 'id' is 'p0', not a number"),
    (["train", "flowers.csv", "--target", "kind", "--drop", "id", "--task", "regress"],
     "holds text, which a regression cannot predict"),
    (["train", "flowers.csv", "--target", "kind", "--drop", "id", "--early-stopping",
      "--validation-fraction", "0"], "--early-stopping needs validation data"),
    (["train", "flowers.csv", "--target", "kind", "--drop", "id", "--activation", "relu,tanh"],
     "activation lists one name per hidden layer"),
    (["train", "bad/vector.npy"], "must hold one non-empty 2-D array"),
    (["train", "values.npy", "--target", "9"], "no column 9; the array has 5 columns"),
    (["train", "values.npy", "--target", "last"], "--target is a column index"),
    (["train", "bad/noy.npz"], "needs arrays 'X' and 'y' (or --target NAME); it holds"),
    (["train", "labels.npz", "--target", "z"], "no array 'z'"),
    (["predict", "missing.cbp", "flowers.csv"], "missing.cbp: no such file"),
    (["predict", "bad/truncated.cbp", "flowers.csv"], "not a cbackprop model file"),
    (["predict", "bad/corrupted.cbp", "flowers.csv"], "corrupted"),
    (["predict", "bad/newer.cbp", "flowers.csv"], "newer cbackprop"),
    (["predict", "flowers.csv", "flowers.csv"], "flowers.csv: not a cbackprop model file"),
    (["predict", "flowers.cbp", "bad/header.csv"], "no data rows"),
    (["predict", "flowers.cbp", "values.npy"], "5 feature columns, the model takes 4"),
    (["predict", "flowers.cbp", "bad/nan.csv"], "feature column(s) ['petal'"),
    (["evaluate", "flowers.cbp", "flowers.csv", "--target", "nope"], "no target column 'nope'"),
    (["evaluate", "bad/truncated.cbp", "flowers.csv"], "not a cbackprop model file"),
    (["inspect", "bad/corrupted.cbp"], "corrupted"),
    (["inspect", "bad/newer.cbp"], "format version 99"),
    (["inspect", "bad"], "bad: is a directory"),
]


@pytest.mark.parametrize("args, message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_errors(work, bad_files, args, message):
    proc = run(*args, cwd=work)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    line = error_line(proc)
    assert message in line, line


def test_proba_of_a_regression_model(work, tmp_path):
    run("train", work / "values.npy", "--epochs", "1", "--quiet", "--out", tmp_path / "v.cbp",
        cwd=tmp_path)
    proc = run("predict", tmp_path / "v.cbp", work / "X" / "features.npy", "--proba",
               cwd=tmp_path)
    assert proc.returncode == 1
    assert "--proba needs a classifier" in error_line(proc)


def test_debug_shows_the_traceback(work, bad_files):
    proc = run("--debug", "predict", "bad/newer.cbp", "flowers.csv", cwd=work)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ModelFileError" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("cbackprop: error: ")
    after = run("inspect", "bad/newer.cbp", "--debug", cwd=work)   # after the command too
    assert after.returncode == 1 and "Traceback" in after.stderr


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["train"],
    ["train", "flowers.csv", "--hidden", "x,y"],
    ["train", "flowers.csv", "--epochs", "0"],
    ["train", "flowers.csv", "--validation-fraction", "1.5"],
    ["train", "flowers.csv", "--solver", "newton"],
    ["predict", "flowers.cbp"],
    ["bench", "--repeats", "-1"],
], ids=lambda a: " ".join(a) or "nothing")
def test_usage_errors(work, args):
    proc = run(*args, cwd=work)
    assert proc.returncode == 2
    assert "usage: cbackprop" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("cbackprop")


# ------------------------------------------------- a new user's first hour (issue 13)


def _wine_like(path, rng, m=120, index=True, header=""):
    """A CSV as pandas' df.to_csv writes it: an unnamed index column of 0..m-1 first."""
    X = rng.normal(size=(m, 3))
    y = np.array(["a", "b", "c"])[np.argmax(X, axis=1)]
    cols = ([header] if index else []) + ["f1", "f2", "f3", "cultivar"]
    rows = [([i] if index else []) + [*X[i].tolist(), y[i]] for i in range(m)]
    return write_csv(path, cols, rows)


@pytest.mark.parametrize("header", ["", "Unnamed: 0"])
def test_pandas_index_column_is_left_out(tmp_path, header):
    """df.to_csv("wine.csv"), then train: the index is not a feature; predicting on a CSV
    without it works."""
    rng = np.random.default_rng(0)
    _wine_like(tmp_path / "wine.csv", rng, header=header)
    proc = run("train", "wine.csv", "--target", "cultivar", "--epochs", "5", "--quiet",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Network([3, 25, 3]" in proc.stdout
    assert "note:" in proc.stderr and "pandas' index" in proc.stderr
    _wine_like(tmp_path / "new.csv", rng, index=False)
    proc = run("predict", "model.cbp", "new.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 121


@pytest.mark.parametrize("drop", ["", "Unnamed: 0", "0"])
def test_drop_takes_names_and_indices(tmp_path, drop):
    rng = np.random.default_rng(1)
    path = _wine_like(tmp_path / "w.csv", rng)
    rows = list(csv.reader(open(path)))
    for row in rows[1:]:
        row[0] = str(7 * int(row[0]) % 11)              # not index-like: only --drop removes it
    write_csv(path, rows[0], rows[1:])
    proc = run("train", "w.csv", "--target", "cultivar", "--epochs", "2", "--quiet",
               "--drop", drop, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Network([3, 25, 3]" in proc.stdout and "note:" not in proc.stderr
    help_text = run("train", "-h", cwd=tmp_path).stdout
    assert "names" in help_text and "indices" in help_text


def test_integer_labels_beyond_2_to_the_53_stay_apart(tmp_path):
    big = 2 ** 53
    write_csv(tmp_path / "big.csv", ["x", "label"],
              [[float(i % 2), big + i % 2] for i in range(40)])
    proc = run("train", "big.csv", "--target", "label", "--epochs", "3", "--quiet",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"2 classes ({big}, {big + 1})" in proc.stdout
    np.testing.assert_array_equal(cb.load(tmp_path / "model.cbp").classes_, [big, big + 1])


@pytest.mark.parametrize("args, expected", [
    (["--epoch", "10"], "did you mean --epochs?"),
    (["--learning-rat", "0.1"], "did you mean --learning-rate?"),
    (["--activation", "sigmod"], "did you mean sigmoid?"),
    (["--activation", "relu,tahn"], "did you mean tanh?"),
    (["--solver", "adma"], "did you mean adam?"),
])
def test_typos_are_usage_errors_with_a_suggestion(model, work, args, expected):
    proc = run("train", "flowers.csv", "--target", "kind", *args, cwd=work)
    assert proc.returncode == 2
    assert proc.stdout == ""                          # nothing ran: no task line
    assert "usage: cbackprop train" in proc.stderr and expected in proc.stderr
    proc = run("predict", model[0].name, "features.csv", "--prob", cwd=work)
    assert proc.returncode == 2 and "did you mean --proba?" in proc.stderr


def test_training_says_why_it_stopped(work, tmp_path):
    shutil.copy(work / "flowers.csv", tmp_path)
    base = ["train", "flowers.csv", "--target", "kind", "--drop", "id", "--quiet"]
    proc = run(*base, "--epochs", "3", cwd=tmp_path)
    assert "stopped: out of epochs (3)" in proc.stdout
    proc = run(*base, "--early-stopping", "--epochs", "500", cwd=tmp_path)
    assert "stopped early" in proc.stdout and "the best" in proc.stdout
    proc = run(*base, "--solver", "lbfgs", "--epochs", "1000", cwd=tmp_path)
    assert "converged" in proc.stdout
    # a rate of 50 blows up: the run says so, --quiet or not
    proc = run(*base, "--solver", "sgd", "--learning-rate", "50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "diverging" in proc.stdout
    assert "warning: training diverged or learned nothing" in proc.stderr


def test_defaults_agree_with_network_fit(tmp_path):
    from cbackprop import options
    text = run("train", "-h", cwd=tmp_path).stdout
    for name in ("epochs", "batch_size", "solver"):
        assert f"default {options.DEFAULTS[name]}, as Network.fit" in " ".join(text.split())


def test_estimator_file_predict_and_evaluate(tmp_path):
    """A BackpropClassifier fitted on a DataFrame and saved: the command line finds the CSV's
    columns by its feature names, and predicts its labels."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=["f1", "f2", "f3"])
    y = np.array(["a", "b", "c"])[np.argmax(X.values, axis=1)]
    clf = BackpropClassifier((8,), solver="lbfgs", random_state=0).fit(X, y)
    clf.save(tmp_path / "clf.cbp")
    X.assign(cultivar=y)[["cultivar", "f3", "f1", "f2"]].to_csv(tmp_path / "test.csv")
    proc = run("predict", "clf.cbp", "test.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[1:] == clf.predict(X).tolist()
    proc = run("evaluate", "clf.cbp", "test.csv", "--target", "cultivar", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"accuracy {100 * clf.score(X, y):.1f}%" in proc.stdout
