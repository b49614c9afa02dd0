"""Network.trace: one sample's z, a, delta and dJ/dTheta, against the NumPy reference.

The trace's values must be the reference's per-sample quantities (reference.forward_all for
z and a, reference.cost_and_gradient on that one sample for J and dJ/dTheta) within 1e-12,
and the compiled core's gradient for m = 1 within rounding.
"""
import numpy as np
import pytest

import cbackprop as cb
from cbackprop import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

# (hidden activation(s), output, loss) and layer sizes
CASES = [
    ("sigmoid", "sigmoid", "cross_entropy", [3, 4, 4, 3]),
    ("tanh", "softmax", "cross_entropy", [5, 7, 4]),
    ("relu", "identity", "squared_error", [4, 6, 2]),
    ("sigmoid", "sigmoid", "squared_error", [3, 5, 3]),
    ("tanh", "softmax", "squared_error", [3, 5, 3]),
    (["relu", "tanh", "sigmoid"], "softmax", "cross_entropy", [6, 5, 4, 3, 4]),
    ([], "sigmoid", "cross_entropy", [4, 2]),
    ("identity", "identity", "squared_error", [4, 5, 2]),
    (["identity", "tanh"], "exp", "poisson", [3, 5, 4, 2]),
    (["leaky_relu", "elu", "softplus", "elliott"], "softmax", "cross_entropy",
     [4, 5, 4, 5, 3, 3]),
]
TOL = 1e-12


def target(rng, output, loss, K):
    if output == "softmax" and loss == "cross_entropy":
        return np.eye(K)[rng.integers(K)]
    if output == "identity":
        return rng.normal(size=K)
    if output == "exp":
        return rng.poisson(2.0, size=K).astype(float)
    return rng.uniform(size=K)


@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}-{c[2]}-{len(c[3])}")
def test_trace_equals_reference(rng, case, lam):
    activation, output, loss, sizes = case
    net = cb.Network(sizes, activation=activation, output=output, loss=loss, random_state=rng)
    x = rng.normal(size=sizes[0])
    y = target(rng, output, loss, sizes[-1])
    t = net.trace(x, y, lam=lam)
    L = len(sizes)
    assert t.L == L and sorted(t.a) == list(range(1, L + 1))
    assert sorted(t.z) == list(range(2, L + 1))
    assert sorted(t.delta) == list(range(2, L + 1)) and sorted(t.grad) == list(range(1, L))

    zs, acts = ref.forward_all(net.thetas, x[None, :], activation, output)
    np.testing.assert_array_equal(t.a[1], x)
    for l in range(2, L + 1):
        np.testing.assert_allclose(t.z[l], zs[l - 2][0], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(t.a[l], acts[l - 1][0], rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(t.h, t.a[L])

    kw = dict(activation=activation, output=output, loss=loss)
    for fn in (ref.cost_and_gradient, ref.cost_and_gradient_loop):
        J, grads = fn(net.thetas, x[None, :], y[None, :], lam, **kw)
        assert abs(t.J - J) <= TOL * max(1.0, abs(J))
        for l, g in enumerate(grads, start=1):
            np.testing.assert_allclose(t.grad[l], g, rtol=TOL, atol=TOL)
    J_c, grads_c = net.cost_and_gradient(x[None, :], y[None, :], lam)
    assert abs(t.J - J_c) <= TOL * max(1.0, abs(J_c))
    for l, g in enumerate(grads_c, start=1):
        np.testing.assert_allclose(t.grad[l], g, rtol=TOL, atol=TOL)
    assert [g.shape for g in t.gradients] == [th.shape for th in net.thetas]


@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: f"{c[1]}-{c[2]}-{len(c[3])}")
def test_trace_identities(rng, case):
    """The derivation's equations hold in the trace's own numbers."""
    activation, output, loss, sizes = case
    net = cb.Network(sizes, activation=activation, output=output, loss=loss, random_state=rng)
    x, y = rng.normal(size=sizes[0]), target(rng, output, loss, sizes[-1])
    t = net.trace(x, y)
    L = t.L
    for l in range(1, L):
        np.testing.assert_array_equal(t.z[l + 1], t.theta[l] @ np.r_[1.0, t.a[l]])
        np.testing.assert_array_equal(t.grad[l], np.outer(t.delta[l + 1], np.r_[1.0, t.a[l]]))
    for l in range(2, L):
        np.testing.assert_array_equal(
            t.delta[l], (t.theta[l][:, 1:].T @ t.delta[l + 1]) * t.g_prime[l])
        name = t.names[l]
        expected = {"sigmoid": t.a[l] * (1 - t.a[l]), "tanh": 1 - t.a[l] ** 2,
                    "relu": (t.z[l] > 0).astype(float)}[name]
        np.testing.assert_array_equal(t.g_prime[l], expected)


def test_labels_classes_and_indices(rng):
    X = rng.normal(size=(60, 3))
    y = np.array(["ant", "bee", "cow"])[np.argmax(X, axis=1)]
    net = cb.Network([3, 4, 3], output="softmax", random_state=0).fit(X, y, epochs=2)
    t = net.trace(X[0], "bee")
    np.testing.assert_array_equal(t.y, [0, 1, 0])
    np.testing.assert_array_equal(net.trace(X[0], np.array(["bee"])).y, [0, 1, 0])
    with pytest.raises(ValueError, match="unseen"):
        net.trace(X[0], "dog")

    fresh = cb.Network([3, 4, 3])                      # no classes_: class indices
    np.testing.assert_array_equal(fresh.trace(X[0], 2).y, [0, 0, 1])
    np.testing.assert_array_equal(fresh.trace(X[0], 2.0).y, [0, 0, 1])
    np.testing.assert_array_equal(fresh.trace(X[0], [0.2, 0.3, 0.5]).y, [0.2, 0.3, 0.5])
    np.testing.assert_array_equal(fresh.trace(X[:1], 1).x, X[0])   # one row of X is fine

    binary = cb.Network([3, 4, 1], random_state=0).fit(X, y == "ant", epochs=2)
    assert binary.trace(X[0], True).y.tolist() == [1.0]
    assert binary.trace(X[0], False).y.tolist() == [0.0]

    regression = cb.Network([3, 4, 1], output="identity", loss="squared_error")
    assert regression.trace(X[0], 2.5).y.tolist() == [2.5]


def test_float32_network_traced_in_float64(rng):
    net = cb.Network([4, 5, 3], dtype="float32", random_state=0)
    x = rng.normal(size=4)
    t = net.trace(x, 1)
    assert all(a.dtype == np.float64 for a in t.a.values())
    expected = ref.cost_and_gradient([th.astype(np.float64) for th in net.thetas],
                                     x.astype(np.float32).astype(np.float64)[None, :],
                                     np.eye(3)[[1]])[1]
    for l, g in enumerate(expected, start=1):
        np.testing.assert_allclose(t.grad[l], g, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("x, y, error, message", [
    (np.zeros(4), 0, ValueError, "4 features, the network expects 3"),
    (np.array([0.0, np.nan, 1.0]), 0, ValueError, "NaN"),
    (np.zeros(3), 3, ValueError, "not a class index"),
    (np.zeros(3), -1, ValueError, "not a class index"),
    (np.zeros(3), 0.5, ValueError, "class index"),
    (np.zeros(3), [0.5, 0.5], ValueError, "one label or a vector of 3"),
    (np.zeros(3), [0.5, 1.5, 0.0], ValueError, r"\[0, 1\]"),
    (np.zeros(3), [0.5, np.nan, 0.0], ValueError, "NaN"),
    (np.zeros(3), ["a", "b", "c"], TypeError, "numbers"),
    (np.zeros((2, 3)), 0, ValueError, "one sample"),
    (np.zeros(()), 0, ValueError, "one sample"),
])
def test_bad_input(x, y, error, message):
    net = cb.Network([3, 4, 3])
    with pytest.raises(error, match=message):
        net.trace(x, y)


def test_table():
    net = cb.Network([3, 4, 4, 3], init="debug")
    t = net.trace(np.array([0.5, -1.0, 2.0]), 1, lam=1.0)
    text = str(t)
    lines = text.splitlines()
    assert lines[0].startswith("Backpropagation of one sample through Network([3, 4, 4, 3]")
    for needle in ["z(l+1) = Theta(l) [1; a(l)]", "delta(4) = h - y",
                   "delta(l) = Theta(l)[:, 1:]^T delta(l+1) * g'(z(l))",
                   "layer 1: input, s_1 = 3", "layer 4: output, g = sigmoid, s_4 = 3",
                   "dJ/dTheta(3) = delta(4) [1; a(3)]^T + lam Theta(3)", "lam = 1"]:
        assert needle in text
    # every number of the table is one of the trace's, to the 5 digits shown
    row = next(line for line in lines if line.startswith("    2 |") and "0.32948" in line)
    values = [float(v) for v in row.split("|")[1].split()]
    np.testing.assert_allclose(values, [t.z[2][1], t.a[2][1], t.g_prime[2][1], t.delta[2][1]],
                               rtol=1e-4)
    assert str(net.trace(np.array([0.5, -1.0, 2.0]), 1, lam=1.0)) == text   # deterministic
    assert repr(t).startswith("<Trace of one sample through Network([3, 4, 4, 3]")
    assert "J = " in repr(t)


def test_trace_leaves_network_alone(rng):
    net = cb.Network([3, 5, 2], random_state=0)
    before = net.params.copy()
    t = net.trace(rng.normal(size=3), 1)
    t.theta[1][...] = 0                      # the trace holds copies
    t.grad[1][...] = 0
    np.testing.assert_array_equal(net.params, before)


def test_print_of_a_large_network_is_a_summary():
    """A 400-25-10 network's whole table runs to 140,000 characters: print shows shapes,
    norms and first values; the table and the arrays are one call away."""
    net = cb.Network([400, 25, 10], random_state=0)
    t = net.trace(np.linspace(0, 1, 400), 3)
    text = str(t)
    assert len(text) < 3000 and "shape (25, 401)" in text and "norm" in text
    assert "t.table()" in text and len(t.table()) > 100000
    assert f"{np.linalg.norm(t.grad[1]):.5g}" in text
    small = cb.Network([3, 4, 4, 3], init="debug").trace(np.array([0.5, -1.0, 2.0]), 1)
    assert str(small) == small.table()
