"""Every build of the compiled core this processor runs (baseline, AVX2, AVX-512) against the reference.

The rest of the suite exercises the build cbackprop picks; these tests load each one
explicitly, so that a build the suite does not otherwise reach is checked too.
"""
import numpy as np
import pytest

import cbackprop as cb
from cbackprop import _core, reference

BUILDS = _core.runnable_builds()
CASES = [  # (layer sizes, hidden activation, output, loss)
    ([7, 9, 4], "sigmoid", "sigmoid", "cross_entropy"),
    ([5, 8, 6, 3], "tanh", "softmax", "cross_entropy"),
    ([6, 10, 2], "relu", "identity", "squared_error"),
    ([4, 5, 3], "sigmoid", "softmax", "squared_error"),
    ([5, 8, 3], "identity", "identity", "squared_error"),
    ([6, 7, 5, 2], "identity", "exp", "poisson"),
    ([5, 9, 3], "leaky_relu", "softmax", "cross_entropy"),
    ([5, 9, 3], "elu", "sigmoid", "cross_entropy"),
    ([5, 9, 2], "softplus", "identity", "squared_error"),
    ([5, 9, 3], "elliott", "softmax", "cross_entropy"),
]


def layout_of(core, net):
    """net's architecture as this build's entry points take it."""
    return core.Layout(net.layer_sizes, net.activation + [net.output], net.loss)


def test_baseline_build_is_always_there():
    assert "baseline" in BUILDS


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, act, out, loss", CASES)
def test_build_matches_reference(build, dtype, sizes, act, out, loss):
    core = _core.load(build)
    rng = np.random.default_rng(sum(sizes))
    net = cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype, random_state=1)
    m = 300
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Y = rng.uniform(size=(m, sizes[-1])).astype(dtype)
    w = np.empty(0, dtype)
    tol = 1e-10 if dtype == "float64" else 1e-4
    thetas64 = [t.astype(np.float64) for t in net.thetas]
    J_ref, G_ref = reference.cost_and_gradient(thetas64, X.astype(np.float64), Y.astype(np.float64),
                                               0.5, activation=act, output=out, loss=loss)
    for block_rows, threads in [(1, 1), (64, 1), (64, 2)]:
        grad = np.zeros_like(net.params)
        J = core.cost_grad(layout_of(core, net), X, Y, w, net.params, grad, float(m), 0.5 / m,
                           block_rows, threads)
        assert abs(J - J_ref) <= tol * abs(J_ref)
        for g, r in zip(net.split(grad), G_ref):
            assert np.abs(g - r).max() <= tol * np.abs(r).max()
    h = core.forward(layout_of(core, net), X, net.params, np.empty((m, sizes[-1]), dtype), 64, 2)
    h_ref = reference.forward(thetas64, X.astype(np.float64), activation=act, output=out)
    assert np.abs(h - h_ref).max() <= tol


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("sizes", [[6, 7, 3], [37, 13, 5], [64, 30, 10], [3, 1, 2],
                                   [17, 6, 4, 3], [16, 12, 8]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_build_online_epoch_matches_numpy_loop(build, sizes, dtype):
    """Each sample's update, the first layer's deferred to the next sample's forward pass
    on the builds with our own loops, against the derivation's loop in float64."""
    core = _core.load(build)
    rng = np.random.default_rng(3)
    net = cb.Network(sizes, dtype=dtype, random_state=0)
    m = 40
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
    thetas = [t.astype(np.float64) for t in net.thetas]
    lr, lam = 0.2, 0.3
    order = rng.permutation(m).astype(np.intp)
    for i in order:
        _, grads = reference.cost_and_gradient(thetas, X[i:i + 1].astype(np.float64),
                                               Y[i:i + 1].astype(np.float64), 0.0)
        for t, g in zip(thetas, grads):
            t -= lr * (g + np.hstack([np.zeros((t.shape[0], 1)), t[:, 1:]]) * lam / m)
    core.online_epoch(layout_of(core, net), X, Y, np.empty(0, dtype), net.params, order, lr,
                      1 - lr * lam / m, 10**6)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-4, 1e-5)
    for t, r in zip(net.thetas, thetas):
        np.testing.assert_allclose(t, r, rtol=rtol, atol=atol)


def test_unknown_build_is_a_clear_error():
    with pytest.raises(ValueError, match="CBACKPROP_CPU"):
        _core.load("sse9")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("units", [1, 2, 3, 4, 5, 8, 9, 10, 17, 18, 20, 25, 33, 34, 36, 65])
def test_build_forward_split_at_every_remainder(build, dtype, units):
    """The forward product computes its last columns as dot products when they fill a
    quarter of a vector or less (float64's 25 = 3 x 8 + 1): every remainder of the unit
    count over 4, 8 and 16 lanes, inputs that end inside a vector (13, 29), and row counts
    that end inside a group of 4 rows."""
    core = _core.load(build)
    rng = np.random.default_rng(units)
    tol = 1e-10 if dtype == "float64" else 1e-4
    for n_in, m in ((13, 11), (29, 6)):
        net = cb.Network([n_in, units, 3], dtype=dtype, random_state=units)
        X = rng.normal(size=(m, n_in)).astype(dtype)
        Y = rng.uniform(size=(m, 3)).astype(dtype)
        thetas64 = [t.astype(np.float64) for t in net.thetas]
        J_ref, G_ref = reference.cost_and_gradient(thetas64, X.astype(np.float64),
                                                   Y.astype(np.float64), 0.0)
        grad = np.zeros_like(net.params)
        J = core.cost_grad(layout_of(core, net), X, Y, np.empty(0, dtype), net.params, grad,
                           float(m), 0.0, m, 1)
        assert abs(J - J_ref) <= tol * abs(J_ref)
        for g, r in zip(net.split(grad), G_ref):
            assert np.abs(g - r).max() <= tol * max(np.abs(r).max(), 1e-12)


@pytest.fixture
def own_products_off():
    """Restores the cores' choice of products after a test that turns ours off."""
    cores = [_core.load(b) for b in BUILDS]
    yield
    for core in cores:
        core.use_own_products(True)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("own", [True, False])
def test_build_products_on_random_shapes(build, dtype, seed, own, own_products_off):
    """Widths on either side of the vector lanes (4, 8, 16) and of the register tiles, and
    blocks whose rows do not fill a tile: every edge of _gemm.h's products, per build; a
    layer wider than OWN_MAX_UNITS (BLAS) among ours on odd seeds; and BLAS alone."""
    core = _core.load(build)
    core.use_own_products(own)
    rng = np.random.default_rng(100 + seed)
    sizes = [int(s) for s in rng.integers(1, 41, size=int(rng.integers(2, 5)))]
    if seed % 2:
        sizes.insert(1, int(rng.integers(129, 140)))
    acts = ["sigmoid", "tanh", "relu", "identity", "leaky_relu", "elu", "softplus", "elliott"]
    act, out = acts[seed % 8], ["sigmoid", "softmax", "identity", "exp"][seed % 4]
    loss = {"identity": "squared_error", "exp": "poisson"}.get(out, "cross_entropy")
    net = cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype, random_state=seed)
    m = int(rng.integers(2, 90))
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Y = (rng.uniform(size=(m, sizes[-1])) if out != "softmax"
         else np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]).astype(dtype)
    w = rng.uniform(0.5, 2, m).astype(dtype)
    tol = 1e-10 if dtype == "float64" else 1e-4
    thetas64 = [t.astype(np.float64) for t in net.thetas]
    J_ref, G_ref = reference.cost_and_gradient(thetas64, X.astype(np.float64), Y.astype(np.float64),
                                               0.3, activation=act, output=out, loss=loss,
                                               sample_weight=w.astype(np.float64))
    for block_rows in (2, 5, 7, 13, 64):
        grad = np.zeros_like(net.params)
        J = core.cost_grad(layout_of(core, net), X, Y, w, net.params, grad,
                           float(w.sum(dtype=np.float64)), 0.3 / w.sum(dtype=np.float64),
                           block_rows, 1)
        assert abs(J - J_ref) <= tol * abs(J_ref)
        for g, r in zip(net.split(grad), G_ref):
            assert np.abs(g - r).max() <= tol * max(np.abs(r).max(), 1e-12)
        h = core.forward(layout_of(core, net), X, net.params, np.empty((m, sizes[-1]), dtype),
                         block_rows, 1)
        h_ref = reference.forward(thetas64, X.astype(np.float64), activation=act, output=out)
        assert np.abs(h - h_ref).max() <= tol


def _online_problem(sizes, m, dtype, seed):
    """A network, m random samples with one-hot targets, and a sample order."""
    rng = np.random.default_rng(seed)
    net = cb.Network(sizes, dtype=dtype, random_state=0)
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
    return net, X, Y, rng.permutation(m).astype(np.intp)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_build_online_epoch_same_bits_wherever_params_lie(build, dtype):
    """The epoch runs on a copy with aligned rows, and its loops align their stores to
    each row's address: the result must not depend on where the parameters lie (the same
    seed gives the same network, bit for bit)."""
    core = _core.load(build)
    net, X, Y, order = _online_problem([37, 21, 5], 60, dtype, 5)
    results = []
    for shift in range(16):
        buffer = np.zeros(net.params.size + 16, dtype)
        params = buffer[shift:shift + net.params.size]
        params[...] = net.params
        core.online_epoch(layout_of(core, net), X, Y, np.empty(0, dtype), params, order, 0.1,
                          0.999, 10**6)
        results.append(params.copy())
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_build_online_epoch_stopped_part_way_keeps_the_samples_done(build, dtype):
    """An online epoch runs on a copy of the parameters with aligned rows: stopped part-way,
    it must still copy back the updates of the samples it did, and only those."""
    core = _core.load(build)
    net, X, Y, order = _online_problem([19, 13, 3], 50, dtype, 8)
    layout = layout_of(core, net)
    stopped = net.params.copy()
    core.request_stop()
    try:
        _, done, status = core.online_epoch(layout, X, Y, np.empty(0, dtype), stopped, order,
                                            0.1, 0.999, 7)
    finally:
        core.clear_stop()
    assert (done, status) == (7, core.STATUS_INTERRUPTED)
    expected = net.params.copy()
    core.online_epoch(layout, X, Y, np.empty(0, dtype), expected, order[:7], 0.1, 0.999, 10**6)
    np.testing.assert_array_equal(stopped, expected)
    assert not np.array_equal(stopped, net.params)


@pytest.mark.parametrize("sizes", [[64, 30, 10], [1, 1], [37, 21, 5, 3], [400, 25, 10]])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_aligned_layout_starts_every_weight_row_on_64_bytes(sizes, itemsize):
    core = _core.load(BUILDS[0])
    layout = core.Layout(sizes, ["sigmoid"] * (len(sizes) - 1), "cross_entropy")
    offsets, strides, size = layout.aligned(itemsize)
    lanes, end = 64 // itemsize, 0
    for l in range(len(sizes) - 1):
        assert (offsets[l] + 1) % lanes == 0 and strides[l] % lanes == 0
        assert strides[l] >= sizes[l] + 1 and offsets[l] >= end
        end = offsets[l] + strides[l] * sizes[l + 1]
    assert size == end


@pytest.mark.parametrize("build", BUILDS)
def test_build_threads_take_chunks_as_they_come_same_bits(build):
    """Threads take chunks of blocks dynamically; which thread ran what must not change a
    bit (each chunk has its own gradient buffer, summed in chunk order)."""
    core = _core.load(build)
    rng = np.random.default_rng(6)
    net = cb.Network([23, 17, 4], random_state=0)
    X, Y = rng.normal(size=(1000, 23)), np.eye(4)[rng.integers(0, 4, 1000)]
    results = set()
    for _ in range(20):
        grad = np.zeros_like(net.params)
        J = core.cost_grad(layout_of(core, net), X, Y, np.empty(0), net.params, grad, 1000.0,
                           0.0, 32, 2)
        results.add((J, grad.tobytes()))
    assert len(results) == 1


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_in", [256, 264, 70])
def test_build_gives_the_same_bits_wherever_x_starts(build, dtype, n_in):
    """The gradient's product loads X's rows as vectors from the first column that lies on
    a vector's boundary, the columns before it a group of their own, when X's rows are wide
    and all start alike (gemm.h's cb_gemm); the packed W^T's rows are padded to 64 bytes.
    The sums are the same either way: X at every element offset from a 64-byte boundary
    gives the same cost, gradient and forward pass, bit for bit, and the reference's."""
    core = _core.load(build)
    rng = np.random.default_rng(n_in)
    sizes = [n_in, 25, 10]
    net = cb.Network(sizes, dtype=dtype, random_state=2)
    m = 200
    X0 = rng.uniform(size=(m, n_in)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, m)]
    w = np.empty(0, dtype)
    itemsize = np.dtype(dtype).itemsize
    results = []
    for offset in range(64 // itemsize):
        raw = np.empty(m * n_in * itemsize + 128, np.uint8)
        skip = (-raw.ctypes.data) % 64 + offset * itemsize
        X = raw[skip:skip + m * n_in * itemsize].view(dtype).reshape(m, n_in)
        X[...] = X0
        grad = np.zeros_like(net.params)
        J = core.cost_grad(layout_of(core, net), X, Y, w, net.params, grad, float(m), 0.1,
                           64, 1)
        h = core.forward(layout_of(core, net), X, net.params, np.empty((m, 10), dtype), 64, 1)
        results.append((J, grad, h))
    for J, grad, h in results[1:]:
        assert J == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])
        np.testing.assert_array_equal(h, results[0][2])
    thetas64 = [t.astype(np.float64) for t in net.thetas]
    J_ref, G_ref = reference.cost_and_gradient(thetas64, X0.astype(np.float64),
                                               Y.astype(np.float64), 0.1 * m)
    tol = 1e-10 if dtype == "float64" else 1e-4
    J, grad, _ = results[0]
    assert abs(J - J_ref) <= tol * abs(J_ref)
    for g, r in zip(net.split(grad), G_ref):
        assert np.abs(g - r).max() <= tol * np.abs(r).max()


@pytest.mark.parametrize("shape", [7, (3, 5), (0, 4), 1000])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_aligned_zeros_start_on_a_cache_line(shape, dtype):
    a = cb._core.core.aligned_zeros(shape, dtype)
    assert a.shape == np.zeros(shape).shape and a.dtype == dtype
    assert a.size == 0 or a.ctypes.data % 64 == 0
    assert a.flags.c_contiguous and a.flags.writeable
    assert not a.any()


@pytest.mark.parametrize("build", [b for b in BUILDS if b != "baseline"])  # ours, not BLAS
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("width", [129, 136, 200, 256, 392, 520])
def test_build_one_row_of_a_wide_layer_is_its_row_of_a_block(build, dtype, width):
    """A predictor's one row of an output layer wider than OWN_MAX_UNITS runs through the packed
    W^T, as many columns as fit in one pass over its rows (gemm.h's cb_row); a block of rows
    through the tiles. Each sum runs in the same order either way: the row's result is its
    row of the block's, bit for bit, and the reference's."""
    core = _core.load(build)
    rng = np.random.default_rng(width)
    net = cb.Network([37, width], output="identity", loss="squared_error", dtype=dtype,
                     random_state=3)
    X = rng.uniform(size=(9, 37)).astype(dtype)
    p = core.Predictor(layout_of(core, net), net.params, 2**62, np.asarray, None, None, 0)
    block = p(X)
    h_ref = reference.forward([t.astype(np.float64) for t in net.thetas], X.astype(np.float64),
                              output="identity")
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert np.abs(block - h_ref).max() <= tol * np.abs(h_ref).max()
    for i in range(len(X)):
        np.testing.assert_array_equal(p(X[i]), block[i])
