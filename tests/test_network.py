"""The compiled core (cbackprop.Network) against the NumPy reference (cbackprop.reference).

docs/design.md ("The math") is the contract: forward pass, cost and gradient of fully connected
networks, in float64 (within 1e-10 of the reference) and float32 (within 1e-4 of the
reference computed in float64 from the same float32 numbers).
"""
import itertools
import warnings

import numpy as np
import pytest

import cbackprop as cb
from cbackprop._core import threads
from cbackprop import reference as ref

DTYPES = ["float32", "float64"]
HIDDEN = ["sigmoid", "tanh", "relu", "identity", "leaky_relu", "elu", "softplus", "elliott"]
OUTPUTS = ["sigmoid", "softmax", "identity", "exp"]
LOSSES = ["cross_entropy", "squared_error", "poisson"]
OUTPUT_LOSS = [(o, l) for o, l in itertools.product(OUTPUTS, LOSSES)
               if not (l == "cross_entropy" and o in ("identity", "exp"))
               and (l == "poisson") == (o == "exp")]
METHODS = ["batched", "per_sample"]
TOL = {"float64": 1e-10, "float32": 1e-4}


# ----------------------------------------------------------------------------------- helpers


def hidden_activation(rng, name, depth):
    """A hidden activation name, or for 'mixed' a random list of one name per hidden layer."""
    if name == "mixed":
        return [str(a) for a in rng.choice(HIDDEN, size=depth)]
    return name


def make_targets(rng, m, K, output, loss):
    """Targets valid for the output/loss: one-hot, multi-label 0/1, [0, 1], real values or
    counts (poisson)."""
    if loss == "poisson":
        return rng.poisson(1.5, size=(m, K)).astype(np.float64)
    if loss == "cross_entropy" and output == "softmax":
        return np.eye(K)[rng.integers(0, K, size=m)]
    if loss == "cross_entropy":
        return rng.integers(0, 2, size=(m, K)).astype(np.float64)
    if output == "identity":
        return rng.normal(size=(m, K))
    return rng.uniform(0, 1, size=(m, K))


def make_weights(rng, m):
    """Non-negative sample weights, some of them zero, with a positive sum."""
    w = rng.uniform(0, 3, size=m)
    w[rng.uniform(size=m) < 0.2] = 0
    if w.sum() == 0:
        w[0] = 1.5
    return w


def random_case(rng, dtype, activation, output, loss, depth, m=None, max_width=64,
                max_m=500, weighted=False):
    """A random network (widths 1..max_width, m 1..max_m) and data drawn from rng."""
    n_in = int(rng.integers(1, max_width + 1))
    hidden = [int(s) for s in rng.integers(1, max_width + 1, size=depth)]
    K = int(rng.integers(2 if output == "softmax" else 1, max_width + 1))
    if m is None:
        m = int(rng.integers(1, max_m + 1))
    net = cb.Network([n_in, *hidden, K], activation=hidden_activation(rng, activation, depth),
                     output=output, loss=loss, dtype=dtype, random_state=rng)
    X = rng.normal(size=(m, n_in))
    Y = make_targets(rng, m, K, output, loss)
    w = make_weights(rng, m) if weighted else None
    return net, X, Y, w


def as64(a, dtype):
    """What the network computes with: a converted to its dtype, then widened to float64."""
    return None if a is None else np.asarray(a, dtype=dtype).astype(np.float64)


def reference_result(net, X, Y, lam=0.0, w=None):
    """The reference's (J, grads), in float64, from exactly the numbers the network sees."""
    thetas = [t.astype(np.float64) for t in net.thetas]
    return ref.cost_and_gradient(thetas, as64(X, net.dtype), as64(Y, net.dtype), lam,
                                 activation=net.activation, output=net.output, loss=net.loss,
                                 sample_weight=as64(w, net.dtype))


def reference_forward(net, X):
    thetas = [t.astype(np.float64) for t in net.thetas]
    return ref.forward(thetas, as64(X, net.dtype), activation=net.activation, output=net.output)


def assert_cost_close(J, J_ref, rtol):
    assert isinstance(J, float)
    assert np.isfinite(J)
    assert abs(J - J_ref) <= rtol * abs(J_ref), f"J = {J!r}, reference {J_ref!r}"


def assert_close_scaled(actual, expected, rtol, what=""):
    """Elementwise, relative to the largest entry of expected (so near-zero entries pass)."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, what
    assert np.isfinite(actual).all(), what
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol,
                               atol=rtol * scale, err_msg=what)


def assert_grads_close(grads, grads_ref, rtol):
    assert len(grads) == len(grads_ref)
    for l, (g, r) in enumerate(zip(grads, grads_ref)):
        assert_close_scaled(g, r, rtol, what=f"dJ/dTheta({l + 1})")


def assert_result_close(result, expected, rtol):
    assert_cost_close(result[0], expected[0], rtol)
    assert_grads_close(result[1], expected[1], rtol)


def one_hot_course_labels(m=5, K=3):
    """The course's checkNNGradients labels y = 1 + mod(1:m, K), one-hot."""
    y = 1 + np.arange(1, m + 1) % K
    return np.eye(K)[y - 1]


# ---------------------------------------------------- compiled vs reference, random networks


@pytest.mark.parametrize("extras", ["plain", "lam_weights"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("activation", HIDDEN + ["mixed"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_reference(rng, dtype, activation, output, loss, depth, extras):
    """Both kernels, net.cost and net.forward, on 1 and 2 threads, against the reference."""
    weighted = extras == "lam_weights"
    net, X, Y, w = random_case(rng, dtype, activation, output, loss, depth, weighted=weighted)
    lam = float(rng.uniform(0.1, 5.0)) if weighted else 0.0
    tol = TOL[dtype]
    expected = reference_result(net, X, Y, lam, w)
    h_expected = reference_forward(net, X)

    for n_threads in (1, 2):
        net.n_threads = n_threads
        J, grads = net.cost_and_gradient(X, Y, lam, sample_weight=w)
        assert_result_close((J, grads), expected, tol)
        assert_cost_close(net.cost(X, Y, lam, sample_weight=w), expected[0], tol)
        assert_close_scaled(net.forward(X), h_expected, tol, what="forward")

    J_ps, grads_ps = net.cost_and_gradient(X, Y, lam, sample_weight=w, method="per_sample")
    assert_result_close((J_ps, grads_ps), expected, tol)
    # the two kernels agree with each other (not only each with the reference)
    assert_result_close((J_ps, grads_ps), (J, [g.astype(np.float64) for g in grads]), tol)


@pytest.mark.parametrize("m", [257, 300, 512, 513, 1000, 1537])
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_split_row_blocks(rng, dtype, m):
    """m above one block (256 rows): 1, 2 and 3 threads all give the reference's results.

    513 and 1537 leave a last block of one row (the BLAS level-2 path inside the batched kernel).
    """
    output, loss = OUTPUT_LOSS[int(rng.integers(len(OUTPUT_LOSS)))]
    net, X, Y, w = random_case(rng, dtype, "mixed", output, loss, depth=2, m=m, max_width=24,
                               weighted=True)
    expected = reference_result(net, X, Y, 0.7, w)
    h_expected = reference_forward(net, X)
    results = []
    for n_threads in (1, 2, 3):
        net.n_threads = n_threads
        result = net.cost_and_gradient(X, Y, 0.7, sample_weight=w)
        assert_result_close(result, expected, TOL[dtype])
        assert_close_scaled(net.forward(X), h_expected, TOL[dtype], what="forward")
        results.append(result)
    # repeating a call gives the same numbers
    net.n_threads = 2
    again = net.cost_and_gradient(X, Y, 0.7, sample_weight=w)
    assert_result_close(again, (results[1][0], [g.astype(np.float64) for g in results[1][1]]),
                        TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_one_sample(rng, dtype, method):
    """m = 1 (one row: the BLAS level-2 path) with every output/loss."""
    for output, loss in OUTPUT_LOSS:
        net, X, Y, _ = random_case(rng, dtype, "mixed", output, loss, depth=2, m=1)
        result = net.cost_and_gradient(X, Y, 0.5, method=method)
        assert_result_close(result, reference_result(net, X, Y, 0.5), TOL[dtype])


def test_weights_of_one_are_unweighted(rng):
    """sample_weight of ones gives exactly the unweighted formulas; weight 2 equals a duplicate row."""
    net, X, Y, _ = random_case(rng, "float64", "tanh", "softmax", "cross_entropy", depth=2,
                               m=40, max_width=10)
    plain = net.cost_and_gradient(X, Y, 1.0)
    ones = net.cost_and_gradient(X, Y, 1.0, sample_weight=np.ones(len(X)))
    assert_result_close(ones, plain, 1e-12)
    w = np.ones(len(X))
    w[3] = 2.0
    weighted = net.cost_and_gradient(X, Y, 1.0, sample_weight=w)
    duplicated = net.cost_and_gradient(np.vstack([X, X[3:4]]), np.vstack([Y, Y[3:4]]), 1.0)
    assert_result_close(weighted, duplicated, 1e-12)


def test_zero_weight_ignores_sample(rng):
    net, X, Y, _ = random_case(rng, "float64", "relu", "sigmoid", "cross_entropy", depth=2,
                               m=30, max_width=10)
    w = np.ones(len(X))
    w[:10] = 0
    for method in METHODS:
        weighted = net.cost_and_gradient(X, Y, 2.0, sample_weight=w, method=method)
        assert_result_close(weighted, net.cost_and_gradient(X[10:], Y[10:], 2.0), 1e-12)


def test_regularization_excludes_bias(rng):
    """lam adds (lam/2m) sum W^2 to J and (lam/m) W to the gradient, bias column excluded."""
    net, X, Y, _ = random_case(rng, "float64", "sigmoid", "sigmoid", "cross_entropy", depth=2,
                               m=17, max_width=8)
    lam, m = 2.5, len(X)
    J0, g0 = net.cost_and_gradient(X, Y)
    J1, g1 = net.cost_and_gradient(X, Y, lam)
    reg = sum(np.sum(t[:, 1:] ** 2) for t in net.thetas)
    assert J1 == pytest.approx(J0 + lam / (2 * m) * reg, rel=1e-13)
    for a, b, t in zip(g0, g1, net.thetas):
        np.testing.assert_allclose(b[:, 0], a[:, 0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(b[:, 1:], a[:, 1:] + lam / m * t[:, 1:], rtol=1e-12,
                                   atol=1e-15)


try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None


if given is not None:
    @settings(max_examples=30, deadline=None, derandomize=True, database=None)
    @given(seed=st.integers(0, 2**32 - 1),
           depth=st.integers(1, 4),
           activation=st.sampled_from(HIDDEN + ["mixed"]),
           output_loss=st.sampled_from(OUTPUT_LOSS),
           weighted=st.booleans(),
           lam=st.sampled_from([0.0, 0.3, 10.0]))
    def test_property_kernels_agree(seed, depth, activation, output_loss, weighted, lam):
        """Per-sample kernel == batched kernel == reference on small random networks."""
        rng = np.random.default_rng(seed)
        net, X, Y, w = random_case(rng, "float64", activation, *output_loss, depth=depth,
                                   max_width=9, max_m=40, weighted=weighted)
        expected = reference_result(net, X, Y, lam, w)
        for method in METHODS:
            assert_result_close(net.cost_and_gradient(X, Y, lam, sample_weight=w, method=method),
                                expected, 1e-10)


# ------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("activation", HIDDEN + ["mixed"])
def test_check_gradients_random_small(rng, activation, output, loss):
    """Backprop against central differences, float64, random small nets, lam and weights."""
    for depth, weighted in [(1, False), (2, True), (3, False)]:
        net, X, Y, w = random_case(rng, "float64", activation, output, loss, depth,
                                   max_width=5, max_m=12, weighted=weighted)
        lam = 1.3 if weighted else 0.0
        # leaky_relu's slope 0.01 shrinks a layer's gradient 100-fold a negative unit (1e6
        # down a chain of 1-unit layers); the differences' rounding error does not shrink
        limit = 1e-6 if "leaky_relu" in net.activation else 1e-7
        assert cb.check_gradients(net, X, Y, lam=lam, sample_weight=w) < limit


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
def test_check_gradients_float32(rng, output, loss):
    """A float32 network checked against float64 differences: about float32 precision."""
    net, X, Y, w = random_case(rng, "float32", "tanh", output, loss, depth=2, max_width=5,
                               max_m=12, weighted=True)
    assert cb.check_gradients(net, X, Y, lam=0.5, sample_weight=w) < 1e-4


def test_check_gradients_leaves_network_alone(rng):
    net, X, Y, _ = random_case(rng, "float64", "sigmoid", "sigmoid", "cross_entropy", depth=1,
                               max_width=4, max_m=6)
    before = net.params.copy()
    thetas = net.thetas
    cb.check_gradients(net, X, Y, lam=1.0)
    np.testing.assert_array_equal(net.params, before)
    assert all(np.shares_memory(t, net.params) for t in thetas)


def test_check_gradients_detects_a_wrong_gradient(rng):
    """A gradient off by a few percent is reported far above the 1e-7 threshold."""
    net, X, Y, _ = random_case(rng, "float64", "sigmoid", "sigmoid", "cross_entropy", depth=1,
                               max_width=4, max_m=6)
    right = net.cost_and_gradient

    def wrong(*args, **kwargs):
        J, grads = right(*args, **kwargs)
        return J, [g * 1.05 for g in grads]

    net.cost_and_gradient = wrong
    assert cb.check_gradients(net, X, Y) > 1e-3


# ------------------------------------------------------ the course's gradient-check network


@pytest.fixture
def course_case():
    """checkNNGradients: a 3-5-3 sigmoid net with debug weights, X = debugInitializeWeights(5, 2)."""
    net = cb.Network([3, 5, 3], init="debug")
    X = ref.debug_initialize_weights(5, 2)
    assert X.shape == (5, 3)
    return net, X, one_hot_course_labels()


def test_course_debug_weights(course_case):
    net, _, _ = course_case
    np.testing.assert_array_equal(net.thetas[0], ref.debug_initialize_weights(5, 3))
    np.testing.assert_array_equal(net.thetas[1], ref.debug_initialize_weights(3, 5))
    # Octave fills column by column: sin(1), sin(2), ... down the first column (the bias)
    np.testing.assert_allclose(net.thetas[0][:, 0], np.sin(np.arange(1, 6)) / 10, rtol=1e-15)
    np.testing.assert_allclose(net.thetas[0][0, :], np.sin([1, 6, 11, 16]) / 10, rtol=1e-15)


def test_course_labels():
    np.testing.assert_array_equal(one_hot_course_labels().argmax(axis=1) + 1, [2, 3, 1, 2, 3])


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_course_gradient_check(course_case, lam):
    net, X, Y = course_case
    assert cb.check_gradients(net, X, Y, lam=lam) < 1e-9
    expected = reference_result(net, X, Y, lam)
    loop = ref.cost_and_gradient_loop(net.thetas, X, Y, lam)
    for method in METHODS:
        result = net.cost_and_gradient(X, Y, lam, method=method)
        assert_result_close(result, expected, 1e-12)
        assert_result_close(result, loop, 1e-12)


# --------------------------------------------------------------- activation derivatives


COURSE_SIGMOID_GRADIENT = [(-1.0, 0.196612), (-0.5, 0.235004), (0.0, 0.25), (0.5, 0.235004),
                           (1.0, 0.196612)]


def unit_net(activation, dtype, hidden=True):
    """1-1-1 (or 1-1) network with weights 1 and biases 0, identity output, squared error."""
    unit = np.array([[0.0, 1.0]])
    if hidden:
        return cb.Network.from_thetas([unit, unit], activation=activation, output="identity",
                                      loss="squared_error", dtype=dtype)
    return cb.Network.from_thetas([unit], output=activation, loss="squared_error", dtype=dtype)


def derivative_via_delta(net, z, method):
    """g'(z) of the unit after Theta(1), read off dJ/dTheta(1)'s bias entry.

    With X = [[z]] and Y = h - 1 the output error is 1, so the bias gradient of the first
    layer is delta of that unit: 1 * g'(z).
    """
    X = np.array([[z]])
    Y = net.forward(X).astype(np.float64) - 1
    _, grads = net.cost_and_gradient(X, Y, method=method)
    return float(grads[0][0, 0])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("hidden", [True, False], ids=["hidden_unit", "output_unit"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_course_sigmoid_gradient_values(dtype, hidden, method):
    net = unit_net("sigmoid", dtype, hidden)
    for z, expected in COURSE_SIGMOID_GRADIENT:
        g = derivative_via_delta(net, z, method)
        assert g == pytest.approx(expected, abs=6e-7)
        assert g == pytest.approx(float(ref.sigmoid_gradient(z)), rel=TOL[dtype])


@pytest.mark.parametrize("activation,derivative", [
    ("tanh", lambda z: 1 - np.tanh(z) ** 2),
    ("relu", lambda z: float(z > 0)),
])
def test_hidden_derivatives(activation, derivative):
    net = unit_net(activation, "float64")
    for z in [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]:
        for method in METHODS:
            assert derivative_via_delta(net, z, method) == pytest.approx(derivative(z),
                                                                         rel=1e-13, abs=0)


# ------------------------------------------------------------------------------ saturation


def saturate(net, X, scale):
    """Scale X, then each later Theta's weights, so that max |z(l)| is about `scale` in every layer.

    Returns the scaled X; the network's Thetas are scaled in place (they are views).
    """
    thetas = net.thetas
    prod = X @ thetas[0][:, 1:].astype(np.float64).T
    X = X * (scale / np.max(np.abs(prod)))
    for l in range(1, len(thetas)):
        # a(l) depends only on the Thetas before l, which are already scaled
        _, a = ref.forward_all([t.astype(np.float64) for t in thetas], X, net.activation,
                               net.output)
        prod = a[l] @ thetas[l][:, 1:].astype(np.float64).T
        thetas[l][:, 1:] *= scale / max(np.max(np.abs(prod)), 1e-300)
    return X


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [1e3, 1e4])
@pytest.mark.parametrize("output,loss", [p for p in OUTPUT_LOSS if p[0] != "exp"])  # below
@pytest.mark.parametrize("hidden", ["none"] + HIDDEN)
@pytest.mark.parametrize("dtype", DTYPES)
def test_saturation(rng, dtype, hidden, output, loss, scale):
    """|z| of 1e3 and 1e4 in every layer: J finite and right, gradient finite, no warnings."""
    depth = 0 if hidden == "none" else 1
    n_in, K, m = 6, 4, 60
    sizes = [n_in] + [8] * depth + [K]
    net = cb.Network(sizes, activation=hidden if depth else "sigmoid", output=output, loss=loss,
                     dtype=dtype, random_state=rng)
    X = saturate(net, rng.normal(size=(m, n_in)), scale)
    zs, _ = ref.forward_all([t.astype(np.float64) for t in net.thetas], as64(X, dtype),
                            net.activation, output)
    assert np.max(np.abs(zs[-1])) > 0.5 * scale
    assert np.median(np.abs(zs[-1])) > 1e-2 * scale
    Y = make_targets(rng, m, K, output, loss)
    expected = reference_result(net, X, Y, 1.0)
    assert np.isfinite(expected[0])
    with np.errstate(all="raise", under="ignore"):
        h = net.forward(X)
        assert np.isfinite(h).all()
        for method in METHODS:
            J, grads = net.cost_and_gradient(X, Y, 1.0, method=method)
            assert np.isfinite(J)
            assert all(np.isfinite(g).all() for g in grads)
            if dtype == "float64":
                assert_result_close((J, grads), expected, 1e-10)
            else:
                assert_cost_close(J, expected[0], 1e-4)
        assert net.cost(X, Y, 1.0) == pytest.approx(expected[0], rel=TOL[dtype])
    if dtype == "float64":
        assert_close_scaled(h, reference_forward(net, X), 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_output_overflow_is_inf_never_nan(rng, dtype):
    """exp outputs past the dtype's range: h and J are inf, as the reference's (never a
    silent NaN), and fit reports the divergence."""
    net = cb.Network([3, 4, 1], activation="tanh", output="exp", loss="poisson", dtype=dtype,
                     random_state=0)
    net.thetas[-1][0, 0] = 1000.0                       # z(L) near 1000: exp(z) is inf
    X, Y = rng.normal(size=(20, 3)), rng.poisson(2.0, size=(20, 1)).astype(float)
    with np.errstate(over="ignore", invalid="ignore"):
        assert (net.forward(X) == np.inf).all()
        assert reference_result(net, X, Y)[0] == np.inf
        for method in METHODS:
            J, grads = net.cost_and_gradient(X, Y, method=method)
            assert J == np.inf
    with pytest.raises(cb.DivergenceError, match="diverged"):
        net.fit(X, Y, solver="adam", epochs=3)
    assert np.isfinite(net.params).all()              # restored to finite parameters


def test_poisson_targets_and_pairs(rng):
    """Negative targets are refused with scikit-learn's words; exp goes with poisson only."""
    net = cb.Network([3, 4, 2], output="exp", loss="poisson", random_state=0)
    X = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="Some value\\(s\\) of Y are negative which is not "
                                         "allowed for Poisson regression"):
        net.cost(X, -np.ones((5, 2)))
    for output, loss in [("exp", "squared_error"), ("identity", "poisson"),
                         ("sigmoid", "poisson"), ("exp", "cross_entropy")]:
        with pytest.raises(ValueError, match="loss='poisson' and output='exp' go together|"
                                             "cross_entropy"):
            cb.Network([3, 4, 2], output=output, loss=loss)
    with pytest.raises(ValueError, match="a hidden activation"):
        cb._core.core.Layout([3, 4, 2], ["exp", "exp"], "poisson")
    y = rng.poisson(1.0, size=40).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.ConvergenceWarning)
        fitted = cb.Network([3, 4, 1], output="exp", loss="poisson", random_state=0).fit(
            rng.normal(size=(40, 3)), y, solver="lbfgs", max_iter=20)
    assert fitted.target_coding_.kind == "regression"
    assert fitted.predict(X).shape == (5,) and (fitted.predict(X) > 0).all()
    assert np.isfinite(fitted.score(rng.normal(size=(40, 3)), y))
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        fitted.predict_proba(X)
    with pytest.raises(ValueError, match="trains on arrays in memory"):   # not yet in blocks
        fitted.fit([(rng.normal(size=(40, 3)), y)], None, epochs=1)


# -------------------------------------------------------------- inputs and their layouts


@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_not_modified(rng, dtype):
    """Nothing the caller passed changes, even when it reaches the kernels without a copy."""
    net, X, Y, w = random_case(rng, dtype, "relu", "softmax", "cross_entropy", depth=2,
                               max_width=8, m=300, weighted=True)
    X, Y, w = (np.ascontiguousarray(a, dtype=dtype) for a in (X, Y, w))
    copies = [a.copy() for a in (X, Y, w)]
    params = net.params.copy()
    thetas = [t.copy() for t in net.thetas]
    net.forward(X)
    net.cost(X, Y, 2.0, sample_weight=w)
    for method in METHODS:
        net.cost_and_gradient(X, Y, 2.0, sample_weight=w, method=method)
    net.n_threads = 1
    net.cost_and_gradient(X, Y, 2.0, sample_weight=w)
    for a, c in zip((X, Y, w), copies):
        np.testing.assert_array_equal(a, c)
        assert a.flags.writeable and a.flags.c_contiguous
    np.testing.assert_array_equal(net.params, params)
    for t, c in zip(net.thetas, thetas):
        np.testing.assert_array_equal(t, c)


def test_check_gradients_inputs_not_modified(rng):
    net, X, Y, w = random_case(rng, "float64", "tanh", "sigmoid", "squared_error", depth=1,
                               max_width=4, max_m=8, weighted=True)
    copies = [a.copy() for a in (X, Y, w)]
    cb.check_gradients(net, X, Y, lam=1.0, sample_weight=w)
    for a, c in zip((X, Y, w), copies):
        np.testing.assert_array_equal(a, c)


def test_from_thetas_inputs_not_modified(rng):
    thetas = [rng.normal(size=(4, 3)), rng.normal(size=(2, 5)).astype(np.float32)]
    given = list(thetas)
    copies = [t.copy() for t in thetas]
    net = cb.Network.from_thetas(thetas)
    net.params[...] = 0   # the network holds copies
    assert len(thetas) == 2 and all(a is b for a, b in zip(thetas, given))
    for t, c in zip(thetas, copies):
        np.testing.assert_array_equal(t, c)
        assert t.dtype == c.dtype


def _strided(a):
    """A view of a's values with non-unit strides in every axis."""
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    index = tuple(slice(None, None, 2) for _ in a.shape)
    big[index] = a
    return big[index]


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _broadcast(a):
    """Read-only zero-stride view: every row (or entry) the same as a's first."""
    return np.broadcast_to(a[:1], a.shape)


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": _strided,
    "reversed": lambda a: a[::-1],
    "transposed_view": lambda a: np.ascontiguousarray(a.T).T if a.ndim == 2 else a[::-1],
    "readonly": _readonly,
    "readonly_fortran": lambda a: _readonly(np.asfortranarray(a)),
    "broadcast": _broadcast,
    "int64": lambda a: np.rint(a).astype(np.int64),
    "int32": lambda a: np.rint(a).astype(np.int32),
    "uint8": lambda a: np.rint(np.abs(a)).astype(np.uint8),
    "bool": lambda a: a > 0.5,
    "float32": lambda a: a.astype(np.float32),
    "float64": lambda a: a.astype(np.float64),
    "list": lambda a: a.tolist(),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_input_layouts(rng, dtype, layout):
    """Any layout or numeric dtype of X, Y and sample_weight is accepted and converted once:
    the result is that of the C-contiguous array of the network's dtype, and the reference's."""
    make = LAYOUTS[layout]
    net, X, _, _ = random_case(rng, dtype, "tanh", "sigmoid", "cross_entropy", depth=2,
                               max_width=12, m=270)
    X = 2 * X   # so that the integer layouts keep a few distinct values
    m = len(X)
    Y = rng.integers(0, 2, size=(m, net.layer_sizes[-1])).astype(np.float64)
    w = rng.uniform(0.5, 2.0, size=m)
    Xv, Yv, wv = make(X), make(Y), make(w)
    if layout == "readonly":
        assert not Xv.flags.writeable

    def canonical(a):
        return np.ascontiguousarray(np.asarray(a), dtype=net.dtype)

    Xc, Yc, wc = canonical(Xv), canonical(Yv), canonical(wv)
    if wc.sum() == 0:
        wv, wc = None, None
    tol = TOL[dtype]
    expected = reference_result(net, Xc, Yc, 0.5, wc)
    for method in METHODS:
        result = net.cost_and_gradient(Xv, Yv, 0.5, sample_weight=wv, method=method)
        assert_result_close(result, expected, tol)
        same = net.cost_and_gradient(Xc, Yc, 0.5, sample_weight=wc, method=method)
        assert_result_close(result, (same[0], [g.astype(np.float64) for g in same[1]]),
                            1e-12 if dtype == "float64" else 1e-6)
    assert net.cost(Xv, Yv, 0.5, sample_weight=wv) == pytest.approx(expected[0], rel=tol)
    h = net.forward(Xv)
    assert h.dtype == net.dtype and h.shape == (m, net.layer_sizes[-1])
    assert_close_scaled(h, reference_forward(net, Xc), tol)


def test_targets_as_int_and_bool_one_hot(rng):
    net, X, Y, _ = random_case(rng, "float64", "sigmoid", "softmax", "cross_entropy", depth=1,
                               max_width=10, m=50)
    expected = net.cost_and_gradient(X, Y)
    for Yv in (Y.astype(np.int64), Y.astype(bool), Y.astype(np.uint8), Y.tolist()):
        assert_result_close(net.cost_and_gradient(X, Yv),
                            (expected[0], [g.copy() for g in expected[1]]), 0)


def test_readonly_everything(rng):
    """Read-only X, Y, weights, thetas (from_thetas) and params (setter) all work."""
    thetas = [_readonly(rng.normal(size=(5, 4))), _readonly(rng.normal(size=(3, 6)))]
    net = cb.Network.from_thetas(thetas, activation="relu", output="softmax")
    X, Y, w = (_readonly(a) for a in (rng.normal(size=(20, 3)), np.eye(3)[rng.integers(0, 3, 20)],
                                      rng.uniform(0.1, 1, size=20)))
    expected = ref.cost_and_gradient(thetas, X, Y, 1.0, activation="relu", output="softmax",
                                      sample_weight=w)
    for method in METHODS:
        assert_result_close(net.cost_and_gradient(X, Y, 1.0, sample_weight=w, method=method),
                            expected, 1e-10)
    net.params = _readonly(net.params * 0.5)
    assert net.params.flags.writeable
    assert np.isfinite(net.cost(X, Y, sample_weight=w))


# ----------------------------------------------------------------- dtypes, views, layout


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64, np.int64, bool])
@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64,
                                   np.dtype("float32")],
                         ids=lambda d: "dtype_" + getattr(d, "__name__", str(d)))
def test_dtype_kept(rng, dtype, input_dtype):
    net = cb.Network([4, 3, 2], dtype=dtype, random_state=rng)
    dt = np.dtype(dtype)
    assert net.dtype == dt
    assert net.params.dtype == dt and all(t.dtype == dt for t in net.thetas)
    X = rng.normal(size=(7, 4)).astype(input_dtype)
    Y = rng.integers(0, 2, size=(7, 2)).astype(input_dtype)
    h = net.forward(X)
    assert h.dtype == dt
    for method in METHODS:
        J, grads = net.cost_and_gradient(X, Y, 0.1, method=method)
        assert type(J) is float
        assert all(g.dtype == dt for g in grads)
        assert [g.shape for g in grads] == [t.shape for t in net.thetas]
    assert type(net.cost(X, Y)) is float
    assert net.params.dtype == dt


def test_thetas_are_views_into_params(rng):
    net = cb.Network([5, 4, 3, 2], random_state=rng)
    shapes = [(4, 6), (3, 5), (2, 4)]
    assert net.layer_sizes == [5, 4, 3, 2]
    assert [t.shape for t in net.thetas] == shapes
    assert net.params.shape == (sum(r * c for r, c in shapes),)
    thetas = net.thetas
    for t in thetas:
        assert np.shares_memory(t, net.params)
        assert t.flags.c_contiguous and t.flags.writeable
    # the flat layout: Theta(1) row by row, then Theta(2), ...
    np.testing.assert_array_equal(net.params, np.concatenate([t.ravel() for t in thetas]))
    # writes go both ways, and through the params setter into the same buffer
    thetas[1][2, 3] = 42.0
    assert net.params[24 + 2 * 5 + 3] == 42.0
    net.params[0] = -7.0
    assert thetas[0][0, 0] == -7.0
    new = np.arange(net.params.size, dtype=float) / 100
    buffer = net.params
    net.params = new
    assert net.params is buffer
    np.testing.assert_array_equal(thetas[2].ravel(), new[-8:])
    # a theta changed in place changes what the network computes
    X, Y = rng.normal(size=(6, 5)), np.eye(2)[rng.integers(0, 2, 6)]
    J = net.cost(X, Y)
    thetas[2][:, 1:] += 1.0
    assert net.cost(X, Y) != J
    assert net.cost(X, Y) == pytest.approx(ref.cost(thetas, X, Y), rel=1e-12)


def test_gradients_share_one_flat_vector(rng):
    net = cb.Network([5, 4, 3, 2], random_state=rng)
    X, Y = rng.normal(size=(6, 5)), np.eye(2)[rng.integers(0, 2, 6)]
    for method in METHODS:
        _, grads = net.cost_and_gradient(X, Y, method=method)
        flat = grads[0].base
        assert flat is not None and flat.shape == net.params.shape
        assert all(g.base is flat for g in grads)
        np.testing.assert_array_equal(flat, np.concatenate([g.ravel() for g in grads]))
        # split gives the same views of any flat vector
        for a, b in zip(net.split(flat), grads):
            np.testing.assert_array_equal(a, b)
            assert np.shares_memory(a, flat)


# -------------------------------------------------------------------------- from_thetas


def test_from_thetas_round_trip(rng):
    net, X, Y, w = random_case(rng, "float64", "mixed", "softmax", "squared_error", depth=3,
                               max_width=10, m=30, weighted=True)
    twin = cb.Network.from_thetas(net.thetas, activation=net.activation, output=net.output,
                                  loss=net.loss)
    assert twin.layer_sizes == net.layer_sizes
    assert twin.activation == net.activation
    np.testing.assert_array_equal(twin.params, net.params)
    assert not np.shares_memory(twin.params, net.params)
    a, b = net.cost_and_gradient(X, Y, 1.0, w), twin.cost_and_gradient(X, Y, 1.0, w)
    assert a[0] == b[0]
    for ga, gb in zip(a[1], b[1]):
        np.testing.assert_array_equal(ga, gb)
    copy = net.copy()
    copy.params[...] = 0
    assert np.any(net.params != 0)


@pytest.mark.parametrize("given,dtype,expected", [
    (["float32", "float32"], None, "float32"),
    (["float64", "float64"], None, "float64"),
    (["float32", "float64"], None, "float64"),
    (["int64", "int64"], None, "float64"),
    (["float64", "float64"], "float32", "float32"),
    (["float32", "float32"], "float64", "float64"),
])
def test_from_thetas_dtype(rng, given, dtype, expected):
    thetas = [np.rint(rng.normal(size=(3, 4)) * 4).astype(given[0]),
              np.rint(rng.normal(size=(2, 4)) * 4).astype(given[1])]
    net = cb.Network.from_thetas(thetas, dtype=dtype)
    assert net.dtype == np.dtype(expected)
    assert net.layer_sizes == [3, 3, 2]
    for t, g in zip(net.thetas, thetas):
        np.testing.assert_array_equal(t, g.astype(expected))


@pytest.mark.parametrize("kind", ["lists", "tuple", "fortran", "strided", "readonly"])
def test_from_thetas_any_layout(rng, kind):
    thetas = [rng.normal(size=(4, 3)), rng.normal(size=(3, 5))]
    given = {
        "lists": [t.tolist() for t in thetas],
        "tuple": tuple(thetas),
        "fortran": [np.asfortranarray(t) for t in thetas],
        "strided": [_strided(t) for t in thetas],
        "readonly": [_readonly(t) for t in thetas],
    }[kind]
    net = cb.Network.from_thetas(given, activation="tanh", output="softmax")
    assert net.layer_sizes == [2, 4, 3]
    for t, e in zip(net.thetas, thetas):
        np.testing.assert_array_equal(t, e)
    X, Y = rng.normal(size=(9, 2)), np.eye(3)[rng.integers(0, 3, 9)]
    expected = ref.cost_and_gradient(thetas, X, Y, 0.2, activation="tanh", output="softmax")
    assert_result_close(net.cost_and_gradient(X, Y, 0.2), expected, 1e-10)


# --------------------------------------------------------------------------- initialization


def test_init_reproducible_and_bounded():
    a = cb.Network([30, 20, 10], random_state=3)
    b = cb.Network([30, 20, 10], random_state=3)
    c = cb.Network([30, 20, 10], random_state=np.random.default_rng(3))
    d = cb.Network([30, 20, 10], random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.params, c.params)
    assert np.all(np.isfinite(d.params)) and np.any(d.params != 0)
    assert not np.array_equal(a.params, cb.Network([30, 20, 10], random_state=4).params)
    for t, (s_in, s_out) in zip(a.thetas, [(30, 20), (20, 10)]):
        eps = np.sqrt(6) / np.sqrt(s_in + s_out)
        assert np.all(np.abs(t) <= eps) and np.max(np.abs(t)) > 0.5 * eps


def test_init_he():
    net = cb.Network([200, 100, 10], activation="relu", init="he", random_state=0)
    for t, s_in in zip(net.thetas, [200, 100]):
        np.testing.assert_array_equal(t[:, 0], 0)
        assert np.std(t[:, 1:]) == pytest.approx(np.sqrt(2 / s_in), rel=0.1)


def test_repr_and_options_kept():
    net = cb.Network([3, 4, 5, 2], activation=["relu", "tanh"], output="softmax",
                     loss="squared_error", dtype="float32")
    assert net.activation == ["relu", "tanh"]
    assert (net.output, net.loss) == ("softmax", "squared_error")
    assert "Network([3, 4, 5, 2]" in repr(net)


def test_pickle_and_deepcopy_keep_thetas_views_of_params():
    import copy
    import pickle
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 3
    net = cb.Network([4, 5, 3], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, solver="lbfgs", max_iter=5)
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert np.array_equal(twin.params, net.params) and twin.params.dtype == net.params.dtype
        assert all(np.shares_memory(t, twin.params) for t in twin.thetas)
        np.testing.assert_array_equal(twin.predict(X), net.predict(X))
        assert twin.history_ == net.history_ and twin.n_iter_ == net.n_iter_
        twin.params[0] = 7.0                    # the views follow the buffer
        assert twin.thetas[0][0, 0] == 7.0 and net.thetas[0][0, 0] != 7.0


def test_omp_num_threads_caps_the_default(monkeypatch):
    monkeypatch.setattr(threads, "_OMP_AT_IMPORT", "1")
    assert cb.Network([2, 1]).n_threads == 1


# ------------------------------------------- the course's data as it comes (issue 13, item 3)


@pytest.mark.filterwarnings("ignore::cbackprop.ConvergenceWarning")
def test_course_labels_as_a_column(rng):
    """ex4data1.mat's y is an (m, 1) column of 1..10: fit and cost take it as labels."""
    X = rng.normal(size=(60, 4))
    y = rng.integers(1, 11, size=(60, 1))
    net = cb.Network([4, 5, 10], random_state=0)
    net.fit(X, y, epochs=2, validation_fraction=0.2, random_state=0)
    np.testing.assert_array_equal(net.classes_, np.arange(1, 11))
    assert net.predict(X).shape == (60,)
    Y = np.eye(10)[y[:, 0] - 1]
    assert net.cost(X, y, lam=1.0) == net.cost(X, Y, lam=1.0) == net.cost(X, y[:, 0], lam=1.0)
    with pytest.raises(ValueError, match="no classes_"):
        cb.Network([4, 5, 10]).cost(X, y)
    with pytest.raises(ValueError, match="unseen"):
        net.cost(X, y + 20)


def test_load_mat_gives_the_course_labels(tmp_path, rng):
    """Without classes=, unit k is label k (1..K), as the course's predict.m."""
    from scipy.io import savemat
    thetas = [rng.normal(size=(5, 5)), rng.normal(size=(10, 6))]
    savemat(tmp_path / "ex4weights.mat", {"Theta1": thetas[0], "Theta2": thetas[1]})
    X = rng.normal(size=(30, 4))
    net = cb.Network.load_mat(tmp_path / "ex4weights.mat")
    np.testing.assert_array_equal(net.classes_, np.arange(1, 11))
    np.testing.assert_array_equal(net.predict(X), np.argmax(ref.forward(thetas, X), 1) + 1)
    plain = cb.Network.load_mat(tmp_path / "ex4weights.mat", classes=None)
    np.testing.assert_array_equal(plain.predict(X), np.argmax(ref.forward(thetas, X), 1))


def test_unroll_in_the_course_order(rng):
    """nn_params = [Theta1(:); Theta2(:)] is column-major; params is row-major."""
    net = cb.Network([3, 4, 2], random_state=0)
    T1, T2 = net.thetas
    octave = np.concatenate([T1.T.reshape(-1), T2.T.reshape(-1)])   # Octave's (:) by hand
    np.testing.assert_array_equal(net.unroll(order="F"), octave)
    np.testing.assert_array_equal(net.unroll(), net.params)
    back = cb.Network.from_unrolled(octave.reshape(-1, 1), [3, 4, 2], order="F")
    np.testing.assert_array_equal(back.params, net.params)
    assert cb.Network.from_unrolled(net.params, [3, 4, 2]).thetas[1].shape == (2, 5)
    with pytest.raises(ValueError, match="order"):
        net.unroll(order="K")
    with pytest.raises(ValueError, match="26 values"):
        cb.Network.from_unrolled(np.zeros(25), [3, 4, 2])


@pytest.mark.filterwarnings("ignore::cbackprop.ConvergenceWarning")
def test_mixed_labels_are_a_value_error(rng):
    X = rng.normal(size=(6, 2))
    with pytest.raises(ValueError, match=r"Mix of label input types \(string and number\)"):
        cb.Network([2, 3, 3]).fit(X, ["a", 1, "b", 2, "a", 1], epochs=1)
    net = cb.Network([2, 3, 2])
    net.fit(X, ["a", "b"] * 3, epochs=1)
    with pytest.raises(ValueError, match="Mix of label input types"):
        net.score(X, np.array([1, 2] * 3, dtype=object))


# --------------------------------------------- one row, the shortest path (issue 17)

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_few_rows_take_the_short_path_with_the_same_answers_and_errors(dtype):
    net = cb.Network([6, 5, 3], dtype=dtype, random_state=0)
    X = np.random.default_rng(0).normal(size=(300, 6)).astype(dtype)
    full = net.forward(X)                                  # 300 rows: the planned path
    assert not net._few_rows(X) and net._few_rows(X[:1]) and net._few_rows(X[:40])
    from cbackprop._core import core

    for k in (1, 2, 40):
        threads, block_rows = net._row_plan(k)             # what forward did before
        planned = core.forward(net._layout, X[:k], net.params, np.empty((k, 3), dtype),
                               block_rows, threads)
        np.testing.assert_array_equal(net.forward(X[:k]), planned)
        np.testing.assert_allclose(net.forward(X[:k]), full[:k], rtol=1e-5)
        np.testing.assert_allclose(net.predict_proba(X[:k]), net.predict_proba(X)[:k],
                                   rtol=1e-5)
    # what the short path does not take goes the checked way: the same errors as before
    assert not net._few_rows(X[:2, ::2]) and not net._few_rows(X[:2].astype(np.float16))
    np.testing.assert_allclose(net.forward(np.asfortranarray(X[:3])), full[:3], rtol=1e-6)
    bad = X[:1].copy()
    bad[0, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        net.forward(bad)
    with pytest.raises(ValueError, match="5 features, the network expects 6"):
        net.forward(X[:1, :5])
    wide = cb.Network([784, 256, 10], random_state=0)
    assert not wide._few_rows(np.zeros((64, 784)))        # worth two threads: planned
