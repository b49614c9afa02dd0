"""cbackprop._lbfgs against scipy.optimize.minimize(method="L-BFGS-B") without bounds: the
same iterates, counts, messages and statuses.

Iterates agree to rounding, not bit for bit (the step comes from the two-loop recursion,
L-BFGS-B's from its compact matrix): on an ill-conditioned problem rounding grows along
the path as it does between two scipy runs whose gradients round differently, so the long
runs (the wide-spectrum quadratic, Rosenbrock in 50 dimensions) are compared over their
first 25 iterations, the short ones to the end. The line-search failures (a wrong gradient)
end exactly as scipy's: "ABNORMAL: ", status 2, the same evaluations, x and fun."""
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize, rosen, rosen_der

import cbackprop as cb
from cbackprop import _lbfgs, training

RNG = np.random.default_rng(0)
_Q, _ = np.linalg.qr(RNG.standard_normal((60, 60)))
A = _Q @ np.diag(np.logspace(0, 4, 60)) @ _Q.T          # condition number 1e4
B = RNG.standard_normal(60)
XL = RNG.standard_normal((200, 10))
YL = XL @ RNG.standard_normal(10) + 0.5 * RNG.standard_normal(200) > 0


def quadratic(x):
    return 0.5 * x @ A @ x - B @ x, A @ x - B


def rosenbrock(x):
    return rosen(x), rosen_der(x)


def logistic(w):
    z = XL @ w
    return (np.sum(np.logaddexp(0, z) - YL * z) + 0.01 * w @ w,
            XL.T @ (1 / (1 + np.exp(-z)) - YL) + 0.02 * w)


def nonconvex(x):
    return (np.sum(np.sin(3 * x) + 0.1 * x ** 2 + 0.05 * x ** 4),
            3 * np.cos(3 * x) + 0.2 * x + 0.2 * x ** 3)


def wrong_slope(x):             # a gradient that points uphill: no descent direction
    f, g = quadratic(x)
    return f, -0.5 * g + 0.1


def noisy_gradient(x):          # right at first, then too wrong for the line search
    return rosen(x), rosen_der(x) + 10 * np.sin(50 * x)


PROBLEMS = {
    "quadratic": (quadratic, np.zeros(60), {"maxiter": 25}),
    "rosenbrock2": (rosenbrock, np.array([-1.2, 1.0]), {}),
    "rosenbrock50": (rosenbrock, np.full(50, -1.0) + 0.1 * RNG.standard_normal(50),
                     {"maxiter": 25}),
    "logistic": (logistic, np.zeros(10), {}),
    "nonconvex": (nonconvex, RNG.standard_normal(20), {}),
    "maxiter": (quadratic, np.zeros(60), {"maxiter": 15}),
    "maxfun": (quadratic, np.zeros(60), {"maxfun": 17}),
    "gtol": (logistic, np.zeros(10), {"gtol": 1e-2}),
    "ftol": (rosenbrock, np.array([-1.2, 1.0]), {"ftol": 1e-6}),
    "converged_at_start": (rosenbrock, np.ones(5), {}),
    "wrong_slope": (wrong_slope, np.zeros(60), {}),
    "noisy_gradient": (noisy_gradient, np.full(10, 0.5), {}),
}


def _both(fun, x0, options, callback=None):
    """(result, iterates, evaluations) of scipy's L-BFGS-B and of ours; callback(seen,
    intermediate_result), seen the iterates so far."""
    runs = []
    for ours in (False, True):
        seen, count = [], [0]

        def counted(x):
            count[0] += 1
            return fun(x)

        def record(intermediate_result):
            seen.append(np.array(intermediate_result.x))
            if callback is not None:
                callback(seen, intermediate_result)

        if ours:
            res = _lbfgs.minimize(counted, x0.copy(), callback=record, **options)
        else:
            res = scipy_minimize(counted, x0.copy(), jac=True, method="L-BFGS-B",
                                 callback=record, options=options)
        runs.append((res, seen, count[0]))
    return runs


def _relative(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300)


@pytest.mark.parametrize("name", PROBLEMS)
def test_same_path_as_scipy(name):
    fun, x0, options = PROBLEMS[name]
    (theirs, their_xs, their_calls), (ours, our_xs, our_calls) = _both(fun, x0, options)
    assert (ours.nit, ours.nfev, our_calls) == (theirs.nit, theirs.nfev, their_calls)
    assert (ours.message, ours.status, ours.success) == (theirs.message, theirs.status,
                                                         theirs.success)
    assert len(our_xs) == len(their_xs) == ours.nit
    for a, b in zip(their_xs, our_xs):
        assert _relative(a, b) < 1e-10
    assert _relative(theirs.x, ours.x) < 1e-10
    assert ours.fun == pytest.approx(theirs.fun, rel=1e-10, abs=1e-16)   # f* = 0: absolute
    np.testing.assert_allclose(ours.jac, theirs.jac, rtol=1e-8, atol=1e-12)
    assert ours.x.dtype == np.float64


def test_line_search_failure_ends_as_scipy():
    """The restart with steepest descent, then its failure: scipy's result keeps the last
    iterate's x and gradient but the last value it evaluated (NaN here)."""
    (theirs, _, _), (ours, _, _) = _both(noisy_gradient, np.full(10, 0.5), {})
    assert ours.message == theirs.message == "ABNORMAL: " and ours.status == 2
    assert ours.nit == theirs.nit > 0 and ours.nfev == theirs.nfev
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-10)
    (theirs, _, _), (ours, _, _) = _both(wrong_slope, np.zeros(60), {})
    assert ours.nit == theirs.nit == 0 and ours.nfev == theirs.nfev == 21
    np.testing.assert_array_equal(ours.x, theirs.x)
    assert ours.fun == theirs.fun


def test_overflowing_gradient_fails_as_scipy():
    """g'g overflows: L-BFGS-B's Cauchy step is NaN, its search fails after maxls trials."""
    def huge(x):
        return 1e300 * float(np.sum(x ** 2)), 2e300 * x
    (theirs, _, _), (ours, _, _) = _both(huge, np.ones(30), {})
    assert (ours.message, ours.status, ours.nit, ours.nfev) == (
        theirs.message, theirs.status, theirs.nit, theirs.nfev) == ("ABNORMAL: ", 2, 0, 21)
    np.testing.assert_array_equal(ours.x, theirs.x)


@pytest.mark.parametrize("at", [1, 4])
def test_callback_stop_iteration(at):
    def stop(seen, intermediate_result):
        if len(seen) == at:
            raise StopIteration
    (theirs, their_xs, _), (ours, our_xs, _) = _both(rosenbrock, np.array([-1.2, 1.0]), {},
                                                     callback=stop)
    assert (ours.message, ours.status, ours.success, ours.nit) == (
        theirs.message, theirs.status, False, at)
    assert ours.status == 99 and "StopIteration" in ours.message
    np.testing.assert_allclose(ours.x, our_xs[-1], rtol=0)
    assert _relative(theirs.x, ours.x) < 1e-12


def test_float32_start_and_read_only_x():
    seen = []

    def fun(x):
        seen.append(x.dtype)
        with pytest.raises(ValueError):
            x[0] = 0.0                  # the iterate is ours: fun gets a read-only view
        f, g = rosenbrock(x)
        return f, g.astype(np.float32)   # a float32 gradient is taken as float64
    res = _lbfgs.minimize(fun, np.array([-1.2, 1.0], dtype=np.float32), maxiter=5)
    assert res.x.dtype == np.float64 and set(seen) == {np.dtype(np.float64)}
    assert res.nit == 5 and res.status == 1


def test_no_floating_point_warnings_of_its_own():
    def huge(x):
        return 1e300 * float(np.sum(x ** 2)), 2e300 * x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):          # the caller's settings stay the caller's
            _lbfgs.minimize(huge, np.ones(30))
            with pytest.raises(FloatingPointError):
                _lbfgs.minimize(lambda x: (float(np.exp(x[0] * 1e3)), x), np.ones(2))


def _scipy_backed(fun, x0, *, callback, maxiter, maxfun, gtol, gradient_into, n_threads):
    """training's call as it was before _lbfgs: scipy's L-BFGS-B (on one thread)."""
    def pair(x):
        if gradient_into:
            g = np.empty(x.size)
            return fun(x, g), g
        f, g = fun(x)
        return f, np.asarray(g, np.float64)
    return scipy_minimize(pair, x0, jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": maxiter, "maxfun": maxfun, "gtol": gtol})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_network_fit_as_with_scipy(monkeypatch, dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    fits = []
    for backend in ("ours", "scipy"):
        if backend == "scipy":
            monkeypatch.setattr(training._lbfgs, "minimize", _scipy_backed)
        net = cb.Network([5, 6, 2], random_state=0, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cb.ConvergenceWarning)
            net.fit(X, y, solver="lbfgs", max_iter=30)
        fits.append((net.params.copy(), net.n_iter_, list(net.history_["loss"])))
    (ours, our_n, our_loss), (theirs, their_n, their_loss) = fits
    assert our_n == their_n == 30
    tol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol * max(1, np.abs(theirs).max()))
    np.testing.assert_allclose(our_loss, their_loss, rtol=tol)


def test_network_fit_stopped_by_its_callback_keeps_a_usable_model():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 4))
    y = (X[:, 0] > 0).astype(int)
    net = cb.Network([4, 5, 2], random_state=0)
    net.fit(X, y, solver="lbfgs", max_iter=50, callback=lambda n, epoch, logs: epoch < 3)
    assert net.n_iter_ == 3 and len(net.history_["loss"]) == 3
    assert np.isfinite(net.params).all()
    assert net.predict(X).shape == (80,)


# ------------------------------------------------ the compiled passes (_core/lbfgs.pxi)

from cbackprop._core import core  # noqa: E402

N_BIG = _lbfgs.PARALLEL_MIN + 4099      # over the threads' threshold, a short last block


def _rows(n, count=9, seed=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, n)), rng.standard_normal(count)


PASSES = {"compiled": core, "numpy": _lbfgs.NumPyPasses}


def _places(count, spare, seed=8):
    """The rows' places in W (count + spare rows): a shuffle, as accepted steps leave them."""
    return np.random.default_rng(seed).permutation(count + spare).astype(np.intp)


@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("n", [1, 15, 4096, 4097, N_BIG])
@pytest.mark.parametrize("count", [1, 4, 5, 9])
def test_direction_pass_is_the_combination_of_the_rows(n, count, passes):
    passes = PASSES[passes]
    W, c = _rows(n, count + 1)
    c = c[:count]
    places = _places(count, 1)
    rows, d_at = W[places[:count]], places[count]
    x = np.random.default_rng(4).standard_normal(n)
    xt = np.empty(n)
    gd, dtd = passes.lbfgs_direction(W, places, c, d_at, x, xt, 2)
    d, want = W[d_at].copy(), c @ rows
    np.testing.assert_allclose(d, want, rtol=1e-12, atol=1e-12 * np.abs(rows).max())
    np.testing.assert_array_equal(W[places[:count]], rows)      # the rows are only read
    np.testing.assert_array_equal(xt, x + d)
    assert gd == pytest.approx(float(want @ rows[0]), rel=1e-12, abs=1e-12)
    assert dtd == pytest.approx(float(want @ want), rel=1e-12)
    W[d_at] = np.nan
    assert passes.lbfgs_direction(W, places, c, d_at, x, np.empty(0), 1) == (gd, dtd)
    np.testing.assert_array_equal(W[d_at], d)       # one thread or two: the same bits


@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("n", [3, 4097, N_BIG])
@pytest.mark.parametrize("slot,stp", [(-1, 0.37), (0, 0.37), (3, 0.37), (3, 1.0)])
def test_accept_pass_writes_the_pair_and_the_products(n, slot, stp, passes):
    """The rows at their places after the step: the new g and (slot >= 0) the direction,
    which becomes s = stp d in place, and y = g - g_old written over the slot's y."""
    passes = PASSES[passes]
    W, _ = _rows(n, 10)
    places = _places(9, 1)
    g_old = places[9]
    results = []
    for threads in (1, 2):
        Wt, v = W.copy(), np.full(9, np.nan)
        rr = passes.lbfgs_accept(Wt, places, 9, g_old, stp, slot, v, threads)
        results.append((Wt, v, rr))
    (W1, v1, rr1), (W2, v2, rr2) = results
    np.testing.assert_array_equal(W1, W2)
    np.testing.assert_array_equal(v1, v2)
    assert rr1 == rr2
    want = W.copy()
    g = W[places[0]]
    if slot >= 0:
        want[places[1 + 2 * slot]] = stp * W[places[1 + 2 * slot]]
        want[places[2 + 2 * slot]] = g - W[g_old]
        y = want[places[2 + 2 * slot]]
        assert rr1 == pytest.approx(float(y @ y), rel=1e-12)
    else:
        assert rr1 == 0
    np.testing.assert_array_equal(W1, want)
    np.testing.assert_allclose(v1, want[places[:9]] @ g, rtol=1e-12, atol=1e-12 * n)


@pytest.mark.parametrize("passes", PASSES)
def test_slope_pass_is_the_slope_and_the_largest_element(passes):
    passes = PASSES[passes]
    rng = np.random.default_rng(7)
    for n in (1, 4097, N_BIG):
        g, d = rng.standard_normal(n), rng.standard_normal(n)
        g[n // 2] = np.nan if n > 1 else g[0]
        gd, top = passes.lbfgs_slope(g, d, 2)
        np.testing.assert_array_equal(passes.lbfgs_slope(g, d, 1), (gd, top))
        finite = ~np.isnan(g)
        assert top == np.max(np.abs(g[finite]))     # NaN skipped, as L-BFGS-B's projgr
        if n > 1:
            assert np.isnan(gd)
    assert passes.lbfgs_slope(np.full(3, np.nan), np.ones(3), 1)[1] == 0.0
    g = rng.standard_normal(100)
    assert passes.lbfgs_slope(g, g, 1)[0] == pytest.approx(float(g @ g), rel=1e-13)


def test_gradient_written_into_the_buffer_is_the_same_path():
    """gradient_into: fun(x, g) fills our buffer; the same iterates as returning g."""
    fun, x0, options = PROBLEMS["rosenbrock50"]

    def into(x, g):
        f, grad = fun(x)
        g[...] = grad
        return f
    a = _lbfgs.minimize(fun, x0.copy(), **options)
    b = _lbfgs.minimize(into, x0.copy(), gradient_into=True, **options)
    np.testing.assert_array_equal(a.x, b.x)
    assert (a.fun, a.nit, a.nfev, a.message) == (b.fun, b.nit, b.nfev, b.message)


def test_passes_refuse_mismatched_buffers():
    W, c = _rows(10, 11)
    places = np.arange(11, dtype=np.intp)
    with pytest.raises(ValueError, match="n_rows"):           # more coefficients than places
        core.lbfgs_direction(W, places[:8], c[:9], 10, np.empty(10), np.empty(0), 1)
    with pytest.raises(ValueError, match="different rows"):   # d over one of the rows
        core.lbfgs_direction(W, places, c[:9], 3, np.empty(10), np.empty(0), 1)
    with pytest.raises(ValueError, match="different rows"):   # a place outside W
        core.lbfgs_direction(W, places + 5, c[:9], 0, np.empty(10), np.empty(0), 1)
    with pytest.raises(ValueError, match="row's length"):
        core.lbfgs_direction(W, places, c[:9], 10, np.empty(9), np.empty(10), 1)
    with pytest.raises(ValueError, match="n_rows"):
        core.lbfgs_accept(W, places, 12, 10, 1.0, -1, np.empty(12), 1)
    with pytest.raises(ValueError, match="different rows"):   # g_old among the rows
        core.lbfgs_accept(W, places, 9, 4, 1.0, 0, np.empty(9), 1)
    with pytest.raises(ValueError, match="slot"):
        core.lbfgs_accept(W, places, 9, 10, 1.0, 4, np.empty(9), 1)
    with pytest.raises(ValueError, match="v must"):
        core.lbfgs_accept(W, places, 9, 10, 1.0, 0, np.empty(8), 1)
    with pytest.raises(ValueError, match="n_threads"):
        core.lbfgs_accept(W, places, 9, 10, 1.0, 0, np.empty(9), 0)
    with pytest.raises(ValueError, match="same length"):
        core.lbfgs_slope(np.empty(10), np.empty(9), 1)


def _wide_quadratic():
    rng = np.random.default_rng(6)
    a, b = rng.uniform(0.5, 50.0, N_BIG), rng.standard_normal(N_BIG)
    return lambda x: (0.5 * float(x @ (a * x)) - float(b @ x), a * x - b)


def test_large_problem_same_path_as_scipy_on_any_thread_count():
    """Over PARALLEL_MIN the passes share threads: scipy's iterates still, and the same
    bits on one thread or two."""
    fun = _wide_quadratic()
    runs = {threads: _lbfgs.minimize(fun, np.zeros(N_BIG), maxiter=20, n_threads=threads)
            for threads in (1, 2)}
    np.testing.assert_array_equal(runs[1].x, runs[2].x)
    assert runs[1].fun == runs[2].fun and runs[1].nfev == runs[2].nfev
    theirs = scipy_minimize(fun, np.zeros(N_BIG), jac=True, method="L-BFGS-B",
                            options={"maxiter": 20})
    assert (runs[2].nit, runs[2].nfev, runs[2].message) == (theirs.nit, theirs.nfev,
                                                            theirs.message)
    assert _relative(theirs.x, runs[2].x) < 1e-10
