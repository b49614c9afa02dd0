"""Reliability: hostile model files, saves during fits, wide CSVs, numeric blow-ups,
answers that agree, clear errors (the reliability issue's Python-side items)."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import modelfile as cbio

# the children import the cbackprop these tests import (installed, or a build in place)
SRC = os.path.dirname(os.path.dirname(os.path.abspath(cb.__file__)))


def run_child(code, timeout=60):
    """Run code in a fresh interpreter (crash- or memory-prone cases); its CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def fitted_file(tmp_path, name="m.cbp"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "a", "b")
    net = cb.Network([3, 4, 2], output="softmax", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, solver="lbfgs", max_iter=5)
    path = tmp_path / name
    net.save(path)
    return path, net


def members(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(str(arrays["metadata"]))


def reseal(meta):
    meta["metadata_sha256"] = cbio._metadata_digest(meta)
    return np.array(json.dumps(meta))


def npy_header(descr, shape):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


# ------------------------------------------------------------------ item 1: the loader


def test_negative_shape_member_is_refused_with_bounded_memory(tmp_path):
    """A member declaring shape (-1,) in its header and the metadata, over 300 MB of
    deflated zeros: refused, and the load's peak memory grows by far less than that."""
    path, _ = fitted_file(tmp_path)
    arrays, meta = members(path)
    meta["arrays"]["history_loss"]["shape"] = [-1]
    arrays["metadata"] = reseal(meta)
    crafted = tmp_path / "crafted.cbp"
    with zipfile.ZipFile(crafted, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            if name == "history_loss":
                with zf.open("history_loss.npy", "w", force_zip64=True) as f:
                    f.write(npy_header("<f8", (-1,)))
                    block = bytes(1 << 20)
                    for _ in range(300):
                        f.write(block)
            else:
                with zf.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
    assert crafted.stat().st_size < 2 << 20
    out = run_child(f"""
        import resource, cbackprop as cb
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            cb.load({str(crafted)!r})
            print("LOADED")
        except cb.ModelFileError as exc:
            print("REFUSED", exc)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("GROWTH_MB", (after - before) / 1024)
    """, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and "non-negative" in out.stdout, out.stdout
    growth = float(out.stdout.split("GROWTH_MB")[1])
    assert growth < 100, out.stdout


def test_negative_shape_in_the_npy_header_alone_is_refused(tmp_path):
    path, _ = fitted_file(tmp_path)
    arrays, meta = members(path)
    crafted = tmp_path / "crafted.cbp"
    with zipfile.ZipFile(crafted, "w") as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w") as f:
                if name == "history_loss":
                    f.write(npy_header("<f8", (-1,)) + arr.tobytes())
                else:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
    with zipfile.ZipFile(crafted) as zf:
        reader = cbio._Reader(str(crafted), zf, crafted.stat().st_size)
        with pytest.raises(cb.ModelFileError, match="invalid shape"):
            reader.read("history_loss")
    with pytest.raises(cb.ModelFileError):
        cb.load(crafted)


def test_absurd_dimensions_are_refused_before_reading(tmp_path):
    path, _ = fitted_file(tmp_path)
    arrays, _ = members(path)
    crafted = tmp_path / "crafted.cbp"
    with zipfile.ZipFile(crafted, "w") as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w") as f:
                if name == "history_loss":     # 2**62 * 2**62 wraps to 0 in int64
                    f.write(npy_header("<f8", (2 ** 62, 2 ** 62)))
                else:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
    with zipfile.ZipFile(crafted) as zf:
        reader = cbio._Reader(str(crafted), zf, crafted.stat().st_size)
        with pytest.raises(cb.ModelFileError, match="larger than its file entry"):
            reader.read("history_loss")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.cbp"
    os.mkfifo(fifo)
    for target in (str(fifo), "/dev/zero"):
        if not os.path.exists(target):
            continue
        out = run_child(f"""
            import cbackprop as cb
            for call in (cb.load, cb.modelfile.read_metadata):
                try:
                    call({target!r})
                except cb.ModelFileError as exc:
                    print("REFUSED", exc)
        """, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("not a regular file") == 2, out.stdout


def test_bytes_and_pathlike_paths(tmp_path):
    path, net = fitted_file(tmp_path)
    for p in (path, os.fsencode(str(path)), str(path)):
        np.testing.assert_array_equal(cb.load(p).params, net.params)
    net.save(os.fsencode(str(tmp_path / "b.cbp")))
    np.testing.assert_array_equal(cb.load(tmp_path / "b.cbp").params, net.params)
    assert cbio.read_metadata(os.fsencode(str(path)))["format"] == cbio.FORMAT
    with pytest.raises(TypeError, match="path"):
        cb.load(3.5)


def test_metadata_over_the_limit_says_so(tmp_path):
    path, _ = fitted_file(tmp_path)
    arrays, meta = members(path)
    meta["info"] = {"pad": "x" * (5 << 20)}          # 20 MiB as a NumPy unicode array
    arrays["metadata"] = reseal(meta)
    big = tmp_path / "big.cbp"
    with open(big, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(cb.ModelFileError, match="16 MiB") as err:
        cb.load(big)
    assert "more than the file holds" not in str(err.value)


def test_duplicate_members_are_refused(tmp_path):
    path, net = fitted_file(tmp_path)
    arrays, _ = members(path)
    dup = tmp_path / "dup.cbp"
    with pytest.warns(UserWarning):
        with zipfile.ZipFile(dup, "w") as zf:
            for name, arr in arrays.items():
                with zf.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
            with zf.open("Theta1.npy", "w") as f:
                np.lib.format.write_array(f, arrays["Theta1"] * 0, allow_pickle=False)
    with pytest.raises(cb.ModelFileError, match="duplicate members.*Theta1"):
        cb.load(dup)


@pytest.mark.parametrize("kind", ["regression", "matrix"])
def test_target_kind_inconsistent_with_the_arrays_is_refused(tmp_path, kind):
    path, _ = fitted_file(tmp_path)
    arrays, meta = members(path)
    meta["target"]["kind"] = kind                       # a classifier with classes
    arrays["metadata"] = reseal(meta)
    bad = tmp_path / "bad.cbp"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(cb.ModelFileError, match="inconsistent"):
        cb.load(bad)


def test_recomputed_checksums_are_not_a_signature(tmp_path):
    """Documented: a checksum catches corruption and plain edits, not a forger who
    recomputes the digests (README's Model files, modelfile's docstring)."""
    path, net = fitted_file(tmp_path)
    arrays, meta = members(path)
    arrays["Theta1"] = arrays["Theta1"] + 1.0
    meta["arrays"]["Theta1"]["sha256"] = cbio._sha256(arrays["Theta1"])
    arrays["metadata"] = reseal(meta)
    forged = tmp_path / "forged.cbp"
    with open(forged, "wb") as f:
        np.savez(f, **arrays)
    np.testing.assert_array_equal(cb.load(forged).thetas[0], arrays["Theta1"])
    assert "not a signature" in cbio.__doc__
    # README.md sits next to tests/ (in CI: copied beside them by .ci/run)
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "README.md")).read()
    assert "not a signature" in readme


# ------------------------------------------------------------- item 2: a save during a fit


def test_saves_during_a_fit_on_another_thread_all_load(tmp_path):
    import threading
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 20))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    net = cb.Network([20, 64, 2], output="softmax", random_state=0)
    done = threading.Event()

    def train():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net.fit(X, y, solver="online", learning_rate=0.01, epochs=40)
        finally:
            done.set()

    worker = threading.Thread(target=train)
    worker.start()
    paths = []
    while not done.is_set() or not paths:
        path = tmp_path / f"m{len(paths)}.cbp"
        net.save(path)
        paths.append(path)
    worker.join()
    assert len(paths) > 3
    for path in paths:
        cb.load(path)                      # never "Theta1 fails its checksum"


def test_save_hashes_the_copy_it_writes(tmp_path, monkeypatch):
    """Deterministic form: parameters changed between hashing and writing do not reach
    the file (the live arrays are neither hashed nor written)."""
    path, net = fitted_file(tmp_path)
    real_savez = np.savez

    def savez_after_a_step(f, **arrays):
        net.params[...] += 1.0           # what a fit on another thread would do
        return real_savez(f, **arrays)

    monkeypatch.setattr(cbio.np, "savez", savez_after_a_step)
    before = net.params.copy()
    net.save(tmp_path / "race.cbp")
    monkeypatch.undo()
    np.testing.assert_array_equal(cb.load(tmp_path / "race.cbp").params, before)


# ------------------------------------------------------------ item 3: wide CSV files


def test_wide_csv_features_and_drop_are_not_quadratic(tmp_path):
    """60000 columns looked up by name (a model's features, and --drop): linear work, in a
    child process with a generous timeout (quadratic lookups took minutes)."""
    n = 60000
    names = [f"f{j}" for j in range(n)]
    path = tmp_path / "wide.csv"
    with open(path, "w") as f:
        f.write(",".join(names + ["y"]) + "\n")
        for r in range(3):
            f.write(",".join(["1"] * n + [str(r % 2)]) + "\n")
    out = run_child(f"""
        import time
        from cbackprop.cli import data
        names = [f"f{{j}}" for j in range(60000)]
        t0 = time.perf_counter()
        d = data.read_data({str(path)!r}, target="y", features=names[::-1])
        assert d.X.shape == (3, 60000) and d.features == names[::-1]
        d = data.read_data({str(path)!r}, target="y", drop=names[:-10])
        assert d.features == names[-10:]
        print("OK", time.perf_counter() - t0)
    """, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


# ------------------------------------------------ item 5: one decision rule everywhere


def _tie(net):
    """Last layer's weights and bias 0: every output unit gives h = 0.5 exactly."""
    net.thetas[-1][...] = 0.0


@pytest.mark.parametrize("multilabel", [False, True])
def test_a_tie_at_one_half_gets_the_same_answer_everywhere(tmp_path, multilabel):
    pytest.importorskip("sklearn")
    from cbackprop.sklearn import BackpropClassifier
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (np.c_[X[:, 0] > 0, X[:, 1] > 0].astype(int) if multilabel
         else np.where(X[:, 0] > 0, "yes", "no"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = BackpropClassifier((4,), activation="logistic", solver="lbfgs", max_iter=3,
                                 random_state=0).fit(X, y)
    _tie(est.network_)
    assert np.all(est.network_.forward(X) == 0.5)
    expected = (np.ones((30, 2), dtype=np.int64) if multilabel
                else np.full(30, "yes"))              # h >= 0.5: the second class, label on
    np.testing.assert_array_equal(est.predict(X), expected)
    net_pred = est.network_.predict(X)
    est.network_.save(tmp_path / "tie.cbp")
    file_pred = cb.load(tmp_path / "tie.cbp").predict(X)
    if not multilabel:
        net_pred, file_pred = est.classes_[net_pred], est.classes_[file_pred]
    np.testing.assert_array_equal(net_pred, expected)
    np.testing.assert_array_equal(file_pred, expected)


def _train_on_a_csv(tmp_path, rows, *options):
    """(a CSV of rows samples a,b -> cat/dog, the model `cbackprop train` made of it)."""
    from cbackprop.cli import main
    X = np.random.default_rng(0).normal(size=(rows, 2))
    path = tmp_path / "d.csv"
    with open(path, "w") as f:
        f.write("a,b,y\n")
        for r in range(rows):
            f.write(f"{X[r, 0]},{X[r, 1]},{'cat' if X[r, 0] > 0 else 'dog'}\n")
    model = tmp_path / "m.cbp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train", str(path), "--target", "y", "--hidden", "3", *options, "--quiet",
              "--out", str(model)])
    return path, model


def test_a_tie_at_one_half_on_the_command_line(tmp_path):
    from cbackprop.cli import main
    path, model = _train_on_a_csv(tmp_path, 30, "--solver", "lbfgs", "--epochs", "3",
                                  "--output", "sigmoid")
    net = cb.load(model)
    assert net.layer_sizes[-1] == 1
    _tie(net)
    net.save(model)
    out = tmp_path / "p.csv"
    main(["predict", str(model), str(path), "--out", str(out)])
    lines = open(out).read().split()
    assert set(lines[1:]) == {"dog"}, lines[:3]        # classes [cat, dog]: h >= 0.5 -> dog


# ------------------------------------------------------- item 7: huge batch sizes


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_batch_size_beyond_a_c_int_is_clipped_to_the_samples(solver):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 3))
    y = (X[:, 0] > 0).astype(int)
    a = cb.Network([3, 4, 2], output="softmax", random_state=0)
    b = cb.Network([3, 4, 2], output="softmax", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(X, y, solver=solver, batch_size=2 ** 31, epochs=3, random_state=0)
        b.fit(X, y, solver=solver, batch_size=25, epochs=3, random_state=0)
    np.testing.assert_array_equal(a.params, b.params)


# ------------------------------------------------------- item 4: numeric blow-ups


def _data(m=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(m, 3))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("solver", ["online", "adam", "rprop"])
def test_divergence_restores_the_last_epoch_that_ended_well(solver):
    """The snapshot that divergence restores alternates between two buffers (the next one
    written as the epoch's parameters are tested): after several good epochs it is still
    the last good epoch's parameters, bit for bit."""
    X, y = _data()
    net = cb.Network([3, 4, 2], output="softmax", random_state=0)
    seen = {}

    def spoil(net, epoch, logs):
        if epoch == 3:
            seen["params"] = net.params.copy()
            net.params[5] = np.nan                   # the next epoch's cost is NaN
    with pytest.raises(FloatingPointError, match="diverged in epoch 4"):
        net.fit(X, y, solver=solver, epochs=10, callback=spoil)
    np.testing.assert_array_equal(net.params, seen["params"])


def test_online_sgd_with_a_huge_rate_is_divergence():
    X, y = _data()
    net = cb.Network([3, 4, 2], output="softmax", random_state=0)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="diverged.*learning_rate"):
        net.fit(X, y, solver="online", learning_rate=1e300, epochs=3)
    assert np.isfinite(net.params).all() and np.abs(net.params).max() < 1e100
    np.testing.assert_array_equal(net.params, before)      # restored


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "online"])
def test_sample_weights_whose_sum_overflows_are_refused(solver):
    X, y = _data()
    net = cb.Network([3, 4, 2], output="softmax", random_state=0)
    with pytest.raises(ValueError, match="sample_weight"):
        net.fit(X, y, sample_weight=np.full(40, 1e308), solver=solver, epochs=2, max_iter=2)
    with pytest.raises(ValueError, match="sample_weight"):
        net.cost_and_gradient(X, np.eye(2)[y], sample_weight=np.full(40, 1e308))


def test_a_huge_lam_blames_lam_not_the_learning_rate():
    X, y = _data()
    for solver in ("online", "lbfgs", "adam"):
        net = cb.Network([3, 4, 2], output="softmax", random_state=0)
        with pytest.raises(FloatingPointError, match="lam=1e\\+308") as err:
            net.fit(X, y, solver=solver, lam=1e308, epochs=3, max_iter=3)
        assert "smaller learning_rate" not in str(err.value)
        assert np.isfinite(net.params).all()


def test_float32_huge_lam_is_divergence_in_fit():
    X, y = _data()
    net = cb.Network([3, 4, 2], output="softmax", dtype="float32", random_state=0)
    with pytest.raises(FloatingPointError, match="lam"):
        net.fit(X, y, solver="lbfgs", lam=1e300, max_iter=3)
    assert np.isfinite(net.params).all()


# ------------------------------------------------------- item 6: errors that confuse


def test_a_fit_from_its_own_callback_is_refused_clearly():
    X, y = _data()
    net = cb.Network([3, 4, 2], output="softmax", random_state=0)

    def callback(n, epoch, logs):
        n.fit(X, y, solver="adam", epochs=1)

    with pytest.raises(RuntimeError, match="already being fitted"):
        net.fit(X, y, solver="adam", epochs=2, callback=callback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, solver="adam", epochs=1)            # the guard is released


def test_negative_random_state_names_the_argument():
    X, y = _data()
    with pytest.raises(ValueError, match="random_state"):
        cb.Network([3, 4, 2], output="softmax", random_state=0).fit(X, y, random_state=-1)


def test_predict_out_dash_writes_to_stdout(tmp_path, capsys, monkeypatch):
    from cbackprop.cli import main
    path, model = _train_on_a_csv(tmp_path, 20, "--epochs", "2")
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    main(["predict", str(model), str(path), "--out", "-"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 21
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("where", ["X", "y", "sample_weight"])
def test_masked_arrays_are_refused(where):
    """np.asarray drops a mask: the hidden values would be trained on."""
    import cbackprop as cb
    X = np.ma.masked_array(np.ones((6, 2)), mask=np.zeros((6, 2), bool))
    y = np.ma.masked_array(np.arange(6) % 2, mask=[0, 0, 1, 0, 0, 0])
    w = np.ma.masked_array(np.ones(6), mask=[0, 1, 0, 0, 0, 0])
    args = dict(X=np.ones((6, 2)), y=np.arange(6) % 2, sample_weight=None)
    args[where] = {"X": X, "y": y, "sample_weight": w}[where]
    net = cb.Network([2, 3, 1], random_state=0)
    with pytest.raises(TypeError, match="masked"):
        net.fit(args["X"], args["y"], sample_weight=args["sample_weight"], epochs=1)


# ------------------------------------- the compiled core and its threads (items 3, 4, 5, 10)


def _noise(m, n=64, k=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, n)), rng.integers(0, k, size=m)


def test_ctrl_c_stops_the_main_threads_fit_only(sigint_outside_fit):
    """Item 4: a SIGINT during the main thread's fit stops that fit (TrainingInterrupted),
    never a fit running in another thread: the worker runs until its callback stops it,
    with no SystemError. (The stop flag was global: the worker's fit ended early, without
    a warning, or raised SystemError.) The main fit's callback sleeps after each epoch, so
    that its stop request stays up for a while with the worker's loop polling."""
    import signal
    import threading
    import time
    Xw, yw = _noise(20000, seed=1)
    Xm, ym = _noise(2000, seed=2)
    worker_net = cb.Network([64, 30, 10], random_state=0)
    main_net = cb.Network([64, 30, 10], random_state=0)
    main_done, worker_running = threading.Event(), threading.Event()
    worker = {"stopped_at": None, "error": None}

    def worker_callback(net, epoch, logs):
        worker_running.set()
        if main_done.is_set() and worker["stopped_at"] is None:
            worker["stopped_at"] = epoch + 2         # two more epochs after the main fit
        return False if epoch == worker["stopped_at"] else None

    def train():
        try:
            worker_net.fit(Xw, yw, solver="adam", epochs=10**6, batch_size=16,
                           learning_rate=1e-4, callback=worker_callback, random_state=0,
                           n_iter_no_change=10**6)
        except BaseException as e:             # SystemError, or the fit ending early
            worker["error"] = e

    thread = threading.Thread(target=train)
    with pytest.warns(cb.TrainingInterrupted) as record:
        thread.start()
        assert worker_running.wait(30)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            main_net.fit(Xm, ym, solver="online", epochs=10**4, learning_rate=0.01,
                         callback=lambda *a: time.sleep(0.3), random_state=0,
                         n_iter_no_change=10**6)
        finally:
            timer.cancel()
            timer.join()
            main_done.set()
        thread.join(120)
    assert not thread.is_alive()
    assert worker["error"] is None, repr(worker["error"])
    assert sigint_outside_fit == [], "the signal arrived after the main fit returned"
    assert main_net.n_iter_ < 10**4
    assert worker["stopped_at"] is not None, (
        f"the worker's fit ended after {worker_net.n_iter_} epochs, before the main fit did")
    assert worker_net.n_iter_ == worker["stopped_at"], "the worker's fit ended early"
    interrupted = [w for w in record if issubclass(w.category, cb.TrainingInterrupted)]
    assert len(interrupted) == 1, [str(w.message) for w in interrupted]


def test_a_forked_child_runs_forward_single_threaded():
    """Item 5: after forward ran on 2 OpenMP threads, a forked child's forward blocked
    forever (libgomp's pool does not survive fork). Now the child runs on one thread and
    gets the parent's numbers. In a child interpreter, which forks a grandchild."""
    code = """
        import multiprocessing as mp, sys
        import numpy as np, cbackprop as cb
        from cbackprop._core import core
        rng = np.random.default_rng(0)
        X, Y = rng.normal(size=(4000, 64)), np.eye(10)[rng.integers(0, 10, 4000)]
        net = cb.Network([64, 30, 10], random_state=0)
        net.n_threads = 2
        assert net._row_plan(4000)[0] == 2
        h = net.forward(X)                               # one thread or two (after a pause)
        J, grads = net.cost_and_gradient(X, Y, 0.1)      # 2 OpenMP threads

        def child(queue):
            h_child = net.forward(X)                     # hung here
            J_child = net.cost_and_gradient(X, Y, 0.1)[0]
            # the core itself, asked for 2 threads, runs on one
            h_core = core.forward(net._layout, X, net.params, np.empty_like(h), 256, 2)
            g = np.zeros_like(net.params)
            core.cost_grad(net._layout, X, Y, np.empty(0), net.params, g, 4000.0, 0.0, 256, 2)
            np.testing.assert_array_equal(h_core, h_child)
            queue.put((core.forked_child(), net._row_plan(4000)[0], h_child, J_child))

        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        p = ctx.Process(target=child, args=(queue,))
        p.start()
        try:                        # read before join: the child's queue flushes at its exit
            forked, threads, h_child, J_child = queue.get(timeout=30)
        except Exception:
            p.kill()
            sys.exit("the forked child hung")
        p.join(30)
        assert forked and threads == 1 and not core.forked_child()
        np.testing.assert_allclose(h_child, h, rtol=1e-12)
        assert abs(J_child - J) <= 1e-12 * abs(J)
        print("ok")
    """
    result = run_child(code, timeout=90)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_a_forked_child_does_not_wait_for_a_lock_another_thread_held():
    """Item 5's sibling: BLAS's thread hold (threads.py) takes a lock; a fork while another
    thread held it left the child's copy locked forever."""
    code = """
        import multiprocessing as mp, sys, threading
        from cbackprop._core import threads
        held, release = threading.Event(), threading.Event()

        def hold():
            with threads._lock:
                held.set()
                release.wait()

        t = threading.Thread(target=hold)
        t.start()
        held.wait()

        def child():
            with threads.blas_single_threaded(True):
                pass

        p = mp.get_context("fork").Process(target=child)
        p.start()
        p.join(20)
        release.set()
        t.join()
        if p.is_alive():
            p.kill()
            sys.exit("the forked child hung")
        sys.exit(p.exitcode)
    """
    result = run_child(code, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_n_threads_beyond_the_cores_is_capped_with_a_warning():
    """Item 10: n_threads=10**6 started that many threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    X, y = _noise(3000)
    net = cb.Network([64, 30, 10], random_state=0)
    net.n_threads = 1
    h1 = net.forward(X)
    net.n_threads = 10 ** 6
    with pytest.warns(UserWarning, match=f"n_threads=1000000 .* {cores} cores"):
        threads, _ = net._row_plan(10 ** 7)
    assert threads == cores
    with pytest.warns(UserWarning, match="n_threads"):
        h = net.forward(X)
    np.testing.assert_allclose(h, h1, rtol=1e-12)
    net.n_threads = cores
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.forward(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cost_and_gradient_refuse_a_lam_that_overflows(dtype):
    """Item 8: float32 with lam=1e300 returned inf gradients silently (and NaN where a
    weight is 0); now a FloatingPointError naming lam, as fit reports it."""
    X, y = _data()
    Y = np.eye(2)[y]
    net = cb.Network([3, 4, 2], output="softmax", dtype=dtype, random_state=0)
    # lam / W beyond the dtype's range: float32 from 3.4e38, float64 once W is small
    huge, w = (1e300, None) if dtype == "float32" else (1e308, np.full(40, 0.01))
    for call in (net.cost_and_gradient, net.cost):
        with pytest.raises(FloatingPointError, match=f"lam={huge:g}".replace("+", "\\+")):
            call(X, Y, lam=huge, sample_weight=w)
    net.params = np.zeros_like(net.params)             # inf * 0: NaN, refused too
    with pytest.raises(FloatingPointError, match="lam"):
        net.cost_and_gradient(X, Y, lam=huge, sample_weight=w)
    # a large lam whose terms stay in range is computed as before
    net = cb.Network([3, 4, 2], output="softmax", dtype=dtype, random_state=0)
    lam = 1e30 if dtype == "float32" else 1e290
    J, grads = net.cost_and_gradient(X, Y, lam=lam, sample_weight=np.full(40, 1.0))
    assert np.isfinite(J) and all(np.isfinite(g).all() for g in grads)
    ref, _ = cb.reference.cost_and_gradient(net.thetas, X, Y, lam, output="softmax")
    assert np.isclose(J, ref, rtol=1e-5)


BIG = os.environ.get("CBACKPROP_BIG_TESTS", "") not in ("", "0")


@pytest.mark.skipif(not BIG, reason="set CBACKPROP_BIG_TESTS=1: a pass over 2**31 + 8 rows "
                    "(20 to 30 s a call on 2 cores; forward needs 9 GB of memory for its output)")
def test_more_rows_than_a_c_int_through_the_network():
    """Item 3, whole: cost_and_gradient and forward over 2**31 + 8 rows of float32, X and
    Y zero pages but for rows on both sides of 2**31, in a child. Row counts were C ints:
    at 2**32 + 8 rows forward computed 8 rows, then the core refused more than 2**31 - 1."""
    code = """
        import os, numpy as np, cbackprop as cb
        m = 2 ** 31 + 8
        X, Y = np.zeros((m, 1), np.float32), np.zeros((m, 1), np.float32)
        rows = [0, 2 ** 31 - 1, 2 ** 31, m - 1]
        X[rows, 0], Y[rows, 0] = [1, 2, 3, 4], [0, 1, 0, 2]
        net = cb.Network([1, 1], output="identity", loss="squared_error", dtype="float32")
        net.params = [0.0, 0.5]
        J, (g,) = net.cost_and_gradient(X, Y)
        x, y = np.array([1, 2, 3, 4.0]), np.array([0, 1, 0, 2.0])
        r = 0.5 * x - y                                  # every other row: h = y = 0
        assert np.isclose(J, 0.5 * (r ** 2).sum() / m, rtol=1e-5), J
        np.testing.assert_allclose(g[0], [r.sum() / m, (r * x).sum() / m], rtol=1e-5)
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if free > 12 * 2 ** 30:                          # out: 8.6 GB, all written
            h = net.forward(X)
            assert h.shape == (m, 1) and (h[rows, 0] == 0.5 * x).all(), h[rows, 0]
            assert h[2 ** 31 + 1:m - 1].max() == 0 and h[1:2 ** 31 - 1:2 ** 20].max() == 0
            print("forward checked")
        print("ok")
    """
    result = run_child(code, timeout=600)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
