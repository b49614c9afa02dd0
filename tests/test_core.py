"""The compiled core's entry points refuse buffers that do not match the Layout (issue 11).

Every entry point takes the network's Layout first and checks each buffer it reads or
writes against it before any compiled loop runs: a wrong size is a ValueError naming the
buffer, never a write past its end. fit's solvers hold the layout and buffers they started
with and refuse a network rebuilt under them (by a callback) with a RuntimeError.
"""
import copy
import pickle

import numpy as np
import pytest

import cbackprop as cb
from cbackprop._core import core

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")

SIZES = [4, 5, 3]
M = 12


@pytest.fixture(params=["float64", "float32"])
def problem(request):
    """A network, m samples with one-hot targets, and buffers of the right sizes."""
    dtype = request.param
    rng = np.random.default_rng(0)
    net = cb.Network(SIZES, dtype=dtype, random_state=0)
    X = rng.normal(size=(M, SIZES[0])).astype(dtype)
    Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], M)]
    return dict(net=net, layout=net._layout, X=X, Y=Y, w=np.ones(M, dtype),
                params=net.params.copy(), grad=np.zeros_like(net.params),
                out=np.zeros((M, SIZES[-1]), dtype), order=np.arange(M, dtype=np.intp),
                m1=np.zeros_like(net.params), m2=np.zeros_like(net.params),
                prev=np.zeros_like(net.params), steps=np.full_like(net.params, 0.01))


def _resized(a, delta):
    """a with delta more (or fewer) elements along its first axis."""
    shape = (a.shape[0] + delta,) + a.shape[1:]
    return np.zeros(shape, a.dtype)


def _wider(a, delta):
    return np.zeros((a.shape[0], a.shape[1] + delta), a.dtype)


# Every entry point, as a call on the problem's buffers (p), so that a case can swap one.
CALLS = {
    "forward": lambda p: core.forward(p["layout"], p["X"], p["params"], p["out"], 4, 2),
    "cost_grad": lambda p: core.cost_grad(p["layout"], p["X"], p["Y"], p["w"], p["params"],
                                          p["grad"], float(M), 0.1, 4, 2),
    "reg_cost": lambda p: core.reg_cost(p["layout"], p["params"], 0.1),
    "epoch_check": lambda p: core.epoch_check(p["layout"], p["params"], p["params"][:0],
                                              p["params"][:0], 2),
    "online_epoch": lambda p: core.online_epoch(p["layout"], p["X"], p["Y"], p["w"],
                                                p["params"], p["order"], 0.1, 0.99, 10),
    "minibatch_epoch": lambda p: core.minibatch_epoch(
        p["layout"], core.StepRule("adam", 0.01), core.StepState(p["m1"], p["m2"]), p["X"],
        p["Y"], p["w"], p["params"], p["order"], 5, 1.0, 0.1, 10),
    "rprop_update": lambda p: core.rprop_update(p["layout"], p["params"], p["grad"],
                                                p["prev"], p["steps"], 1.2, 0.5, 1e-6, 50.0),
}

# (entry point, buffer, how to spoil it, what the error names)
MISMATCHES = [
    ("forward", "params", lambda a: _resized(a, -1), "params"),
    ("forward", "params", lambda a: _resized(a, 7), "params"),
    ("forward", "X", lambda a: _wider(a, 1), "X"),
    ("forward", "out", lambda a: _resized(a, -1), "out"),
    ("forward", "out", lambda a: _wider(a, -1), "out"),
    ("cost_grad", "params", lambda a: _resized(a, -2), "params"),
    ("cost_grad", "grad", lambda a: _resized(a, -1), "grad"),
    ("cost_grad", "grad", lambda a: _resized(a, 1), "grad"),
    ("cost_grad", "X", lambda a: _wider(a, -1), "X"),
    ("cost_grad", "Y", lambda a: _resized(a, -1), "Y"),
    ("cost_grad", "Y", lambda a: _wider(a, 1), "Y"),
    ("cost_grad", "w", lambda a: _resized(a, -1), "w"),
    ("reg_cost", "params", lambda a: _resized(a, -1), "params"),
    ("epoch_check", "params", lambda a: _resized(a, 1), "params"),
    ("online_epoch", "params", lambda a: _resized(a, 3), "params"),
    ("online_epoch", "X", lambda a: _wider(a, 2), "X"),
    ("online_epoch", "Y", lambda a: _resized(a, -3), "Y"),
    ("online_epoch", "Y", lambda a: _wider(a, -1), "Y"),
    ("online_epoch", "w", lambda a: _resized(a, 1), "w"),
    ("online_epoch", "order", lambda a: a + 1, r"order\[11\]"),        # M: one past X's rows
    ("online_epoch", "order", lambda a: a - 1, r"order\[0\]"),         # -1
    ("minibatch_epoch", "params", lambda a: _resized(a, -1), "params"),
    ("minibatch_epoch", "m1", lambda a: _resized(a, -1), r"state\.m1"),
    ("minibatch_epoch", "m2", lambda a: _resized(a, 1), r"state\.m2"),
    ("minibatch_epoch", "X", lambda a: _wider(a, 1), "X"),
    ("minibatch_epoch", "Y", lambda a: _resized(a, 1), "Y"),
    ("minibatch_epoch", "w", lambda a: _resized(a, -1), "w"),
    ("minibatch_epoch", "order", lambda a: a * 1000, r"order\[1\]"),
    ("rprop_update", "params", lambda a: _resized(a, -1), "params"),
    ("rprop_update", "grad", lambda a: _resized(a, -1), "grad"),
    ("rprop_update", "prev", lambda a: _resized(a, 1), "prev_grad"),
    ("rprop_update", "steps", lambda a: _resized(a, -1), "steps"),
]


@pytest.mark.parametrize("call, buffer, spoil, named", MISMATCHES,
                         ids=[f"{c}-{b}-{i}" for i, (c, b, _, _) in enumerate(MISMATCHES)])
def test_a_buffer_that_does_not_match_the_layout_is_a_value_error(problem, call, buffer,
                                                                   spoil, named):
    """The check runs before any compiled loop: the error names the buffer, and no other
    buffer the call writes was touched."""
    p = dict(problem)
    p[buffer] = spoil(p[buffer])
    written = {k: p[k].copy() for k in ("params", "grad", "out", "m1", "m2", "prev", "steps")}
    with pytest.raises(ValueError, match=named):
        CALLS[call](p)
    for k, before in written.items():
        np.testing.assert_array_equal(p[k], before, err_msg=f"{call} wrote {k} before failing")


@pytest.mark.parametrize("call", list(CALLS))
def test_every_entry_point_runs_on_matching_buffers(problem, call):
    """The cases above fail by their one spoiled buffer, not by the rest."""
    CALLS[call](dict(problem))


@pytest.mark.parametrize("call, name, value", [
    ("forward", "block_rows", 0), ("forward", "n_threads", 0),
    ("cost_grad", "block_rows", -1), ("cost_grad", "n_threads", 0),
    ("online_epoch", "check_every", 0), ("minibatch_epoch", "batch_size", 0),
    ("minibatch_epoch", "check_every", 0)])
def test_counts_below_one_are_value_errors(problem, call, name, value):
    p, layout = problem, problem["layout"]
    rule, state = core.StepRule("sgd", 0.1), core.StepState(p["m1"], p["m2"])
    args = {
        "forward": lambda k: core.forward(layout, p["X"], p["params"], p["out"],
                                          k.get("block_rows", 4), k.get("n_threads", 1)),
        "cost_grad": lambda k: core.cost_grad(layout, p["X"], p["Y"], p["w"], p["params"],
                                              p["grad"], float(M), 0.0,
                                              k.get("block_rows", 4), k.get("n_threads", 1)),
        "online_epoch": lambda k: core.online_epoch(layout, p["X"], p["Y"], p["w"],
                                                    p["params"], p["order"], 0.1, 1.0,
                                                    k.get("check_every", 1)),
        "minibatch_epoch": lambda k: core.minibatch_epoch(
            layout, rule, state, p["X"], p["Y"], p["w"], p["params"], p["order"],
            k.get("batch_size", 4), 1.0, 0.0, k.get("check_every", 1)),
    }
    with pytest.raises(ValueError, match=name):
        args[call]({name: value})


def test_grad_of_a_network_rebuilt_wider_is_refused():
    """The crash this guards against: a gradient buffer allocated for one network, then the
    network rebuilt much wider (a fit callback calling __init__), then the new layout and
    parameters with the old buffer. The core refuses the buffer instead of writing past it."""
    rng = np.random.default_rng(1)
    net = cb.Network([4, 5, 3], random_state=0)
    grad = np.zeros_like(net.params)
    net.__init__([4, 5000, 3], random_state=0)
    X, Y = rng.normal(size=(50, 4)), np.eye(3)[rng.integers(0, 3, 50)]
    with pytest.raises(ValueError, match=r"grad has 43 elements; the network \[4, 5000, 3\]"):
        core.cost_grad(net._layout, X, Y, np.empty(0), net.params, grad, 50.0, 0.0, 64, 2)
    assert not grad.any()


def test_a_buffer_of_another_dtype_is_refused(problem):
    p = dict(problem)
    other = np.float32 if p["params"].dtype == np.float64 else np.float64
    p["grad"] = p["grad"].astype(other)
    with pytest.raises((ValueError, TypeError)):
        CALLS["cost_grad"](p)
    p = dict(problem)
    p["m1"] = p["m1"].astype(other)
    with pytest.raises((ValueError, TypeError)):
        CALLS["minibatch_epoch"](p)


def test_no_rows_is_the_regularization_alone(problem):
    """A call on zero rows reads no row: forward gives an empty result, cost_grad the
    regularization term and its gradient."""
    p, layout = problem, problem["layout"]
    X0, Y0 = p["X"][:0], p["Y"][:0]
    out = core.forward(layout, X0, p["params"], p["out"][:0], 4, 2)
    assert out.shape == (0, SIZES[-1])
    grad = np.full_like(p["params"], np.nan)
    J = core.cost_grad(layout, X0, Y0, p["w"][:0], p["params"], grad, 1.0, 0.5, 4, 2)
    mask = np.concatenate([np.hstack([np.zeros((t.shape[0], 1)), np.ones_like(t[:, 1:])]).ravel()
                           for t in p["net"].thetas])
    weights = mask * p["params"].astype(np.float64)
    tol = 1e-6 if p["params"].dtype == np.float32 else 1e-12
    assert abs(J - 0.25 * np.sum(weights ** 2)) <= tol * max(1.0, abs(J))
    np.testing.assert_allclose(grad, 0.5 * weights, rtol=tol, atol=tol)


# ------------------------------------------------------------------------ Layout itself

def test_layout_holds_the_networks_architecture():
    net = cb.Network([7, 9, 6, 3], activation=["tanh", "relu"], output="softmax")
    layout = net._layout
    assert layout.sizes == (7, 9, 6, 3) and layout.n_inputs == 7 and layout.n_outputs == 3
    assert layout.activations == ("tanh", "relu", "softmax") and layout.loss == "cross_entropy"
    assert layout.n_params == net.params.size == 9 * 8 + 6 * 10 + 3 * 7
    assert layout.offsets == (0, 72, 132)
    assert layout.widest == 9 and layout.units == 18
    assert [t.shape for t in net.split(np.zeros(layout.n_params))] == [t.shape for t in net.thetas]


@pytest.mark.parametrize("sizes, acts, loss, says", [
    ([4], [], "cross_entropy", "sizes"),
    ([4, 0, 3], ["sigmoid", "sigmoid"], "cross_entropy", "sizes"),
    ([4, 5, 3], ["sigmoid"], "cross_entropy", "one activation per layer"),
    ([4, 5, 3], ["softmax", "sigmoid"], "cross_entropy", "hidden activation"),
    ([4, 5, 3], ["sigmoid", "tanh"], "cross_entropy", "output activation"),
    ([4, 5, 3], ["sigmoid", "sigmoid"], "hinge", "loss"),
    ([4, 5, 3], ["sigmoid", "identity"], "cross_entropy", "cross_entropy needs"),
    ([4, 5, 3], ["sigmoid", "exp"], "squared_error", "poisson loss goes with an exp output"),
    ([4, 5, 3], ["sigmoid", "identity"], "poisson", "poisson loss goes with an exp output"),
    ([4, 5, 3], ["exp", "exp"], "poisson", "hidden activation"),
])
def test_layout_refuses_what_the_kernels_do_not_compute(sizes, acts, loss, says):
    with pytest.raises(ValueError, match=says):
        core.Layout(sizes, acts, loss)


def test_layout_pickles_and_copies_but_is_not_part_of_a_pickled_network():
    net = cb.Network([4, 6, 2], activation="relu", output="identity", loss="squared_error")
    for twin in (pickle.loads(pickle.dumps(net._layout)), copy.deepcopy(net._layout)):
        assert (twin.sizes, twin.activations, twin.loss) == (
            net._layout.sizes, net._layout.activations, net._layout.loss)
    assert "_layout" not in net.__getstate__()
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded._layout is not net._layout and loaded._layout.sizes == (4, 6, 2)


def test_step_rule_and_state():
    rule = core.StepRule("sgd", 0.1, momentum=0.9, nesterov=True)
    rule.rate = 0.05                                      # a schedule changes it per epoch
    assert (rule.solver, rule.rate, rule.momentum, rule.nesterov) == ("sgd", 0.05, 0.9, True)
    with pytest.raises(ValueError, match="solver"):
        core.StepRule("lbfgs", 0.1)
    with pytest.raises(TypeError):
        core.StepState([0.0], [0.0])
    state = core.StepState(np.zeros(3), np.zeros(3), 7)
    assert state.t == 7


# ------------------------------------------- fit holds the network it started with

def _rebuilding_callback(sizes):
    def callback(net, epoch, logs):
        if epoch == 1:
            net.__init__(sizes, random_state=0)
    return callback


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "rprop", "adam", "sgd", "online"])
@pytest.mark.parametrize("sizes", [[4, 50, 3], [4, 6, 3]], ids=["wider", "same_sizes"])
def test_fit_refuses_a_network_rebuilt_by_its_callback(solver, sizes):
    """A callback that rebuilds the network (here with __init__) leaves the solver's
    buffers sized for the old one: the next step raises instead of computing."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    net = cb.Network([4, 6, 3], random_state=0)
    with pytest.raises(RuntimeError, match="rebuilt during fit"):
        net.fit(X, y, solver=solver, epochs=5, max_iter=5, batch_size=16, tol=0.0,
                callback=_rebuilding_callback(sizes))
    assert net.layer_sizes == sizes and net.params.size == net._layout.n_params
    net.fit(X, y, solver=solver, epochs=2, max_iter=2, batch_size=16)   # the new one trains


# ------------------------------------------- rows past a C int (issue 12, item 3)

BIG_M = 2 ** 31 + 8          # rows: more than a C int counts


def _big_zeros(cols, dtype):
    """(BIG_M, cols) zeros that cost no memory until written (untouched pages of an
    anonymous mapping read as the shared zero page); a skip where the system refuses
    so large a mapping."""
    try:
        return np.zeros((BIG_M, cols), dtype)
    except MemoryError:
        pytest.skip(f"this system refuses a {BIG_M * cols * np.dtype(dtype).itemsize / 2**30:.0f} "
                    "GiB mapping, even untouched")


@pytest.fixture(scope="module")
def big_rows():
    """X, Y of BIG_M rows for a [1, 1] network, zero but for four rows on both sides of
    2**31 (and the first), and the same four rows as a small X, Y."""
    X, Y = _big_zeros(1, np.float32), _big_zeros(1, np.float32)
    rows = np.array([BIG_M - 1, 2 ** 31, 2 ** 31 - 1, 0, BIG_M - 8], dtype=np.intp)
    X[rows, 0] = [4, 3, 2, 1, -1]
    Y[rows, 0] = [2, 0, 1, 0, 1]
    yield X, Y, rows, X[rows].copy(), Y[rows].copy()
    del X, Y


def _identity_net():
    net = cb.Network([1, 1], output="identity", loss="squared_error", dtype="float32")
    net.params = [0.25, 0.5]
    return net


def test_online_epoch_on_rows_past_a_c_int(big_rows):
    """The epochs index rows in Py_ssize_t: the samples at 2**31 and after are the ones
    trained on (X of 2**31 + 8 rows was refused before: 'at most 2147483647 a call')."""
    X, Y, rows, Xs, Ys = big_rows
    net = _identity_net()
    empty = np.empty(0, np.float32)
    big, small = net.params.copy(), net.params.copy()
    got = core.online_epoch(net._layout, X, Y, empty, big, rows, 0.1, 0.99, 10)
    expected = core.online_epoch(net._layout, Xs, Ys, empty, small,
                                 np.arange(len(rows), dtype=np.intp), 0.1, 0.99, 10)
    assert got == expected
    np.testing.assert_array_equal(big, small)
    assert not np.array_equal(big, net.params)


def test_minibatch_epoch_on_rows_past_a_c_int(big_rows):
    X, Y, rows, Xs, Ys = big_rows
    net = _identity_net()
    empty = np.empty(0, np.float32)
    results = []
    for data, order in [((X, Y), rows), ((Xs, Ys), np.arange(len(rows), dtype=np.intp))]:
        params = net.params.copy()
        state = core.StepState(np.zeros_like(params), np.zeros_like(params))
        out = core.minibatch_epoch(net._layout, core.StepRule("adam", 0.01), state, *data,
                                   empty, params, order, 2, 1.0, 0.1, 10)
        results.append((out, params))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_cost_grad_and_forward_take_more_rows_than_a_c_int(big_rows):
    """The buffer checks no longer refuse X of 2**31 + 8 rows: with a Y of the wrong width
    the error is about Y (before: 'X has 2147483656 rows; at most 2147483647 a call').
    The whole pass over those rows: test_reliability.py's opt-in test."""
    X, Y, *_ = big_rows
    net = _identity_net()
    with pytest.raises(ValueError, match="^Y has shape"):
        core.cost_grad(net._layout, X, np.zeros((3, 1), np.float32), np.empty(0, np.float32),
                       net.params, np.zeros(2, np.float32), float(BIG_M), 0.0, 256, 1)
    with pytest.raises(ValueError, match="^out has shape"):
        core.forward(net._layout, X, net.params, np.zeros((3, 1), np.float32), 256, 1)


# ------------------------------------------------ one stop flag a fit (item 4)


def _long_online(dtype="float64"):
    rng = np.random.default_rng(0)
    net = cb.Network([6, 5, 3], dtype=dtype, random_state=0)
    X = rng.normal(size=(400, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 400)]
    return net, X, Y, np.arange(400, dtype=np.intp)


def test_a_loop_stops_for_its_own_flag_only():
    net, X, Y, order = _long_online()
    empty = np.empty(0, X.dtype)
    mine, other = core.StopFlag(), core.StopFlag()
    other.request()
    _, done, status = core.online_epoch(net._layout, X, Y, empty, net.params.copy(), order,
                                        0.1, 0.999, 7, stop=mine)
    assert (done, status) == (400, core.STATUS_DONE) and not mine.requested
    mine.request()
    _, done, status = core.online_epoch(net._layout, X, Y, empty, net.params.copy(), order,
                                        0.1, 0.999, 7, stop=mine)
    assert (done, status) == (7, core.STATUS_INTERRUPTED)
    state = core.StepState(np.zeros_like(net.params), np.zeros_like(net.params))
    _, done, status = core.minibatch_epoch(net._layout, core.StepRule("sgd", 0.1), state, X, Y,
                                           empty, net.params.copy(), order, 5, 1.0, 0.0, 10,
                                           stop=mine)
    assert (done, status) == (10, core.STATUS_INTERRUPTED)
    with pytest.raises(TypeError):
        core.online_epoch(net._layout, X, Y, empty, net.params.copy(), order, 0.1, 0.999, 7,
                          stop=True)


def test_the_main_fits_flag_stops_loops_in_the_main_thread_only():
    """A fit in the main thread registers its flag (interrupt.graceful_interrupt): loops in
    the main thread handed no flag obey it; loops in other threads never do."""
    import threading
    net, X, Y, order = _long_online()
    empty = np.empty(0, X.dtype)
    flag = core.StopFlag()
    flag.request()
    outer = core.set_main_fit_flag(flag)
    try:
        _, done, status = core.online_epoch(net._layout, X, Y, empty, net.params.copy(),
                                            order, 0.1, 0.999, 7)
        assert (done, status) == (7, core.STATUS_INTERRUPTED)
        results = []
        worker = threading.Thread(target=lambda: results.append(core.online_epoch(
            net._layout, X, Y, empty, net.params.copy(), order, 0.1, 0.999, 7)))
        worker.start()
        worker.join()
        assert results[0][1:] == (400, core.STATUS_DONE)
    finally:
        assert core.set_main_fit_flag(outer) is flag
    _, done, status = core.online_epoch(net._layout, X, Y, empty, net.params.copy(), order,
                                        0.1, 0.999, 7)
    assert (done, status) == (400, core.STATUS_DONE)


def test_request_stop_is_recorded_in_the_flag_of_the_fit_it_stopped():
    """core.request_stop() (for programs, never a signal) stops every loop; a loop that
    stops for it says so in its fit's flag, so that the fit warns it was interrupted."""
    net, X, Y, order = _long_online()
    flag = core.StopFlag()
    core.request_stop()
    try:
        _, done, status = core.online_epoch(net._layout, X, Y, np.empty(0, X.dtype),
                                            net.params.copy(), order, 0.1, 0.999, 7, stop=flag)
    finally:
        core.clear_stop()
    assert (done, status) == (7, core.STATUS_INTERRUPTED) and flag.requested


def test_a_signal_handler_that_raises_propagates_from_the_loop():
    """A signal whose handler raises (Ctrl-C outside fit: KeyboardInterrupt) ends the loop
    with that exception, never a NULL return without one, and keeps the samples done."""
    import signal

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm

    rng = np.random.default_rng(0)
    net = cb.Network([64, 30, 10], random_state=0)
    X = rng.normal(size=(500, 64))
    Y = np.eye(10)[rng.integers(0, 10, 500)]
    order = np.tile(np.arange(500, dtype=np.intp), 4000)      # 2e6 samples: seconds
    params = net.params.copy()
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Alarm):
            core.online_epoch(net._layout, X, Y, np.empty(0), params, order, 0.01, 1.0, 100)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert np.isfinite(params).all() and not np.array_equal(params, net.params)
