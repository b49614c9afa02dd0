"""Gradient clipping by global norm (clip_norm) and decoupled weight decay (weight_decay) of
the mini-batch solvers (issue 16): the compiled step against reference.minibatch_epoch, the
sparse path (the first layer's weights kept apart) against the dense one, and the refusals.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cbackprop as cb
from cbackprop import reference as ref
from cbackprop._core import core

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

TOL = {"float64": 1e-10, "float32": 1e-4}
CONFIGS = [("tanh", "softmax", "cross_entropy"), ("relu", "identity", "squared_error")]


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _problem(rng, sizes, output, m=50):
    X = rng.normal(size=(m, sizes[0]))
    if output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    else:
        Y = rng.normal(size=(m, sizes[-1]))
    return X, Y, rng.uniform(0.3, 2.0, m)


def _reference_fit(net, X, Y, w, epochs, **o):
    """reference.minibatch_epoch for epochs in sample order (fit with shuffle=False)."""
    thetas, state = [t.astype(np.float64) for t in net.thetas], None
    for _ in range(epochs):
        thetas, state, J = ref.minibatch_epoch(
            thetas, X, Y, np.arange(X.shape[0]), o["learning_rate"], o["batch_size"],
            o["solver"], o["lam"], net.activation, net.output, net.loss, sample_weight=w,
            state=state, momentum=o.get("momentum", 0.9), clip_norm=o.get("clip_norm"),
            weight_decay=o.get("weight_decay", 0.0))
    return np.concatenate([t.ravel() for t in thetas]), J


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c[0])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("extras", [{}, {"clip_norm": 0.05}, {"weight_decay": 0.3},
                                    {"clip_norm": 0.05, "weight_decay": 0.3}],
                         ids=["plain", "clip", "decay", "both"])
def test_fit_matches_the_reference_epoch(rng, dtype, config, solver, extras):
    """Every batch clipped (clip_norm well below the gradients' norms), lam's term inside the
    norm, decay on the weights only; three layers with biases; the last batch short."""
    act, out, loss = config
    X, Y, w = _problem(rng, [5, 7, 3], out)
    net = cb.Network([5, 7, 3], activation=act, output=out, loss=loss, dtype=dtype,
                     random_state=0)
    start = net.params.copy()
    o = dict(solver=solver, learning_rate=0.05, batch_size=16, lam=0.4, **extras)
    expected, J = _reference_fit(net, X, Y, w, 3, **o)
    net.fit(X, Y, sample_weight=w, epochs=3, shuffle=False, tol=0.0, **o)
    assert net.n_iter_ == 3
    assert _rel(net.params, expected) <= TOL[dtype]
    assert net.history_["loss"][-1] == pytest.approx(J, rel=TOL[dtype])
    assert not np.array_equal(net.params, start)


def test_the_reference_is_the_plain_update_without_extras(rng):
    """reference.minibatch_epoch's Adam, written out for one batch of all the samples."""
    X, Y, w = _problem(rng, [4, 5, 3], "softmax", m=20)
    thetas = [t.copy() for t in cb.Network([4, 5, 3], output="softmax", random_state=0).thetas]
    out, (m1, m2, t), _ = ref.minibatch_epoch(thetas, X, Y, np.arange(20), 0.1, 20, "adam",
                                              0.5, "sigmoid", "softmax", sample_weight=w)
    _, grads = ref.cost_and_gradient(thetas, X, Y, 0.5, "sigmoid", "softmax",
                                     sample_weight=w)
    for theta, g, new in zip(thetas, grads, out):
        step = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-8)
        assert np.allclose(new, theta - step, rtol=1e-12, atol=1e-15)
    assert t == 1


def test_clipping_bounds_the_step_and_a_large_norm_changes_nothing(rng):
    """Plain SGD, one batch: a clipped step is rate * clip_norm long; a clip_norm above the
    gradient's norm gives the unclipped fit's bits."""
    X, Y, w = _problem(rng, [6, 8, 3], "softmax", m=30)
    o = dict(solver="sgd", momentum=0.0, learning_rate=0.5, batch_size=30, epochs=1,
             shuffle=False, lam=0.2)
    runs = {}
    for clip in (None, 1e-3, 1e6):
        net = cb.Network([6, 8, 3], output="softmax", random_state=1)
        start = net.params.copy()
        net.fit(X, Y, sample_weight=w, clip_norm=clip, **o)
        runs[clip] = net.params - start
    assert np.linalg.norm(runs[1e-3]) == pytest.approx(0.5 * 1e-3, rel=1e-10)
    assert np.array_equal(runs[1e6], runs[None])


def test_weight_decay_never_touches_the_biases(rng):
    """Zero gradient (lam 0, a zero learning signal from targets equal to the outputs is
    hard to make; instead: a rate whose decay halves the weights, compared against a fit
    without decay: the biases agree, the weights do not)."""
    X, Y, w = _problem(rng, [4, 6, 2], "softmax", m=24)
    nets = []
    for decay in (0.0, 0.5):
        net = cb.Network([4, 6, 2], output="softmax", random_state=2)
        net.fit(X, Y, solver="sgd", momentum=0.0, learning_rate=1e-9, batch_size=24,
                epochs=1, weight_decay=decay * 1e9, shuffle=False)
        nets.append(net)
    for plain, decayed in zip(nets[0].thetas, nets[1].thetas):
        assert np.allclose(decayed[:, 0], plain[:, 0], rtol=1e-12)
        assert np.allclose(decayed[:, 1:], 0.5 * plain[:, 1:], rtol=1e-6)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sparse_first_layer_kept_apart_clips_and_decays_as_dense(solver):
    """The sparse epoch's W(1), kept transposed and stepped in parts by threads: its share of
    the norm and its decay, the same bits for any thread count, the dense path's to
    rounding, and the reference's (a first layer of two parts)."""
    X = sp.random(120, 3000, density=0.01, random_state=0, format="csr")
    Y = np.eye(3)[np.arange(120) % 3]
    net = cb.Network([3000, 24, 3], output="softmax", random_state=0)
    order = np.random.default_rng(0).permutation(120).astype(np.intp)
    rule = core.StepRule(solver, 0.01, momentum=0.9, nesterov=True, clip_norm=0.02,
                         weight_decay=0.5)
    runs = []
    for data, n_threads in ((net._check_X(X), 1), (net._check_X(X), 2), (X.toarray(), 1)):
        params = net.params.copy()
        state = core.StepState(np.zeros_like(params), np.zeros_like(params))
        for _ in range(2):
            total, done, status = core.minibatch_epoch(
                net._layout, rule, state, data, Y, np.empty(0), params, order, 16, 1.0,
                0.3 / 120, 1000, n_threads=n_threads)
        runs.append((params, total))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert _rel(runs[0][0], runs[2][0]) <= 1e-10
    thetas, state = [t.copy() for t in net.thetas], None
    for _ in range(2):
        thetas, state, _ = ref.minibatch_epoch(thetas, X.toarray(), Y, order, 0.01, 16, solver,
                                               0.3, "sigmoid", "softmax", state=state,
                                               clip_norm=0.02, weight_decay=0.5)
    assert _rel(runs[0][0], np.concatenate([t.ravel() for t in thetas])) <= 1e-10


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "rprop", "online"])
@pytest.mark.parametrize("option", [{"clip_norm": 1.0}, {"weight_decay": 0.01}])
def test_other_solvers_refuse_them(rng, solver, option):
    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=20)
    net = cb.Network([4, 5, 3], output="softmax", random_state=0)
    start = net.params.copy()
    with pytest.raises(ValueError, match=f"{next(iter(option))} apply to the mini-batch "
                                         "solvers 'sgd' and 'adam'"):
        net.fit(X, Y, solver=solver, epochs=1, **option)
    assert np.array_equal(net.params, start)


@pytest.mark.parametrize("option, match", [
    ({"clip_norm": 0.0}, r"clip_norm must be in \(0, inf\]"),
    ({"clip_norm": -1}, r"clip_norm must be in \(0, inf\]"),
    ({"clip_norm": np.inf}, "clip_norm must be a finite real number"),
    ({"weight_decay": -0.1}, r"weight_decay must be in \[0, inf\]"),
])
def test_bad_values_are_refused(rng, option, match):
    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=20)
    with pytest.raises(ValueError, match=match):
        cb.Network([4, 5, 3], output="softmax").fit(X, Y, solver="adam", **option)


def test_estimators_and_command_line_take_them(rng, tmp_path):
    from cbackprop.sklearn import BackpropClassifier, BackpropRegressor

    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=40)
    y = Y.argmax(axis=1)
    base = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = BackpropClassifier(**base).fit(X, y)
        clipped = BackpropClassifier(**base, clip_norm=0.01, weight_decay=0.1).fit(X, y)
        BackpropRegressor(**base, solver="sgd", clip_norm=1.0).fit(X, X[:, 0])
    assert not np.allclose(plain.coefs_[0], clipped.coefs_[0])
    with pytest.raises(ValueError, match="clip_norm apply to the mini-batch solvers"):
        BackpropClassifier(**base, solver="lbfgs", clip_norm=1.0).fit(X, y)

    from cbackprop.cli import main
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,label",
               comments="")
    assert main(["train", str(data), "--target", "label", "--epochs", "2",
                 "--clip-norm", "0.5", "--weight-decay", "0.01", "--out", str(tmp_path / "m.cbp"), "--quiet"]) in (0, None)
    assert (tmp_path / "m.cbp").exists()
