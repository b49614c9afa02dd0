"""Prediction latency and throughput (issue 17): one call's time at batch 1, 32, 1000 and
100,000 rows, as a serving loop calls it.

Networks: digits (64 -> 30 -> 10, tanh, softmax; rows from scikit-learn's digits) and a wider
one (784 -> 256 -> 10, uniform [0, 1) pixels), float32 (and digits in float64). Contenders,
each checked to give the network's predict_proba before it is timed: cbackprop's
predict_proba, its predictor (net.predictor(): one thread, predict_proba, and into out=;
from 1000 rows also n_threads=None, the threads forward plans), ONNX Runtime
running our exported model (cbackprop.export.to_onnx) on one thread and on its default
threads, scikit-learn's MLP predict_proba (net.to_sklearn()), PyTorch in inference mode
where installed. A contender's figure is the median over rounds of a timed loop's mean
call (timeit's way: the loop long enough to time, after untimed calls); contenders
interleaved (_common). Ratios: each contender's median over the predictor's of the same
network, dtype and batch. Goals: the predictor >= 3x ONNX Runtime (one thread) at batch 1 and
faster at every other batch; >= 20x scikit-learn at batch 1. Then batches of 1000 and
10,000 digits rows 20 ms apart (a sparse stream, whose threads sleep between calls): the
network's predict_proba on its default threads and on one against ONNX Runtime's, the
median of 40 calls a round; goal: faster than ONNX Runtime (default threads). Asserts no
time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/run.py --only latency
"""
import time

import numpy as np

import bench_train as bt
import cbackprop as cb
from _common import interleave

try:
    import onnxruntime as ort
except ImportError:                 # pragma: no cover - the onnx extra
    ort = None
try:
    import torch
except ImportError:
    torch = None

FULL = dict(latency_batches=(1, 32, 1000, 100000), latency_rounds=7, latency_loop=0.05,
            latency_dtypes=("float32", "float64"), latency_nets=("digits", "wide"),
            paused_batches=(1000, 10000), paused_calls=40)
QUICK = dict(latency_batches=(1, 32), latency_rounds=2, latency_loop=0.004,
             latency_dtypes=("float32",), latency_nets=("digits",),
             paused_batches=(1000,), paused_calls=5)
PAUSE = 0.02                    # seconds between the calls of a sparse stream
PREDICTOR = "cbackprop predictor"
TOL = {"float32": 1e-5, "float64": 1e-10}


def loop_time(fn, target):
    """Seconds a call of fn: a loop of calls lasting about `target` seconds (after an untimed
    loop of the same length), its mean."""
    n, t = 1, 0.0
    while True:                      # timeit's autorange: grow the loop until it is long enough
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= target / 4:
            break
        n *= 4
    n = max(1, int(n * target / max(t, 1e-9)))
    for _ in range(n):              # untimed: the steady state of a loop
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def network(name, dtype):
    """(network, rows to predict): the digits network or the wide one, random weights."""
    if name == "digits":
        X = bt.digits()["Xtr"]
        net = cb.Network([64, 30, 10], activation="tanh", output="softmax", dtype=dtype,
                         random_state=0)
    else:
        X = np.random.default_rng(0).random((4096, 784))
        net = cb.Network([784, 256, 10], activation="relu", output="softmax", dtype=dtype,
                         init="he", random_state=0)
    net.classes_ = np.arange(10)
    return net, X.astype(dtype)


def rows_of(X, m):
    """m C-order rows, X's repeated when it has fewer."""
    return np.ascontiguousarray(np.resize(X, (m, X.shape[1])))


def ort_session(net, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads          # 0: ONNX Runtime's default (the cores)
    return ort.InferenceSession(cb.export.to_onnx(net).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def torch_model(net):
    """The network as a torch Sequential of net's dtype (made in it: weights copied into
    float32 layers would lose float64's digits)."""
    layers = []
    for l, theta in enumerate(net.thetas):
        lin = torch.nn.Linear(theta.shape[1] - 1, theta.shape[0],
                              dtype=getattr(torch, net.dtype.name))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(theta[:, 1:])))
            lin.bias.copy_(torch.from_numpy(np.array(theta[:, 0])))
        layers.append(lin)
        if l < len(net.thetas) - 1:
            layers.append(torch.nn.Tanh() if net.activation[l] == "tanh" else torch.nn.ReLU())
    layers.append(torch.nn.Softmax(dim=1))
    return torch.nn.Sequential(*layers).eval()


def contenders(net, X, dtype):
    """{name: (call, probabilities it returns)} for rows X."""
    p = net.predictor()
    out = np.empty((len(X), 10), dtype=dtype)
    found = {"cbackprop predict_proba": lambda: net.predict_proba(X),
             PREDICTOR: lambda: p.predict_proba(X),
             "cbackprop predictor out=": lambda: p.predict_proba(X, out=out)}
    if len(X) >= 1000:              # threads pay only on large batches
        pt = net.predictor(n_threads=None)
        found["cbackprop predictor n_threads=None"] = lambda: pt.predict_proba(X)
    if ort is not None:
        for threads, label in ((1, "1 thread"), (0, "default threads")):
            s = ort_session(net, threads)
            found[f"ONNX Runtime {label}"] = (
                lambda s=s: s.run(["probabilities"], {"X": X})[0])
    skl = net.to_sklearn()
    found["scikit-learn"] = lambda: skl.predict_proba(X)
    if torch is not None:
        model = torch_model(net)
        tX = torch.from_numpy(X)

        def torch_call():
            with torch.inference_mode():
                return model(tX).numpy()
        found["PyTorch inference"] = torch_call
    return found


def check(found, expected, dtype):
    """The largest difference of each contender's probabilities from predict_proba's."""
    diffs = {}
    for name, fn in found.items():
        got = np.asarray(fn(), dtype=np.float64)
        diff = float(np.max(np.abs(got - expected)))
        if not diff <= TOL[dtype]:
            raise AssertionError(f"{name} computes other probabilities (max diff {diff:.1e})")
        diffs[name] = diff
    return diffs


def latency(cfg, make_rows, goal):
    """The workload of run.py (which passes its row and goal helpers)."""
    rows, goals, notes = [], [], []
    for net_name in cfg["latency_nets"]:
        for dtype in cfg["latency_dtypes"]:
            if net_name == "wide" and dtype == "float64":
                continue                # float64 where cheap: the digits network
            net, X = network(net_name, dtype)
            for m in cfg["latency_batches"]:
                Xm = rows_of(X, m)
                found = contenders(net, Xm, dtype)
                expected = net.predict_proba(Xm).astype(np.float64)
                diffs = check(found, expected, dtype)
                group = f"{net_name} {dtype} batch {m}"
                target = cfg["latency_loop"] if m < 100000 else 0.0
                runs = interleave({f"{group}: {name}": (lambda r, fn=fn: loop_time(fn, target))
                                   for name, fn in found.items()}, cfg["latency_rounds"],
                                  pause=0.0)
                checks = {f"{group}: {n}": f"max diff {d:.0e}" for n, d in diffs.items()}
                notes_m = {f"{group}: {n}": f"{m / min(t):,.0f} rows/s at best"
                           for n, t in runs.items()}
                got = make_rows("latency", runs, "us/call", 1e6,
                                lambda name, g=group: f"{g}: {PREDICTOR}", checks, notes_m)
                rows += got
                pred = f"{group}: {PREDICTOR}"
                if m == 1:
                    goals.append(goal(got, "latency", f"{group}: predictor >= 3x ONNX Runtime "
                                      "(1 thread)", f"{group}: ONNX Runtime 1 thread", pred, 3.0))
                    goals.append(goal(got, "latency", f"{group}: predictor >= 20x scikit-learn",
                                      f"{group}: scikit-learn", pred, 20.0))
                else:
                    goals.append(goal(got, "latency", f"{group}: predictor faster than ONNX "
                                      "Runtime (1 thread)", f"{group}: ONNX Runtime 1 thread",
                                      pred, 1.0))
    rows_p, goals_p = paused(cfg, make_rows, goal)
    rows += rows_p
    goals += goals_p
    notes.append("us/call: a call's median time over rounds (each a timed loop's mean); "
                 "ratio: over the predictor's of the same network, dtype and batch"
                 + ("" if torch is not None else "; PyTorch not installed: skipped")
                 + ("" if ort is not None else "; onnxruntime not installed: skipped"))
    return dict(rows=rows, goals=goals, notes=notes)


def paused_time(fn, calls):
    """The median time of `calls` calls of fn, each after PAUSE seconds of sleep: a service
    answering a request now and then, whose threads have gone to sleep in between."""
    times = []
    for _ in range(calls):
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def paused(cfg, make_rows, goal):
    """Batches of the digits network (float32) predicted PAUSE apart: the network's
    predict_proba on its default threads and on one, ONNX Runtime on one thread and on its
    default ones. Goal: predict_proba (default threads) faster than ONNX Runtime's."""
    rows, goals = [], []
    net, X = network("digits", "float32")
    for m in cfg["paused_batches"]:
        Xm = rows_of(X, m)
        group = f"digits float32 batch {m}, {PAUSE * 1e3:.0f} ms apart"
        one = net.copy()
        one.n_threads = 1
        found = {f"cbackprop predict_proba (n_threads={net.n_threads})":
                 lambda: net.predict_proba(Xm),
                 "cbackprop predict_proba (n_threads=1)": lambda: one.predict_proba(Xm)}
        if ort is not None:
            for threads, label in ((1, "1 thread"), (0, "default threads")):
                s = ort_session(net, threads)
                found[f"ONNX Runtime {label}"] = (
                    lambda s=s: s.run(["probabilities"], {"X": Xm})[0])
        check(found, net.predict_proba(Xm).astype(np.float64), "float32")
        calls = cfg["paused_calls"]
        runs = interleave({f"{group}: {name}": (lambda r, fn=fn: paused_time(fn, calls))
                           for name, fn in found.items()}, cfg["latency_rounds"], pause=0.0)
        first = f"{group}: cbackprop predict_proba (n_threads={net.n_threads})"
        rows += make_rows("latency", runs, "us/call", 1e6, lambda name: first)
        goals.append(goal(rows, "latency", f"{group}: predict_proba faster than ONNX Runtime "
                          "(default threads)", f"{group}: ONNX Runtime default threads",
                          first, 1.0))
    return rows, goals


if __name__ == "__main__":
    import run
    run.main(["--only", "latency"])
