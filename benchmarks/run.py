"""The benchmark suite (issue 6): every workload for every contender installed, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/run.py

Workloads: cost_gradient (full batch, 5000 x 400 -> 25 -> 10, float64 and float32), online (one
epoch, batch size 1, digits 64 -> 30 -> 10), adam (digits, batch 32), synthetic (60000 x 784 ->
256 -> 10 float32, 2 epochs of batch 128), memory (peak memory of fit against data size, fresh
processes), python_threads (small networks trained from 2 Python threads vs 1), the sweeps
samples, width, batch, depth, blas_threads (sweeps.py), scale (bench_scale.py, issue 14: L-BFGS
on a Dask LocalCluster vs in process, Spark MLlib's MLP, fit on a memmap), and units
(bench_units.py, issue 16: online and Adam epochs for each hidden unit, against tanh),
dropout (bench_dropout.py, issue 16: epochs with dropout, clip_norm, weight_decay, against
none), and latency (bench_latency.py, issue 17: prediction at batch 1 to 100,000 against ONNX
Runtime).
Contenders: cbackprop float64/float32, cbackprop.reference (vectorized, per-sample loop, pure
Python), scikit-learn, PyTorch (CPU, float32/float64) and FANN, where installed; each is checked
to compute the same cost (or make the same updates) as cbackprop before it is timed. Contenders
are interleaved with a pause between them (_common.py). Prints every table; a full run writes
benchmarks/results/latest.{md,json,png}. Asserts no time: the goals are reported, met or not.
"""
import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import _report
import bench_cost_gradient as bcg
import bench_dropout
import bench_fann
import bench_scale
import bench_train as bt
import bench_latency
import bench_units
import cbackprop as cb
import sweeps
from _common import (CORES, all_threads, environment, fmt, interleave, order_effect,
                     print_environment, spread, steady_run, timed)
from bench_train import torch       # None without PyTorch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS, README = os.path.join(HERE, "results"), os.path.join(HERE, "..", "README.md")
FULL = dict(rounds=7, cg_rounds=15, loop_rows=200, python_rows=10, check_rows=100,
            adam_epochs=100, synth_rows=60000, synth_rounds=5,
            memory_rows=[7500, 15000, 30000, 60000], memory_peers=True,
            thread_nets=8, thread_epochs=30, peer_nets=4, peer_epochs=5, units_epochs=20,
            units_rows=40000, dropout_epochs=20,
            **sweeps.FULL,
            **bench_scale.FULL,
            **bench_latency.FULL)
QUICK = dict(rounds=2, cg_rounds=3, loop_rows=40, python_rows=2, check_rows=20,
             adam_epochs=5, synth_rows=4000, synth_rounds=2,
             memory_rows=[2000, 8000], memory_peers=False, thread_nets=4, thread_epochs=5,
             peer_nets=2, peer_epochs=2, units_epochs=2, units_rows=4000, dropout_epochs=2,
             **sweeps.QUICK,
             **bench_scale.QUICK,
             **bench_latency.QUICK)
ACC_SLACK = 0.01          # "equal accuracy": cbackprop within one point, or better


# ------------------------------------------------------------------------------ rows, goals

def make_rows(workload, runs, unit, scale, baseline, checks=None, notes=None):
    """Table rows from {contender: [{'time': seconds a unit, 'acc': ...} or seconds]}.

    baseline(contender) names the row a contender's ratio is taken against (its median over
    the baseline's). checks: {contender: text} (how it was checked); notes: {contender: text}.
    """
    rows = []
    for name, results in runs.items():
        times = [r["time"] if isinstance(r, dict) else r for r in results]
        accs = [r["acc"] for r in results if isinstance(r, dict) and r.get("acc") is not None]
        rows.append(dict(workload=workload, contender=name, unit=unit, **spread(times, scale),
                         order=order_effect(times), accuracy=statistics.median(accs) if accs
                         else None, check=(checks or {}).get(name, ""),
                         note=(notes or {}).get(name, ""), baseline=baseline(name)))
    medians = {r["contender"]: r["median"] for r in rows}
    for r in rows:
        r["ratio"] = r["median"] / medians[r["baseline"]] if r["baseline"] in medians else None
    return rows


def row(rows, contender):
    return next((r for r in rows if r["contender"] == contender), None)


def goal(rows, workload, text, slow, fast, need, equal_accuracy=False):
    """Goal: `fast` at least `need` times faster than `slow` (medians), optionally at equal
    test accuracy. Skipped (met None) where either contender did not run."""
    s, f = row(rows, slow), row(rows, fast)
    if s is None or f is None:
        return dict(workload=workload, goal=text, value="skipped", met=None,
                    detail=f"{slow if s is None else fast} not run")
    ratio = s["median"] / f["median"]
    met = ratio >= need
    detail = f"{fast} {fmt(f['median'])} vs {slow} {fmt(s['median'])} {s['unit']}"
    if equal_accuracy:
        met = met and f["accuracy"] >= s["accuracy"] - ACC_SLACK
        detail += f"; accuracy {f['accuracy']:.4f} vs {s['accuracy']:.4f}"
    return dict(workload=workload, goal=text, value=f"{ratio:.2f}x", ratio=ratio, met=met,
                detail=detail)


def rel_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def cbackprop_of_dtype(name):
    """The cbackprop row a contender is compared with: the one of its dtype."""
    return "cbackprop float32" if "float32" in name else "cbackprop float64"


# ------------------------------------------------------------ workload: cost and gradient

def cost_gradient(cfg):
    """Full-batch cost and gradient at the course's exercise shape, float64 and float32."""
    rng = np.random.default_rng(bcg.SEED)
    X = rng.uniform(size=(bcg.M, bcg.SIZES[0]))
    Y = np.eye(bcg.SIZES[-1])[rng.integers(0, bcg.SIZES[-1], bcg.M)]
    contenders, checks, scales, notes = {}, {}, {}, {}

    def add(name, fn, expected, tol, rows=bcg.M):
        if expected is not None:
            checks[name] = f"J, grad vs reference: {bcg.verify(name, fn, expected, tol):.0e}"
        contenders[name], scales[name] = fn, bcg.M / rows
        if rows < bcg.M:
            notes[name] = f"timed on {rows} rows, x {bcg.M // rows}"

    for dtype in ("float64", "float32"):
        net = cb.Network(bcg.SIZES, dtype=dtype, random_state=bcg.SEED)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        expected = cb.reference.cost_and_gradient(
            [t.astype(np.float64) for t in net.thetas], Xd.astype(np.float64), Y, bcg.LAM)
        order = bcg.TunedNumPy.calibrate(Xd, net.thetas[0][:, 1:])
        tol = bcg.TOL[dtype]
        add(f"cbackprop {dtype}", bcg.cbackprop_batched(net, Xd, Yd, CORES), expected, tol)
        add(f"tuned NumPy {dtype}", bcg.tuned_numpy(net, Xd, Yd, order), expected, tol)
        add(f"bare products {dtype}", bcg.bare_products(net, Xd, order), None, tol)
        add(f"scikit-learn {dtype}", bcg.sklearn_backprop(net, Xd, Yd), expected, tol)
        if torch is not None:
            add(f"PyTorch {dtype}", bcg.torch_autograd(net, Xd, Yd), expected, tol)
        if dtype == "float64":
            add("cbackprop per-sample loop", bcg.per_sample_kernel(net, X, Y), expected, tol)
            add("reference vectorized", bcg.reference_vectorized(net, X, Y), expected, tol)
            k, kp = cfg["loop_rows"], cfg["python_rows"]
            add("reference per-sample loop", bcg.numpy_loop(net, X[:k], Y[:k]),
                cb.reference.cost_and_gradient(net.thetas, X[:k], Y[:k], bcg.LAM), tol, k)
            add("reference pure Python", bcg.pure_python(net, X[:kp], Y[:kp]),
                cb.reference.cost_and_gradient(net.thetas, X[:kp], Y[:kp], bcg.LAM), tol, kp)
    notes["bare products float64"] = notes["bare products float32"] = \
        "X @ W1.T and delta2.T @ X alone: NumPy's floor"
    times = bcg.race(contenders, cfg["cg_rounds"])
    runs = {name: [t * scales[name] for t in ts] for name, ts in times.items()}
    rows = make_rows("cost_gradient", runs, "ms", 1e3, cbackprop_of_dtype, checks, notes)
    goals = [goal(rows, "cost_gradient", "float64: >= 2x tuned NumPy", "tuned NumPy float64",
                  "cbackprop float64", 2),
             goal(rows, "cost_gradient", "float64: faster than NumPy's bare products",
                  "bare products float64", "cbackprop float64", 1),
             goal(rows, "cost_gradient", "float32: >= 2x float64 cbackprop", "cbackprop float64",
                  "cbackprop float32", 2)]
    return dict(rows=rows, goals=goals)


# ---------------------------------------------------------------- workload: online epoch

def online_contenders(d, cfg):
    """{name: (fn(data, seed), data it trains on, loss it minimizes)}: one epoch, batch 1,
    shuffle off, every contender from bench_train.start_thetas(seed)."""
    d32 = bt.as_dtype(d, np.float32)
    few, fewer = bt.head(d, cfg["loop_rows"]), bt.head(d, cfg["python_rows"])
    lr = bt.LR_ONLINE
    c = {"cbackprop float64": (bt.online_cbackprop, d, "cross_entropy"),
         "cbackprop float32": (bt.online_cbackprop, d32, "cross_entropy"),
         "NumPy loop": (bt.online_numpy, d, "cross_entropy"),
         "reference per-sample loop": (bt.online_reference, few, "cross_entropy"),
         "reference pure Python": (lambda d, s: bt.online_reference(
             d, s, cb.reference.pure_python), fewer, "cross_entropy")}
    if torch is not None:
        c["PyTorch float64 b=1"] = (bt.online_torch, d, "cross_entropy")
        c["PyTorch float32 b=1"] = (bt.online_torch, d32, "cross_entropy")
    if bench_fann.load()[0] is not None:
        c["cbackprop float64, squared error"] = (
            lambda d, s: bt.online_cbackprop(d, s, loss="squared_error"), d, "squared_error")
        c["FANN (double)"] = (lambda d, s: bench_fann.online_fann(d, s, lr), d, "squared_error")
    return c


def check_online(contenders, d, rows):
    """Train every contender on the first `rows` samples (at most those it is timed on) from
    the same start; compare its parameters with cbackprop's (float64, the same loss) after
    the same samples: the same updates."""
    checks = {}
    for name, (fn, data, loss) in contenders.items():
        k = min(rows, len(data["Xtr"]))
        ours = bt.online_cbackprop(bt.head(d, k), 0, loss=loss)["params"]
        diff = rel_diff(fn(bt.head(data, k), 0)["params"], ours)
        checks[name] = f"params after {k} updates vs cbackprop: {diff:.0e}"
    return checks


def online(cfg):
    d = bt.digits()
    contenders = online_contenders(d, cfg)
    checks = check_online(contenders, d, cfg["check_rows"])
    part = {name: f"timed on {len(data['Xtr'])} samples" for name, (_, data, _) in
            contenders.items() if len(data["Xtr"]) < len(d["Xtr"])}
    runs = interleave({name: steady_run(lambda r, fn=fn, data=data: fn(data, r))
                       for name, (fn, data, _) in contenders.items()}, cfg["rounds"])
    for name in part:                        # a part of an epoch: its accuracy means nothing
        for r in runs[name]:
            r["acc"] = None
    ours_sq = "cbackprop float64, squared error"
    rows = make_rows("online", runs, "us/sample", 1e6,
                     lambda n: ours_sq if n == "FANN (double)" else cbackprop_of_dtype(n),
                     checks, dict(part, **{"FANN (double)": "FANN clips g' to [0.01, 0.99]"}))
    f64, f32 = "cbackprop float64", "cbackprop float32"
    goals = [goal(rows, "online", ">= 30x the NumPy per-sample loop", "NumPy loop", f64, 30),
             goal(rows, "online", ">= 50x PyTorch batch 1 (float64)", "PyTorch float64 b=1",
                  f64, 50),
             goal(rows, "online", ">= 50x PyTorch batch 1 (float32)", "PyTorch float32 b=1",
                  f32, 50),
             goal(rows, "online", ">= 300x pure Python", "reference pure Python", f64, 300),
             goal(rows, "online", ">= 5x FANN per sample (same loss and algorithm)",
                  "FANN (double)", ours_sq, 5)]
    return dict(rows=rows, goals=goals)


# ---------------------------------------------------------- workloads: mini-batch training

def sklearn_cost(net, X, Y):
    """scikit-learn's loss for the network's weights (its _backprop, alpha 0)."""
    return bcg.sklearn_backprop(net, X, Y, lam=0.0)()[0]


def torch_cost(net, X, y):
    """The loss mb_torch trains on (Linear + sigmoid layers, CrossEntropyLoss on the logits)
    for the network's weights."""
    model = bt.torch_mlp(net.layer_sizes, bt.torch_dtype(dict(Xtr=X)), net.thetas)
    with torch.no_grad():
        return float(torch.nn.CrossEntropyLoss()(model(torch.from_numpy(X)),
                                                 torch.from_numpy(y).long()))


def check_minibatch_cost(name, d):
    """A peer's training loss against cbackprop's cost J, same (softmax) network and data."""
    net = cb.Network(d["sizes"], output="softmax", dtype=d["Xtr"].dtype, random_state=0)
    X, y = d["Xtr"], d["ytr"]
    Y = np.eye(d["sizes"][-1], dtype=X.dtype)[y]
    ours = net.cost(X, Y)
    theirs = sklearn_cost(net, X, Y) if name.startswith("scikit-learn") else torch_cost(net, X, y)
    return f"loss vs cbackprop's J: {abs(theirs - ours) / ours:.0e}"


def minibatch(workload, datasets, epochs, batch, rounds, unit="ms/epoch", scale=1e3):
    """Adam, `epochs` epochs of batch `batch`, for each contender on its data set; time an
    epoch, test accuracy. datasets: {name: (contender fn(d, seed, epochs, batch), data)}."""
    checks = {name: check_minibatch_cost(name, d) for name, (_, d) in datasets.items()
              if name.startswith(("scikit-learn", "PyTorch"))}
    runs = interleave({name: (lambda fn, d: lambda r: fn(d, r, epochs, batch))(fn, d)
                       for name, (fn, d) in datasets.items()}, rounds)
    return make_rows(workload, runs, unit, scale, cbackprop_of_dtype, checks)


def adam(cfg):
    d = bt.digits()
    d32 = bt.as_dtype(d, np.float32)
    datasets = {"cbackprop float64": (bt.mb_cbackprop, d),
                "cbackprop float32": (bt.mb_cbackprop, d32),
                "scikit-learn float64": (bt.mb_sklearn, d)}
    if torch is not None:
        datasets["PyTorch float64"] = (bt.mb_torch, d)
        datasets["PyTorch float32"] = (bt.mb_torch, d32)
    for fn, data in datasets.values():               # warm-up: imports, first calls
        fn(data, 0, 1, 32)
    rows = minibatch("adam", datasets, cfg["adam_epochs"], 32, cfg["rounds"])
    f64, f32 = "cbackprop float64", "cbackprop float32"
    goals = [goal(rows, "adam", ">= 5x scikit-learn at equal accuracy", "scikit-learn float64",
                  f64, 5, equal_accuracy=True),
             goal(rows, "adam", "faster than PyTorch (float64)", "PyTorch float64", f64, 1),
             goal(rows, "adam", "faster than PyTorch (float32)", "PyTorch float32", f32, 1)]
    return dict(rows=rows, goals=goals)


def synthetic(cfg):
    d = bt.synthetic(cfg["synth_rows"])
    datasets = {"cbackprop float32": (bt.mb_cbackprop, d),
                "scikit-learn float32": (bt.mb_sklearn, d),
                "bare products float32": (bt.mb_bare_products, d)}
    if torch is not None:
        datasets["PyTorch float32"] = (bt.mb_torch, d)
    rows = minibatch("synthetic", datasets, 2, 128, cfg["synth_rounds"], "s/epoch", 1.0)
    row(rows, "bare products float32")["note"] = "the batches' matrix products alone (NumPy)"
    ours = "cbackprop float32"
    goals = [goal(rows, "synthetic", "faster than PyTorch float32", "PyTorch float32", ours, 1),
             goal(rows, "synthetic", ">= 2x scikit-learn", "scikit-learn float32", ours, 2)]
    return dict(rows=rows, goals=goals)


# --------------------------------------------------------------------- workload: memory

def memory(cfg):
    """Peak memory of one 2-epoch fit (batch 128) of the synthetic problem against its size,
    each contender and size in a fresh process (bench_train.memory_child)."""
    names = ["cbackprop"]
    if cfg["memory_peers"]:
        names += ["scikit-learn"] + (["pytorch"] if torch is not None else [])
    mb, series, rows = 2.0 ** 20, {}, []
    for name in names:
        runs = [bt.memory_run(name, m) for m in cfg["memory_rows"]]
        data = np.array([r["data"] for r in runs]) / mb
        growth = np.array([r["growth"] for r in runs]) / mb
        slope, fixed = np.polyfit(data, growth, 1)
        series[name] = dict(data_mb=data.tolist(), growth_mb=growth.tolist(),
                            slope=float(slope), fixed_mb=float(fixed))
        rows.append(dict(contender=name, slope=slope, fixed=fixed, data=data[-1],
                         growth=growth[-1]))
    notes = ["growth = peak RSS during fit (VmHWM, reset just before fit) - RSS before it; "
             "X is 784 float32 columns; slope = extra MB a MB of X (least squares over "
             + ", ".join(str(m) for m in cfg["memory_rows"]) + " rows)"]
    c = series["cbackprop"]
    goals = [dict(workload="memory", goal="data + O(batch x width): no copy of X per epoch",
                  value=f"{c['slope']:.3f} MB per MB of X", met=c["slope"] < 0.1,
                  detail=f"fixed {c['fixed_mb']:.1f} MB + {c['slope']:.3f} x X")]
    return dict(memory=rows, series={"memory": series}, goals=goals, notes=notes)


# -------------------------------------------------------- workload: Python threads at once

def train_many(make_and_fit, n_nets, threads):
    """Seconds to train n_nets networks, one after the other (threads=1) or from a pool of
    Python threads."""
    if threads == 1:
        return timed(lambda: [make_and_fit(i) for i in range(n_nets)])[0]
    with ThreadPoolExecutor(threads) as pool:
        return timed(lambda: list(pool.map(make_and_fit, range(n_nets))))[0]


def fit_cbackprop(d, solver, epochs):
    def fit(seed):
        net = cb.Network(d["sizes"], output="softmax", random_state=seed)
        net.n_threads = 1
        net.fit(d["Xtr"], d["ytr"], solver=solver, epochs=epochs, batch_size=32,
                learning_rate=0.1 if solver == "online" else bt.LR_ADAM, tol=0.0,
                n_iter_no_change=epochs, random_state=seed)
    return fit


def fit_sklearn(d, epochs):
    return lambda seed: bt.mb_sklearn(d, seed, epochs, 32)


def fit_torch(d, epochs):
    return lambda seed: bt.mb_torch(d, seed, epochs, 32)


def python_threads(cfg):
    """Throughput of training several small networks (digits, 64-30-10) at once from 2 Python
    threads against 1; cbackprop's compiled loops release the GIL. Every network's n_threads
    is 1, and every BLAS pool and PyTorch are held to 1 thread: the parallelism is the
    Python threads'."""
    d = bt.digits()
    n, e = cfg["thread_nets"], cfg["thread_epochs"]
    work = {"cbackprop adam": (fit_cbackprop(d, "adam", e), n),
            "cbackprop online": (fit_cbackprop(d, "online", e), n),
            "scikit-learn adam": (fit_sklearn(d, cfg["peer_epochs"]), cfg["peer_nets"])}
    if torch is not None:
        work["PyTorch adam"] = (fit_torch(d, cfg["peer_epochs"]), cfg["peer_nets"])
    contenders = {f"{name}, {t} thread{'s' * (t > 1)}":
                  (lambda fn, n, t: lambda r: train_many(fn, n, t) / n)(fn, n, t)
                  for name, (fn, n) in work.items() for t in (1, 2)}
    with all_threads(1):
        for fn, _ in work.values():
            fn(0)                                       # warm-up
        runs = interleave(contenders, cfg["rounds"])
    rows = make_rows("python_threads", runs, "ms/network", 1e3,
                     lambda name: name.rsplit(",", 1)[0] + ", 1 thread")
    for r in rows:
        r["note"] = f"{work[r['contender'].rsplit(',', 1)[0]][1]} networks; ratio: to 1 thread"
    goals = [goal(rows, "python_threads", f"{name}: 2 threads >= 1.8x 1 thread",
                  f"{name}, 1 thread", f"{name}, 2 threads", 1.8) for name in work]
    speedups = {name: g["ratio"] for name, g in zip(work, goals)}
    goals = [g for name, g in zip(work, goals) if name.startswith("cbackprop")]
    return dict(rows=rows, goals=goals, series={"python_threads": speedups})


# ------------------------------------------------------------------------------ the suite

WORKLOADS = {"cost_gradient": cost_gradient, "online": online, "adam": adam,
             "synthetic": synthetic, "memory": memory, "python_threads": python_threads,
             **sweeps.SWEEPS, "scale": bench_scale.scale,
             "units": lambda cfg: bench_units.units(cfg, make_rows, goal),
             "dropout": lambda cfg: bench_dropout.dropout(cfg, make_rows, goal),
             "latency": lambda cfg: bench_latency.latency(cfg, make_rows, goal)}


def run_all(names, cfg):
    results = {}
    for name in names:
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        print(f"\n== {name} ...", flush=True)
        res = WORKLOADS[name](cfg)
        res.update(seconds=time.perf_counter() - t0, load=[load0, os.getloadavg()[0]])
        results[name] = res
        print(f"{name}: {res['seconds']:.0f} s, load average {res['load'][0]:.2f} -> "
              f"{res['load'][1]:.2f}")
        if res.get("rows"):
            print(_report.rows_table(res["rows"]))
        if res.get("memory"):
            print(_report.memory_table(res["memory"]))
        for line in sweeps.describe(res) + [f"  {n}" for n in res.get("notes", [])]:
            print(line)
        for g in res.get("goals", []):
            print(f"  goal {g['goal']}: {g['value']} -> {_report.verdict(g)}")
    return results


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes, 2-3 rounds: a smoke test (under 2 minutes)")
    p.add_argument("--only", action="append", metavar="NAME",
                   choices=list(WORKLOADS) + ["sweeps"],
                   help="run only this workload (repeatable): " + ", ".join(WORKLOADS)
                   + ", or sweeps for all the sweeps")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    p.add_argument("--results", metavar="DIR",
                   help="write latest.md, latest.json and latest.png here (default: "
                        "benchmarks/results for a full run of everything; nowhere otherwise)")
    p.add_argument("--readme", action="store_true",
                   help="also save these results as results/readme-BUILD.json and rewrite README.md's "
                        "Speed section from every build's saved run on this CPU (run it once a "
                        "build: CBACKPROP_CPU=avx2 ... --readme)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    names = []
    for n in args.only or list(WORKLOADS):
        names += list(sweeps.SWEEPS) if n == "sweeps" else [n]
    cfg = QUICK if args.quick else FULL
    env = environment(fann=bench_fann.version() or "not installed")
    print_environment(env)
    if bench_fann.load()[0] is None:
        print(bench_fann.load()[1])
    if torch is None:
        print("PyTorch is not installed: its rows are skipped")
    t0 = time.perf_counter()
    results = run_all(list(dict.fromkeys(names)), cfg)
    env["load_after"] = list(os.getloadavg())
    env["seconds"] = time.perf_counter() - t0
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"]
                       + argv)
    goals = [g for res in results.values() for g in res.get("goals", [])]
    print("\n" + _report.goals_table(goals))
    print(f"\ntotal {env['seconds']:.0f} s; load average now "
          + " ".join(f"{x:.2f}" for x in env["load_after"]))
    out = args.results or (RESULTS if not args.quick and not args.only else None)
    if args.json:
        _report.write_json(args.json, env, cfg, results, command)
    if out:
        _report.write_all(out, env, cfg, results, command)
        print(f"wrote {out}/latest.md, latest.json, latest.png")
    if args.readme:
        # this build's figures beside the other builds' last --readme runs on this CPU
        _report.write_json(os.path.join(RESULTS, f"readme-{_report.build_of(env)}.json"),
                           env, cfg, results, command)
        runs = _report.readme_runs(RESULTS, env["cpu"])
        _report.update_readme(README, _report.readme_section(runs))
        print(f"rewrote the Speed section of {README} ("
              + ", ".join(_report.build_of(r["environment"]) for r in runs) + " builds)")


if __name__ == "__main__":
    main()
