"""Network.fit / predict / predict_proba / score (issue 3, docs/design.md: "The math").

The solvers are checked against the NumPy reference (cbackprop.reference) where their
updates are exact (online after an epoch, sgd with one batch per epoch, the learning-rate
schedules), and by their results elsewhere (lower cost, digits accuracy, determinism).
Then the behaviour users rely on: early stopping, callbacks, Ctrl-C, divergence, bad
input, label types, history and verbosity, and that fit leaves the caller's arrays alone.
"""
import os
import re
import signal
import threading
import time
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import cbackprop as cb
from cbackprop import reference as ref
from cbackprop._core import core

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

SOLVERS = ["online", "sgd", "adam", "lbfgs", "cg", "rprop"]
FULL_BATCH = ["lbfgs", "cg", "rprop"]
DTYPES = ["float32", "float64"]

# Options that make each solver take a few useful steps on the small problems below.
QUICK = {
    "online": dict(epochs=20, learning_rate=0.1),
    "sgd": dict(epochs=20, batch_size=16, learning_rate=0.1),
    "adam": dict(epochs=20, batch_size=16, learning_rate=0.01),
    "lbfgs": dict(max_iter=20),
    "cg": dict(max_iter=20),
    "rprop": dict(max_iter=20),
}

# (activation, output, loss) of the networks the exact comparisons run on
CONFIGS = [
    ("sigmoid", "sigmoid", "cross_entropy"),
    ("tanh", "softmax", "cross_entropy"),
    ("relu", "identity", "squared_error"),
]


# ----------------------------------------------------------------------------------- helpers


def classification(rng, m=60, n=4, k=3):
    """Features and integer labels 0..k-1 that a small network can learn (linear plus noise)."""
    X = rng.normal(size=(m, n))
    W = rng.normal(size=(n, k))
    y = np.argmax(X @ W + 0.3 * rng.normal(size=(m, k)), axis=1)
    y[:k] = np.arange(k)                       # every class present
    return X, y


def targets_for(rng, X, output, k):
    """A 2-D target matrix for the given output layer: one-hot, multi-label 0/1 or values."""
    m = X.shape[0]
    if output == "softmax":
        return np.eye(k)[rng.integers(0, k, size=m)]
    if output == "sigmoid":
        return (rng.random((m, k)) < 0.5).astype(float)
    return rng.normal(size=(m, k))


def make_net(sizes, config=CONFIGS[0], dtype="float64", seed=0):
    act, out, loss = config
    return cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype,
                      random_state=seed)


def flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def ref_grad(net, thetas, X, Y, lam):
    """(J, flat gradient) of the NumPy reference at the given Thetas."""
    J, grads = ref.cost_and_gradient(thetas, X, Y, lam, net.activation, net.output, net.loss)
    return J, flat(grads)


def unflatten(net, vector):
    return [t.copy() for t in net.split(np.asarray(vector, dtype=np.float64))]


def numpy_online_epoch(net, thetas, X, Y, lr, lam, order):
    """The derivation's SGD in NumPy: for each sample i in order,
    Theta -= lr * (dloss_i/dTheta + (lam/m) Theta with a zero bias column)."""
    thetas = [np.array(t, dtype=np.float64) for t in thetas]
    m = X.shape[0]
    for i in order:
        _, grads = ref.cost_and_gradient(thetas, X[i:i + 1], Y[i:i + 1], 0.0,
                                         net.activation, net.output, net.loss)
        for theta, g in zip(thetas, grads):
            reg = (lam / m) * theta
            reg[:, 0] = 0
            theta -= lr * (g + reg)
    return thetas


def weight_mask(net):
    """1 for the weights, 0 for the bias column, in the layout of params."""
    masks = []
    for t in net.thetas:
        mask = np.ones(t.shape)
        mask[:, 0] = 0
        masks.append(mask)
    return flat(masks)


@pytest.fixture
def no_fit_warnings():
    """Turn any warning fit emits other than ConvergenceWarning into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", cb.ConvergenceWarning)
        yield


# ------------------------------------------------------------- 1. every solver lowers the cost


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_lowers_the_cost(rng, solver, dtype):
    X, y = classification(rng, m=80, n=5, k=3)
    Y = np.eye(3)[y]
    net = cb.Network([5, 8, 3], dtype=dtype, random_state=0)
    lam = 0.1
    before = net.cost(X, Y, lam)
    net.fit(X, y, solver=solver, lam=lam, random_state=0, **QUICK[solver])
    after = net.cost(X, Y, lam)
    assert np.isfinite(after)
    assert after < before, f"{solver}: cost {before} -> {after}"
    assert after < 0.9 * before
    assert net.params.dtype == np.dtype(dtype)
    assert all(t.dtype == np.dtype(dtype) for t in net.thetas)
    assert all(np.shares_memory(t, net.params) for t in net.thetas)
    assert np.isfinite(net.params).all()


# ----------------------------------------------- 2. online = the NumPy per-sample loop, 1 epoch


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c))
def test_online_epoch_equals_numpy_loop(rng, config, shuffle):
    m, sizes, lr, lam, seed = 40, [4, 6, 5, 3], 0.2, 0.7, 123
    X = rng.normal(size=(m, sizes[0]))
    Y = targets_for(rng, X, config[1], sizes[-1])
    net = make_net(sizes, config)
    start = [t.copy() for t in net.thetas]
    order = np.random.default_rng(seed).permutation(m) if shuffle else np.arange(m)
    expected = numpy_online_epoch(net, start, X, Y, lr, lam, order)

    net.fit(X, Y, solver="online", epochs=1, learning_rate=lr, lam=lam, shuffle=shuffle,
            random_state=seed)
    assert net.n_iter_ == 1
    assert rel_err(net.params, flat(expected)) < 1e-10
    if shuffle:  # the order matters: the sequential loop gives another result
        other = numpy_online_epoch(net, start, X, Y, lr, lam, np.arange(m))
        assert rel_err(net.params, flat(other)) > 1e-6


def test_online_two_epochs_equal_numpy_loop_with_fresh_permutations(rng):
    """Each epoch draws its own permutation from the same generator."""
    m, sizes, lr, lam, seed = 30, [3, 5, 2], 0.3, 0.2, 7
    X = rng.normal(size=(m, 3))
    Y = targets_for(rng, X, "sigmoid", 2)
    net = make_net(sizes)
    thetas = [t.copy() for t in net.thetas]
    gen = np.random.default_rng(seed)
    for _ in range(2):
        thetas = numpy_online_epoch(net, thetas, X, Y, lr, lam, gen.permutation(m))
    net.fit(X, Y, solver="online", epochs=2, learning_rate=lr, lam=lam, random_state=seed)
    assert rel_err(net.params, flat(thetas)) < 1e-10


def test_online_epoch_with_sample_weights_equals_numpy_loop(rng):
    """Each sample's step is its share of the gradient of the weighted J:
    Theta -= lr * (m/W) w_i dloss_i + lr * (lam/W) Theta (bias excluded), W = sum of weights."""
    m, lr, lam, seed = 30, 0.2, 0.5, 3
    X = rng.normal(size=(m, 4))
    Y = targets_for(rng, X, "softmax", 3)
    w = rng.uniform(0.1, 3.0, size=m)
    W = w.sum()
    net = make_net([4, 5, 3], CONFIGS[1])
    theta, mask = net.params.copy(), weight_mask(net)
    for i in np.random.default_rng(seed).permutation(m):
        _, g = ref_grad(net, unflatten(net, theta), X[i:i + 1], Y[i:i + 1], 0.0)
        theta = theta - lr * ((m / W) * w[i] * g + (lam / W) * mask * theta)
    net.fit(X, Y, sample_weight=w, solver="online", epochs=1, learning_rate=lr, lam=lam,
            random_state=seed)
    assert rel_err(net.params, theta) < 1e-10


# ----------------------------------------- 3. sgd with one batch an epoch = gradient descent


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.8, False), (0.8, True)],
                         ids=["plain", "momentum", "nesterov"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c))
def test_sgd_one_batch_equals_full_batch_gradient_descent(rng, config, momentum, nesterov):
    m, sizes, lr, lam, epochs = 50, [4, 7, 3], 0.5, 0.4, 4
    X = rng.normal(size=(m, sizes[0]))
    Y = targets_for(rng, X, config[1], sizes[-1])
    net = make_net(sizes, config)
    theta = net.params.astype(np.float64).copy()
    velocity = np.zeros_like(theta)
    costs = []
    for _ in range(epochs):
        J, g = ref_grad(net, unflatten(net, theta), X, Y, lam)
        costs.append(J)
        velocity = momentum * velocity - lr * g
        theta = theta + (momentum * velocity - lr * g if nesterov else velocity)

    net.fit(X, Y, solver="sgd", epochs=epochs, batch_size=m + 5, learning_rate=lr, lam=lam,
            momentum=momentum, nesterov=nesterov, shuffle=False, tol=0.0)
    assert net.n_iter_ == epochs
    assert rel_err(net.params, theta) < 1e-10
    # the recorded loss of an epoch is J (with lam) at the parameters it started from
    assert rel_err(net.history_["loss"], costs) < 1e-10


def test_sgd_one_batch_shuffled_still_equals_gradient_descent(rng):
    """With one batch an epoch the order only changes rounding."""
    m, lr, lam = 40, 0.3, 0.1
    X, y = classification(rng, m=m)
    Y = np.eye(3)[y]
    net = cb.Network([4, 5, 3], output="softmax", random_state=1)
    theta = net.params.copy()
    for _ in range(3):
        theta = theta - lr * ref_grad(net, unflatten(net, theta), X, Y, lam)[1]
    net.fit(X, y, solver="sgd", epochs=3, batch_size=m, learning_rate=lr, lam=lam,
            momentum=0.0, shuffle=True, random_state=3, tol=0.0)
    assert rel_err(net.params, theta) < 1e-10


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shuffle", [False, True], ids=["in_order", "shuffled"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_minibatch_epochs_equal_numpy(rng, solver, shuffle, weighted):
    """Mini-batches (the last one short), regularized with the whole training set's size:
    g = (m/W) (1/b) sum_batch w_i dloss_i + (lam/W) Theta (docs/design.md: "The math"), then the
    SGD-with-Nesterov-momentum or Adam update, state carried across epochs."""
    m, b, lr, lam, epochs, seed, mu = 50, 16, 0.1, 0.6, 3, 9, 0.7
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    X = rng.normal(size=(m, 4))
    Y = targets_for(rng, X, "sigmoid", 3)
    w = rng.uniform(0.2, 2.0, size=m) if weighted else np.ones(m)
    W = w.sum()
    net = make_net([4, 6, 3], CONFIGS[0])
    theta, mask = net.params.copy(), weight_mask(net)
    m1, m2, t = np.zeros_like(theta), np.zeros_like(theta), 0
    gen = np.random.default_rng(seed)
    for _ in range(epochs):
        order = gen.permutation(m) if shuffle else np.arange(m)
        for start in range(0, m, b):
            idx = order[start:start + b]
            _, g = ref.cost_and_gradient(unflatten(net, theta), X[idx], Y[idx], 0.0,
                                         sample_weight=w[idx])
            # the reference divides by the batch's weight; the solver's estimate is
            # (m/W)(1/b) sum w_i dloss_i
            g = flat(g) * w[idx].sum() * (m / W) / len(idx) + (lam / W) * mask * theta
            if solver == "sgd":
                m1 = mu * m1 - lr * g
                theta = theta + mu * m1 - lr * g
            else:
                t += 1
                m1 = beta1 * m1 + (1 - beta1) * g
                m2 = beta2 * m2 + (1 - beta2) * g * g
                lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                theta = theta - lr_t * m1 / (np.sqrt(m2) + eps)
    net.fit(X, Y, sample_weight=w if weighted else None, solver=solver, epochs=epochs,
            batch_size=b, learning_rate=lr, lam=lam, momentum=mu, nesterov=True,
            shuffle=shuffle, random_state=seed, tol=0.0)
    assert net.n_iter_ == epochs
    assert rel_err(net.params, theta) < 1e-10


# Layers wider and narrower than the 8-16 lanes the update and sum-of-squares loops run in,
# so that their vector bodies and scalar tails both count; two to four layers.
STEP_SIZES = [[20, 3], [37, 18, 5], [19, 33, 17, 4]]
STEPS = {"sgd": dict(solver="sgd", momentum=0.0, nesterov=False),
         "momentum": dict(solver="sgd", momentum=0.8, nesterov=False),
         "nesterov": dict(solver="sgd", momentum=0.8, nesterov=True),
         "adam": dict(solver="adam", momentum=0.0, nesterov=False)}


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize("sizes", STEP_SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_batch_step_equals_numpy(rng, dtype, sizes, step):
    """minibatch_epoch's fused pass, one batch: g = (m/W)(1/b) sum w_i dloss_i + (lam/W) W
    (bias column unregularized), then the SGD or Adam step from states already under way;
    its cost adds (lam/2W) sum W^2 from the weights before the step."""
    b, lr, t0 = 24, 0.05, 5
    scale, reg = 2.5, 0.04                 # m/W and lam/W of a training set larger than b
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    opts = STEPS[step]
    X = rng.normal(size=(b, sizes[0])).astype(dtype)
    Y = targets_for(rng, X, "softmax", sizes[-1]).astype(dtype)
    w = rng.uniform(0.2, 2.0, size=b).astype(dtype)
    net = make_net(sizes, CONFIGS[1], dtype=dtype)
    net.params[...] += rng.normal(scale=0.3, size=net.params.size)   # weights of all sizes
    theta, mask = net.params.astype(np.float64), weight_mask(net)
    s1 = rng.normal(scale=0.1, size=theta.size).astype(dtype)
    s2 = (rng.uniform(0.01, 0.1, size=theta.size) if step == "adam"
          else rng.normal(size=theta.size)).astype(dtype)
    m1, m2 = s1.astype(np.float64), s2.astype(np.float64)

    J, g = ref.cost_and_gradient(unflatten(net, theta), X.astype(np.float64),
                                 Y.astype(np.float64), 0.0, net.activation, net.output,
                                 net.loss, sample_weight=w.astype(np.float64))
    to_batch = float(w.astype(np.float64).sum()) * scale / b       # the reference divides by sum(w)
    g = flat(g) * to_batch + reg * mask * theta
    cost = J * to_batch + 0.5 * reg * float(np.sum(mask * theta ** 2))
    if opts["solver"] == "sgd":
        mu = opts["momentum"]
        m1 = mu * m1 - lr * g
        expected = theta + (mu * m1 - lr * g if opts["nesterov"] else m1)
    else:
        t = t0 + 1
        m1 = beta1 * m1 + (1 - beta1) * g
        m2 = beta2 * m2 + (1 - beta2) * g * g
        expected = theta - lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m1 / (np.sqrt(m2) + eps)

    rule = core.StepRule(opts["solver"], lr, opts["momentum"], opts["nesterov"], beta1, beta2,
                         eps)
    state = core.StepState(s1, s2, t0)
    total, done, status = core.minibatch_epoch(
        net._layout, rule, state, X, Y, w, net.params, np.arange(b, dtype=np.intp), b, scale,
        reg, 10**6)
    t_after = state.t
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert (done, status) == (b, core.STATUS_DONE)
    assert t_after == (t0 + 1 if step == "adam" else t0)
    assert abs(total / b - cost) <= tol * abs(cost)
    # the step itself, not just the parameters it lands on (it is small next to them)
    assert rel_err(net.params.astype(np.float64) - theta, expected - theta) < tol
    assert rel_err(s1, m1) < tol
    if step == "adam":
        assert rel_err(s2, m2) < tol


@pytest.mark.parametrize("sizes", STEP_SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_reg_cost_is_the_weights_sum_of_squares(rng, dtype, sizes):
    net = make_net(sizes, dtype=dtype)
    net.params[...] = rng.normal(size=net.params.size)
    theta = net.params.astype(np.float64)
    expected = 0.5 * 0.3 * float(np.sum(weight_mask(net) * theta ** 2))
    got = core.reg_cost(net._layout, net.params, 0.3)
    assert abs(got - expected) <= 1e-12 * expected
    assert core.reg_cost(net._layout, net.params, 0.0) == 0.0


@pytest.mark.parametrize("sizes", STEP_SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_epoch_check_takes_the_iterate_and_tests_it(rng, dtype, sizes):
    """fit's end-of-epoch pass: params = the iterate (when given), a copy of them kept
    (when asked), then whether all are finite, bias included, and the weights' sum of
    squares with reg_cost's bits."""
    net = make_net(sizes, dtype=dtype)
    layout, before = net._layout, rng.normal(size=net.params.size).astype(dtype)
    net.params[...] = before
    none = net.params[:0]
    for threads in (1, 2):
        assert core.epoch_check(layout, net.params, none, none, threads) == (
            True, core.reg_cost(layout, net.params, 2.0))
        np.testing.assert_array_equal(net.params, before)
    iterate, keep = rng.normal(size=net.params.size).astype(dtype), np.zeros_like(net.params)
    iterate.flags.writeable = False                     # as _lbfgs hands it over
    finite, sumsq = core.epoch_check(layout, net.params, iterate, keep, 2)
    np.testing.assert_array_equal(net.params, iterate)
    np.testing.assert_array_equal(keep, iterate)
    assert finite and sumsq == core.reg_cost(layout, net.params, 2.0)
    bias = weight_mask(net) == 0
    for where, value in ((np.flatnonzero(bias)[-1], np.nan), (np.flatnonzero(~bias)[3], np.inf)):
        spoiled = iterate.copy()
        spoiled[where] = value
        finite, sumsq = core.epoch_check(layout, net.params, spoiled, none, 2)
        assert not finite
        assert np.isfinite(sumsq) == bool(bias[where])    # a bias is not in the sum
    for name, args in (("src", (iterate[:-1], none)), ("keep", (none, keep[:-1]))):
        with pytest.raises(ValueError, match=name):
            core.epoch_check(layout, net.params, *args, 1)


def test_rprop_equals_numpy_irprop_minus(rng):
    """iRPROP- on the full-batch gradient of J (with lam), from the documented constants."""
    from cbackprop.training import RPROP

    lam, iters = 0.3, 12
    X, y = classification(rng, m=40)
    Y = np.eye(3)[y]
    net = cb.Network([4, 5, 3], random_state=0)
    theta = net.params.copy()
    prev, steps = np.zeros_like(theta), np.full_like(theta, RPROP["step_init"])
    for _ in range(iters):
        _, g = ref_grad(net, unflatten(net, theta), X, Y, lam)
        s = g * prev
        steps = np.where(s > 0, np.minimum(steps * RPROP["increase"], RPROP["step_max"]),
                         np.where(s < 0, np.maximum(steps * RPROP["decrease"],
                                                    RPROP["step_min"]), steps))
        g = np.where(s < 0, 0.0, g)
        theta = theta - np.sign(g) * steps
        prev = g
    net.fit(X, y, solver="rprop", lam=lam, max_iter=iters, tol=0.0)
    assert net.n_iter_ == iters
    assert rel_err(net.params, theta) < 1e-10


# ------------------------------------------- 4. a weight of 2 equals a duplicated sample


def _duplicate_vs_weight(rng, m=30):
    X, y = classification(rng, m=m)
    k = 5
    X2 = np.vstack([X, X[k:k + 1]])
    y2 = np.concatenate([y, y[k:k + 1]])
    w = np.ones(m)
    w[k] = 2.0
    return X, y, w, X2, y2


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "rprop", "sgd", "adam"])
def test_sample_weight_two_equals_duplicated_sample(rng, solver):
    X, y, w, X2, y2 = _duplicate_vs_weight(rng)
    opts = dict(lam=0.3, random_state=0, shuffle=True, tol=0.0)
    if solver in FULL_BATCH:
        opts.update(max_iter=15)
    else:  # one batch an epoch: the batch is the whole (weighted) set
        opts.update(epochs=6, batch_size=1000, learning_rate=0.3 if solver == "sgd" else 0.02)
    weighted = cb.Network([4, 6, 3], random_state=2).fit(X, y, sample_weight=w, solver=solver,
                                                          **opts)
    duplicated = cb.Network([4, 6, 3], random_state=2).fit(X2, y2, solver=solver, **opts)
    assert weighted.n_iter_ == duplicated.n_iter_
    np.testing.assert_allclose(weighted.params, duplicated.params, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(weighted.history_["loss"], duplicated.history_["loss"],
                               rtol=1e-8)
    # and the weight matters: without it the result differs
    plain = cb.Network([4, 6, 3], random_state=2).fit(X, y, solver=solver, **opts)
    assert rel_err(plain.params, weighted.params) > 1e-6


def test_sample_weight_is_the_reference_weighted_cost(rng):
    """sgd with one batch an epoch follows the gradient of the weighted reference cost."""
    m, lr, lam = 25, 0.4, 0.5
    X, y = classification(rng, m=m)
    Y = np.eye(3)[y]
    w = rng.uniform(0.2, 3.0, size=m)
    net = cb.Network([4, 5, 3], random_state=4)
    theta = net.params.copy()
    for _ in range(3):
        _, grads = ref.cost_and_gradient(unflatten(net, theta), X, Y, lam, sample_weight=w)
        theta = theta - lr * flat(grads)
    net.fit(X, y, sample_weight=w, solver="sgd", epochs=3, batch_size=m, learning_rate=lr,
            lam=lam, momentum=0.0, shuffle=False, tol=0.0)
    assert rel_err(net.params, theta) < 1e-10


# ------------------------------------------------------------------------- 5. digits


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize("solver, opts", [
    ("lbfgs", dict(lam=1.0, max_iter=100)),
    ("adam", dict(epochs=60, batch_size=32, learning_rate=0.01, random_state=0)),
    ("online", dict(epochs=30, learning_rate=0.1, random_state=0)),
], ids=["lbfgs", "adam", "online"])
def test_digits_accuracy(digits, solver, opts):
    Xtr, Xte, ytr, yte = digits
    net = cb.Network([64, 30, 10], activation="sigmoid", output="sigmoid", random_state=0)
    t0 = time.perf_counter()
    net.fit(Xtr, ytr, solver=solver, **opts)
    elapsed = time.perf_counter() - t0
    accuracy = net.score(Xte, yte)
    assert accuracy >= 0.97, f"{solver}: test accuracy {accuracy:.4f} in {elapsed:.2f} s"
    assert net.score(Xtr, ytr) >= accuracy - 0.01
    np.testing.assert_array_equal(net.classes_, np.arange(10))
    assert np.mean(net.predict(Xte) == yte) == accuracy


# ---------------------------------------------------------------------- 6. determinism


@pytest.mark.parametrize("solver", SOLVERS)
def test_same_random_state_same_result_bit_for_bit(rng, solver):
    # 300 rows: the batched kernels split them across threads where there are cores
    X, y = classification(rng, m=300, n=6, k=3)
    opts = dict(solver=solver, lam=0.1, random_state=11, validation_fraction=0.2,
                **QUICK[solver])
    results = []
    with threadpool_limits(1):
        for _ in range(2):
            net = cb.Network([6, 10, 3], random_state=5)
            net.fit(X, y, **opts)
            results.append(net)
    a, b = results
    assert np.array_equal(a.params, b.params)
    assert a.history_["loss"] == b.history_["loss"]
    assert a.history_["val_score"] == b.history_["val_score"]
    if solver in ("online", "sgd", "adam"):  # another seed, another order
        with threadpool_limits(1):
            c = cb.Network([6, 10, 3], random_state=5).fit(X, y, **{**opts, "random_state": 12})
        assert not np.array_equal(a.params, c.params)


# -------------------------------------------------------------------- 7. early stopping


def _overfitting_problem(rng):
    """Few noisy training samples, a wide network: the validation score peaks early."""
    X, y = classification(rng, m=240, n=6, k=3)
    flip = rng.random(240) < 0.3
    y = np.where(flip, rng.integers(0, 3, size=240), y)
    return X[:80], y[:80], X[80:], y[80:]


EARLY = {
    "online": dict(epochs=300, learning_rate=0.3),
    "sgd": dict(epochs=300, batch_size=8, learning_rate=0.5),
    "adam": dict(epochs=300, batch_size=8, learning_rate=0.03),
    "lbfgs": dict(max_iter=300),
    "cg": dict(max_iter=300),
    "rprop": dict(max_iter=300),
}


@pytest.mark.parametrize("how", ["validation_data", "validation_fraction"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_early_stopping_restores_the_best_parameters(rng, solver, how):
    X, y, Xv, yv = _overfitting_problem(rng)
    seen = []

    def record(net, epoch, logs):
        seen.append((logs["val_score"], net.params.copy()))

    opts = dict(EARLY[solver], solver=solver, early_stopping=True, n_iter_no_change=5,
                random_state=0, callback=record)
    if how == "validation_data":
        opts["validation_data"] = (Xv, yv)
    else:
        X, y = np.vstack([X, Xv]), np.concatenate([y, yv])
        opts["validation_fraction"] = 0.5
    net = cb.Network([6, 40, 3], random_state=0)
    net.fit(X, y, **opts)

    limit = 300
    assert 1 <= net.n_iter_ < limit, "early stopping never stopped"
    h = net.history_
    assert len(h["loss"]) == len(h["val_loss"]) == len(h["val_score"]) == net.n_iter_
    assert all(np.isfinite(h["val_loss"])) and all(0 <= s <= 1 for s in h["val_score"])
    assert [s for s, _ in seen] == h["val_score"]
    best = int(np.argmax(h["val_score"]))            # the first epoch with the best score
    assert net.n_iter_ - 1 - best >= 5               # stopped after 5 epochs without progress
    assert np.array_equal(net.params, seen[best][1])
    if how == "validation_data":
        assert net.score(Xv, yv) == max(h["val_score"])
        assert net.cost(Xv, np.eye(3)[yv]) == pytest.approx(h["val_loss"][best], rel=1e-12)


def test_validation_data_without_early_stopping_is_recorded(rng):
    X, y, Xv, yv = _overfitting_problem(rng)
    net = cb.Network([6, 10, 3], random_state=0)
    net.fit(X, y, solver="adam", epochs=7, validation_data=(Xv, yv), random_state=0)
    assert net.n_iter_ == 7
    assert len(net.history_["val_score"]) == 7
    assert net.history_["val_score"][-1] == net.score(Xv, yv)


def test_validation_labels_may_be_a_subset_of_the_classes(rng):
    """A validation set need not hold every class (a small one often does not): its labels
    are coded with the classes of the training labels."""
    X, y = classification(rng, m=90)
    Xv, yv = X[:12], np.where(y[:12] == 2, 0, y[:12])     # classes 0 and 1 only
    net = cb.Network([4, 6, 3], random_state=0)
    net.fit(X, y, solver="adam", epochs=3, validation_data=(Xv, yv), random_state=0)
    assert net.history_["val_score"][-1] == net.score(Xv, yv)
    assert net.history_["val_loss"][-1] == pytest.approx(net.cost(Xv, np.eye(3)[yv]), rel=1e-12)
    # string labels, and a validation set of one class
    names = np.array(["ant", "bee", "cat"])[y]
    net.fit(X, names, solver="adam", epochs=3, validation_data=(Xv, np.full(12, "cat")),
            random_state=0)
    assert net.history_["val_score"][-1] == net.score(Xv, np.full(12, "cat"))


def test_validation_fraction_with_a_rare_class(rng):
    """The stratified split may leave a rare class out of the validation part."""
    X, y = classification(rng, m=60)
    y = np.where(np.arange(60) < 4, 2, np.minimum(y, 1))     # class 2: 4 samples only
    net = cb.Network([4, 6, 3], random_state=0)
    net.fit(X, y, solver="adam", epochs=3, validation_fraction=0.1, random_state=0)
    assert len(net.history_["val_score"]) == 3
    net.fit(X, y, solver="adam", epochs=30, early_stopping=True, random_state=0)
    assert net.n_iter_ >= 1


def test_validation_fraction_holds_out_samples(rng):
    """A validation fraction trains on the rest: the losses differ from training on all."""
    X, y = classification(rng, m=100)
    a = cb.Network([4, 5, 3], random_state=0).fit(X, y, solver="rprop", max_iter=5)
    b = cb.Network([4, 5, 3], random_state=0).fit(X, y, solver="rprop", max_iter=5,
                                                  validation_fraction=0.3, random_state=0)
    assert "val_score" not in a.history_
    assert len(b.history_["val_score"]) == 5
    assert not np.array_equal(a.params, b.params)


# ------------------------------------------------------------------------ 8. callbacks


@pytest.mark.parametrize("solver", SOLVERS)
def test_callback_returning_false_stops_training(rng, solver):
    X, y = classification(rng, m=60)
    calls = []

    def callback(net, epoch, logs):
        calls.append((net, epoch, dict(logs)))
        return False if epoch == 3 else None

    net = cb.Network([4, 6, 3], random_state=0)
    opts = dict(QUICK[solver])
    opts.update(epochs=50) if solver not in FULL_BATCH else opts.update(max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # stopped by the callback: no ConvergenceWarning
        net.fit(X, y, solver=solver, callback=callback, tol=0.0, random_state=0, **opts)
    assert net.n_iter_ == 3
    assert len(net.history_["loss"]) == 3
    assert [c[1] for c in calls] == [1, 2, 3]
    assert all(c[0] is net for c in calls)
    for _, epoch, logs in calls:
        assert isinstance(logs["loss"], float) and np.isfinite(logs["loss"])
    assert [c[2]["loss"] for c in calls] == net.history_["loss"]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_callback_sees_current_parameters(rng, solver):
    """For lbfgs the network holds the iterate the callback is told about."""
    X, y = classification(rng, m=60)
    Y = np.eye(3)[y]
    gaps = []

    def callback(net, epoch, logs):
        if solver == "lbfgs":
            gaps.append(abs(net.cost(X, Y, 0.2) - logs["loss"]))

    cb.Network([4, 6, 3], random_state=0).fit(X, y, solver=solver, lam=0.2, epochs=5,
                                              max_iter=5, callback=callback, random_state=0)
    assert all(g < 1e-10 for g in gaps)


# ------------------------------------------------------------------------- 9. Ctrl-C


def _large_problem(m):
    rng = np.random.default_rng(0)
    X = np.tile(rng.random((500, 64)), (m // 500, 1)) + 0.01 * rng.normal(size=(m, 64))
    y = rng.integers(0, 10, size=m)      # noise: nothing converges quickly
    return X, y


INTERRUPT = {   # each would run for several seconds at least without the interrupt
    "online": (20000, dict(epochs=400, learning_rate=0.01)),
    "adam": (20000, dict(epochs=400, batch_size=32, learning_rate=1e-3)),
    "sgd": (20000, dict(epochs=400, batch_size=64, learning_rate=1e-2)),
    "lbfgs": (4000, dict(max_iter=1000, tol=0.0)),
    "cg": (4000, dict(max_iter=2000, tol=0.0)),
    "rprop": (4000, dict(max_iter=3000, tol=0.0)),
}


@pytest.mark.parametrize("solver", list(INTERRUPT))
def test_ctrl_c_stops_fit_keeps_a_usable_network(solver, sigint_outside_fit):
    m, opts = INTERRUPT[solver]
    X, y = _large_problem(m)
    net = cb.Network([64, 30, 10], random_state=0)
    handler_before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(cb.TrainingInterrupted):
            net.fit(X, y, solver=solver, random_state=0, n_iter_no_change=10**6, **opts)
    finally:
        timer.cancel()
        timer.join()
    assert sigint_outside_fit == [], "the signal arrived after fit returned"
    assert signal.getsignal(signal.SIGINT) is handler_before
    limit = opts.get("max_iter", opts.get("epochs"))
    assert net.n_iter_ < limit
    assert len(net.history_["loss"]) == net.n_iter_
    assert np.isfinite(net.params).all()
    assert net.predict(X[:5]).shape == (5,)
    assert np.isin(net.predict(X[:50]), np.arange(10)).all()
    # and it trains again, without any interrupt left over
    with warnings.catch_warnings():
        warnings.simplefilter("error", cb.TrainingInterrupted)
        net.fit(X[:500], y[:500], solver="adam", epochs=2, random_state=0)
    assert net.n_iter_ == 2


def _one_long_epoch(solver, seed, m=100_000):
    """A network, m samples, fit options for one epoch, and how long that epoch would take
    (projected from a fit on 5000 rows)."""
    rng = np.random.default_rng(seed)
    X = np.tile(rng.random((500, 64), dtype=np.float32), (m // 500, 1))
    y = rng.integers(0, 10, size=m)
    net = cb.Network([64, 400, 400, 10], dtype="float32", random_state=0)
    opts = dict(solver=solver, epochs=1, batch_size=32, learning_rate=1e-3, random_state=0)
    t0 = time.perf_counter()
    net.copy().fit(X[:5000], y[:5000], **opts)
    return net, X, y, opts, (time.perf_counter() - t0) * m / 5000


@pytest.mark.parametrize("solver", ["online", "adam"])
def test_ctrl_c_stops_within_an_epoch(solver, sigint_outside_fit):
    """One long epoch (a whole epoch is one compiled call): the compiled loop notices the
    signal and returns long before the epoch would have ended."""
    net, X, y, opts, projected = _one_long_epoch(solver, seed=1)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.warns(cb.TrainingInterrupted):
            net.fit(X, y, **opts)
    finally:
        timer.cancel()
        timer.join()
    elapsed = time.perf_counter() - t0
    assert sigint_outside_fit == [], "the signal arrived after fit returned"
    assert elapsed < 0.5 * projected, f"stopped after {elapsed:.2f} s of a {projected:.2f} s epoch"
    assert np.isfinite(net.params).all()
    assert len(net.history_["loss"]) == net.n_iter_ <= 1
    assert np.isfinite(net.history_["loss"]).all()
    assert net.predict(X[:3]).shape == (3,)


@pytest.mark.parametrize("solver", ["online", "adam"])
def test_stop_request_reaches_a_fit_in_another_thread(solver):
    """Off the main thread the compiled loops poll the stop flag without the GIL (only the
    main thread runs signal handlers): a request still ends a long epoch early."""
    net, X, y, opts, projected = _one_long_epoch(solver, seed=2)
    worker = threading.Thread(target=net.fit, args=(X, y), kwargs=opts)
    t0 = time.perf_counter()
    worker.start()
    try:
        time.sleep(0.3)
        core.request_stop()
        worker.join()
    finally:
        core.clear_stop()
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5 * projected, f"stopped after {elapsed:.2f} s of a {projected:.2f} s epoch"
    assert np.isfinite(net.params).all()


# ----------------------------------------------------------------------- 10. divergence


@pytest.mark.parametrize("solver, lr, dtype", [
    ("sgd", 10.0, "float64"),
    ("sgd", 10.0, "float32"),
    ("online", 10.0, "float64"),
    ("adam", 1e200, "float64"),
])
def test_divergence_raises_naming_rate_and_epoch(rng, solver, lr, dtype):
    X = rng.normal(size=(100, 4))
    y = X @ rng.normal(size=4) * 10 + 5
    net = cb.Network([4, 6, 1], activation="relu", output="identity", loss="squared_error",
                     dtype=dtype, random_state=0)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, y, solver=solver, learning_rate=lr, epochs=50, random_state=0)
    message = str(info.value)
    assert f"learning_rate={lr:g}" in message
    assert re.search(r"epoch \d+", message)
    assert np.isfinite(net.params).all()              # the last finite values
    assert net.predict(X).shape == (100,)             # (huge maybe, but the network works)


# ---------------------------------------------------------------------- 11. bad input


def _fitted(rng):
    X, y = classification(rng, m=40)
    net = cb.Network([4, 5, 3], random_state=0)
    net.fit(X, y, solver="rprop", max_iter=3)
    return net, X, y


BAD_OPTIONS = [
    (dict(solver="newton"), ValueError, "solver"),
    (dict(solver=None), ValueError, "solver"),
    (dict(schedule="cosine"), ValueError, "schedule"),
    (dict(learning_rate=0.0), ValueError, "learning_rate"),
    (dict(learning_rate=-0.1), ValueError, "learning_rate"),
    (dict(learning_rate=np.nan), ValueError, "learning_rate"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=-4), ValueError, "batch_size"),
    (dict(batch_size=8.0), TypeError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(epochs=2.5), TypeError, "epochs"),
    (dict(epochs=10.0), TypeError, "epochs"),
    (dict(epochs=True), TypeError, "epochs"),
    (dict(lam=-1.0), ValueError, "lam"),
    (dict(lam=np.inf), ValueError, "lam"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(tol=-1e-3), ValueError, "tol"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=1.5), TypeError, "max_iter"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(validation_fraction=-0.1), ValueError, "validation_fraction"),
    (dict(callback=42), TypeError, "callback"),
    (dict(callback="print"), TypeError, "callback"),
    (dict(random_state="seed"), TypeError, "random_state"),
    (dict(validation_data=np.zeros((5, 4))), TypeError, "validation_data"),
    (dict(sample_weight=np.ones(7)), ValueError, "sample_weight"),
    (dict(sample_weight=-np.ones(40)), ValueError, "sample_weight"),
]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("bad, error, name", BAD_OPTIONS,
                         ids=[f"{list(b)[0]}={b[list(b)[0]]!r}"[:40] for b, _, _ in BAD_OPTIONS])
def test_bad_options_raise_before_training(rng, bad, error, name, solver):
    net, X, y = _fitted(rng)
    before, classes, history = net.params.copy(), net.classes_.copy(), net.history_
    calls = []
    opts = dict(solver=solver, epochs=3, callback=lambda *a: calls.append(a))
    opts.update(bad)
    with pytest.raises(error, match=name):
        net.fit(X, y, **opts)
    assert np.array_equal(net.params, before)
    assert np.array_equal(net.classes_, classes)
    assert net.history_ is history
    assert calls == []


def _bad_data(X, y):
    """(description, X, y, extra fit options, error, word the message must contain)."""
    Xv, yv = X[:10], y[:10]
    return [
        ("wrong_n_classes", X, np.arange(len(y)) % 4, {}, ValueError, "classes"),
        ("one_class", X, np.zeros(len(y), dtype=int), {}, ValueError, "class"),
        ("y_too_short", X, y[:-3], {}, ValueError, "y"),
        ("y_too_long", X, np.concatenate([y, y[:2]]), {}, ValueError, "y"),
        ("y_3d", X, y.reshape(-1, 1, 1), {}, ValueError, "y"),
        ("Y_wrong_columns", X, np.eye(4)[y], {}, ValueError, "outputs"),
        ("Y_out_of_range", X, 2 * np.eye(3)[y], {}, ValueError, "y"),
        ("X_wrong_columns", X[:, :3], y, {}, ValueError, "X"),
        ("X_nan", np.where(np.eye(len(y), X.shape[1]) > 0, np.nan, X), y, {}, ValueError,
         "X"),
        ("val_X_wrong_columns", X, y, dict(validation_data=(Xv[:, :3], yv)), ValueError,
         "validation"),
        ("val_y_wrong_length", X, y, dict(validation_data=(Xv, yv[:-2])), ValueError,
         "validation"),
        ("val_X_1d", X, y, dict(validation_data=(Xv[0], yv[:1])), ValueError, "validation"),
        ("val_unseen_label", X, y, dict(validation_data=(Xv, np.r_[yv[:-1], 7])), ValueError,
         "validation"),
    ]


BAD_DATA_IDS = [case[0] for case in _bad_data(np.zeros((40, 4)), np.arange(40) % 3)]


@pytest.mark.parametrize("case", range(len(BAD_DATA_IDS)), ids=BAD_DATA_IDS)
def test_bad_data_raise_before_training(rng, case):
    net, X, y = _fitted(rng)
    _, bad_X, bad_y, extra, error, word = _bad_data(X, y)[case]
    before, classes = net.params.copy(), net.classes_.copy()
    with pytest.raises(error, match=word):
        net.fit(bad_X, bad_y, solver="adam", epochs=2, **extra)
    assert np.array_equal(net.params, before)
    assert np.array_equal(net.classes_, classes)


def test_failed_fit_leaves_the_fitted_labels_alone(rng):
    """A fit that fails its input checks must not half-configure the network: the labels
    of the earlier fit stay, and predict still returns them."""
    net, X, y = _fitted(rng)
    expected = net.predict(X)
    names = np.array(["a", "b", "c"])[y]
    with pytest.raises(ValueError):
        net.fit(X, names, solver="adam", epochs=2, validation_data=(X[:5, :3], names[:5]))
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])
    np.testing.assert_array_equal(net.predict(X), expected)
    assert net.score(X, y) == np.mean(expected == y)


def test_regression_y_with_nan_is_rejected(rng):
    X = rng.normal(size=(30, 3))
    y = X.sum(axis=1)
    y[4] = np.nan
    net = cb.Network([3, 4, 1], output="identity", loss="squared_error", random_state=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"y.*NaN|NaN.*y"):
        net.fit(X, y, solver="adam", epochs=2)
    with pytest.raises(ValueError, match="y"):
        net.fit(X, np.column_stack([y, y]), solver="adam", epochs=2)   # 2 values, 1 output
    assert np.array_equal(net.params, before)


def test_labels_with_nan_or_none_are_rejected(rng):
    X, y = classification(rng, m=20)
    net = cb.Network([4, 5, 3], random_state=0)
    y_nan = y.astype(float)
    y_nan[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.fit(X, y_nan, epochs=1)
    y_none = np.array(["a", "b", "c"], dtype=object)[y]
    y_none[1] = None
    with pytest.raises(ValueError, match="None"):
        net.fit(X, y_none, epochs=1)
    # scikit-learn's ValueError, not NumPy's UFuncTypeError (a TypeError) from the sort
    with pytest.raises(ValueError, match="Mix of label input types"):
        net.fit(X, np.array([1, "a", 2.5] * 6 + [1, "a"], dtype=object), epochs=1)
    with pytest.raises(ValueError, match=r"Mix of label input types \(string and number\)"):
        net.fit(X, [1, "a", 2] * 6 + [1, "a"], epochs=1)     # a list NumPy would make all text


def test_score_and_predict_reject_bad_input(rng):
    net, X, y = _fitted(rng)
    y_unseen = y.copy()
    y_unseen[0] = 9
    with pytest.raises(ValueError, match="unseen"):
        net.score(X, y_unseen)
    with pytest.raises(ValueError, match=r"\b9\b"):
        net.score(X, y_unseen)
    with pytest.raises(ValueError, match="samples"):
        net.score(X, y[:-1])
    with pytest.raises(ValueError, match="X"):
        net.predict(X[:, :2])
    with pytest.raises(ValueError, match="X"):
        net.predict_proba(X[0, :2])           # one row (1-D) of the wrong width
    with pytest.raises((TypeError, ValueError), match="fit"):
        net.score(X, np.array(["a"] * len(y)))   # strings where ints were fitted


# ------------------------------------------------------------------- 12. kinds of targets


def test_string_labels(rng):
    X, y = classification(rng, m=90)
    names = np.array(["zebra", "ant", "moose"])[y]
    net = cb.Network([4, 8, 3], output="softmax", random_state=0)
    net.fit(X, names, solver="lbfgs", max_iter=60)
    np.testing.assert_array_equal(net.classes_, ["ant", "moose", "zebra"])
    pred = net.predict(X)
    assert pred.dtype.kind == "U" and pred.shape == (90,)
    assert set(pred) <= {"ant", "moose", "zebra"}
    proba = net.predict_proba(X)
    np.testing.assert_array_equal(pred, net.classes_[np.argmax(proba, axis=1)])
    assert net.score(X, names) == np.mean(pred == names)
    assert net.score(X, names) > 0.8
    # python lists of strings work too
    assert net.score(X, names.tolist()) == net.score(X, names)


def test_multilabel_targets(rng):
    X = rng.normal(size=(120, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5]).astype(int)
    net = cb.Network([5, 10, 3], output="sigmoid", random_state=0)
    net.fit(X, Y, solver="lbfgs", max_iter=100)
    assert net.classes_ is None
    pred = net.predict(X)
    assert pred.shape == (120, 3)
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (net.forward(X) >= 0.5).astype(int))
    score = net.score(X, Y)
    assert score == np.mean(np.all(pred == Y, axis=1))
    assert score > 0.85
    proba = net.predict_proba(X)
    assert proba.shape == (120, 3) and ((proba >= 0) & (proba <= 1)).all()


@pytest.mark.parametrize("n_out", [1, 2])
def test_regression_targets(rng, n_out):
    from sklearn.metrics import r2_score

    X = rng.uniform(-1, 1, size=(120, 3))
    Y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] ** 2 - X[:, 0]])[:, :n_out]
    y = Y[:, 0] if n_out == 1 else Y
    net = cb.Network([3, 12, n_out], activation="tanh", output="identity",
                     loss="squared_error", random_state=0)
    net.fit(X, y, solver="lbfgs", max_iter=200)
    pred = net.predict(X)
    assert pred.shape == y.shape
    np.testing.assert_allclose(pred.reshape(len(X), -1), net.forward(X))
    score = net.score(X, y)
    assert score == pytest.approx(r2_score(y, pred), rel=1e-10)
    assert score > 0.9
    with pytest.raises(ValueError, match="predict_proba"):
        net.predict_proba(X)


def test_binary_with_one_sigmoid_unit(rng):
    X = rng.normal(size=(100, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    net = cb.Network([3, 4, 1], output="sigmoid", random_state=0)
    net.fit(X, labels, solver="lbfgs", max_iter=50)
    np.testing.assert_array_equal(net.classes_, ["no", "yes"])
    proba = net.predict_proba(X)
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba[:, 1], net.forward(X)[:, 0])
    pred = net.predict(X)
    np.testing.assert_array_equal(pred, np.where(proba[:, 1] >= 0.5, "yes", "no"))
    assert net.score(X, labels) > 0.9


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_proba_rows_sum_to_one(rng, output, dtype):
    X, y = classification(rng, m=80, k=4)
    labels = np.array([10, 20, 30, 40])[y]
    net = cb.Network([4, 6, 4], output=output, dtype=dtype, random_state=0)
    net.fit(X, labels, solver="adam", epochs=10, learning_rate=0.01, random_state=0)
    proba = net.predict_proba(X)
    assert proba.shape == (80, 4)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_array_equal(net.predict(X), net.classes_[np.argmax(proba, axis=1)])
    assert set(net.predict(X)) <= {10, 20, 30, 40}


def test_one_hot_matrix_targets_score(rng):
    X, y = classification(rng, m=60)
    Y = np.eye(3)[y]
    net = cb.Network([4, 6, 3], output="softmax", random_state=0)
    net.fit(X, Y, solver="lbfgs", max_iter=40)
    assert net.classes_ is None
    assert net.score(X, Y) == np.mean(np.argmax(net.forward(X), 1) == y)


# ------------------------------------------------------------ 13. history_, n_iter_, verbose


@pytest.mark.parametrize("solver", SOLVERS)
def test_history_one_entry_per_epoch(rng, solver):
    X, y = classification(rng, m=60)
    net = cb.Network([4, 6, 3], random_state=0)
    opts = dict(QUICK[solver])
    opts.update(epochs=7) if solver not in FULL_BATCH else opts.update(max_iter=7)
    net.fit(X, y, solver=solver, tol=0.0, random_state=0, **opts)
    h = net.history_
    assert net.n_iter_ == len(h["loss"]) == len(h["time"]) == 7
    assert set(h) == {"loss", "time"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in h["loss"])
    assert h["time"][0] > 0 and all(np.diff(h["time"]) > 0)
    # a second fit starts a fresh history
    net.fit(X, y, solver=solver, tol=0.0, random_state=0,
            **{**opts, ("max_iter" if solver in FULL_BATCH else "epochs"): 2})
    assert net.n_iter_ == len(net.history_["loss"]) == 2


@pytest.mark.parametrize("solver", SOLVERS)
def test_verbose_shows_progress_and_quiet_by_default(rng, solver, capsys):
    X, y = classification(rng, m=40)
    opts = dict(QUICK[solver])
    opts.update(epochs=3) if solver not in FULL_BATCH else opts.update(max_iter=3)
    cb.Network([4, 5, 3], random_state=0).fit(X, y, solver=solver, tol=0.0, **opts)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    cb.Network([4, 5, 3], random_state=0).fit(X, y, solver=solver, tol=0.0, verbose=True,
                                              **opts)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert solver in text
    assert "loss" in text


def test_stops_when_the_cost_stops_improving(rng, no_fit_warnings):
    """Without early stopping: n_iter_no_change epochs without a tol improvement stop fit."""
    X, y = classification(rng, m=40)
    net = cb.Network([4, 5, 3], random_state=0)
    net.fit(X, y, solver="adam", epochs=100, tol=1e3, n_iter_no_change=4, random_state=0)
    assert net.n_iter_ == 5       # the first epoch improves on nothing; then 4 without


# -------------------------------------------------------------------------- 14. schedules


def _observed_rates(rng, schedule, epochs, tol, n_iter_no_change, lr=0.5):
    """The learning rate of every epoch of sgd (no momentum, one batch an epoch), read off
    the update: Theta_k = Theta_{k-1} - rate_k * grad(Theta_{k-1})."""
    X, y = classification(rng, m=40)
    Y = np.eye(3)[y]
    net = cb.Network([4, 5, 3], random_state=0)
    params = [net.params.copy()]

    def callback(net, epoch, logs):
        params.append(net.params.copy())

    net.fit(X, y, solver="sgd", momentum=0.0, batch_size=40, shuffle=False, epochs=epochs,
            learning_rate=lr, schedule=schedule, tol=tol, n_iter_no_change=n_iter_no_change,
            callback=callback)
    rates = []
    for before, after in zip(params[:-1], params[1:]):
        _, g = ref_grad(net, unflatten(net, before), X, Y, 0.0)
        rates.append(float(np.dot(before - after, g) / np.dot(g, g)))
        assert rel_err(after, before - rates[-1] * g) < 1e-10
    return np.array(rates), net


def test_schedule_constant(rng):
    rates, net = _observed_rates(rng, "constant", epochs=5, tol=0.0, n_iter_no_change=100)
    np.testing.assert_allclose(rates, 0.5, rtol=1e-9)


def test_schedule_invscaling(rng):
    rates, net = _observed_rates(rng, "invscaling", epochs=6, tol=0.0, n_iter_no_change=100)
    np.testing.assert_allclose(rates, 0.5 / np.sqrt(np.arange(1, 7)), rtol=1e-9)


def test_schedule_adaptive_divides_by_five(rng):
    # tol=1e3: no epoch after the first improves "enough", so the rate is divided by 5
    # after every n_iter_no_change=2 such epochs, and training goes on
    rates, net = _observed_rates(rng, "adaptive", epochs=9, tol=1e3, n_iter_no_change=2)
    lr = 0.5
    expected = [lr] * 3 + [lr / 5] * 2 + [lr / 25] * 2 + [lr / 125] * 2
    np.testing.assert_allclose(rates, expected, rtol=1e-9)
    assert net.n_iter_ == 9


def test_schedule_adaptive_stops_as_scikit_learns_does(rng):
    # scikit-learn's trigger_stopping: a rate above 1e-6 is divided by 5, one at or below
    # 1e-6 stops: 1e-5 -> 2e-6 -> 4e-7, then stop
    rates, net = _observed_rates(rng, "adaptive", epochs=50, tol=1e3, n_iter_no_change=2,
                                 lr=1e-5)
    np.testing.assert_allclose(rates, [1e-5] * 3 + [2e-6] * 2 + [4e-7] * 2, rtol=1e-9)
    assert net.n_iter_ == 7


def test_schedule_adaptive_eventually_stops(rng, no_fit_warnings):
    X, y = classification(rng, m=30)
    net = cb.Network([4, 5, 3], random_state=0)
    net.fit(X, y, solver="sgd", schedule="adaptive", epochs=1000, tol=1e3, n_iter_no_change=2,
            learning_rate=0.1, random_state=0)
    assert net.n_iter_ < 1000


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("solver", ["online", "sgd", "adam"])
def test_schedules_converge(rng, solver, schedule):
    X, y = classification(rng, m=80)
    Y = np.eye(3)[y]
    net = cb.Network([4, 6, 3], random_state=0)
    before = net.cost(X, Y)
    opts = dict(QUICK[solver], epochs=40)
    net.fit(X, y, solver=solver, schedule=schedule, random_state=0, n_iter_no_change=3, **opts)
    assert net.cost(X, Y) < 0.8 * before


# ------------------------------------------------------------- 15. the caller's arrays


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_does_not_modify_its_inputs(rng, solver, dtype):
    X, y = classification(rng, m=50)
    X = X.astype(dtype)                         # already the network's dtype: no copy needed
    Y = np.eye(3, dtype=dtype)[y]
    w = rng.uniform(0.5, 2.0, size=50).astype(dtype)
    Xv, yv = X[:10].copy(), y[:10].copy()
    originals = [a.copy() for a in (X, y, Y, w, Xv, yv)]
    opts = dict(QUICK[solver], solver=solver, lam=0.5, sample_weight=w, random_state=0)
    net = cb.Network([4, 6, 3], dtype=dtype, random_state=0)
    net.fit(X, y, validation_data=(Xv, yv), **opts)
    net.fit(X, Y, **opts)
    net.fit(X, y, validation_fraction=0.2, early_stopping=True, **opts)
    net.score(X, y)
    net.predict_proba(X)
    for original, now in zip(originals, (X, y, Y, w, Xv, yv)):
        assert np.array_equal(original, now)
    assert not np.shares_memory(net.params, X)


# ---------------------------------------------------------------- found in review

def _iris_like(m=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def test_a_cost_that_explodes_without_nan_is_divergence():
    X, y = _iris_like()
    net = cb.Network([4, 8, 1], output="identity", loss="squared_error", random_state=0)
    with pytest.raises(FloatingPointError, match=r"grew from .* learning_rate=10"):
        net.fit(X, y * 1.0, solver="sgd", learning_rate=10, epochs=20)
    assert np.isfinite(net.params).all()


def test_a_cost_that_rises_warns():
    X, y = _iris_like()
    net = cb.Network([4, 8, 3], random_state=0)
    with pytest.warns(cb.ConvergenceWarning, match="cost rose"):
        net.fit(X, y, solver="sgd", learning_rate=50, epochs=30)


def test_scipy_giving_up_is_reported():
    X, y = _iris_like()
    net = cb.Network([4, 8, 1], activation="relu", output="identity", loss="squared_error",
                     random_state=0)
    with pytest.warns(cb.ConvergenceWarning, match="L-BFGS-B stopped"):
        net.fit(X * 1e150, y * 1e150, solver="lbfgs")


def test_validation_split_keeps_every_class_in_training():
    X, _ = _iris_like(6)
    net = cb.Network([4, 5, 3], random_state=0)
    seen = []
    net.fit(X, [0, 0, 0, 0, 1, 2], solver="sgd", epochs=1, validation_fraction=0.6,
            callback=lambda n, e, logs: seen.append(e))
    assert seen == [1]


def test_validation_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        cb.Network([3, 4, 1], output="identity", loss="squared_error").fit(
            np.ones((1, 3)), [1.0], early_stopping=True)


def test_copy_keeps_what_fit_learned():
    X, y = _iris_like()
    net = cb.Network([4, 8, 3], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, np.array(["a", "b", "c"])[y], solver="lbfgs", max_iter=5)
    twin = net.copy()
    np.testing.assert_array_equal(twin.predict(X), net.predict(X))
    assert twin.history_ == net.history_
    twin.params[0] += 1
    assert twin.params[0] != net.params[0]


def test_score_with_one_hot_rows_matches_score_with_labels():
    X, y = _iris_like()
    net = cb.Network([4, 8, 3], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, solver="lbfgs", max_iter=30)
    assert net.score(X, np.eye(3)[y]) == net.score(X, y)


def test_fit_refuses_parameters_made_non_finite_by_hand():
    X, y = _iris_like()
    net = cb.Network([4, 8, 3], random_state=0)
    net.thetas[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="parameters contain NaN or inf"):
        net.fit(X, y)


def test_max_iter_with_an_epoch_solver_says_it_does_not_count_epochs():
    """max_iter bounds the full-batch solvers only: given to adam (as scikit-learn's users
    would, for epochs) without epochs, it used to be ignored without a word; now a warning
    says to pass epochs. Given with epochs (the estimators, options shared by every
    solver), nothing is said."""
    X = np.random.default_rng(0).normal(size=(60, 4))
    y = np.arange(60) % 3
    net = cb.Network([4, 5, 3], output="softmax", random_state=0)
    with pytest.warns(UserWarning, match=r"max_iter=3 bounds .* adam runs epochs=200 "
                                         r"\(pass epochs=3") as caught:
        net.fit(X, y, solver="adam", max_iter=3, tol=0.0)
    assert any(w.filename == __file__ for w in caught)        # pointed at the caller
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="max_iter=")
        cb.Network([4, 5, 3], output="softmax", random_state=0).fit(
            X, y, solver="adam", epochs=3, max_iter=15, tol=0.0)
        cb.Network([4, 5, 3], output="softmax", random_state=0).fit(
            X, y, solver="lbfgs", max_iter=3, tol=0.0)
