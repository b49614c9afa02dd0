"""Sparse X (issue 15): scipy.sparse matrices and arrays, every solver, forward, cost,
gradient, predict and score, against the NumPy reference (which reads the stored matrix
densely), finite differences and the dense path; the first layer over stored entries only.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cbackprop as cb
from cbackprop import reference
from cbackprop._core import core
from cbackprop._sparse import CSR, as_csr
from cbackprop.gradcheck import check_gradients

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

TOL = {"float64": 1e-10, "float32": 1e-4}
ARCHS = [  # sizes, hidden, output, loss: with and without hidden layers, thin and wide (BLAS)
    ([30, 7, 4], "sigmoid", "softmax", "cross_entropy"),
    ([30, 5], "tanh", "sigmoid", "cross_entropy"),
    ([30, 140, 6, 3], "relu", "identity", "squared_error"),
    ([30, 9, 2], "tanh", "sigmoid", "squared_error"),
]


def _problem(sizes, output, m=60, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(m, sizes[0], density=density, random_state=seed, format="csr",
                  data_rvs=lambda k: rng.normal(size=k))
    X = X.tolil()
    X[3] = 0                                       # an empty row
    X = X.tocsr()
    if output == "identity":
        Y = rng.normal(size=(m, sizes[-1]))
    else:
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    w = rng.uniform(0.5, 2, m)
    return X, Y, w


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(map(str, a[0])))
def test_cost_gradient_and_forward_match_the_reference(arch, dtype):
    sizes, act, out, loss = arch
    X, Y, w = _problem(sizes, out)
    net = cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype, random_state=1)
    J_ref, g_ref = reference.cost_and_gradient(
        [t.astype(np.float64) for t in net.thetas], X, Y, 0.7, act, out, loss, w)
    for fmt in ("csr", "csc", "coo"):
        Xs = X.asformat(fmt)
        for method in ("batched", "per_sample"):
            J, g = net.cost_and_gradient(Xs, Y, lam=0.7, sample_weight=w, method=method)
            assert abs(J - J_ref) <= TOL[dtype] * abs(J_ref)
            for a, b in zip(g, g_ref):
                assert _rel(a, b) <= TOL[dtype]
        h = net.forward(Xs)
        assert _rel(h, reference.forward([t.astype(np.float64) for t in net.thetas], X, act,
                                         out)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", [3, 5, 17, 123, 250])
def test_every_width_of_the_first_layer_matches_the_reference(hidden, dtype):
    """The first layer's gathers and scatters (_core/gather.h) take a row in chunks of 8,
    4, 2 and 1 vectors and then single elements: these widths reach each of them on
    every build (vectors of 2 to 16 elements), in every form of X: CSR rows, batched and
    one sample at a time, and fit's columns and blocks (several segments and blocks)."""
    sizes = [40, hidden, 3]
    X, Y, w = _problem(sizes, "softmax", m=97)
    net = cb.Network(sizes, output="softmax", random_state=0, dtype=dtype)
    thetas = [t.astype(np.float64) for t in net.thetas]
    J_ref, g_ref = reference.cost_and_gradient(thetas, X.toarray(), Y, 0.3, "sigmoid",
                                               "softmax", "cross_entropy", w)
    for method in ("batched", "per_sample"):
        J, g = net.cost_and_gradient(X, Y, lam=0.3, sample_weight=w, method=method)
        assert abs(J - J_ref) <= TOL[dtype] * abs(J_ref)
        for a, b in zip(g, g_ref):
            assert _rel(a, b) <= TOL[dtype]
    Yd, wd = Y.astype(dtype), w.astype(dtype)
    flat_ref = np.concatenate([t.ravel() for t in g_ref])
    for threads, block_rows in ((1, 97), (2, 5)):
        Xs = net._check_X(X).with_columns(7).with_blocks(13)
        g = np.zeros_like(net.params)
        J = core.cost_grad(net._layout, Xs, Yd, wd, net.params, g, wd.sum(),
                           0.3 / float(w.sum()), block_rows, threads)
        assert abs(J - J_ref) <= TOL[dtype] * abs(J_ref)
        assert _rel(g, flat_ref) <= TOL[dtype]
    assert _rel(net.forward(X), reference.forward(thetas, X.toarray(), "sigmoid",
                                                  "softmax")) <= TOL[dtype]


@pytest.mark.parametrize("threads,block_rows", [(1, 1), (1, 7), (2, 5), (2, 256)])
def test_threads_and_blocks_give_the_same_sums(threads, block_rows):
    sizes = [40, 8, 3]
    X, Y, w = _problem(sizes, "softmax", m=97)
    net = cb.Network(sizes, output="softmax", random_state=0)
    Xs = net._check_X(X)
    by_columns = net._check_X(X).with_columns()          # fit's form: W(1) summed by column
    grads = []
    for data, t, b in ((Xs, 1, 97), (Xs, threads, block_rows), (by_columns, threads, block_rows)):
        g = np.zeros_like(net.params)
        J = core.cost_grad(net._layout, data, Y, w, net.params, g, w.sum(), 0.01, b, t)
        grads.append((J, g))
        out = core.forward(net._layout, Xs, net.params, np.empty((97, 3)), b, t)
        assert _rel(out, net.forward(X.toarray())) <= 1e-12
    for J, g in grads[1:]:
        assert abs(grads[0][0] - J) <= 1e-12 * abs(grads[0][0])
        assert _rel(g, grads[0][1]) <= 1e-12


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_columns_in_segments_give_the_same_bits(dtype):
    """fit's columns come in segments of rows (cbackprop._sparse.segment_rows): each
    column's sum still runs in the order of its rows, so any segments, threads and block
    sizes give the bits of one segment; and those match the reference."""
    sizes = [40, 8, 3]
    X, Y, w = _problem(sizes, "softmax", m=97)
    net = cb.Network(sizes, output="softmax", random_state=0, dtype=dtype)
    Y, w = Y.astype(dtype), w.astype(dtype)
    results = []
    for segment_rows in (None, 1, 7, 32, 96, 97, 500):
        Xs = net._check_X(X).with_columns(segment_rows)
        assert Xs.columns[2].shape == (-(-97 // min(segment_rows or 97, 97)) * 41,)
        for threads, block_rows in ((1, 97), (2, 5)):
            g = np.zeros_like(net.params)
            J = core.cost_grad(net._layout, Xs, Y, w, net.params, g, w.sum(), 0.01,
                               block_rows, threads)
            results.append((threads, block_rows, J, g))
    for threads, block_rows, J, g in results:
        same = [r for r in results if r[:2] == (threads, block_rows)][0]
        assert J == same[2]
        np.testing.assert_array_equal(g, same[3])
    J_ref, g_ref = reference.cost_and_gradient(
        [t.astype(np.float64) for t in net.thetas], X.toarray(), Y.astype(np.float64),
        0.01 * float(w.sum()), "sigmoid", "softmax", "cross_entropy", w.astype(np.float64))
    assert abs(results[0][2] - J_ref) <= TOL[dtype] * abs(J_ref)
    dense = np.zeros_like(net.params)
    core.cost_grad(net._layout, np.ascontiguousarray(X.toarray(), dtype=dtype), Y, w,
                   net.params, dense, w.sum(), 0.01, 97, 1)
    assert _rel(results[0][3], dense) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_blocks_of_columns_give_the_bits_of_the_rows(dtype):
    """fit's forward pass reads X in blocks of columns (cbackprop._sparse.block_columns):
    each row's sum keeps the order of its entries, so any blocks and threads give the
    bits of the plain CSR rows, cost and gradient alike (with or without X's columns)."""
    sizes = [40, 8, 3]
    X, Y, w = _problem(sizes, "softmax", m=97)
    net = cb.Network(sizes, output="softmax", random_state=0, dtype=dtype)
    Y, w = Y.astype(dtype), w.astype(dtype)
    for columns in (None, 16):
        runs = []
        for block_columns in (None, 1, 3, 13, 40, 1000):
            Xs = net._check_X(X)
            if columns:
                Xs.with_columns(columns)
            if block_columns:
                Xs.with_blocks(block_columns)
                assert Xs.blocks[2].shape == (-(-40 // block_columns) * 97 + 1,)
            for threads, block_rows in ((1, 97), (2, 5)):
                g = np.zeros_like(net.params)
                J = core.cost_grad(net._layout, Xs, Y, w, net.params, g, w.sum(), 0.01,
                                   block_rows, threads)
                runs.append(((threads, block_rows), J, g))
                J_cost = core.cost_grad(net._layout, Xs, Y, w, net.params, np.empty(0, dtype),
                                        w.sum(), 0.01, block_rows, threads)
                assert J_cost == J
        for key, J, g in runs:
            first = [r for r in runs if r[0] == key][0]
            assert J == first[1]
            np.testing.assert_array_equal(g, first[2])


def _refuses(attribute, make, cases):
    """cost_grad refuses X whose `attribute` (made by make(X)) is each case's tuple,
    with each case's message."""
    sizes = [6, 3, 2]
    X, Y, w = _problem(sizes, "softmax", m=9)
    net = cb.Network(sizes, output="softmax", random_state=0)
    Xs = make(net._check_X(X))
    for arrays, match in cases(*getattr(Xs, attribute)):
        setattr(Xs, attribute, (arrays[0], arrays[1],
                                np.ascontiguousarray(arrays[2], dtype=np.intp)))
        with pytest.raises(ValueError, match=match):
            core.cost_grad(net._layout, Xs, Y, w, net.params, np.zeros_like(net.params),
                           w.sum(), 0.0, 4, 1)


def test_malformed_blocks_of_columns_are_refused():
    def cases(data, cols, ptr):
        bad_cols = cols.copy()
        bad_cols[0] = 6
        return (((data, cols, ptr[:-1]), "blocks of columns"),
                ((data, cols, np.r_[ptr[:3], ptr[3] + 100, ptr[4:]]), "decrease"),
                ((data, bad_cols, ptr), "column 0 is 6"))
    _refuses("blocks", lambda X: X.with_blocks(4), cases)


def test_malformed_segments_of_columns_are_refused():
    def cases(data, rows, ptr):
        return (((data, rows, ptr[:-1]), "segments of"),
                ((data, rows, np.r_[ptr[:7], ptr[7:] + 1]), "segments of"),
                ((data, rows, np.r_[ptr[:6], ptr[6] + 1, ptr[7:]]), "does not start"))
    _refuses("columns", lambda X: X.with_columns(4), cases)


@pytest.mark.parametrize("arch", ARCHS[:2], ids=lambda a: "-".join(map(str, a[0])))
def test_finite_differences(arch):
    sizes, act, out, loss = arch
    X, Y, w = _problem(sizes, out, m=20)
    net = cb.Network(sizes, activation=act, output=out, loss=loss, random_state=2)
    assert check_gradients(net, X, Y, lam=0.5, sample_weight=w) < 1e-8


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["online", "sgd", "adam", "lbfgs", "cg", "rprop"])
@pytest.mark.parametrize("arch", ARCHS[:3], ids=lambda a: "-".join(map(str, a[0])))
def test_every_solver_trains_as_on_the_dense_matrix(arch, solver, dtype):
    sizes, act, out, loss = arch
    X, Y, w = _problem(sizes, out)
    y = Y if out == "identity" else Y.argmax(1)
    net = cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype, random_state=3)
    kw = dict(solver=solver, epochs=3, max_iter=4, lam=0.2, learning_rate=0.05,
              batch_size=16, random_state=0)
    a, b = net.copy(), net.copy()
    a.fit(X, y, sample_weight=w, **kw)
    b.fit(X.toarray(), y, sample_weight=w, **kw)
    assert _rel(a.params, b.params) <= 10 * TOL[dtype]
    assert a.history_["loss"] == pytest.approx(b.history_["loss"], rel=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_online_epoch_matches_the_reference_under_strong_decay(dtype):
    """The online epoch keeps W(1) as scale * V^T; a decay strong enough to rescale V many
    times over still gives the reference's updates."""
    sizes = [25, 6, 3]
    X, Y, w = _problem(sizes, "softmax", m=80)
    net = cb.Network(sizes, output="softmax", dtype=dtype, random_state=4)
    order = np.random.default_rng(0).permutation(80)
    rate = 0.9
    lam = 0.8 * 80 / rate              # decay = 1 - rate lam / m = 0.2 a sample: 0.2^80 < 1e-30
    expected, _ = reference.online_epoch([t.astype(np.float64) for t in net.thetas], X, Y,
                                         order, rate, lam, output="softmax")
    params = net.params.copy()
    core.online_epoch(net._layout, net._check_X(X), Y.astype(dtype), np.empty(0, dtype),
                      params, order.astype(np.intp), rate, 1 - rate * lam / 80, 1000)
    for a, b in zip(net.split(params), expected):
        assert _rel(a, b) <= TOL[dtype]


def test_stored_forms_of_one_matrix_agree():
    """Unsorted indices, duplicates (summed, as scipy does), explicit zeros, int64 indices,
    sparse arrays and matrices, no stored entry at all."""
    sizes = [12, 4, 2]
    net = cb.Network(sizes, output="softmax", random_state=0)
    X = sp.random(30, 12, density=0.3, random_state=0, format="csr")
    dense = X.toarray()
    rows, cols = X.nonzero()
    half = X.data / 2
    dup = sp.csr_matrix((np.r_[half, half, np.zeros(3)], (np.r_[rows, rows, [0, 1, 2]],
                                                          np.r_[cols, cols, [5, 6, 7]])),
                        shape=X.shape)
    shuffled = X.copy()
    shuffled.indices, shuffled.data = shuffled.indices[::-1].copy(), shuffled.data[::-1].copy()
    shuffled.indptr = np.r_[0, np.cumsum(np.diff(X.indptr)[::-1])]  # rows reversed too
    big = sp.csr_array(X)
    big.indices, big.indptr = big.indices.astype(np.int64), big.indptr.astype(np.int64)
    expected = net.forward(dense)
    assert np.allclose(net.forward(dup), expected, rtol=1e-12, atol=0)
    assert np.allclose(net.forward(big), expected, rtol=1e-12, atol=0)
    assert np.allclose(net.forward(sp.lil_matrix(X)), expected, rtol=1e-12, atol=0)
    assert np.allclose(net.forward(shuffled), net.forward(shuffled.toarray()), rtol=1e-12,
                       atol=0)
    empty = sp.csr_matrix((5, 12))
    assert np.allclose(net.forward(empty), net.forward(np.zeros((5, 12))), rtol=1e-12)
    net.fit(empty, [0, 1, 0, 1, 0], solver="adam", epochs=2)    # trains on the biases alone


def test_predict_score_validation_data_and_early_stopping():
    rng = np.random.default_rng(0)
    X = sp.random(300, 50, density=0.1, random_state=0, format="csr")
    y = (X @ rng.normal(size=50) > 0).astype(int)
    net = cb.Network([50, 8, 2], output="softmax", random_state=0)
    net.fit(X[:250], y[:250], solver="adam", epochs=30, learning_rate=0.01, random_state=0,
            validation_data=(X[250:], y[250:]))
    assert len(net.history_["val_score"]) == 30
    assert net.score(X, y) == net.score(X.toarray(), y) > 0.7
    assert (net.predict(X) == net.predict(X.toarray())).all()
    twin = cb.Network([50, 8, 2], output="softmax", random_state=0)
    twin.fit(X.toarray()[:250], y[:250], solver="adam", epochs=30, learning_rate=0.01,
             random_state=0,
             validation_data=(X.toarray()[250:], y[250:]))
    assert np.allclose(net.params, twin.params, rtol=0, atol=1e-12)
    es = cb.Network([50, 8, 2], output="softmax", random_state=0)
    es.fit(X, y, solver="adam", epochs=50, early_stopping=True, random_state=0)
    dense = cb.Network([50, 8, 2], output="softmax", random_state=0)
    dense.fit(X.toarray(), y, solver="adam", epochs=50, early_stopping=True, random_state=0)
    assert es.n_iter_ == dense.n_iter_ and np.allclose(es.params, dense.params, atol=1e-12)


def test_csr_take_keeps_the_rows():
    X = sp.random(40, 9, density=0.3, random_state=1, format="csr")
    csr = as_csr("X", X, np.float64)
    rows = np.array([5, 0, 39, 5, 17])
    assert np.array_equal(csr.take(rows).toarray(), X.toarray()[rows])
    assert csr[rows[:0]].shape == (0, 9)


# ------------------------------------------------------------------ wrong input

@pytest.mark.parametrize("bad,match", [
    (np.nan, "X contains NaN"), (np.inf, "X contains inf"), (1e300, "X overflows float32")])
def test_non_finite_stored_values_are_refused(bad, match):
    X = sp.random(20, 10, density=0.3, random_state=0, format="csr")
    X.data[3] = bad
    net = cb.Network([10, 3, 2], output="softmax", dtype="float32")
    for call in (lambda: net.fit(X, np.arange(20) % 2), lambda: net.predict(X),
                 lambda: net.cost(X, np.eye(2)[np.arange(20) % 2])):
        with pytest.raises(ValueError, match=match):
            call()


def test_shape_errors():
    net = cb.Network([10, 3, 2], output="softmax")
    with pytest.raises(ValueError, match="X has 11 features, the network expects 10"):
        net.predict(sp.random(5, 11, density=0.5, format="csr"))
    with pytest.raises(ValueError, match="X is empty"):
        net.fit(sp.csr_matrix((0, 10)), [])
    with pytest.raises(ValueError, match="y has 4 samples but its X has 5"):
        net.fit(sp.random(5, 10, density=0.5, format="csr"), [0, 1, 0, 1])


def test_the_core_refuses_malformed_csr():
    """A hand-made CSR whose arrays lie is a ValueError before any compiled loop, never a
    read out of bounds."""
    net = cb.Network([6, 3, 2], output="softmax")
    layout, params = net._layout, net.params
    out = np.empty((2, 2))
    good = dict(data=np.ones(3), indices=np.array([0, 2, 5], np.intc),
                indptr=np.array([0, 2, 3], np.intp))
    core.forward(layout, CSR(shape=(2, 6), **good), params, out, 4, 1)
    for change, match in (
            (dict(indices=np.array([0, 2, 6], np.intc)), "X.indices\\[2\\] is 6"),
            (dict(indices=np.array([0, -1, 5], np.intc)), "X.indices\\[1\\] is -1"),
            (dict(indptr=np.array([0, 3, 2], np.intp)), "decreases at row 1"),
            (dict(indptr=np.array([1, 2, 3], np.intp)), "must start at 0"),
            (dict(indptr=np.array([0, 2, 9], np.intp)), "end at most"),
            (dict(indptr=np.array([0, 3], np.intp)), "X.indptr has 2 elements")):
        with pytest.raises(ValueError, match=match):
            core.forward(layout, CSR(shape=(2, 6), **{**good, **change}), params, out, 4, 1)
    with pytest.raises(ValueError, match="Buffer dtype mismatch"):
        core.forward(layout, CSR(shape=(2, 6), **{**good, "data": np.ones(3, np.float32)}),
                     params, out, 4, 1)


# ------------------------------------------------------------------ scikit-learn

def test_estimators_take_sparse_x_as_scikit_learn_does():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier
    from cbackprop.sklearn import BackpropClassifier, BackpropRegressor
    rng = np.random.default_rng(0)
    X = sp.random(200, 40, density=0.1, random_state=0, format="csr")
    y = (X @ rng.normal(size=40) > 0).astype(int)
    kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = BackpropClassifier(**kw).fit(X, y)
        theirs = MLPClassifier(**kw).fit(X, y)
        dense = BackpropClassifier(**kw).fit(X.toarray(), y)
    assert np.allclose(ours.predict_proba(X), dense.predict_proba(X.toarray()), atol=1e-10)
    assert np.allclose(ours.predict_proba(X.tocsc()), theirs.predict_proba(X), atol=1e-6)
    assert ours.score(X, y) == theirs.score(X, y)
    assert ours.__sklearn_tags__().input_tags.sparse
    reg = BackpropRegressor(hidden_layer_sizes=(5,), solver="adam", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(sp.coo_matrix(X), X @ rng.normal(size=40))
    assert reg.predict(X).shape == (200,)


def test_sparse_blocks_and_batches_are_refused_clearly():
    X = sp.random(40, 10, density=0.3, format="csr", random_state=0)
    y = np.arange(40) % 2
    net = cb.Network([10, 3, 2], output="softmax")
    with pytest.raises(TypeError, match="scipy.sparse matrix, which fit, predict and score take"):
        net.fit([(X[:20], y[:20]), (X[20:], y[20:])], None, solver="adam", epochs=1)


@pytest.mark.parametrize("density, batch", [(0.01, 16), (0.05, 32)])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_minibatch_epochs_are_bit_identical_for_any_thread_count(solver, density, batch):
    """The first layer's step is shared by threads in fixed parts, and a large batch's
    gather and scatter by ranges of units (the second density): the same bits for any
    thread count, and the dense path's to rounding, for a first layer of several parts."""
    X = sp.random(120, 3000, density=density, random_state=0, format="csr")
    Y = np.eye(3)[np.arange(120) % 3]
    net = cb.Network([3000, 24, 3], output="softmax", random_state=0)
    order = np.random.default_rng(0).permutation(120).astype(np.intp)
    rule = core.StepRule(solver, 0.01, momentum=0.9)
    runs = []
    for data, n_threads in ((net._check_X(X), 1), (net._check_X(X), 2), (X.toarray(), 1)):
        params = net.params.copy()
        state = core.StepState(np.zeros_like(params), np.zeros_like(params))
        for _ in range(3):
            total, done, status = core.minibatch_epoch(
                net._layout, rule, state, data, Y, np.empty(0), params, order, batch, 1.0,
                0.3 / 120, 1000, n_threads=n_threads)
        runs.append((params, total, state.m1.copy()))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert np.array_equal(runs[0][2], runs[1][2])
    assert _rel(runs[0][0], runs[2][0]) <= 1e-10 and _rel(runs[0][2], runs[2][2]) <= 1e-10
    assert runs[0][1] == pytest.approx(runs[2][1], rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rule", [dict(solver="adam", rate=0.01, weight_decay=0.1),
                                  dict(solver="adam", rate=0.01, clip_norm=0.05),
                                  dict(solver="sgd", rate=0.05, momentum=0.9, nesterov=True)])
def test_the_first_layers_step_in_columns_a_batch_lacks_matches_the_dense_path(dtype, rule):
    """W(1)'s weights in the columns a sparse batch has no entry in still take their step
    (decay, regularization, moments), equal to the dense path's: long runs of such
    columns, rows across the step's parts' boundaries, a column of one batch, and thread
    counts alike."""
    rng = np.random.default_rng(1)
    m, n, hidden = 48, 6000, 7
    cols = np.where(rng.random((m, 2)) < 0.5, rng.integers(0, 40, (m, 2)),
                    rng.integers(5000, 5012, (m, 2)))
    cols[5, 0] = 2500                              # one column, one batch
    X = sp.csr_matrix((rng.random(2 * m) + 0.5, cols.ravel(), np.arange(0, 2 * m + 1, 2)),
                      shape=(m, n))
    X.sum_duplicates()
    X = X.astype(dtype)
    Y = np.eye(3, dtype=dtype)[np.arange(m) % 3]
    net = cb.Network([n, hidden, 3], output="softmax", random_state=0, dtype=dtype)
    order = rng.permutation(m).astype(np.intp)
    step = core.StepRule(**rule)
    runs = []
    for data, n_threads in ((net._check_X(X), 1), (net._check_X(X), 2), (X.toarray(), 1)):
        params = net.params.copy()
        state = core.StepState(np.zeros_like(params), np.zeros_like(params))
        for _ in range(2):
            core.minibatch_epoch(net._layout, step, state, data, Y, np.empty(0, dtype),
                                 params, order, 8, 1.0, 0.5 / m, 1000, n_threads=n_threads)
        runs.append((params, state.m1.copy(), state.m2.copy()))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for k in range(3 if rule["solver"] == "adam" else 2):     # sgd: no second moment
        assert np.array_equal(runs[0][k], runs[1][k])
        assert _rel(runs[0][k], runs[2][k]) <= tol
    assert not np.array_equal(runs[0][0], net.params)


def test_an_epochs_kept_buffers_give_the_bits_of_fresh_ones_after_a_diverged_epoch():
    """scratch keeps an epoch's transposed W(1) buffers for the next epoch (no fresh pages
    each epoch); an epoch that diverged mid-way, its batch's gradient summed but not
    stepped on, leaves nothing behind in them."""
    X = sp.random(90, 2000, density=0.01, random_state=0, format="csr")
    Y = np.eye(3)[np.arange(90) % 3]
    net = cb.Network([2000, 5, 3], output="softmax", random_state=0)
    order = np.random.default_rng(0).permutation(90).astype(np.intp)
    data = net._check_X(X)

    def epochs(scratch, n=2):
        params = net.params.copy()
        state = core.StepState(np.zeros_like(params), np.zeros_like(params))
        for _ in range(n):
            core.minibatch_epoch(net._layout, core.StepRule("adam", 0.01), state, data, Y,
                                 np.empty(0), params, order, 16, 1.0, 0.1 / 90, 1000,
                                 scratch=scratch)
        return params, state.m1

    scratch = {}
    bad = net.params.copy()
    bad[-1] = np.nan                                  # the output layer's: a NaN cost
    zeros = core.StepState(np.zeros_like(bad), np.zeros_like(bad))
    status = core.minibatch_epoch(net._layout, core.StepRule("adam", 0.01), zeros, data, Y,
                                  np.empty(0), bad, order, 16, 1.0, 0.1 / 90, 1000,
                                  scratch=scratch)[2]
    assert status == core.STATUS_DIVERGED and set(scratch) >= {"step_g1t", "step_w1t"}
    assert not np.any(scratch["step_g1t"])
    kept, fresh = epochs(scratch), epochs(None)
    assert np.array_equal(kept[0], fresh[0]) and np.array_equal(kept[1], fresh[1])
