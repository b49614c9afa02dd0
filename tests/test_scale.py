"""Issue 14: data out of memory and on a Dask cluster, with the same answer as in memory.

The cluster is real: distributed.LocalCluster with worker processes, and one test starts
`dask scheduler` and `dask worker` through their command lines on 127.0.0.1."""
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import blocks, cluster

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")


def data(m=1200, n=8, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y % k


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as lc:
        with distributed.Client(lc) as c:
            yield c


def twin(sizes=(8, 5, 3), dtype="float64"):
    return cb.Network(list(sizes), dtype=dtype, random_state=0)


# ------------------------------------------------------------------ the block as the unit

@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_block_sums_add_up_to_the_in_memory_cost_and_gradient(dtype, tol):
    X, y = data(dtype=dtype)
    Y = np.eye(3, dtype=dtype)[y]
    w = np.random.default_rng(1).random(len(y)).astype(dtype)
    net = twin(dtype=dtype)
    J, grads = net.cost_and_gradient(X, Y, lam=0.3, sample_weight=w)
    g = np.concatenate([t.ravel() for t in grads])
    for cuts in ([0, 1200], [0, 7, 500, 501, 1200], list(range(0, 1201, 100))):
        parts = [blocks.block_sums(net, X[a:b], Y[a:b], w[a:b]) for a, b in zip(cuts, cuts[1:])]
        J2, g2 = blocks.objective(net, blocks.tree_sum(parts), lam=0.3)
        assert abs(J2 - J) <= tol * abs(J)
        assert np.abs(g2 - g).max() <= tol * np.abs(g).max()
    # sums are plain sums: any grouping, the same total (to rounding)
    s = [blocks.block_sums(net, X[a:a + 300], Y[a:a + 300]) for a in range(0, 1200, 300)]
    left = ((s[0] + s[1]) + s[2]) + s[3]
    assert left.rows == 1200 and left.weight == 1200.0
    assert np.allclose(left.grad, blocks.tree_sum(s).grad, rtol=tol, atol=0)


def test_blocks_summed_from_threads_give_the_same_bits():
    from concurrent.futures import ThreadPoolExecutor
    X, y = data(4000)
    Y = np.eye(3)[y]
    net = twin()
    cuts = list(range(0, 4001, 500))
    pieces = [(X[a:b], Y[a:b]) for a, b in zip(cuts, cuts[1:])]
    serial = blocks.tree_sum(blocks.block_sums(net, Xb, Yb) for Xb, Yb in pieces)
    with ThreadPoolExecutor(2) as pool:                   # the core runs without the GIL
        threaded = blocks.tree_sum(pool.map(lambda p: blocks.block_sums(net, *p), pieces))
    assert threaded.loss == serial.loss and threaded.rows == 4000
    np.testing.assert_array_equal(threaded.grad, serial.grad)


def test_block_sums_refuse_bad_blocks():
    net = twin()
    X, y = data(50)
    with pytest.raises(ValueError, match="features"):
        blocks.block_sums(net, X[:, :5], np.eye(3)[y])
    with pytest.raises(ValueError, match="rows"):
        blocks.block_sums(net, X, np.eye(3)[y][:10])
    with pytest.raises(ValueError, match="NaN"):
        blocks.block_sums(net, np.where(X > 2, np.nan, X), np.eye(3)[y])
    with pytest.raises(ValueError, match="params"):
        blocks.block_sums(net, X, np.eye(3)[y], params=np.zeros(3))
    with pytest.raises(ValueError, match="at least one"):
        blocks.tree_sum([])
    s = blocks.block_sums(net, X, np.eye(3)[y], sample_weight=np.zeros(50))
    with pytest.raises(ValueError, match="total sample weight"):
        blocks.objective(net, s)          # a block may weigh nothing; the total may not


# ------------------------------------------------------------------ out of core, one machine

def memmap_of(tmp_path, X, name="X.dat"):
    mm = np.memmap(tmp_path / name, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    return np.memmap(tmp_path / name, dtype=X.dtype, mode="r", shape=X.shape)


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "rprop", "sgd", "adam", "online"])
def test_memmap_fit_in_order_equals_the_in_memory_fit(tmp_path, solver):
    X, y = data()
    a, b = twin(), twin()
    kw = dict(solver=solver, epochs=3, max_iter=15, shuffle=False, batch_size=64,
              learning_rate=0.01)
    a.fit(X, y, **kw)
    b.fit(memmap_of(tmp_path, X), y, block_rows=250, **kw)   # batches span blocks
    if solver in ("lbfgs", "cg"):
        np.testing.assert_allclose(b.params, a.params, rtol=0, atol=1e-9)
    else:
        np.testing.assert_array_equal(b.params, a.params)
    assert b.n_iter_ == a.n_iter_ and list(b.classes_) == [0, 1, 2]


def test_blocked_shuffle_visits_each_row_once_an_epoch(tmp_path):
    # the streamed epoch's batches are an in-memory epoch's in the streamed sample order
    X, y = data(600)
    net = twin()
    plan_rng = np.random.default_rng(5)
    from cbackprop import sources
    plan = sources.epoch_plan(plan_rng, [250, 250, 100], True)
    order = np.concatenate([k * 250 + sources.row_order(seed, [250, 250, 100][k])
                            for k, seed in plan])
    assert sorted(order.tolist()) == list(range(600))
    a = net.copy()
    a.fit(X[order], y[order], solver="sgd", epochs=1, shuffle=False, batch_size=32)
    b = net.copy()
    b.fit(memmap_of(tmp_path, X), y, solver="sgd", epochs=1, batch_size=32, block_rows=250,
          random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(b.params, a.params)


def test_zarr_and_h5py_inputs_are_read_in_blocks(tmp_path):
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    X, y = data()
    ref = twin()
    ref.fit(X, y, solver="lbfgs", max_iter=10)
    z = zarr.open(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(100, 8),
                  dtype="f8")
    z[:] = X
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["X"] = X
        f["y"] = y
    with h5py.File(tmp_path / "x.h5", "r") as f:
        for source in (z, f["X"]):
            net = twin()
            net.fit(source, f["y"], solver="lbfgs", max_iter=10, block_rows=300)
            np.testing.assert_allclose(net.params, ref.params, atol=1e-9, rtol=0)


def test_batches_from_a_function_a_list_and_a_refused_generator():
    X, y = data()
    ref = twin()
    ref.fit(X, y, solver="rprop", max_iter=5)

    def read_batches():
        for a in range(0, len(y), 256):
            yield X[a:a + 256], y[a:a + 256]

    for batches in (read_batches, list(read_batches())):
        net = twin()
        net.fit(batches, None, solver="rprop", max_iter=5)
        np.testing.assert_allclose(net.params, ref.params, atol=1e-12, rtol=0)
    with pytest.raises(TypeError, match="read only once"):
        twin().fit(read_batches(), None, solver="rprop")
    with pytest.raises(TypeError, match=r"\(X, y\)"):
        twin().fit([X, y], None)
    bad = list(read_batches())
    bad[2] = (np.where(bad[2][0] > 1, np.nan, bad[2][0]), bad[2][1])
    net = twin()
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"batch 2.*NaN"):
        net.fit(bad, None, solver="sgd")
    np.testing.assert_array_equal(net.params, before)          # refused before any change
    bad[2] = (bad[2][0][:, :5], bad[2][1])
    with pytest.raises(ValueError, match="batch 2.*5 features"):
        net.fit(bad, None, solver="sgd")


def test_streamed_validation_needs_validation_data(tmp_path):
    X, y = data()
    with pytest.raises(ValueError, match="validation_data"):
        twin().fit(memmap_of(tmp_path, X), y, validation_fraction=0.1)
    net = twin()
    net.fit(memmap_of(tmp_path, X), y, solver="adam", epochs=2,
            validation_data=(X[:100], y[:100]))
    assert len(net.history_["val_score"]) == 2


def test_memmap_fit_memory_is_bounded_by_the_block(tmp_path):
    """Adam over a 320 MB float32 memmap (and a one-hot Y that would take 80 MB more) in a
    child process: the anonymous memory it adds stays far below the data's size."""
    m, n = 800_000, 100
    path = tmp_path / "big.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(m, n))
    for a in range(0, m, 100_000):
        mm[a:a + 100_000] = np.random.default_rng(a).normal(size=(100_000, n))
    mm.flush()
    del mm
    np.save(tmp_path / "y.npy", np.arange(m) % 10)
    code = f"""
import threading, time, numpy as np, cbackprop as cb
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) * 1024
X = np.memmap({str(path)!r}, dtype=np.float32, mode='r', shape=({m}, {n}))
y = np.load({str(tmp_path / 'y.npy')!r})
net = cb.Network([{n}, 16, 10], dtype='float32')
base, peak, done = anon(), [0], [False]
def watch():
    while not done[0]:
        peak[0] = max(peak[0], anon()); time.sleep(0.005)
t = threading.Thread(target=watch); t.start()
net.fit(X, y, solver='adam', epochs=1, batch_size=256, block_rows=50_000)
done[0] = True; t.join()
print((peak[0] - base) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    grown = float(out.stdout.split()[-1])
    assert grown < 120, f"anonymous memory grew by {grown:.0f} MB on 320 MB of data"


# ------------------------------------------------------------------ Dask

def dask_data(X, y, chunk=300):
    return da.from_array(X, chunks=(chunk, X.shape[1])), da.from_array(y, chunks=chunk)


def test_without_a_client_fit_starts_a_local_cluster_and_closes_it():
    X, y = data(400)
    with pytest.raises(ValueError):
        distributed.get_client()
    net = twin()
    net.fit(*dask_data(X, y, chunk=100), solver="rprop", max_iter=3)
    assert net.n_iter_ == 3
    with pytest.raises(ValueError):
        distributed.get_client()              # closed after the fit


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_cost_and_gradient_over_partitions_equal_in_memory(client, dtype, tol):
    X, y = data(dtype=dtype)
    net = twin(dtype=dtype)
    J, grads = net.cost_and_gradient(X, np.eye(3, dtype=dtype)[y], lam=0.5)
    dX, dy = dask_data(X, y, chunk=250)
    J2, grads2 = cluster.cost_and_gradient(net, dX, dy, lam=0.5, client=client)
    assert abs(J2 - J) <= tol * J
    for g, g2 in zip(grads, grads2):
        assert np.abs(g2 - g).max() <= tol * np.abs(g).max()


def test_partition_sums_are_bit_identical_for_1_2_and_3_workers():
    X, y = data()
    net = twin()
    dX, dy = dask_data(X, y, chunk=170)
    results = []
    for workers in (1, 2, 3):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.ERROR) as lc, \
                distributed.Client(lc) as c:
            J, grads = cluster.cost_and_gradient(net, dX, dy, lam=0.1, client=c)
            results.append((J, np.concatenate([g.ravel() for g in grads])))
    for J, g in results[1:]:
        assert J == results[0][0]
        np.testing.assert_array_equal(g, results[0][1])


def test_lbfgs_on_dask_equals_the_in_memory_fit(client):
    X, y = data()
    a, b = twin(), twin()
    a.fit(X, y, solver="lbfgs", max_iter=40, lam=0.1)
    b.fit(*dask_data(X, y), solver="lbfgs", max_iter=40, lam=0.1, client=client)
    np.testing.assert_allclose(b.params, a.params, atol=1e-9, rtol=0)
    assert b.n_iter_ == a.n_iter_
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "online"])
def test_streamed_minibatch_fit_equals_its_in_memory_twin(client, tmp_path, solver):
    X, y = data()
    kw = dict(solver=solver, epochs=3, batch_size=64, learning_rate=0.01, random_state=7)
    # in order: the in-memory fit itself
    a, b = twin(), twin()
    a.fit(X, y, shuffle=False, **kw)
    b.fit(*dask_data(X, y), shuffle=False, client=client, **kw)
    np.testing.assert_array_equal(b.params, a.params)
    # shuffled: the blocked fit of the same blocks (itself an in-memory epoch's batches)
    c, d = twin(), twin()
    c.fit(memmap_of(tmp_path, X), y, block_rows=300, **kw)
    d.fit(*dask_data(X, y, chunk=300), client=client, **kw)
    np.testing.assert_array_equal(d.params, c.params)


def test_dask_dataframes_weights_and_in_memory_targets(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = data()
    w = np.random.default_rng(3).random(len(y))
    a = twin()
    a.fit(X, y, sample_weight=w, solver="lbfgs", max_iter=15)
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]),
                           npartitions=4)
    b = twin()
    b.fit(frame, dd.from_pandas(pd.Series(y), npartitions=4),
          sample_weight=da.from_array(w, chunks=400), solver="lbfgs", max_iter=15,
          client=client)
    np.testing.assert_allclose(b.params, a.params, atol=1e-9, rtol=0)
    c = twin()
    c.fit(frame, y, sample_weight=w, solver="lbfgs", max_iter=15, client=client)
    np.testing.assert_allclose(c.params, a.params, atol=1e-9, rtol=0)


def test_predict_on_dask_returns_dask_arrays_computed_in_parallel(client):
    X, y = data()
    net = twin()
    net.fit(X, np.array(["a", "b", "c"])[y], solver="lbfgs", max_iter=10)
    dX = da.from_array(X, chunks=(300, 8))
    for method in ("predict", "predict_proba", "forward"):
        out = getattr(net, method)(dX)
        assert isinstance(out, da.Array)
        np.testing.assert_array_equal(out.compute(), getattr(net, method)(X))


def test_averaging_is_an_approximation_that_trains(client):
    X, y = data(2400)
    net = twin()
    before = net.score(X, y)
    net.fit(*dask_data(X, y, chunk=600), solver="adam", epochs=60, learning_rate=0.01,
            dask_training="averaging", client=client)
    losses = net.history_["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert net.score(X, y) > max(before, 0.65)     # in memory, 60 epochs: 0.9


def test_bad_partitions_are_named_before_the_parameters_change(client):
    X, y = data()
    Xbad = X.copy()
    Xbad[700, 3] = np.nan
    net = twin()
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"partition 2.*NaN"):
        net.fit(*dask_data(Xbad, y), solver="lbfgs", client=client)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match=r"y \(partition 0\) has labels unseen"):
        cluster.DaskData(net, *dask_data(X, y), None, _opts(client), classes=[0, 1])
    with pytest.raises(ValueError, match="features"):
        net.fit(da.from_array(X[:, :5], chunks=(300, 5)), y, client=client)
    with pytest.raises(ValueError, match="samples"):
        net.fit(dask_data(X, y)[0], y[:100], client=client)
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(*dask_data(X, y), validation_fraction=0.2, client=client)


def _opts(client):
    from cbackprop import options
    return options.resolve({"client": client})


def test_unreachable_scheduler_is_a_clear_error_within_a_timeout(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    X, y = data(100)
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"could not reach the Dask scheduler at .tcp://127.0.0.1:\d+. within 2 s"):
        twin().fit(*dask_data(X, y), client=f"tcp://127.0.0.1:{free_port()}")
    assert time.perf_counter() - t0 < 30


def test_ctrl_c_stops_a_distributed_fit_as_a_local_one(client, sigint_outside_fit):
    X, y = data(3000)
    net = twin()
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(cb.TrainingInterrupted):
            net.fit(*dask_data(X, y), solver="sgd", epochs=100000, batch_size=16,
                    client=client)
    finally:
        timer.cancel()
    assert 0 < net.n_iter_ < 100000 and np.isfinite(net.params).all()


@pytest.mark.parametrize("inline_bytes", [cluster.INLINE_BYTES, 0], ids=["inline", "broadcast"])
def test_a_killed_worker_is_recomputed_and_the_fit_ends_the_same(monkeypatch, inline_bytes):
    monkeypatch.setattr(cluster, "INLINE_BYTES", inline_bytes)   # parameters in the tasks, or not
    X, y = data()
    ref = twin()
    ref.fit(X, y, solver="lbfgs", max_iter=30)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.CRITICAL) as lc, \
            distributed.Client(lc) as c:
        killed = []

        def kill_one(net, epoch, logs):
            if epoch == 3 and not killed:
                pid = next(iter(c.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)   # the nanny starts a new worker
                killed.append(pid)

        net = twin()
        net.fit(*dask_data(X, y), solver="lbfgs", max_iter=30, callback=kill_one, client=c)
    assert killed
    np.testing.assert_allclose(net.params, ref.params, atol=1e-9, rtol=0)



def test_partitions_held_by_no_worker_are_summed_wherever_the_scheduler_likes(client,
                                                                               monkeypatch):
    # between a worker's death and the recomputation of its partitions the scheduler names
    # no holder for them; the sums' tasks then carry no worker restriction (distributed
    # refuses allow_other_workers without workers=: the killed-worker test met it under load)
    X, y = data()
    ref = twin()
    ref.fit(X, y, solver="lbfgs", max_iter=10)
    monkeypatch.setattr(client, "who_has", lambda futures: {})
    net = twin()
    net.fit(*dask_data(X, y), solver="lbfgs", max_iter=10, client=client)
    np.testing.assert_allclose(net.params, ref.params, atol=1e-9, rtol=0)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fit_through_a_real_dask_scheduler_and_workers_started_from_their_command_lines(
        tmp_path):
    port = free_port()
    bindir = os.path.dirname(sys.executable)
    dask_cmd = os.path.join(bindir, "dask")
    if not os.path.exists(dask_cmd):
        pytest.skip("the dask command line is not installed beside this Python")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    procs = [subprocess.Popen([dask_cmd, "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "s.log", "w"))]
    try:
        for k in range(2):
            procs.append(subprocess.Popen(
                [dask_cmd, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                 "--no-dashboard", "--name", f"w{k}"], env=env, stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / f"w{k}.log", "w")))
        with distributed.Client(f"tcp://127.0.0.1:{port}", timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
            X, y = data()
            a, b = twin(), twin()
            a.fit(X, y, solver="lbfgs", max_iter=20)
            b.fit(*dask_data(X, y), solver="lbfgs", max_iter=20, client=c)
            np.testing.assert_allclose(b.params, a.params, atol=1e-9, rtol=0)
            assert len(c.scheduler_info()["workers"]) == 2
        net = twin()                          # an address string: fit connects itself
        net.fit(*dask_data(X, y), solver="rprop", max_iter=5,
                client=f"tcp://127.0.0.1:{port}")
        assert net.n_iter_ == 5
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_score_on_dask_equals_score_in_memory(client):
    X, y = data()
    net = twin()
    net.fit(X, y, solver="lbfgs", max_iter=10)
    assert net.score(*dask_data(X, y)) == pytest.approx(net.score(X, y), abs=1e-15)
    reg = cb.Network([8, 4, 2], output="identity", loss="squared_error", random_state=0)
    T = np.c_[X[:, 0] + X[:, 1], X[:, 2] * 2]
    reg.fit(X, T, solver="lbfgs", max_iter=20)
    dT = da.from_array(T, chunks=(300, 2))
    assert reg.score(dask_data(X, y)[0], dT) == pytest.approx(reg.score(X, T), rel=1e-12)


def test_dask_ml_incremental_wraps_the_estimators(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from cbackprop.sklearn import BackpropClassifier

    X, y = data(1200)
    dX, dy = dask_data(X, y)
    inc = wrappers.Incremental(BackpropClassifier(hidden_layer_sizes=(5,), random_state=0,
                                                  learning_rate_init=0.01))
    for _ in range(5):
        inc.partial_fit(dX, dy, classes=[0, 1, 2])
    pred = inc.predict(dX)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), inc.estimator_.predict(X))
    assert inc.estimator_.n_iter_ == 5 * 4 or inc.estimator_.t_ > 0


def test_grid_search_runs_on_the_cluster_through_joblibs_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV
    from cbackprop.sklearn import BackpropClassifier

    X, y = data(600)
    search = GridSearchCV(BackpropClassifier(max_iter=30, random_state=0),
                          {"hidden_layer_sizes": [(3,), (6,)], "alpha": [1e-4, 1e-2]}, cv=3)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        search.fit(X, y)
    ran_on = {task["worker"] for task in stream.data}   # joblib batches the 12 fits in tasks
    assert ran_on and ran_on <= set(client.scheduler_info()["workers"])
    serial = GridSearchCV(BackpropClassifier(max_iter=30, random_state=0),
                          {"hidden_layer_sizes": [(3,), (6,)], "alpha": [1e-4, 1e-2]},
                          cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"])


class RowsOnly:
    """An array that only has a shape, a dtype and row slicing (a lazy store's array)."""

    def __init__(self, a):
        self._a, self.shape, self.dtype = a, a.shape, a.dtype
        self.reads = 0

    def __getitem__(self, rows):
        if not isinstance(rows, slice):
            raise TypeError("rows by slices only")
        self.reads += 1
        return self._a[rows].copy()

    def __len__(self):
        return self.shape[0]


def test_any_array_with_a_shape_and_row_slicing_is_read_in_blocks():
    X, y = data()
    ref = twin()
    ref.fit(X, y, solver="lbfgs", max_iter=8)
    lazy = RowsOnly(X)
    net = twin()
    net.fit(lazy, y, solver="lbfgs", max_iter=8, block_rows=200)
    np.testing.assert_allclose(net.params, ref.params, atol=1e-9, rtol=0)
    assert lazy.reads >= 6 * 2                 # the first pass, then a pass an evaluation


def test_the_estimators_fit_and_predict_dask_collections(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from cbackprop.sklearn import BackpropClassifier, BackpropRegressor

    X, y = data()
    labels = np.array(["cat", "dog", "emu"])[y]
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30, random_state=0)
    a = BackpropClassifier(**kw).fit(X, labels)
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]), npartitions=4)
    b = BackpropClassifier(**kw).fit(frame, dd.from_pandas(pd.Series(labels), npartitions=4))
    np.testing.assert_allclose(b.network_.params, a.network_.params, atol=1e-9, rtol=0)
    assert list(b.classes_) == ["cat", "dog", "emu"] and list(b.feature_names_in_)[0] == "f0"
    pred = b.predict(frame)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), a.predict(X))
    np.testing.assert_allclose(b.predict_proba(frame).compute(), a.predict_proba(X))
    assert b.score(frame, labels) == pytest.approx(a.score(X, labels))
    with pytest.raises(ValueError, match="early_stopping"):
        BackpropClassifier(early_stopping=True).fit(*dask_data(X, y))

    T = X[:, 0] * 2 + X[:, 1]
    r1 = BackpropRegressor(**kw).fit(X, T)
    r2 = BackpropRegressor(**kw).fit(dask_data(X, y)[0], da.from_array(T, chunks=300))
    np.testing.assert_allclose(r2.network_.params, r1.network_.params, atol=1e-9, rtol=0)
    np.testing.assert_allclose(r2.predict(dask_data(X, y)[0]).compute(), r1.predict(X))


# ------------------------------------------------------------------ the command line

def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-m", "cbackprop", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(0)
    frames = []
    for k in range(3):
        X = rng.normal(size=(300, 4))
        frame = pd.DataFrame(X, columns=list("abcd"))
        frame["label"] = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
        frame.to_csv(folder / f"part-{k}.csv")            # with pandas' index column
        frame.to_parquet(folder / f"part-{k}.parquet")
        frames.append(frame)
    pd.concat(frames).to_csv(folder / "all.csv", index=False)
    bad = frames[1].copy()
    bad.loc[5, "b"] = np.nan
    frames[0].to_csv(folder / "bad-0.csv", index=False)
    bad.to_csv(folder / "bad-1.csv", index=False)
    return folder


def test_train_on_csv_files_through_dask_equals_training_on_their_concatenation(parts):
    common = ["--target", "label", "--solver", "lbfgs", "--epochs", "30",
              "--validation-fraction", "0", "--quiet"]
    spread = cli("train", "part-*.csv", *common, "--out", "spread.cbp", cwd=parts)
    assert spread.returncode == 0, spread.stderr
    assert "pandas' index" in spread.stderr
    whole = cli("train", "all.csv", *common, "--out", "whole.cbp", cwd=parts)
    assert whole.returncode == 0, whole.stderr
    a, b = cb.load(parts / "spread.cbp"), cb.load(parts / "whole.cbp")
    np.testing.assert_allclose(a.params, b.params, atol=1e-7, rtol=0)
    assert a.info_["features"] == ["a", "b", "c", "d"] and a.info_["n_train"] == 900
    predicted = cli("predict", "spread.cbp", "part-1.csv", cwd=parts)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0] == "prediction"


def test_train_on_parquet_with_dask_local_and_clear_errors(parts):
    done = cli("train", "part-*.parquet", "--target", "label", "--solver", "rprop",
               "--epochs", "10", "--dask", "local", "--quiet", "--out", "pq.cbp", cwd=parts)
    assert done.returncode == 0, done.stderr
    assert cb.load(parts / "pq.cbp").info_["data_format"] == "parquet"
    evaluated = cli("evaluate", "pq.cbp", "all.csv", cwd=parts)
    assert evaluated.returncode == 0 and "accuracy" in evaluated.stdout, evaluated.stderr
    for args, message in [
            (["nothing-*.csv", "--target", "label"], "no file matches"),
            (["part-*.csv", "--target", "lable"], "'lable' is not a column"),
            (["part-*.csv", "--target", "label", "--validation-fraction", "0.2"],
             "--validation-fraction holds rows out"),
            (["part-*.csv", "--target", "label", "--dask", f"tcp://127.0.0.1:{free_port()}"],
             "could not reach the Dask scheduler"),
            (["bad-*.csv", "--target", "label"], "column(s) [1] (from 0) hold NaN"),
            (["bad-*.csv", "--target", "label", "--scale", "none"],
             "X (partition 1) contains NaN")]:
        failed = cli("train", *args, cwd=parts)
        assert failed.returncode == 1 and message in failed.stderr, (args, failed.stderr)


def test_a_local_cluster_leaves_the_clients_own_threads_alone():
    """distributed's Nanny writes OMP_NUM_THREADS=1 into the client's environment for its
    workers; the client's networks keep the threads it started with."""
    before = cb.Network([2, 1]).n_threads
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as c:
        assert c.run(lambda: cb.Network([2, 1]).n_threads) == {
            w: 1 for w in c.scheduler_info()["workers"]}          # a worker: one thread
    assert cb.Network([2, 1]).n_threads == before


def test_verbose_shows_the_workers_the_dashboard_and_progress(client, capsys):
    X, y = data(600)
    net = twin()
    net.fit(*dask_data(X, y), solver="rprop", max_iter=3, verbose=True, client=client)
    shown = capsys.readouterr()
    assert "Dask: 2 workers" in shown.out
    assert "fit (rprop)" in shown.err or "iterations" in shown.out     # tqdm's bar, or lines
    assert cb.block_sums is blocks.block_sums and cb.cluster is cluster


def test_averaging_weighs_the_copies_by_their_partitions_sample_weight():
    start = (np.zeros(3), np.zeros(3), np.zeros(3), 0)
    copies = [(0.0, 0, 0, (np.full(3, 1.0), np.full(3, 2.0), np.zeros(3), 5)),
              (0.0, 0, 0, (np.full(3, 4.0), np.full(3, 8.0), np.ones(3), 7))]
    params, m1, m2, t = cluster._average(copies, [3.0, 1.0], start)
    np.testing.assert_allclose(params, 1.75)            # (3 * 1 + 1 * 4) / 4
    np.testing.assert_allclose(m1, 3.5)
    np.testing.assert_allclose(m2, 0.25)
    assert t == 7
    params, *_ = cluster._average(copies, [2.0, 0.0], start)
    np.testing.assert_allclose(params, 1.0)             # a partition of weight 0 counts for 0
