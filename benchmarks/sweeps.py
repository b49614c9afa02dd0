"""Sweeps (issue 6): how time grows with work, for benchmarks/run.py.

samples   rows 1e2 .. 1e6 of a small network (32 -> 32 -> 4): full-batch cost and gradient, and
          one epoch of Adam (batch 128); time a sample should level off and stay flat.
width     64 -> h -> 10, h = 8 .. 1024, on `sweep_rows` rows: the same two operations; time a
          flop should fall or stay flat as the layers grow.
batch     64 -> 64 -> 10, one Adam epoch with batch size 1 .. 4096: time a sample.
depth     64 -> (64 x k) -> 10, k = 1 .. 6 hidden layers: time a flop.
blas_threads  1 and 2 threads for every library (cbackprop's n_threads, the BLAS pools held by
          threadpoolctl, torch.set_num_threads): the exercise shape's cost and gradient, and
          an Adam epoch (batch 128) of the synthetic 784 -> 256 -> 10 float32 problem.

A "cliff" is a step up in time per unit of work by more than CLIFF times from one point to
the next larger one. Each point interleaves its contenders like every other workload. The goals
(no cliff, linear in samples) are judged on the fastest round of each point: other tenants of a
shared machine only ever add time, most of all to 2-thread runs, where a thread that waits for
its core holds up the other; the tables show the medians too.
"""
import numpy as np

import bench_cost_gradient as bcg
import bench_train as bt
import cbackprop as cb
from _common import all_threads, interleave, spread, steady
from bench_train import torch

FULL = dict(sweep_rounds=5, samples=[10 ** k for k in range(2, 7)],
            widths=[8, 16, 32, 64, 128, 256, 512, 1024], batches=[1, 4, 16, 64, 256, 1024, 4096],
            depths=[1, 2, 3, 4, 5, 6], sweep_rows=8192, thread_rows=10000)
QUICK = dict(sweep_rounds=2, samples=[100, 1000, 10000], widths=[8, 64, 512],
             batches=[1, 16, 256, 4096], depths=[1, 3, 6], sweep_rows=2048, thread_rows=2000)
CLIFF = 1.5
LINEAR_FROM = 10 ** 4          # rows from which time must grow linearly with samples
SMALL = [32, 32, 4]            # the samples sweep's network
BATCH = 128


# ------------------------------------------------------------------------- data, operations

def dataset(sizes, m, seed=0):
    """bench_train's data-set dict: uniform float64 features, random labels (100 test rows)."""
    rng = np.random.default_rng(seed)
    X = rng.random((m + 100, sizes[0]))
    y = rng.integers(0, sizes[-1], m + 100)
    return dict(Xtr=X[:m], Xte=X[m:], ytr=y[:m], yte=y[m:], sizes=list(sizes),
                Ytr=np.eye(sizes[-1], dtype=X.dtype)[y[:m]])


def warm_timed(op):
    """fn(round) -> seconds of one call of op in its steady state (_common.steady)."""
    return lambda _: steady(op)


def cost_gradient_contenders(d, peers=True):
    """Full-batch cost and gradient: cbackprop in both dtypes, and the vectorized reference."""
    c = {}
    for dtype in (np.float64, np.float32):
        net = cb.Network(d["sizes"], dtype=dtype, random_state=0)
        X, Y = d["Xtr"].astype(dtype), d["Ytr"].astype(dtype)
        c[f"cbackprop {np.dtype(dtype).name} cost+grad"] = warm_timed(
            lambda net=net, X=X, Y=Y: net.cost_and_gradient(X, Y))
    if peers:
        thetas = cb.Network(d["sizes"], random_state=0).thetas
        c["reference vectorized cost+grad"] = warm_timed(
            lambda: cb.reference.cost_and_gradient(thetas, d["Xtr"], d["Ytr"]))
    return c


def epoch_contenders(d, batch=BATCH):
    """One Adam epoch (bench_train's mini-batch contenders, softmax outputs)."""
    d32 = bt.as_dtype(d, np.float32)
    c = {"cbackprop float64 epoch": lambda r: bt.mb_cbackprop(d, r, 1, batch)["time"],
         "cbackprop float32 epoch": lambda r: bt.mb_cbackprop(d32, r, 1, batch)["time"]}
    if torch is not None:
        c["PyTorch float32 epoch"] = lambda r: bt.mb_torch(d32, r, 1, batch)["time"]
    return c


# ------------------------------------------------------------------------------ measuring

def sweep(name, xs, contenders_at, work, unit, scale, rounds, xlabel):
    """Time every contender at every x: {name, xlabel, unit, x, lines: {contender: {median,
    min, max, per_unit, per_unit_min}}}. work(x) is the work at x (samples or flops);
    per_unit = median / work * scale, per_unit_min the same of the fastest round."""
    lines = {}
    for x in xs:
        contenders = contenders_at(x)
        for fn in contenders.values():                  # warm-up: first calls, allocations
            fn(0)
        for c, times in interleave(contenders, rounds).items():
            s = spread(times)
            line = lines.setdefault(c, dict(x=[], median=[], min=[], max=[], per_unit=[],
                                            per_unit_min=[]))
            for k in ("median", "min", "max"):
                line[k].append(s[k])
            line["x"].append(x)
            line["per_unit"].append(s["median"] / work(x) * scale)
            line["per_unit_min"].append(s["min"] / work(x) * scale)
        print(f"  {name} {x} done", flush=True)
    return dict(name=name, xlabel=xlabel, unit=unit, lines=lines)


def steps(line):
    """Ratios of the fastest rounds' time per unit of work between neighbouring points."""
    u = line["per_unit_min"]
    return [u[i + 1] / u[i] for i in range(len(u) - 1)]


def cliffs(line):
    """(x, next x, step) for each step up by more than CLIFF times between neighbours."""
    return [(line["x"][i], line["x"][i + 1], r) for i, r in enumerate(steps(line)) if r > CLIFF]


def check_cliffs(series, workload, what):
    """A goal row: no cliff in any cbackprop line of the series."""
    found = {c: cliffs(line) for c, line in series["lines"].items() if c.startswith("cbackprop")}
    bad = [f"{c}: {a} -> {b} x{r:.2f}" for c, cl in found.items() for a, b, r in cl]
    worst = max((r for c, line in series["lines"].items() if c.startswith("cbackprop")
                 for r in steps(line)), default=1.0)
    return dict(workload=workload, goal=f"no cliff in {what} (no step up > {CLIFF}x)",
                value=f"largest step x{worst:.2f}", met=not bad, detail="; ".join(bad))


def linear_slope(line, start=LINEAR_FROM):
    """Slope of log(time) against log(x) over x >= start (fastest rounds): 1 when time is
    linear in x."""
    x, t = np.array(line["x"], float), np.array(line["min"])
    keep = x >= start
    return float(np.polyfit(np.log(x[keep]), np.log(t[keep]), 1)[0]) if keep.sum() > 1 else None


# ------------------------------------------------------------------------------ the sweeps

def samples(cfg):
    def at(m):
        d = dataset(SMALL, m)
        return {**cost_gradient_contenders(d), **epoch_contenders(d)}
    s = sweep("samples", cfg["samples"], at, lambda m: m, "ns/sample", 1e9, cfg["sweep_rounds"],
              f"samples ({'-'.join(map(str, SMALL))} network)")
    start = min(LINEAR_FROM, cfg["samples"][-2])
    slopes = {c: linear_slope(line, start) for c, line in s["lines"].items()}
    s["slopes"] = slopes
    ours = {c: v for c, v in slopes.items() if c.startswith("cbackprop") and v is not None}
    goals = [dict(workload="samples", goal="time linear in samples (log-log slope 0.9-1.1 "
                  f"from {start:g} rows)", value=", ".join(f"{v:.2f}" for v in ours.values()),
                  met=all(0.9 <= v <= 1.1 for v in ours.values()),
                  detail="; ".join(f"{c} {v:.3f}" for c, v in ours.items())),
             check_cliffs(s, "samples", "time a sample")]
    return dict(series={"samples": s}, goals=goals)


def flops(sizes):
    return 6 * sum(a * b for a, b in zip(sizes, sizes[1:]))


def width(cfg):
    m = cfg["sweep_rows"]

    def at(h):
        d = dataset([64, h, 10], m)
        return {**cost_gradient_contenders(d, peers=False), **epoch_contenders(d)}
    s = sweep("width", cfg["widths"], at, lambda h: m * flops([64, h, 10]), "ns/kflop", 1e12,
              cfg["sweep_rounds"], f"hidden width (64-h-10, {m} rows)")
    return dict(series={"width": s}, goals=[check_cliffs(s, "width", "time a flop")])


def batch(cfg):
    m = cfg["sweep_rows"]
    d = dataset([64, 64, 10], m)
    s = sweep("batch", cfg["batches"], lambda b: epoch_contenders(d, b), lambda b: m,
              "us/sample", 1e6, cfg["sweep_rounds"], f"batch size (64-64-10, {m} rows, Adam)")
    return dict(series={"batch": s}, goals=[check_cliffs(s, "batch", "time a sample")])


def depth(cfg):
    m = cfg["sweep_rows"]

    def sizes(k):
        return [64] + [64] * k + [10]

    def at(k):
        d = dataset(sizes(k), m)
        return {**cost_gradient_contenders(d, peers=False), **epoch_contenders(d)}
    s = sweep("depth", cfg["depths"], at, lambda k: m * flops(sizes(k)), "ns/kflop", 1e12,
              cfg["sweep_rounds"], f"hidden layers of 64 ({m} rows)")
    return dict(series={"depth": s}, goals=[check_cliffs(s, "depth", "time a flop")])


def limited(fn, n):
    def run(r):
        with all_threads(n):
            return fn(r)
    return run


def blas_threads(cfg):
    """1 and 2 threads for every library: exercise-shape cost and gradient, synthetic epoch."""
    rng = np.random.default_rng(bcg.SEED)
    X = rng.uniform(size=(bcg.M, bcg.SIZES[0]))
    Y = np.eye(bcg.SIZES[-1])[rng.integers(0, bcg.SIZES[-1], bcg.M)]
    net = cb.Network(bcg.SIZES, random_state=bcg.SEED)
    order = bcg.TunedNumPy.calibrate(X, net.thetas[0][:, 1:])
    syn = bt.synthetic(cfg["thread_rows"], n_test=100)

    def at(n):
        c = {"cbackprop float64 cost+grad": warm_timed(bcg.cbackprop_batched(net, X, Y, n)),
             "tuned NumPy float64 cost+grad": warm_timed(bcg.tuned_numpy(net, X, Y, order)),
             "cbackprop float32 synthetic epoch":
                 lambda r: bt.mb_cbackprop(syn, r, 1, BATCH)["time"],
             "scikit-learn float32 synthetic epoch":
                 lambda r: bt.mb_sklearn(syn, r, 1, BATCH)["time"]}
        if torch is not None:
            c["PyTorch float64 cost+grad"] = warm_timed(bcg.torch_autograd(net, X, Y))
            c["PyTorch float32 synthetic epoch"] = lambda r: bt.mb_torch(syn, r, 1, BATCH)["time"]
        return {name: limited(fn, n) for name, fn in c.items()}
    s = sweep("blas_threads", [1, 2], at, lambda n: 1, "ms", 1e3, cfg["sweep_rounds"],
              "threads (every library)")
    s["speedup"] = {c: line["median"][0] / line["median"][-1] for c, line in s["lines"].items()}
    return dict(series={"blas_threads": s}, goals=[])


SWEEPS = {"samples": samples, "width": width, "batch": batch, "depth": depth,
          "blas_threads": blas_threads}


def describe(result):
    """Lines of text: every series' per-unit figures (and speedups, slopes)."""
    out = []
    for s in result.get("series", {}).values():
        if "lines" not in s:
            continue
        xs = next(iter(s["lines"].values()))["x"]
        out.append(f"  {s['name']}: {s['unit']}, median (fastest round), at {s['xlabel']} = "
                   + ", ".join(map(str, xs)))
        for c, line in s["lines"].items():
            extra = ""
            if "speedup" in s:
                extra = f"   speedup 2 vs 1: {s['speedup'][c]:.2f}x"
            if s.get("slopes", {}).get(c) is not None:
                extra = f"   log-log slope {s['slopes'][c]:.3f}"
            out.append(f"    {c:<38}" + " ".join(f"{v:9.4g} ({u:.4g})" for v, u in zip(
                line["per_unit"], line["per_unit_min"])) + extra)
    return out
