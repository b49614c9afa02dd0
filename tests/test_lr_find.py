"""The learning-rate range test (issue 16): cb.lr_find and `cbackprop lr-find`."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cbackprop as cb


@pytest.fixture
def data(rng):
    X = rng.normal(size=(300, 6))
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    return X, y


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_lr_find_runs_the_range_and_leaves_the_network(solver, data):
    X, y = data
    net = cb.Network([6, 8, 3], output="softmax", random_state=0)
    before = net.params.copy()
    found = cb.lr_find(net, X, y, min_lr=1e-5, max_lr=10.0, steps=60, solver=solver,
                       random_state=0)
    np.testing.assert_array_equal(net.params, before)      # a copy ran, not net
    assert net.classes_ is None and not hasattr(net, "history_")
    assert 3 <= len(found.rates) <= 60 and len(found.losses) == len(found.rates)
    assert found.rates[0] == pytest.approx(1e-5)
    assert np.all(np.diff(found.rates) > 0)
    assert 1e-5 <= found.suggestion <= 10.0 and found.suggestion in found.rates
    if not found.diverged:
        assert found.rates[-1] == pytest.approx(10.0)
    again = cb.lr_find(net, X, y, min_lr=1e-5, max_lr=10.0, steps=60, solver=solver,
                       random_state=0)
    np.testing.assert_array_equal(again.losses, found.losses)      # the same seed, the same run


def test_lr_find_stops_when_the_loss_explodes(rng):
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5]
    net = cb.Network([3, 4, 1], activation="identity", output="identity",
                     loss="squared_error", random_state=0)
    found = cb.lr_find(net, X, y, min_lr=1e-4, max_lr=1e3, steps=80, solver="sgd",
                       momentum=0.0, random_state=0)
    assert found.diverged and len(found.rates) < 80
    assert found.suggestion < found.rates[-1]


def test_lr_find_plot(data, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = data
    found = cb.lr_find(cb.Network([6, 4, 3], output="softmax", random_state=0), X, y,
                       steps=20, random_state=0)
    from cbackprop.plot import lr_curve
    fig = lr_curve(found, path=tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 0 and fig.axes[0].get_xscale() == "log"
    with pytest.raises(TypeError, match="lr_find's result"):
        lr_curve({"rates": []})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(min_lr=0), ValueError, "min_lr must be a positive finite number"),
    (dict(max_lr=np.inf), ValueError, "max_lr must be a positive finite number"),
    (dict(min_lr=1.0, max_lr=0.1), ValueError, "min_lr must be below max_lr"),
    (dict(steps=2), ValueError, "steps must be at least 3"),
    (dict(steps=1.5), ValueError, "steps must be an int >= 1"),
    (dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
    (dict(solver="lbfgs"), ValueError, "mini-batch solvers"),
    (dict(smoothing=1.0), ValueError, "smoothing must be in"),
    (dict(diverge=1.0), ValueError, "diverge must be > 1"),
    (dict(learning_rate=0.1), TypeError, "lr_find sets learning_rate itself"),
    (dict(momentum=2.0), ValueError, "momentum"),
])
def test_lr_find_bad_arguments(kwargs, error, message, data):
    X, y = data
    net = cb.Network([6, 4, 3], output="softmax", random_state=0)
    before = net.params.copy()
    with pytest.raises(error, match=message):
        cb.lr_find(net, X, y, steps=kwargs.pop("steps", 10), **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_lr_find_bad_data(data):
    X, y = data
    net = cb.Network([6, 4, 3], output="softmax", random_state=0)
    with pytest.raises(ValueError, match="one row per sample"):
        cb.lr_find(net, X, y[:-1])
    with pytest.raises(ValueError, match="X contains NaN"):
        bad = X.copy()
        bad[:, 0] = np.nan
        cb.lr_find(net, bad, y, steps=5)


def test_the_command(tmp_path, data):
    X, y = data
    np.savez(tmp_path / "d.npz", X=X, y=np.argmax(X[:, :3], axis=1))
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=str(Path(cb.__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-m", "cbackprop", "lr-find", "d.npz", "--steps",
                           "30", "--solver", "adam", "--plot", "lr.png"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "suggested learning rate: " in proc.stdout and (tmp_path / "lr.png").exists()
    rate = float(proc.stdout.split("suggested learning rate: ")[1].split()[0])
    assert 1e-6 <= rate <= 1.0
    bad = subprocess.run([sys.executable, "-m", "cbackprop", "lr-find", "d.npz", "--min-lr",
                          "0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--min-lr: must be a positive number" in bad.stderr
