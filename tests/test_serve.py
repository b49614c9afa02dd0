"""One row given 1-D, and the predictor of serving loops (issue 17)."""
import mmap
import os
import sys
import threading

import numpy as np
import pytest

import cbackprop as cb
import cbackprop.sklearn  # noqa: F401  (the estimators)

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")
TOL = {"float32": 1e-5, "float64": 1e-12}


def fitted(kind, dtype, rng):
    """A small network of each output kind, fitted for a couple of epochs."""
    X = rng.normal(size=(60, 5))
    if kind == "softmax":
        net = cb.Network([5, 7, 3], activation="tanh", output="softmax", dtype=dtype,
                         random_state=0)
        y = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    elif kind == "binary":
        net = cb.Network([5, 7, 1], activation="relu", dtype=dtype, random_state=0)
        y = rng.integers(0, 2, 60) * 3 + 1                 # labels 1 and 4
    elif kind == "one_vs_all":
        net = cb.Network([5, 7, 3], dtype=dtype, random_state=0)
        y = rng.integers(0, 3, 60)
    elif kind == "multilabel":
        net = cb.Network([5, 7, 3], dtype=dtype, random_state=0)
        y = rng.integers(0, 2, (60, 3)).astype(float)
    elif kind == "regression":
        net = cb.Network([5, 7, 2], activation="tanh", output="identity",
                         loss="squared_error", dtype=dtype, random_state=0)
        y = rng.normal(size=(60, 2))
    elif kind == "regression_1d":
        net = cb.Network([5, 7, 1], activation="tanh", output="identity",
                         loss="squared_error", dtype=dtype, random_state=0)
        y = rng.normal(size=60)
    else:                                                   # counts: exp outputs
        net = cb.Network([5, 7, 1], activation="identity", output="exp", loss="poisson",
                         dtype=dtype, random_state=0)
        y = rng.poisson(2.0, size=60).astype(float)
    net.fit(X, y, solver="adam", epochs=2, random_state=0)
    return net, X.astype(dtype)


KINDS = ["softmax", "binary", "one_vs_all", "multilabel", "regression", "regression_1d", "exp"]
CLASSIFIERS = ["softmax", "binary", "one_vs_all", "multilabel"]


# ------------------------------------------------------------------------- 1-D rows

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_one_row_given_1d_is_the_row_of_the_2d_answer(kind, dtype, rng):
    net, X = fitted(kind, dtype, rng)
    x = X[3]
    h = net.forward(x)
    assert h.shape == (net.layer_sizes[-1],)
    np.testing.assert_array_equal(h, net.forward(X[3:4])[0])
    label = net.predict(x)
    expected = net.predict(X[3:4])[0]
    assert np.shape(label) == np.shape(expected)           # a scalar, or a row of labels
    np.testing.assert_array_equal(label, expected)
    if kind in CLASSIFIERS:
        np.testing.assert_array_equal(net.predict_proba(x), net.predict_proba(X[3:4])[0])
    # a list, or another dtype: converted
    np.testing.assert_allclose(net.forward(list(X[3].astype(float))), h, rtol=TOL[dtype])
    np.testing.assert_allclose(net.forward(np.round(X[3] * 10).astype(int)),
                               net.forward(np.round(X[3:4] * 10).astype(int))[0],
                               rtol=TOL[dtype])


def test_one_row_given_1d_refused_clearly():
    net = cb.Network([4, 3, 2], random_state=0)
    with pytest.raises(ValueError, match="X must be 1-D with 4 elements; got shape \\(3,\\)"):
        net.predict(np.zeros(3))
    with pytest.raises(ValueError, match="X contains NaN"):
        net.predict_proba(np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match="X contains inf"):
        net.forward([0.0, np.inf, 1.0, 2.0])
    with pytest.raises(TypeError, match="must hold numbers"):
        net.forward(np.array(["a", "b", "c", "d"]))


def test_estimators_keep_scikit_learns_refusal_of_1d(rng):
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30)
    est = cb.sklearn.BackpropClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(X[0])


# ------------------------------------------------------------------------ predictor

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_predictor_predicts_as_the_network(kind, dtype, rng):
    net, X = fitted(kind, dtype, rng)
    p = net.predictor()
    for rows in (X[:1], X[:2], X[:7], X, X[4]):
        np.testing.assert_allclose(p(rows), net.forward(rows), rtol=TOL[dtype],
                                   atol=TOL[dtype])
        np.testing.assert_array_equal(p.predict(rows), net.predict(rows))
        assert np.shape(p.predict(rows)) == np.shape(net.predict(rows))
        if kind in CLASSIFIERS:
            proba = p.predict_proba(rows)
            assert proba.dtype == net.dtype and proba.shape == net.predict_proba(rows).shape
            np.testing.assert_allclose(proba, net.predict_proba(rows), rtol=TOL[dtype],
                                       atol=TOL[dtype])
            out = np.full(proba.shape, -1.0, dtype=dtype)
            assert p.predict_proba(rows, out=out) is out
            np.testing.assert_array_equal(out, proba)
        else:
            with pytest.raises(ValueError, match="predict_proba is for classifiers"):
                p.predict_proba(rows)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predictor_against_the_reference(dtype, rng):
    net = cb.Network([6, 9, 4, 3], activation=["relu", "tanh"], output="softmax",
                     dtype=dtype, random_state=0)
    X = rng.normal(size=(300, 6))
    expected = cb.reference.forward(net.thetas, X, activation=["relu", "tanh"],
                                    output="softmax")
    got = net.predictor()(X.astype(dtype))                  # 300 rows: beyond serial_rows
    np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10,
                               atol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_predictor_on_its_huge_page_buffer(dtype, rng):
    """A wide layer's packed W^T (800 KB or more) lies in a buffer of its own from a 2 MB
    boundary (serve.pxi, _huge_page_zeros): the predictor still answers as the reference,
    on one row, a few and a block."""
    net = cb.Network([784, 256, 10], output="softmax", dtype=dtype, random_state=0)
    predictor = net.predictor()
    for rows in (1, 7, 32, 300):
        X = rng.random((rows, 784))
        expected = cb.reference.forward(net.thetas, X, output="softmax")
        np.testing.assert_allclose(predictor(X.astype(dtype)), expected,
                                   rtol=1e-4 if dtype == "float32" else 1e-10,
                                   atol=1e-6 if dtype == "float32" else 1e-13)


def test_huge_page_zeros():
    """Zeros of the size and dtype asked, writable; from a 2 MB boundary where the system
    maps anonymous private memory (Linux), small arrays plain."""
    from cbackprop._core import core
    for n, dtype in ((100_000, np.float64), (300_000, np.float32), (10, np.float64)):
        a = core._huge_page_zeros(n, dtype)
        assert a.shape == (n,) and a.dtype == dtype and not a.any()
        a[:] = 1.5
        assert a.sum() == 1.5 * n
        if (n * a.itemsize >= core.HUGE_PAGE_FROM and sys.platform.startswith("linux")
                and hasattr(mmap, "MAP_ANONYMOUS")):
            assert a.ctypes.data % (1 << 21) == 0


@pytest.mark.parametrize("n_threads", [1, None])
def test_predictor_many_rows(n_threads, rng):
    wide = cb.Network([300, 200, 5], output="softmax", random_state=0)
    p = wide.predictor(n_threads=n_threads)
    if n_threads == 1 and not wide._layout.forward_calls_blas():
        assert p.serial_rows > 10 ** 6      # our products serve every width: rows in place
    else:
        assert 1 <= p.serial_rows < 50      # BLAS, or threads for large batches
    X = rng.normal(size=(600, 300))
    for rows in (X[:50], X):
        np.testing.assert_allclose(p(rows), wide.forward(rows), rtol=1e-12)
        out = np.empty((len(rows), 5))
        assert p.predict_proba(rows, out=out) is out
        np.testing.assert_allclose(out, wide.predict_proba(rows), rtol=1e-12)
    thin = cb.Network([6, 9, 3], output="softmax", random_state=0)
    assert thin.predictor().serial_rows > 10 ** 6          # our products: every row in place
    assert thin.predictor(n_threads=None).serial_rows <= 256
    Xt = rng.normal(size=(1000, 6))
    np.testing.assert_allclose(thin.predictor()(Xt), thin.forward(Xt), rtol=1e-12)
    with pytest.raises(ValueError, match="n_threads must be 1 or None"):
        thin.predictor(n_threads=2)


def test_a_small_forward_after_a_pause_takes_one_thread_with_the_same_rows(monkeypatch, rng):
    """A forward pass that comes after a pause and is too small to pay for waking the
    threads (threads_after_idle) runs on the calling thread; a stream of calls and large
    passes use the threads; cost and gradient plans ignore pauses. The rows are the same
    bits either way."""
    from cbackprop._core import HAS_OPENMP, threads
    net = cb.Network([64, 30, 10], output="softmax", random_state=0)
    net.n_threads = 2
    if not HAS_OPENMP or threads.usable_cores() < 2 or net._layout.forward_calls_blas():
        pytest.skip("needs two threads and our own products (the rule applies only there)")
    m = 4000
    assert net._row_plan(m)[0] == 2                       # a gradient's plan: no pause rule
    threads.forget_calls()                                # a pause as long as there is
    assert net._row_plan(m, forward=True)[0] == 1
    big = int(threads.WAKE_WORK // net.flops_per_sample) + 1
    assert net._row_plan(big, forward=True)[0] == 2       # large enough to wake them
    X = rng.normal(size=(m, 64))
    alone = net.forward(X)                                # one thread, then noted
    assert threads._last_call > -float("inf")
    monkeypatch.setattr(threads, "POOL_NAP", 1e9)         # the last call: just now
    assert net._row_plan(m, forward=True)[0] == 2
    np.testing.assert_array_equal(net.forward(X), alone)  # two threads: the same bits
    p = net.predictor(n_threads=None)
    np.testing.assert_array_equal(p(X), alone)
    threads.forget_calls()
    np.testing.assert_array_equal(p(X), alone)




def _allowed_cpus_of_threads():
    """{thread id: its allowed CPUs} of this process's threads (Linux /proc)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[int(tid)] = os.sched_getaffinity(int(tid))
        except OSError:                      # a thread that ended meanwhile
            pass
    return out


def test_threads_woken_after_a_pause_stay_on_the_callers_cores(monkeypatch, rng):
    """After a pause a gradient's plan of two threads wakes them first (place_workers),
    a forward pass's blocks move them as they run; either way the calling thread keeps
    its affinity and no thread gets an empty set or a core the caller may not use. The
    results keep their bits."""
    from cbackprop._core import HAS_OPENMP, core, threads
    if not HAS_OPENMP or threads.usable_cores() < 2 or not os.path.isdir("/proc/self/task"):
        pytest.skip("needs OpenMP, two cores and Linux's /proc")
    mine = os.sched_getaffinity(0)
    woken = []
    real = core.place_workers
    monkeypatch.setattr(core, "place_workers", lambda n: woken.append(n) or real(n))
    net = cb.Network([64, 30, 10], output="softmax", random_state=0)
    net.n_threads = 2
    X = rng.normal(size=(20000, 64))
    Y = np.eye(10)[rng.integers(0, 10, 20000)]
    def gradient():
        return np.concatenate([g.ravel() for g in net.cost_and_gradient(X, Y)[1]])
    out, grad = net.forward(X), gradient()
    for _ in range(3):
        threads.forget_calls()
        np.testing.assert_array_equal(gradient(), grad)
        assert woken[-1] == 2
        assert os.sched_getaffinity(0) == mine
        for tid, cpus in _allowed_cpus_of_threads().items():
            assert cpus and cpus <= mine, (tid, cpus)
        n = len(woken)
        np.testing.assert_array_equal(net.forward(X), out)      # just after: no wake
        threads.forget_calls()
        np.testing.assert_array_equal(net.forward(X), out)      # its blocks place them
        assert len(woken) == n
        assert os.sched_getaffinity(0) == mine
        for tid, cpus in _allowed_cpus_of_threads().items():
            assert cpus and cpus <= mine, (tid, cpus)
    real(1)                                  # one thread: nothing to wake
    real(64)                                 # more than the cores: as libgomp allows
    assert os.sched_getaffinity(0) == mine


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_layers_forward_through_our_products_as_through_blas(dtype, rng):
    # forward passes run layers wider than training's OWN_MAX_UNITS through our products
    # too (W^T packed once a call, or once a predictor); BLAS where they are off
    from cbackprop._core import core
    acts = ["relu", "tanh"]
    net = cb.Network([50, 300, 140, 7], activation=acts, output="softmax", dtype=dtype,
                     random_state=0)
    X = rng.normal(size=(700, 50)).astype(dtype)
    expected = cb.reference.forward(net.thetas, X, activation=acts, output="softmax")
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-13)
    p = net.predictor()
    np.testing.assert_allclose(p(X[0]), expected[0], **tol)          # one row, W^T packed
    for rows in (slice(0, 2), slice(0, 33), slice(None)):
        np.testing.assert_allclose(p(X[rows]), expected[rows], **tol)
        np.testing.assert_allclose(net.forward(X[rows]), expected[rows], **tol)
    ours = net.forward(X)
    previous = core.use_own_products(False)
    try:
        blas = net.forward(X)
        np.testing.assert_allclose(net.predictor()(X), expected, **tol)
    finally:
        core.use_own_products(previous)
    np.testing.assert_allclose(ours, blas, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predictor_finds_every_non_finite_value_by_its_bits(dtype, rng):
    # the predictor tests X's exponent bits (all set: inf or NaN, of any sign or payload)
    net = cb.Network([37, 5, 3], output="softmax", dtype=dtype, random_state=0)
    p = net.predictor()
    X = rng.normal(size=(9, 37)).astype(dtype)
    info = np.finfo(dtype)
    edge = X.copy()
    edge[0, :4] = [info.max, -info.max, info.tiny / 4, -0.0]          # finite: accepted
    np.testing.assert_allclose(p(edge), net.forward(edge), rtol=1e-6)
    quiet_nan = np.array([np.nan], dtype)
    payload = quiet_nan.view(np.uint32 if dtype == "float32" else np.uint64) | 1
    for bad in (np.nan, -np.nan, np.inf, -np.inf, payload.view(dtype)[0]):
        for at in ((0, 0), (4, 17), (8, 36)):                          # first, inside, last
            Xb = X.copy()
            Xb[at] = bad
            with pytest.raises(ValueError, match="X contains (NaN|inf)"):
                p(Xb)
            with pytest.raises(ValueError, match="X contains (NaN|inf)"):
                p(Xb[at[0]])

def test_predictor_holds_a_snapshot(rng):
    net, X = fitted("softmax", "float64", rng)
    p = net.predictor()
    before = p(X)
    labels = p.predict(X)
    net.params = net.params * 2.0
    net.classes_ = np.array(["x", "y", "z"])
    np.testing.assert_array_equal(p(X), before)            # the snapshot, not net.params
    np.testing.assert_array_equal(p.predict(X), labels)
    assert not np.allclose(net.forward(X), before)
    np.testing.assert_allclose(net.predictor()(X), net.forward(X), rtol=1e-12)
    assert not p.params.flags.writeable


def test_predictor_refuses_or_converts_bad_input(rng):
    net = cb.Network([4, 3, 2], output="softmax", random_state=0)
    p = net.predictor()
    X = rng.normal(size=(5, 4))
    with pytest.raises(ValueError, match="X must be 1-D with 4 elements"):
        p(np.zeros(3))
    with pytest.raises(ValueError, match="3 features, the network expects 4"):
        p(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="must be 2-D"):
        p(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="empty"):
        p(np.zeros((0, 4)))
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[2, 1] = bad
        with pytest.raises(ValueError, match="X contains (NaN|inf)"):
            p(Xb)
        with pytest.raises(ValueError, match="X contains (NaN|inf)"):
            p(Xb[2])
        with pytest.raises(ValueError, match="X contains (NaN|inf)"):
            p(Xb.astype(np.float32))                         # converted, then refused
    with pytest.raises(TypeError, match="must hold numbers"):
        p(np.array([["a"] * 4]))
    with pytest.raises(TypeError, match="sparse"):
        import scipy.sparse
        p(scipy.sparse.csr_matrix(X))
    # converted: other dtypes, Fortran order, strided views, lists
    for given in (X.astype(np.float32), np.asfortranarray(X), X[::2], X.tolist(),
                  X.astype(int), X[0].tolist()):
        np.testing.assert_allclose(p(given), net.forward(given), rtol=1e-12)
    # out= of the wrong kind
    for out, what in ((np.empty((5, 2), np.float32), "float64"), (np.empty((5, 3)), r"\(5, 2\)"),
                      (np.empty((2, 5)).T, "not C-contiguous"), (np.empty(2), r"\(5, 2\)")):
        with pytest.raises(ValueError, match=what):
            p(X, out=out)
    ro = np.empty((5, 2))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        p(X, out=ro)
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        p(X, out=[[0, 0]] * 5)
    with pytest.raises(ValueError, match="overlap"):
        buf = np.zeros(20)
        p(buf.reshape(5, 4), out=buf[:10].reshape(5, 2))


def test_predictor_shared_between_threads(rng):
    net, X = fitted("softmax", "float64", rng)
    p = net.predictor()
    expected = net.predict_proba(X)
    failures = []

    def serve(seed):
        r = np.random.default_rng(seed)
        for _ in range(300):
            i = int(r.integers(0, len(X)))
            k = int(r.integers(1, 5))
            if not np.allclose(p.predict_proba(X[i:i + k]), expected[i:i + k], rtol=1e-12):
                failures.append(i)

    threads = [threading.Thread(target=serve, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_predictor_of_an_estimators_network(rng):
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    est = cb.sklearn.BackpropClassifier(hidden_layer_sizes=(5,), max_iter=3).fit(X, y)
    p = est.network_.predictor()
    np.testing.assert_allclose(p.predict_proba(X), est.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(p.predict(X), est.predict(X))


def test_forwards_one_row_path_reads_params_live(rng):
    import copy
    import pickle

    net, X = fitted("softmax", "float64", rng)
    before = net.predict_proba(X[0])                        # makes the one-row server
    net.thetas[0][...] *= 0.5                               # in place: the next call sees it
    after = net.predict_proba(X[0])
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(net.forward(X[0]), net.forward(X[:1])[0])
    np.testing.assert_allclose(net.forward(X[:1]), net.forward(X[:3])[:1], rtol=1e-12)
    net.params = rng.normal(size=net.params.size)
    np.testing.assert_allclose(net.forward(X[:1]), net.forward(X[:3])[:1], rtol=1e-12)
    for twin in (net.copy(), pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        np.testing.assert_array_equal(twin.forward(X[0]), net.forward(X[0]))
    with pytest.raises(ValueError, match="7 features, the network expects 5"):
        net.forward(np.zeros((1, 7)))
    with pytest.raises(ValueError, match="X contains NaN"):
        net.forward(np.full((1, 5), np.nan))


# ------------------------------------------------------- predict_proba's one rule

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_predict_proba_and_the_predictor_apply_one_rule(kind, dtype, rng):
    net, X = fitted(kind, dtype, rng)
    p = net.predictor()
    for rows in (X[:1], X[:7], X):
        h = p(rows)
        if kind not in CLASSIFIERS:
            with pytest.raises(ValueError) as by_network:
                net.predict_proba(rows)
            with pytest.raises(ValueError) as by_predictor:
                p.predict_proba(rows)
            assert str(by_network.value) == str(by_predictor.value)
            continue
        # the same h gives the same bits, by either way
        np.testing.assert_array_equal(
            cb._targets.probabilities(h, net.target_coding_.kind, net.output),
            p.predict_proba(rows))
        expected = {"softmax": h, "multilabel": h, "binary": np.hstack([1 - h, h]),
                    "one_vs_all": h / h.sum(axis=1, keepdims=True)}[kind]
        np.testing.assert_array_equal(p.predict_proba(rows), expected)   # < 8 units: NumPy's


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_core_probabilities_reads_h_only(dtype, rng):
    from cbackprop._core import core
    Proba = core.Proba
    h = rng.random((6, 8)).astype(dtype)
    strided = np.asfortranarray(h)[:, ::2]                 # not contiguous, and read-only
    strided.setflags(write=False)
    kept = strided.copy()
    got = core.probabilities(strided, Proba.PROBA_NORMALIZED)
    np.testing.assert_array_equal(strided, kept)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, core.probabilities(kept.copy(), Proba.PROBA_NORMALIZED))
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-6)
    one = h[:, 3:4]
    two = core.probabilities(one, Proba.PROBA_TWO)
    np.testing.assert_array_equal(two, np.hstack([1 - one, one]))
    assert core.probabilities(h, Proba.PROBA_AS_IS) is h
    zeros = core.probabilities(np.zeros((2, 3), dtype), Proba.PROBA_NORMALIZED)
    assert np.all(zeros == 0)                              # the tiny floor: no 0 / 0
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        core.probabilities(h, Proba.PROBA_NONE)
    with pytest.raises(ValueError, match="Proba code"):
        core.probabilities(h, 7)
    with pytest.raises(ValueError, match="one output unit"):
        core.probabilities(h, Proba.PROBA_TWO)
    with pytest.raises(TypeError, match="float32 or float64"):
        core.probabilities(h.astype(np.float16), Proba.PROBA_NORMALIZED)


# -------------------------------------------------------- the estimators' predictor

def _estimator_cases(rng):
    X = rng.normal(size=(50, 4))
    C, R = cb.sklearn.BackpropClassifier, cb.sklearn.BackpropRegressor
    small = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    yield C(**small), X, np.array(["no", "yes"])[rng.integers(0, 2, 50)]
    yield C(**small), X, np.array(["a", "b", "c"])[rng.integers(0, 3, 50)]
    yield C(output="sigmoid", **small), X, rng.integers(0, 3, 50) * 10
    yield C(dtype="float32", **small), X, np.array(["a", "b", "c"])[rng.integers(0, 3, 50)]
    yield C(**small), X, rng.integers(0, 2, (50, 3))       # multi-label
    yield R(**small), X, rng.normal(size=50)
    yield R(**small), X, rng.normal(size=(50, 3))
    yield R(loss="poisson", **small), X, rng.poisson(2.0, size=50).astype(float)


def test_estimators_predictor_answers_as_the_estimator(rng):
    for est, X, y in _estimator_cases(rng):
        est.fit(X, y)
        p = est.predictor()
        tol = 1e-5 if est.network_.dtype == np.float32 else 1e-12
        for rows in (X[:1], X[:3], X, X.tolist(), np.asfortranarray(X), X.astype(np.float32)):
            expected = est.predict(rows)
            got = p.predict(rows)
            assert got.shape == expected.shape and got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
            if hasattr(est, "predict_proba"):
                np.testing.assert_allclose(p.predict_proba(rows), est.predict_proba(rows),
                                           rtol=tol, atol=tol)
            else:
                with pytest.raises(ValueError, match="predict_proba is for classifiers"):
                    p.predict_proba(rows)
        # one row given 1-D: predict's answer for that row
        np.testing.assert_array_equal(p.predict(X[2]), est.predict(X[2:3])[0])
        # input predict refuses, refused the same way
        for bad in (X[:, :3], np.full((2, 4), np.nan)):
            with pytest.raises(ValueError) as by_estimator:
                est.predict(bad)
            with pytest.raises(ValueError) as by_predictor:
                p.predict(bad)
            assert str(by_predictor.value).split(";")[0] in str(by_estimator.value) \
                or str(by_estimator.value).split(";")[0] in str(by_predictor.value)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # the sparse X
def test_estimators_predictor_feature_names_snapshot_and_not_fitted(rng):
    pd = pytest.importorskip("pandas")
    from sklearn.exceptions import NotFittedError
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = np.array(["u", "v", "w"])[rng.integers(0, 3, 40)]
    est = cb.sklearn.BackpropClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.raises(NotFittedError):
        est.predictor()
    with pytest.raises(NotFittedError):
        cb.sklearn.BackpropRegressor().predictor()
    est.fit(X, y)
    p = est.predictor()
    np.testing.assert_array_equal(p.predict(X), est.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        p.predict(X[["c", "b", "a"]])
    with pytest.raises(TypeError, match="[Ss]parse"):
        import scipy.sparse
        p.predict(scipy.sparse.csr_matrix(X.to_numpy()))
    labels = p.predict(X)
    est.set_params(max_iter=20).fit(X, np.where(y == "u", "v", y))
    np.testing.assert_array_equal(p.predict(X), labels)    # the snapshot of the first fit
    with pytest.raises(ValueError, match="n_threads must be 1 or None"):
        est.predictor(n_threads=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where", [0, 1500, -1])
def test_a_nan_or_inf_in_any_block_is_refused_as_before(dtype, where, rng):
    """forward's and the predictor's rows of several blocks are tested block by block as
    they run (X read once): a NaN or inf in the first, a middle or the last block gives the
    same errors as the test of all of X before the pass did, on one thread and two."""
    net = cb.Network([64, 30, 10], output="softmax", dtype=dtype, random_state=0)
    X = rng.normal(size=(3000, 64)).astype(dtype)
    p = net.predictor()
    threaded = net.predictor(n_threads=None)          # more than serial_rows: its `many`
    assert threaded.serial_rows < 3000
    out = np.empty((3000, 10), dtype)
    for bad, name in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")):
        Xb = X.copy()
        Xb[where, 7] = bad
        for threads in (1, 2):
            net.n_threads = threads
            for call in (net.forward, net.predict_proba, net.predict, p, threaded,
                         lambda x: p.predict_proba(x, out=out)):
                with pytest.raises(ValueError, match=f"^X contains {name}; remove or impute"):
                    call(Xb)
    from cbackprop._core import core
    Xb = X.copy()
    Xb[where, 0] = np.nan
    assert core.forward(net._layout, Xb, net.params, out, 256, 1, True) is None
    assert np.shares_memory(core.forward(net._layout, Xb, net.params, out, 256, 1), out)
    if dtype == "float32":                       # float64 values float32 cannot hold
        X64 = X.astype(np.float64)
        X64[where, 3] = 1e300
        with pytest.raises(ValueError, match="X overflows float32"):
            net.forward(X64)


def test_forward_buffers_kept_between_calls_never_mix_networks(rng):
    """forward keeps its workspace and packed W^T from call to call on each thread: calls
    on networks of other shapes and dtypes in turn, and from two threads at once, each
    give the reference's outputs."""
    from cbackprop import reference
    nets = [cb.Network(s, activation="tanh", output="softmax", dtype=d, random_state=k)
            for k, (s, d) in enumerate((([64, 30, 10], "float64"), ([64, 30, 10], "float32"),
                                        ([20, 200, 3], "float64"), ([5, 7, 9, 4], "float32")))]
    Xs = [rng.normal(size=(700, n.layer_sizes[0])) for n in nets]
    expected = [reference.forward([t.astype(np.float64) for t in n.thetas], X,
                                  activation="tanh", output="softmax") for n, X in zip(nets, Xs)]

    def run(order, errors):
        try:
            for k in order:
                tol = 1e-4 if nets[k].dtype == np.float32 else 1e-10
                got = nets[k].forward(Xs[k].astype(nets[k].dtype))
                np.testing.assert_allclose(got, expected[k], rtol=tol, atol=tol)
        except Exception as e:          # noqa: BLE001 - reported by the main thread
            errors.append(e)

    errors = []
    run([0, 1, 2, 3, 2, 0, 3, 1], errors)
    workers = [threading.Thread(target=run, args=(order * 5, errors))
               for order in ([0, 2, 1, 3], [3, 1, 2, 0])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
