"""Inverted dropout of the online and mini-batch epochs (issue 16): the compiled generator's
masks against reference.dropout_keep bit for bit, their rate, the epochs against the
reference's, the same fit for any thread count and across runs, prediction on the full
network, the trace's masks, finite differences of the masked gradient, the refusals.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cbackprop as cb
from cbackprop import reference as ref
from cbackprop._core import core
from cbackprop.gradcheck import check_gradients

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

TOL = {"float64": 1e-10, "float32": 1e-4}
# the epochs' learning rate: well inside stability for every config (relu units, an identity
# output and squared error at 0.05 online diverged for one set of masks: nothing to compare)
ALPHA = 0.02
CONFIGS = [("tanh", "softmax", "cross_entropy"), ("sigmoid", "sigmoid", "cross_entropy"),
           ("relu", "identity", "squared_error")]


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _flat(thetas):
    return np.concatenate([t.ravel() for t in thetas])


def _problem(rng, sizes, output, m=40):
    X = rng.normal(size=(m, sizes[0]))
    if output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    elif output == "sigmoid":
        Y = (rng.random((m, sizes[-1])) < 0.5).astype(float)
    else:
        Y = rng.normal(size=(m, sizes[-1]))
    return X, Y, rng.uniform(0.3, 2.0, m)


@pytest.mark.parametrize("seed", [0, 12345, 2 ** 64 - 1])
@pytest.mark.parametrize("rate", [0.05, 0.5, 0.9])
def test_compiled_masks_equal_the_reference_bit_for_bit(seed, rate):
    layout = cb.Network([7, 30, 9, 2])._layout
    ids = np.array([0, 1, 5, 2 ** 40, 99], dtype=np.intp)
    for epoch in (0, 3):
        drop = core.Dropout(layout, [rate, rate / 2, rate], seed, epoch)
        for layer, units in ((0, 7), (1, 30), (2, 9), (1, 1000)):
            compiled = core.dropout_keep(drop, ids, layer, units)
            expected = ref.dropout_keep(seed, epoch, ids, layer, units, drop.rates[layer])
            assert np.array_equal(compiled.astype(bool), expected)


def test_the_unit_hash_is_murmurhash3s_finalizer():
    """fmix32's published values (MurmurHash3), and SplitMix64's first output of seed 0."""
    from cbackprop._reference_units import _fmix32, _mix64
    with np.errstate(over="ignore"):
        assert int(_fmix32(np.uint32(0))) == 0
        assert int(_fmix32(np.uint32(1))) == 0x514E28B7
        assert int(_mix64(np.uint64(0))) == 0xE220A8397B1DCDAF


def test_masks_keep_units_at_the_rate_and_differ_by_every_counter():
    """About 1 - p kept over a million units (the margin is 20 standard deviations), and a
    different mask for another seed, epoch, sample or layer."""
    keep = ref.dropout_keep(7, 0, np.arange(2000), 1, 500, 0.2)
    assert abs(keep.mean() - 0.8) < 20 * np.sqrt(0.16 / keep.size)
    base = ref.dropout_keep(7, 0, [3], 1, 4000, 0.5)
    for other in (ref.dropout_keep(8, 0, [3], 1, 4000, 0.5),
                  ref.dropout_keep(7, 1, [3], 1, 4000, 0.5),
                  ref.dropout_keep(7, 0, [4], 1, 4000, 0.5),
                  ref.dropout_keep(7, 0, [3], 2, 4000, 0.5)):
        agree = np.mean(base == other)
        assert 0.45 < agree < 0.55                  # independent: half agree
    assert ref.dropout_keep(7, 0, [3], 1, 50, 0.0).all()


def _epochs(net, solver, X, Y, w, order, rates, seed, epochs=2, n_threads=1, batch_size=16):
    """The compiled epochs with dropout (epoch counter 0, 1, ...): the parameters after."""
    params = net.params.copy()
    state = core.StepState(np.zeros_like(params), np.zeros_like(params))
    rule = core.StepRule(solver if solver != "online" else "sgd", ALPHA, momentum=0.9,
                         nesterov=True)
    W = float(w.sum())
    for epoch in range(epochs):
        drop = core.Dropout(net._layout, rates, seed, epoch)
        if solver == "online":
            core.online_epoch(net._layout, X, Y, w, params, order, ALPHA * len(w) / W,
                              1 - ALPHA * 0.3 / W, 1000, dropout=drop)
        else:
            core.minibatch_epoch(net._layout, rule, state, X, Y, w, params, order, batch_size,
                                 len(w) / W, 0.3 / W, 1000, n_threads=n_threads, dropout=drop)
    return params


def _reference_epochs(net, solver, X, Y, w, order, rates, seed, epochs=2, batch_size=16):
    thetas, state = [t.astype(np.float64) for t in net.thetas], None
    for epoch in range(epochs):
        if solver == "online":
            thetas, _ = ref.online_epoch(thetas, X, Y, order, ALPHA, 0.3, net.activation,
                                         net.output, net.loss, sample_weight=w,
                                         dropout=rates, dropout_seed=seed, epoch=epoch)
        else:
            thetas, state, _ = ref.minibatch_epoch(
                thetas, X, Y, order, ALPHA, batch_size, solver, 0.3, net.activation,
                net.output, net.loss, sample_weight=w, state=state, momentum=0.9,
                dropout=rates, dropout_seed=seed, epoch=epoch)
    return _flat(thetas)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c[0])
@pytest.mark.parametrize("solver", ["online", "sgd", "adam"])
@pytest.mark.parametrize("rates", [[0.0, 0.3, 0.5], [0.2, 0.0, 0.4], [0.25, 0.25, 0.25]],
                         ids=["hidden", "input-and-last", "all"])
def test_epochs_match_the_reference(rng, dtype, config, solver, rates):
    act, out, loss = config
    X, Y, w = _problem(rng, [6, 9, 7, 3], out)
    net = cb.Network([6, 9, 7, 3], activation=act, output=out, loss=loss, dtype=dtype,
                     random_state=0)
    order = rng.permutation(X.shape[0]).astype(np.intp)
    got = _epochs(net, solver, X.astype(dtype), Y.astype(dtype), w.astype(dtype), order,
                  rates, 42)
    expected = _reference_epochs(net, solver, X, Y, w, order, rates, 42)
    assert np.abs(expected).max() < 1e3                 # a fit, not a divergence
    assert _rel(got, expected) <= TOL[dtype]
    plain = _reference_epochs(net, solver, X, Y, w, order, [0.0, 0.0, 0.0], 42)
    assert _rel(plain, expected) > 1e-3                # the masks changed the fit


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["online", "sgd", "adam"])
@pytest.mark.parametrize("sizes", [[16, 30, 17, 3], [33, 15, 48, 3], [64, 1, 31, 3]],
                         ids=lambda s: "-".join(map(str, s)))
def test_rows_hashed_in_whole_vectors_keep_their_own_masks(rng, dtype, solver, sizes):
    """A row's masks are hashed in multiples of 16 units, the extra ones written over the next
    row's place before that row's own: widths on both sides of 16 and 32, and a batch whose
    last block has one row (the spill past the block), all match the reference."""
    X, Y, w = _problem(rng, sizes, "softmax", m=49)
    net = cb.Network(sizes, activation="tanh", output="softmax", dtype=dtype, random_state=0)
    order = rng.permutation(X.shape[0]).astype(np.intp)
    rates = [0.3, 0.2, 0.4]
    got = _epochs(net, solver, X.astype(dtype), Y.astype(dtype), w.astype(dtype), order,
                  rates, 9, batch_size=16)
    expected = _reference_epochs(net, solver, X, Y, w, order, rates, 9, batch_size=16)
    assert _rel(got, expected) <= TOL[dtype]


def test_a_batch_of_several_row_blocks_takes_each_rows_own_mask(rng):
    """A batch of 300 rows runs in blocks of 256 and 44: each row's mask is its sample's."""
    X, Y, w = _problem(rng, [5, 8, 3], "softmax", m=600)
    net = cb.Network([5, 8, 3], output="softmax", random_state=0)
    order = rng.permutation(600).astype(np.intp)
    got = _epochs(net, "adam", X, Y, w, order, [0.1, 0.3], 5, epochs=1, batch_size=300)
    expected = _reference_epochs(net, "adam", X, Y, w, order, [0.1, 0.3], 5, epochs=1,
                                 batch_size=300)
    assert _rel(got, expected) <= 1e-10


@pytest.mark.parametrize("solver", ["adam", "sgd", "online"])
def test_fit_is_reproducible_and_predicts_with_the_full_network(rng, solver):
    """Fit's dropout: masks seeded from random_state (the seed drawn once, then one
    permutation an epoch), the same bits from the same seed, others from another; the
    validation score, predict and cost of the whole network."""
    X, Y, w = _problem(rng, [6, 10, 3], "softmax", m=60)
    y = Y.argmax(axis=1)
    Xv, yv = X[:20], y[:20]
    o = dict(solver=solver, epochs=3, learning_rate=0.05, batch_size=16, dropout=0.3,
             input_dropout=0.1, validation_data=(Xv, yv), tol=0.0)
    fits = []
    for seed in (3, 3, 4):
        net = cb.Network([6, 10, 3], activation="tanh", output="softmax", random_state=0)
        fits.append(net.fit(X, y, random_state=seed, **o))
    assert np.array_equal(fits[0].params, fits[1].params)
    assert not np.array_equal(fits[0].params, fits[2].params)
    net = fits[0]
    assert net.history_["val_score"][-1] == net.score(Xv, yv)
    h = ref.forward(net.thetas, X, net.activation, net.output)
    assert np.allclose(net.forward(X), h, rtol=1e-12, atol=1e-15)

    # the fit's masks: the seed is random_state's first draw, the orders its permutations
    gen = np.random.default_rng(3)
    seed = int(gen.integers(0, 2 ** 63))
    start = cb.Network([6, 10, 3], activation="tanh", output="softmax", random_state=0)
    thetas, state = [t.copy() for t in start.thetas], None
    Yc = np.eye(3)[y]
    for epoch in range(3):
        order = gen.permutation(60)
        if solver == "online":
            thetas, _ = ref.online_epoch(thetas, X, Yc, order, 0.05, 0.0, "tanh", "softmax",
                                         dropout=[0.1, 0.3], dropout_seed=seed, epoch=epoch)
        else:
            thetas, state, _ = ref.minibatch_epoch(
                thetas, X, Yc, order, 0.05, 16, solver, 0.0, "tanh", "softmax", state=state,
                dropout=[0.1, 0.3], dropout_seed=seed, epoch=epoch)
    assert _rel(net.params, _flat(thetas)) <= 1e-10


@pytest.mark.parametrize("solver", ["adam", "online"])
def test_sparse_x_with_hidden_dropout_is_the_dense_fit_for_any_thread_count(solver):
    X = sp.random(120, 3000, density=0.01, random_state=0, format="csr")
    Y = np.eye(3)[np.arange(120) % 3]
    w = np.ones(120)
    net = cb.Network([3000, 24, 8, 3], output="softmax", random_state=0)
    order = np.random.default_rng(0).permutation(120).astype(np.intp)
    rates = [0.0, 0.3, 0.2]
    runs = [_epochs(net, solver, net._check_X(X), Y, w, order, rates, 9, n_threads=t)
            for t in (1, 2)]
    assert np.array_equal(runs[0], runs[1])
    dense = _epochs(net, solver, X.toarray(), Y, w, order, rates, 9)
    assert _rel(runs[0], dense) <= 1e-10


def test_the_masked_gradient_is_the_masked_costs_by_finite_differences(rng):
    """reference.cost_and_gradient with fixed masks is the gradient of reference.cost with
    the same masks (the objective a dropout step descends)."""
    X, Y, w = _problem(rng, [4, 6, 5, 3], "softmax", m=12)
    net = cb.Network([4, 6, 5, 3], activation="tanh", output="softmax", random_state=0)
    masks = ref.dropout_masks(11, 2, np.arange(12), [0.2, 0.5, 0.3], [4, 6, 5])
    thetas = [t.copy() for t in net.thetas]
    _, grads = ref.cost_and_gradient(thetas, X, Y, 0.7, "tanh", "softmax", sample_weight=w,
                                     masks=masks)
    eps = 1e-6
    for l, theta in enumerate(thetas):
        for j, i in ((0, 0), (1, 2), (theta.shape[0] - 1, theta.shape[1] - 1)):
            up = [t.copy() for t in thetas]
            down = [t.copy() for t in thetas]
            up[l][j, i] += eps
            down[l][j, i] -= eps
            numeric = (ref.cost(up, X, Y, 0.7, "tanh", "softmax", sample_weight=w, masks=masks)
                       - ref.cost(down, X, Y, 0.7, "tanh", "softmax", sample_weight=w,
                                  masks=masks)) / (2 * eps)
            assert numeric == pytest.approx(grads[l][j, i], rel=1e-6, abs=1e-9)
    # no masks: cost_and_gradient's own gradient, which check_gradients confirms
    assert check_gradients(net, X, Y, lam=0.7) < 1e-6


def test_trace_shows_the_mask_and_its_pass(rng):
    net = cb.Network([4, 6, 5, 3], activation="sigmoid", output="softmax", random_state=0)
    x, y = rng.normal(size=4), 2
    t = net.trace(x, y, dropout=[0.5, 0.4], input_dropout=0.25, dropout_seed=11, epoch=2,
                  sample=7)
    for l, (size, rate) in zip((1, 2, 3), ((4, 0.25), (6, 0.5), (5, 0.4))):
        assert np.array_equal(t.mask[l], ref.dropout_keep(11, 2, [7], l - 1, size, rate)[0])
    masks = ref.dropout_masks(11, 2, [7], [0.25, 0.5, 0.4], [4, 6, 5])
    J, grads = ref.cost_and_gradient(net.thetas, x[None], np.eye(3)[[2]], 0.0, "sigmoid",
                                     "softmax", masks=masks)
    assert t.J == pytest.approx(J, rel=1e-12)
    for g, r in zip(t.gradients, grads):
        assert np.allclose(g, r, rtol=1e-10, atol=1e-14)
    assert "mask(2)" in t.table()
    plain = net.trace(x, y)
    assert plain.mask == {} and "mask(" not in plain.table()
    with pytest.raises(TypeError, match="dropout_seed must be an int"):
        net.trace(x, y, dropout=0.5)


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "rprop"])
def test_full_batch_solvers_refuse_dropout(rng, solver):
    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=20)
    for option in ({"dropout": 0.2}, {"input_dropout": 0.2}):
        with pytest.raises(ValueError, match="objective must be deterministic"):
            cb.Network([4, 5, 3], output="softmax").fit(X, Y, solver=solver, **option)


@pytest.mark.parametrize("option, error, match", [
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
    ({"dropout": -0.1}, ValueError, r"dropout must be in \[0, 1\)"),
    ({"dropout": [0.1, 0.2]}, ValueError, "dropout has 2 rates; the network has 1 hidden"),
    ({"dropout": []}, ValueError, "non-empty list"),
    ({"input_dropout": 1}, ValueError, r"input_dropout must be in \[0, 1\)"),
    ({"dropout": "0.5"}, TypeError, "dropout must be a finite real number"),
])
def test_bad_rates_are_refused(rng, option, error, match):
    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=20)
    net = cb.Network([4, 5, 3], output="softmax")
    start = net.params.copy()
    with pytest.raises(error, match=match):
        net.fit(X, Y, solver="adam", **option)
    assert np.array_equal(net.params, start)


def test_sparse_input_dropout_and_blocked_data_are_refused(rng, tmp_path):
    X = sp.random(40, 10, density=0.3, format="csr", random_state=0)
    y = np.arange(40) % 2
    net = cb.Network([10, 3, 2], output="softmax")
    with pytest.raises(ValueError, match="input_dropout of a sparse X is not supported"):
        net.fit(X, y, solver="adam", input_dropout=0.2, epochs=1)
    net.fit(X, y, solver="adam", dropout=0.2, epochs=1)        # hidden dropout: fine
    big = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", shape=(40, 10))
    big[...] = X.toarray()
    with pytest.raises(ValueError, match="dropout trains on data in memory only"):
        net.fit(big, y, solver="adam", dropout=0.2, epochs=1)


def test_estimators_and_command_line_take_it(rng, tmp_path):
    from cbackprop.sklearn import BackpropClassifier

    X, Y, _ = _problem(rng, [4, 5, 3], "softmax", m=40)
    y = Y.argmax(axis=1)
    base = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = BackpropClassifier(**base).fit(X, y)
        dropped = BackpropClassifier(**base, dropout=0.3, input_dropout=0.1).fit(X, y)
        again = BackpropClassifier(**base, dropout=0.3, input_dropout=0.1).fit(X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    assert np.array_equal(dropped.coefs_[0], again.coefs_[0])
    with pytest.raises(ValueError, match="objective must be deterministic"):
        BackpropClassifier(**base, solver="lbfgs", dropout=0.3).fit(X, y)

    from cbackprop.cli import main
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,label",
               comments="")
    assert main(["train", str(data), "--target", "label", "--epochs", "2", "--dropout", "0.2",
                 "--input-dropout", "0.1", "--out", str(tmp_path / "m.cbp"),
                 "--quiet"]) in (0, None)
    assert (tmp_path / "m.cbp").exists()
