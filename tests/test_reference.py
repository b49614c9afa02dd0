"""Tests of the pure NumPy reference (cbackprop.reference), the contract of every compiled path."""

import itertools
import warnings
import zlib
from contextlib import contextmanager

import numpy as np
import pytest

from cbackprop import reference as ref

IMPLEMENTATIONS = {
    "vectorized": ref.cost_and_gradient,
    "loop": ref.cost_and_gradient_loop,
    "pure_python": ref.pure_python,
}

# every valid (hidden activation, output, loss); cross-entropy needs sigmoid or softmax
# outputs, and poisson goes with exp outputs (and they with it)
COMBOS = [
    (act, out, loss)
    for act, out, loss in itertools.product(ref.ACTIVATIONS, ref.OUTPUTS, ref.LOSSES)
    if not (loss == "cross_entropy" and out in ("identity", "exp"))
    and (loss == "poisson") == (out == "exp")
]
OUTPUT_LOSS = sorted({(out, loss) for _, out, loss in COMBOS})


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


@contextmanager
def no_fp_trouble():
    """Fail on any warning and on overflow, division by zero or invalid operations.

    Underflow (exp(-1000) == 0.0) is harmless and stays ignored, as it is by NumPy's default.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            yield


def seed_of(*params):
    return zlib.crc32(repr(params).encode())


def rel_diff(a, b):
    """norm(a - b) / norm(a + b) over all layers, as the course's checkNNGradients reports it."""
    a = np.concatenate([np.ravel(x) for x in a])
    b = np.concatenate([np.ravel(x) for x in b])
    return np.linalg.norm(a - b) / np.linalg.norm(a + b)


def assert_close(actual, expected, rtol):
    """Elementwise relative closeness, with an absolute floor relative to the largest entry."""
    expected = np.asarray(expected)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def numerical_gradient(thetas, X, Y, eps=1e-5, **kwargs):
    """Central differences (J(theta + eps) - J(theta - eps)) / 2 eps of ref.cost, entry by entry."""
    thetas = [np.array(t, dtype=np.float64) for t in thetas]
    grads = []
    for theta in thetas:
        grad = np.empty_like(theta)
        for idx in np.ndindex(theta.shape):
            saved = theta[idx]
            theta[idx] = saved + eps
            plus = ref.cost(thetas, X, Y, **kwargs)
            theta[idx] = saved - eps
            minus = ref.cost(thetas, X, Y, **kwargs)
            theta[idx] = saved
            grad[idx] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def random_problem(rng, output, loss, n_hidden, m=None):
    """Random sizes (widths 1..8), thetas, X, targets Y suited to the output, and sample weights."""
    sizes = [int(s) for s in rng.integers(1, 9, size=n_hidden + 2)]
    if output == "softmax" and sizes[-1] == 1:
        sizes[-1] = 3  # a single softmax unit is constant; keep it interesting
    m = int(rng.integers(1, 21)) if m is None else m
    thetas = [rng.normal(scale=0.8, size=(b, a + 1)) for a, b in zip(sizes[:-1], sizes[1:])]
    X = rng.normal(size=(m, sizes[0]))
    if output == "identity":
        Y = rng.normal(size=(m, sizes[-1]))
    elif output == "exp":
        Y = rng.poisson(1.5, size=(m, sizes[-1])).astype(np.float64)  # counts, zeros among them
    else:
        # soft targets in [0, 1]; for softmax the rows do not sum to 1, which exercises the exact
        # output delta h * sum(y) - y
        Y = rng.uniform(size=(m, sizes[-1]))
    w = rng.uniform(0.1, 3.0, size=m)
    return thetas, X, Y, w


# ----------------------------------------------------------------------------------------------
# 1. sigmoid and its gradient
# ----------------------------------------------------------------------------------------------


def test_sigmoid_gradient_course_values():
    z = np.array([-1, -0.5, 0, 0.5, 1])
    expected = [0.196612, 0.235004, 0.25, 0.235004, 0.196612]  # printed by the course's ex4
    np.testing.assert_allclose(ref.sigmoid_gradient(z), expected, atol=5e-7)
    assert ref.sigmoid(0.0) == 0.5


@pytest.mark.parametrize("big", [1000.0, 1e4])
def test_sigmoid_saturates_without_warnings(big):
    with no_fp_trouble():
        s = ref.sigmoid(np.array([-big, big]))
        gs = ref.sigmoid_gradient(np.array([-big, big]))
        s_scalar = ref.sigmoid(-big)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(gs))
    assert s[0] == 0.0 and s[1] == 1.0
    assert np.all(gs == 0.0)
    assert np.ndim(s_scalar) == 0 and s_scalar == 0.0


def test_sigmoid_float32_stays_float32():
    z = np.linspace(-20, 20, 9, dtype=np.float32)
    assert ref.sigmoid(z).dtype == np.float32
    np.testing.assert_allclose(ref.sigmoid(z), 1 / (1 + np.exp(-z.astype(np.float64))), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# 2. debugInitializeWeights
# ----------------------------------------------------------------------------------------------


def test_debug_initialize_weights():
    W = ref.debug_initialize_weights(5, 3)
    assert W.shape == (5, 4)
    np.testing.assert_array_equal(W, (np.sin(np.arange(1, 21)) / 10).reshape((5, 4), order="F"))
    # column-major: down the first column first
    assert W[1, 0] == np.sin(2) / 10 and W[0, 1] == np.sin(6) / 10


# ----------------------------------------------------------------------------------------------
# 3. the course's gradient check (checkNNGradients): 3-5-3 network, m = 5
# ----------------------------------------------------------------------------------------------


def course_check_problem():
    Theta1 = ref.debug_initialize_weights(5, 3)
    Theta2 = ref.debug_initialize_weights(3, 5)
    X = ref.debug_initialize_weights(5, 2)  # 5 samples x 3 features
    y = 1 + np.arange(1, 6) % 3  # labels 2 3 1 2 3
    Y = np.eye(3)[y - 1]
    return [Theta1, Theta2], X, Y


# numgrad of the course's checkNNGradients(3) (lambda = 3), as Octave prints it (5 significant
# digits), unrolled [Theta1(:); Theta2(:)] in column-major order; recorded in a public ex4 solution
COURSE_NUMGRAD_LAMBDA3 = [
    -9.2783e-03, 8.8991e-03, -8.3601e-03, 7.6281e-03, -6.7480e-03,
    -1.6768e-02, 3.9433e-02, 5.9336e-02, 2.4764e-02, -3.2688e-02,
    -6.0174e-02, -3.1961e-02, 2.4923e-02, 5.9772e-02, 3.8641e-02,
    -1.7370e-02, -5.7566e-02, -4.5196e-02, 9.1459e-03, 5.4610e-02,
    3.1454e-01, 1.1106e-01, 9.7401e-02, 1.1868e-01, 3.8193e-05,
    3.3693e-02, 2.0399e-01, 1.1715e-01, 7.5480e-02, 1.2570e-01,
    -4.0759e-03, 1.6968e-02, 1.7634e-01, 1.1313e-01, 8.6163e-02,
    1.3229e-01, -4.5296e-03, 1.5005e-03,
]  # fmt: skip


@pytest.mark.parametrize("lam", [0.0, 3.0])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_course_gradient_check(impl, lam):
    thetas, X, Y = course_check_problem()
    J, grads = IMPLEMENTATIONS[impl](thetas, X, Y, lam)
    assert [g.shape for g in grads] == [(5, 4), (3, 6)]
    numgrad = numerical_gradient(thetas, X, Y, eps=1e-4, lam=lam)  # the course's epsilon
    assert rel_diff(numgrad, grads) < 1e-9
    assert J == pytest.approx(ref.cost(thetas, X, Y, lam), rel=1e-13)
    if lam == 3.0:
        unrolled = np.concatenate([g.ravel(order="F") for g in grads])
        np.testing.assert_allclose(unrolled, COURSE_NUMGRAD_LAMBDA3, rtol=1e-4, atol=0)


# ----------------------------------------------------------------------------------------------
# 4. the derivation's worked example, by hand: 3-4-4-3 sigmoid network, one sample
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_worked_example_by_hand(lam):
    rng = np.random.default_rng(345)
    Theta1 = rng.normal(size=(4, 4))
    Theta2 = rng.normal(size=(4, 5))
    Theta3 = rng.normal(size=(3, 5))
    x = rng.normal(size=3)
    y = np.array([0.0, 1.0, 0.0])

    def g(z):
        return 1 / (1 + np.exp(-z))

    # forward propagation, column vectors, bias unit first
    a1 = np.concatenate(([1.0], x))
    z2 = Theta1 @ a1
    a2 = np.concatenate(([1.0], g(z2)))
    z3 = Theta2 @ a2
    a3 = np.concatenate(([1.0], g(z3)))
    z4 = Theta3 @ a3
    a4 = g(z4)  # h
    J = -np.sum(y * np.log(a4) + (1 - y) * np.log(1 - a4))
    J += lam / 2 * sum(np.sum(T[:, 1:] ** 2) for T in (Theta1, Theta2, Theta3))

    # backpropagation
    delta4 = a4 - y
    delta3 = (Theta3.T @ delta4)[1:] * a3[1:] * (1 - a3[1:])
    delta2 = (Theta2.T @ delta3)[1:] * a2[1:] * (1 - a2[1:])
    D1 = np.outer(delta2, a1)
    D2 = np.outer(delta3, a2)
    D3 = np.outer(delta4, a3)
    expected = []
    for D, T in ((D1, Theta1), (D2, Theta2), (D3, Theta3)):
        D = D.copy()
        D[:, 1:] += lam * T[:, 1:]  # m = 1
        expected.append(D)

    thetas, X, Y = [Theta1, Theta2, Theta3], x[None, :], y[None, :]
    zs, acts = ref.forward_all(thetas, X)
    for got, want in zip(zs, (z2, z3, z4)):
        np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-14)
    for got, want in zip(acts, (x, a2[1:], a3[1:], a4)):
        np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ref.forward(thetas, X)[0], a4, rtol=1e-12)
    assert ref.cost(thetas, X, Y, lam) == pytest.approx(J, rel=1e-12)

    for impl in IMPLEMENTATIONS.values():
        J_got, grads = impl(thetas, X, Y, lam)
        assert J_got == pytest.approx(J, rel=1e-12)
        for got, want in zip(grads, expected):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# 5. the three implementations agree, and agree with finite differences
# ----------------------------------------------------------------------------------------------


def check_all_agree(thetas, X, Y, **kwargs):
    results = {name: impl(thetas, X, Y, **kwargs) for name, impl in IMPLEMENTATIONS.items()}
    J, grads = results["vectorized"]
    assert isinstance(J, float) and np.isfinite(J)
    assert [g.shape for g in grads] == [t.shape for t in thetas]
    assert all(g.dtype == np.float64 for g in grads)
    assert J == pytest.approx(ref.cost(thetas, X, Y, **kwargs), rel=1e-12, abs=1e-300)
    for name in ("loop", "pure_python"):
        J_other, grads_other = results[name]
        assert isinstance(J_other, float)
        assert J_other == pytest.approx(J, rel=1e-10, abs=1e-300), name
        for got, want in zip(grads_other, grads):
            assert_close(got, want, rtol=1e-10)
    numgrad = numerical_gradient(thetas, X, Y, eps=1e-5, **kwargs)
    if any(np.any(g) for g in grads):
        assert rel_diff(numgrad, grads) < 1e-7
    for got, want in zip(numgrad, grads):
        assert_close(got, want, rtol=1e-5)
    return J, grads


@pytest.mark.parametrize("lam", [0.0, 1.5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("activation, output, loss", COMBOS)
def test_implementations_agree(activation, output, loss, weighted, lam):
    rng = np.random.default_rng(seed_of(activation, output, loss, weighted, lam))
    n_hidden = int(rng.integers(1, 4))
    thetas, X, Y, w = random_problem(rng, output, loss, n_hidden)
    check_all_agree(
        thetas, X, Y, lam=lam, activation=activation, output=output, loss=loss,
        sample_weight=w if weighted else None,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("output, loss", OUTPUT_LOSS)
def test_implementations_agree_per_layer_activations(output, loss, seed):
    rng = np.random.default_rng(seed_of(output, loss, seed))
    n_hidden = 3
    thetas, X, Y, w = random_problem(rng, output, loss, n_hidden)
    activation = [str(a) for a in rng.choice(ref.ACTIVATIONS, size=n_hidden)]
    kwargs = dict(lam=0.5 * seed, output=output, loss=loss, sample_weight=w if seed else None)
    check_all_agree(thetas, X, Y, activation=activation, **kwargs)
    check_all_agree(thetas, X, Y, activation=tuple(activation), **kwargs)


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS)
def test_no_hidden_layer(output, loss):
    # L = 2: logistic / softmax / linear regression; no hidden activation is used
    rng = np.random.default_rng(seed_of("no hidden", output, loss))
    thetas, X, Y, w = random_problem(rng, output, loss, n_hidden=0)
    check_all_agree(thetas, X, Y, lam=1.0, activation=[], output=output, loss=loss)
    check_all_agree(thetas, X, Y, lam=1.0, output=output, loss=loss, sample_weight=w)


def test_pure_python_accepts_nested_lists():
    rng = np.random.default_rng(7)
    thetas, X, Y, w = random_problem(rng, "softmax", "cross_entropy", n_hidden=2)
    J, grads = ref.pure_python(thetas, X, Y, 0.3, "tanh", "softmax", sample_weight=w)
    J_list, grads_list = ref.pure_python(
        [t.tolist() for t in thetas], X.tolist(), Y.tolist(), 0.3, "tanh", "softmax",
        sample_weight=w.tolist(),
    )  # fmt: skip
    assert J_list == J
    for a, b in zip(grads_list, grads):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)


def test_softmax_cross_entropy_delta_is_h_minus_y_for_one_hot():
    rng = np.random.default_rng(11)
    thetas, X, _, _ = random_problem(rng, "softmax", "cross_entropy", n_hidden=1, m=6)
    Y = np.eye(thetas[-1].shape[0])[rng.integers(0, thetas[-1].shape[0], size=6)]
    _, grads = ref.cost_and_gradient(thetas, X, Y, output="softmax")
    zs, acts = ref.forward_all(thetas, X, output="softmax")
    delta = acts[-1] - Y
    np.testing.assert_allclose(grads[-1][:, 0], delta.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads[-1][:, 1:], delta.T @ acts[-2] / 6, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation, output, loss", [("tanh", "sigmoid", "cross_entropy"),
                                                      ("relu", "softmax", "squared_error")])
def test_float32_inputs(activation, output, loss):
    rng = np.random.default_rng(3)
    thetas, X, Y, w = random_problem(rng, output, loss, n_hidden=2)
    kwargs = dict(lam=0.5, activation=activation, output=output, loss=loss, sample_weight=w)
    thetas32 = [t.astype(np.float32) for t in thetas]
    X32 = X.astype(np.float32)
    assert ref.forward(thetas32, X32, activation, output).dtype == np.float32
    J64, grads64 = ref.cost_and_gradient(thetas32, X32.astype(np.float64), Y, **kwargs)
    for impl in (ref.cost_and_gradient, ref.cost_and_gradient_loop):
        J32, grads32 = impl(thetas32, X32, Y, **kwargs)
        assert isinstance(J32, float)
        assert J32 == pytest.approx(J64, rel=1e-5)
        for g32, g64 in zip(grads32, grads64):
            assert g32.dtype == np.float32
            assert_close(g32, g64, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# 6. sample weights
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation, output, loss", COMBOS[::2])
def test_weight_two_equals_duplicated_sample(activation, output, loss):
    rng = np.random.default_rng(seed_of("dup", activation, output, loss))
    thetas, X, Y, _ = random_problem(rng, output, loss, n_hidden=2, m=7)
    kwargs = dict(lam=0.8, activation=activation, output=output, loss=loss)
    w = np.ones(7)
    w[2] = 2.0
    X_dup = np.vstack([X, X[2:3]])
    Y_dup = np.vstack([Y, Y[2:3]])
    for impl in IMPLEMENTATIONS.values():
        J_w, grads_w = impl(thetas, X, Y, sample_weight=w, **kwargs)
        J_d, grads_d = impl(thetas, X_dup, Y_dup, **kwargs)
        assert J_w == pytest.approx(J_d, rel=1e-12)
        for a, b in zip(grads_w, grads_d):
            assert_close(a, b, rtol=1e-12)
        # weights of 1 are no weights
        J_1, grads_1 = impl(thetas, X, Y, sample_weight=np.ones(7), **kwargs)
        J_0, grads_0 = impl(thetas, X, Y, **kwargs)
        assert J_1 == pytest.approx(J_0, rel=1e-14)
        for a, b in zip(grads_1, grads_0):
            assert_close(a, b, rtol=1e-14)


def test_weights_are_normalized():
    # every 1/m becomes 1/sum(w): without regularization, scaling all weights changes nothing
    # (with it, lam / sum(w) shrinks as the weights grow, like lam / m with more samples)
    rng = np.random.default_rng(5)
    thetas, X, Y, w = random_problem(rng, "sigmoid", "cross_entropy", n_hidden=1)
    J, grads = ref.cost_and_gradient(thetas, X, Y, sample_weight=w)
    J5, grads5 = ref.cost_and_gradient(thetas, X, Y, sample_weight=5 * w)
    assert J5 == pytest.approx(J, rel=1e-13)
    for a, b in zip(grads5, grads):
        assert_close(a, b, rtol=1e-13)


# ----------------------------------------------------------------------------------------------
# 7. saturation: |z| of 1000 and 10^4
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("big", [1000.0, 1e4])
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
@pytest.mark.parametrize("output, loss", [p for p in OUTPUT_LOSS if p[0] != "exp"])  # [1]
def test_saturated_network_is_finite(output, loss, activation, big):
    # [1] exp outputs have no saturation: exp(1000) is inf (test_exp_output_overflow below)
    rng = np.random.default_rng(seed_of("sat", output, loss, activation))
    thetas, X, Y, w = random_problem(rng, output, loss, n_hidden=1, m=8)
    thetas = [np.sign(t) for t in thetas]  # entries of +-1 ...
    X = big * np.sign(X)  # ... and inputs of +-big: hidden and output z of order big
    with no_fp_trouble():
        for impl in IMPLEMENTATIONS.values():
            J, grads = impl(thetas, X, Y, 1.0, activation, output, loss, w)
            assert np.isfinite(J)
            assert all(np.all(np.isfinite(g)) for g in grads)
        assert np.isfinite(ref.cost(thetas, X, Y, 1.0, activation, output, loss, w))
        assert np.all(np.isfinite(ref.forward(thetas, X, activation, output)))


def test_exp_output_overflow():
    """z(L) past exp's range: h and J are inf in every implementation, not NaN."""
    theta = [np.array([[0.0, 1.0]])]
    X, Y = np.array([[1000.0], [1.0]]), np.array([[2.0], [0.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        assert ref.forward(theta, X, "sigmoid", "exp")[0, 0] == np.inf
        for impl in IMPLEMENTATIONS.values():
            assert impl(theta, X, Y, output="exp", loss="poisson")[0] == np.inf


def test_poisson_loss_is_sklearns_half_deviance():
    """scikit-learn's poisson_loss: mean over samples of sum over outputs of
    xlogy(y, y / h) - y + h, the constant y log y - y included."""
    sk_base = pytest.importorskip("sklearn.neural_network._base")
    if not hasattr(sk_base, "poisson_loss"):
        pytest.skip("scikit-learn < 1.7 has no poisson_loss")
    rng = np.random.default_rng(3)
    thetas, X, Y, w = random_problem(rng, "exp", "poisson", n_hidden=1, m=30)
    Y[:5] = 0
    h = ref.forward(thetas, X, "tanh", "exp")
    for weights in (None, w):
        assert ref.cost(thetas, X, Y, 0.0, "tanh", "exp", "poisson", weights) == pytest.approx(
            sk_base.poisson_loss(Y, h, weights), rel=1e-12)


@pytest.mark.parametrize("big", [1000.0, 1e4])
def test_saturated_cross_entropy_exact_values(big):
    # L = 2 with one sigmoid output: z = -big with y = 1, z = +big with y = 0
    theta = [np.array([[0.0, 1.0]])]
    X = np.array([[-big], [big]])
    Y = np.array([[1.0], [0.0]])
    with no_fp_trouble():
        for impl in IMPLEMENTATIONS.values():
            J, grads = impl(theta, X, Y)
            # per sample softplus(z) - y z = big (up to log1p(exp(-big)) == 0); h - y = -1 and 1
            assert J == big
            np.testing.assert_array_equal(grads[0], [[0.0, big]])  # mean of (h - y) [1, x]
        # softmax: z = (big, -big), y = (0, 1): logsumexp(z) - z_2 = 2 big
        theta = [np.array([[0.0, 1.0], [0.0, -1.0]])]
        X = np.array([[big]])
        Y = np.array([[0.0, 1.0]])
        for impl in IMPLEMENTATIONS.values():
            J, grads = impl(theta, X, Y, output="softmax")
            assert J == 2 * big
            np.testing.assert_array_equal(grads[0], [[1.0, big], [-1.0, -big]])


# ----------------------------------------------------------------------------------------------
# 8. online_epoch: the compiled online solver's epoch, update for update
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("activation, output, loss", [("sigmoid", "sigmoid", "cross_entropy"),
                                                      ("tanh", "softmax", "cross_entropy"),
                                                      ("identity", "exp", "poisson")])
def test_online_epoch_equals_compiled_fit(activation, output, loss, weighted):
    """One epoch in sample order: the Thetas to 1e-10 and J as fit records it."""
    import cbackprop as cb

    rng = np.random.default_rng(seed_of(activation, output, weighted))
    m, sizes, rate, lam = 40, [4, 6, 5, 3], 0.2 if output != "exp" else 0.02, 0.7
    X = rng.normal(size=(m, sizes[0]))
    if output == "exp":
        Y = rng.poisson(1.0, size=(m, sizes[-1])).astype(float)
    elif output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=m)]
    else:
        Y = (rng.random((m, sizes[-1])) < 0.5).astype(float)  # multi-label 0/1
    w = rng.uniform(0.1, 3.0, size=m) if weighted else None
    net = cb.Network(sizes, activation=activation, output=output, loss=loss, random_state=0)
    start = [t.copy() for t in net.thetas]

    thetas, J = ref.online_epoch(start, X, Y, np.arange(m), rate, lam, activation=activation,
                                 output=output, loss=loss, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.ConvergenceWarning)
        net.fit(X, Y, solver="online", epochs=1, learning_rate=rate, lam=lam, sample_weight=w,
                shuffle=False)
    for ours, compiled in zip(thetas, net.thetas):
        assert_close(ours, compiled, 1e-10)
    assert J == pytest.approx(net.history_["loss"][0], rel=1e-10)


def test_online_epoch_follows_the_order_and_leaves_its_input():
    """Another order, another result; the Thetas passed in are not changed."""
    thetas, X, Y, _ = random_problem(np.random.default_rng(8), "sigmoid", "cross_entropy", 1,
                                     m=12)
    before = [t.copy() for t in thetas]
    forward, _ = ref.online_epoch(thetas, X, Y, np.arange(12), 0.5)
    backward, _ = ref.online_epoch(thetas, X, Y, np.arange(12)[::-1], 0.5)
    assert rel_diff(forward, backward) > 1e-6
    assert all(np.array_equal(t, b) for t, b in zip(thetas, before))
    with pytest.raises(ValueError, match="order"):
        ref.online_epoch(thetas, X, Y, np.ones(12) * 0.5, 0.5)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------


def test_invalid_arguments():
    thetas, X, Y = course_check_problem()
    for impl in (*IMPLEMENTATIONS.values(), ref.cost):
        with pytest.raises(ValueError, match="cross_entropy"):
            impl(thetas, X, Y, output="identity")  # cross-entropy needs sigmoid or softmax
        with pytest.raises(ValueError):
            impl(thetas, X, Y, activation="softmax")  # not a hidden activation
        with pytest.raises(ValueError):
            impl(thetas, X, Y, activation=["sigmoid", "tanh"])  # one hidden layer only
        with pytest.raises(ValueError):
            impl(thetas, X, Y, loss="hinge")
        with pytest.raises(ValueError, match="go together"):
            impl(thetas, X, Y, output="exp", loss="squared_error")
        with pytest.raises(ValueError, match="go together"):
            impl(thetas, X, Y, output="identity", loss="poisson")
        with pytest.raises(ValueError):
            impl(thetas, X, Y[:, :2])  # Y has the wrong shape
        with pytest.raises(ValueError):
            impl(thetas, X[:, :2], Y)  # X does not fit Theta(1)
        with pytest.raises(ValueError):
            impl(thetas, X, Y, sample_weight=np.ones(4))
    with pytest.raises(ValueError):
        ref.forward(thetas, X, output="tanh")
