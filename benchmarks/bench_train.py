"""Training: cbackprop's solvers against NumPy, scikit-learn and PyTorch, accuracy next to time.

Workloads (issue 3, "Benchmark"): online (one epoch on digits, 64-30-10 sigmoid, vs a NumPy
per-sample loop and a PyTorch batch-1 loop making the same updates from the same start); adam
(batch 32, the same epochs on digits, softmax output like MLPClassifier); synthetic (2 epochs,
batch 128, 60000 x 784 -> 256 -> 10 float32, teacher labels); lbfgs (digits, per iteration);
memory (peak memory of one synthetic fit, each contender in a fresh child process).
Contenders run interleaved with a pause between them; medians over rounds. Asserts no time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/bench_train.py
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one cbackprop's cython_blas calls)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import cbackprop as cb
from cbackprop import reference
from _common import (CORES, PAUSE, environment, interleave, print_environment,
                     proc_status_bytes, reset_peak_rss, timed)

try:
    import torch
except ImportError:          # benchmarks only; never a dependency of cbackprop
    torch = None

warnings.simplefilter("ignore")      # ConvergenceWarning: every contender runs a fixed budget
if torch is not None:
    torch.set_num_threads(CORES)
THREADS = None                       # --threads: cbackprop's n_threads (else its default)
LR_ONLINE, LR_ADAM = 0.1, 0.001
WORKLOADS = ("online", "adam", "synthetic", "lbfgs", "memory")
FULL = dict(adam_epochs=100, synth_rows=60000, lbfgs_iter=200)
QUICK = dict(adam_epochs=10, synth_rows=5000, lbfgs_iter=30)
# contender -> (cbackprop at least this many times faster, also needs equal accuracy)
GOALS = {"online": {"numpy loop": (30, False), "pytorch b=1": (50, False)},
         "adam": {"scikit-learn": (5, True), "pytorch": (1, False)},
         "synthetic": {"scikit-learn": (2, False), "pytorch": (1, False)},
         "lbfgs": {"scikit-learn": (5, False)}}
ACC_SLACK = 0.01                     # "equal accuracy": cbackprop within 1 point or better


# ---------------------------------------------------------------------------- data

def digits():
    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=0.25,
                                          stratify=d.target, random_state=0)
    return dict(Xtr=np.ascontiguousarray(Xtr), Xte=np.ascontiguousarray(Xte), ytr=ytr, yte=yte,
                Ytr=np.eye(10)[ytr], sizes=[64, 30, 10])


def synthetic(n_train, n_test=10000, seed=0):
    """Uniform [0, 1) float32 pixels; labels argmax((x - 0.5) W) of a random linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_train + n_test, 784), dtype=np.float32)   # no float64 temporary
    W = rng.standard_normal((784, 10)).astype(np.float32)
    y = np.concatenate([np.argmax((X[i:i + 10000] - 0.5) @ W, axis=1)
                        for i in range(0, len(X), 10000)])
    return dict(Xtr=X[:n_train], Xte=X[n_train:], ytr=y[:n_train], yte=y[n_train:],
                sizes=[784, 256, 10])


def as_dtype(d, dtype):
    """The data set d with its features (and one-hot targets) in dtype (the contenders follow
    X's dtype)."""
    d = dict(d, Xtr=d["Xtr"].astype(dtype), Xte=d["Xte"].astype(dtype))
    if "Ytr" in d:
        d["Ytr"] = d["Ytr"].astype(dtype)
    return d


def head(d, k):
    """The data set d cut to its first k training samples."""
    return dict(d, Xtr=d["Xtr"][:k], ytr=d["ytr"][:k], Ytr=d["Ytr"][:k])


def network(sizes, **kw):
    net = cb.Network(sizes, **kw)
    net.n_threads = THREADS or net.n_threads
    return net


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------- online, batch size 1

def start_thetas(seed):
    """The same starting Thetas for every online contender (bias in column 0)."""
    return [t.copy() for t in cb.Network([64, 30, 10], random_state=seed).thetas]


def online_cbackprop(d, seed, loss="cross_entropy"):
    """Targets as the one-hot matrix Ytr, like the other online contenders (and so that a
    few rows need not hold every class)."""
    net = network(d["sizes"], loss=loss, dtype=d["Xtr"].dtype, random_state=seed)
    Y = d["Ytr"].astype(net.dtype)
    t, _ = timed(lambda: net.fit(d["Xtr"], Y, solver="online", epochs=1,
                                 learning_rate=LR_ONLINE, shuffle=False))
    acc = float(np.mean(net.forward(d["Xte"]).argmax(1) == d["yte"]))
    return dict(time=t / len(d["Xtr"]), acc=acc, iters=1, params=net.params.copy())


def online_numpy(d, seed):
    """The derivation's SGD, vectorized per sample: forward, deltas, Theta -= rate * grad."""
    T1, T2 = start_thetas(seed)
    b1, W1, b2, W2 = T1[:, 0], T1[:, 1:], T2[:, 0], T2[:, 1:]      # views into T1, T2
    t = time.perf_counter()
    for x, y in zip(d["Xtr"], d["Ytr"]):
        a2 = sigmoid(W1 @ x + b1)
        h = sigmoid(W2 @ a2 + b2)
        d3 = h - y
        d2 = (W2.T @ d3) * a2 * (1.0 - a2)
        W2 -= LR_ONLINE * np.outer(d3, a2)
        b2 -= LR_ONLINE * d3
        W1 -= LR_ONLINE * np.outer(d2, x)
        b1 -= LR_ONLINE * d2
    t = time.perf_counter() - t
    h = sigmoid(sigmoid(d["Xte"] @ W1.T + b1) @ W2.T + b2)
    return dict(time=t / len(d["Xtr"]), acc=float(np.mean(h.argmax(1) == d["yte"])), iters=1,
                params=np.concatenate([T1.ravel(), T2.ravel()]))


def online_reference(d, seed, gradient=reference.cost_and_gradient_loop):
    """The same SGD, each sample's gradient from cbackprop.reference's per-sample loop (NumPy)
    or its pure-Python version (gradient=reference.pure_python)."""
    thetas = start_thetas(seed)
    t = time.perf_counter()
    for x, y in zip(d["Xtr"], d["Ytr"]):
        _, grads = gradient(thetas, x[None], y[None])
        for theta, grad in zip(thetas, grads):
            theta -= LR_ONLINE * grad
    t = time.perf_counter() - t
    h = reference.forward(thetas, d["Xte"])
    return dict(time=t / len(d["Xtr"]), acc=float(np.mean(h.argmax(1) == d["yte"])), iters=1,
                params=np.concatenate([theta.ravel() for theta in thetas]))


def torch_dtype(d):
    return torch.float32 if d["Xtr"].dtype == np.float32 else torch.float64


def torch_mlp(sizes, dtype, thetas=None, sigmoid_output=False):
    """nn.Linear layers with sigmoid between them; optionally our Thetas as the start."""
    layers = []
    for l in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[l], sizes[l + 1], dtype=dtype)
        if thetas is not None:
            with torch.no_grad():
                lin.bias.copy_(torch.from_numpy(thetas[l][:, 0].copy()))
                lin.weight.copy_(torch.from_numpy(thetas[l][:, 1:].copy()))
        layers += [lin, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*(layers if sigmoid_output else layers[:-1]))


def online_torch(d, seed):
    """Plain PyTorch loop, batch 1: sigmoid outputs, BCE summed over units, SGD."""
    model = torch_mlp(d["sizes"], torch_dtype(d), start_thetas(seed), sigmoid_output=True)
    opt = torch.optim.SGD(model.parameters(), lr=LR_ONLINE)
    X, Y = torch.from_numpy(d["Xtr"]), torch.from_numpy(d["Ytr"])
    bce = torch.nn.functional.binary_cross_entropy

    def epoch():
        for i in range(len(X)):
            opt.zero_grad()
            bce(model(X[i:i + 1]), Y[i:i + 1], reduction="sum").backward()
            opt.step()
    t, _ = timed(epoch)
    with torch.no_grad():
        h = model(torch.from_numpy(d["Xte"])).numpy()
    params = [np.column_stack([m.bias.detach(), m.weight.detach()]).ravel()
              for m in model if isinstance(m, torch.nn.Linear)]
    return dict(time=t / len(X), acc=float(np.mean(h.argmax(1) == d["yte"])), iters=1,
                params=np.concatenate(params))


# --------------------------------------------------- mini-batch Adam, L-BFGS (per epoch/iter)

def mb_cbackprop(d, seed, epochs, batch):
    net = network(d["sizes"], output="softmax", dtype=d["Xtr"].dtype, random_state=seed)
    t, _ = timed(lambda: net.fit(d["Xtr"], d["ytr"], solver="adam", epochs=epochs,
                                 batch_size=batch, learning_rate=LR_ADAM, tol=0.0,
                                 n_iter_no_change=epochs, random_state=seed))
    return dict(time=t / net.n_iter_, acc=net.score(d["Xte"], d["yte"]), iters=net.n_iter_)


def mb_sklearn(d, seed, epochs, batch):
    return sklearn_mlp(d, seed, solver="adam", batch_size=batch, learning_rate_init=LR_ADAM,
                       max_iter=epochs, n_iter_no_change=epochs)


def sklearn_mlp(d, seed, **kw):
    """MLPClassifier, logistic hidden units (its output is softmax for multi-class), alpha 0."""
    clf = MLPClassifier(hidden_layer_sizes=(d["sizes"][1],), activation="logistic", alpha=0.0,
                        tol=0.0, random_state=seed, **kw)
    t, _ = timed(lambda: clf.fit(d["Xtr"], d["ytr"]))
    return dict(time=t / clf.n_iter_, acc=clf.score(d["Xte"], d["yte"]), iters=clf.n_iter_)


def mb_torch(d, seed, epochs, batch):
    """Plain PyTorch loop: softmax + cross-entropy (mean over the batch), Adam."""
    torch.manual_seed(seed)
    model = torch_mlp(d["sizes"], torch_dtype(d))
    opt = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
    X, y = torch.from_numpy(d["Xtr"]), torch.from_numpy(d["ytr"]).long()
    loss = torch.nn.CrossEntropyLoss()

    def train():
        for _ in range(epochs):
            perm = torch.randperm(len(X))
            for i in range(0, len(X), batch):
                idx = perm[i:i + batch]
                opt.zero_grad()
                loss(model(X[idx]), y[idx]).backward()
                opt.step()
    t, _ = timed(train)
    with torch.no_grad():
        pred = model(torch.from_numpy(d["Xte"])).argmax(1).numpy()
    return dict(time=t / epochs, acc=float(np.mean(pred == d["yte"])), iters=epochs)


def mb_bare_products(d, seed, epochs, batch):
    """The matrix products of mini-batch epochs alone (forward, gradients, the deltas' back
    products), NumPy in X's dtype on contiguous batches: the floor for a BLAS-based contender.
    It learns nothing, so no accuracy."""
    X, sizes = d["Xtr"], d["sizes"]
    rng = np.random.default_rng(seed)
    Ws = [rng.uniform(-0.1, 0.1, (b, a)).astype(X.dtype) for a, b in zip(sizes, sizes[1:])]

    def epoch():
        for i in range(0, len(X), batch):
            a = [X[i:i + batch]]
            for W in Ws:
                a.append(a[-1] @ W.T)
            delta = a.pop()
            for l in reversed(range(len(Ws))):
                delta.T @ a[l]                          # dJ/dW(l)
                if l:
                    delta = delta @ Ws[l]               # delta(l), before g'
    t, _ = timed(lambda: [epoch() for _ in range(epochs)])
    return dict(time=t / epochs, acc=None, iters=epochs)


def lbfgs_cbackprop(d, seed, max_iter):
    net = network(d["sizes"], output="softmax", random_state=seed)
    t, _ = timed(lambda: net.fit(d["Xtr"], d["ytr"], solver="lbfgs", max_iter=max_iter,
                                 tol=0.0))
    return dict(time=t / net.n_iter_, acc=net.score(d["Xte"], d["yte"]), iters=net.n_iter_)


# ------------------------------------------------------------------ running and reporting

def contenders(name, cfg):
    """{contender: fn(data, seed)} for a workload, cbackprop first; torch only if installed."""
    if name == "online":
        c = {"cbackprop": online_cbackprop, "numpy loop": online_numpy,
             "pytorch b=1": online_torch}
    elif name == "lbfgs":
        it = cfg["lbfgs_iter"]
        c = {"cbackprop": lambda d, s: lbfgs_cbackprop(d, s, it),
             "scikit-learn": lambda d, s: sklearn_mlp(d, s, solver="lbfgs", max_iter=it)}
    else:
        e, b = (cfg["adam_epochs"], 32) if name == "adam" else (2, 128)
        c = {k: (lambda f: lambda d, s: f(d, s, e, b))(f) for k, f in
             (("cbackprop", mb_cbackprop), ("scikit-learn", mb_sklearn), ("pytorch", mb_torch))}
    return {k: f for k, f in c.items() if torch is not None or not k.startswith("pytorch")}


def run_workload(name, data, cfg, pause):
    fns = contenders(name, cfg)
    if name in ("online", "adam", "lbfgs"):              # cheap: one untimed warm-up each
        for f in fns.values():
            f(data, 0)
    return interleave({k: (lambda f: lambda r: f(data, r))(f) for k, f in fns.items()},
                      cfg["repeats"], pause)


def summarize(name, runs, unit, scale):
    base = statistics.median(r["time"] for r in runs["cbackprop"])
    base_acc = statistics.median(r["acc"] for r in runs["cbackprop"])
    rows = []
    for k, rs in runs.items():
        times = [r["time"] for r in rs]
        med, acc = statistics.median(times), statistics.median(r["acc"] for r in rs)
        need, equal_acc = GOALS.get(name, {}).get(k, (None, False))
        goal = "" if need is None else (f">= {need}x" if need > 1 else "faster") + (
            " at equal acc" if equal_acc else "")
        met = "" if need is None else "yes" if med / base >= need and (
            not equal_acc or base_acc >= acc - ACC_SLACK) else "NO"
        check = ""
        if "params" in rs[0] and k != "cbackprop":
            diff = max(np.max(np.abs(r["params"] - c["params"])) / np.max(np.abs(c["params"]))
                       for r, c in zip(rs, runs["cbackprop"]))
            check = f"params vs cbackprop: max rel diff {diff:.1e}"
        rows.append(dict(workload=name, contender=k, unit=unit, median=med * scale,
                         min=min(times) * scale, max=max(times) * scale, accuracy=acc,
                         iters=statistics.median(r["iters"] for r in rs),
                         ratio=med / base, goal=goal, met=met, check=check))
    return rows


def print_table(rows):
    print(f"\n{'workload':<10} {'contender':<13} {'median':>10} {'min - max':>19} {'unit':<10} "
          f"{'acc':>6} {'iters':>5} {'ratio':>7}  goal")
    for r in rows:
        print(f"{r['workload']:<10} {r['contender']:<13} {r['median']:>10.4g} "
              f"{r['min']:>9.4g} - {r['max']:<7.4g} {r['unit']:<10} {r['accuracy']:>6.4f} "
              f"{r['iters']:>5g} {r['ratio']:>6.2f}x  {r['goal']}{' -> ' + r['met'] if r['met'] else ''}"
              f"{'   [' + r['check'] + ']' if r['check'] else ''}")
    print("ratio = contender's median / cbackprop's: how many times faster cbackprop is.")


# -------------------------------------------------------------------------------- memory

def memory_child(name, rows):
    """In a fresh process: one 2-epoch fit of the synthetic workload; print figures as JSON."""
    import tracemalloc
    d = synthetic(rows)
    fn = contenders("synthetic", FULL)[name]
    reset_peak_rss()                     # the peak RSS (VmHWM) starts at the current RSS
    rss0 = proc_status_bytes("VmRSS")
    tracemalloc.start()
    fn(d, 0)
    print(json.dumps(dict(data=d["Xtr"].nbytes, rss_before=rss0,
                          peak=proc_status_bytes("VmHWM"),
                          traced=tracemalloc.get_traced_memory()[1])))


def memory_run(name, rows):
    """memory_child's figures for one contender, from a fresh Python process; growth = peak
    RSS during fit - RSS before it."""
    p = subprocess.run([sys.executable, __file__, "--memory-child", name, str(rows)],
                       capture_output=True, text=True, check=True)
    m = dict(json.loads(p.stdout.strip().splitlines()[-1]), contender=name, rows=rows)
    m["growth"] = m["peak"] - m["rss_before"]
    return m


def memory(cfg, only_cbackprop):
    names = [k for k in contenders("synthetic", cfg) if k == "cbackprop" or not only_cbackprop]
    print(f"\nmemory: one 2-epoch fit (batch 128) on {cfg['synth_rows']} x 784 float32, each in a "
          "fresh child process with the data loaded.\n  growth = peak RSS during fit (VmHWM, "
          "reset just before fit) - RSS before fit: every allocation, C and BLAS buffers\n  "
          "included. traced = tracemalloc's peak: NumPy and Python allocations only (not torch's "
          "tensors, not malloc in compiled code).")
    out, mb = [], 2.0 ** 20
    for name in names:
        m = memory_run(name, cfg["synth_rows"])
        print(f"  {name:<13} X {m['data'] / mb:6.1f} MB   growth {m['growth'] / mb:6.1f} MB "
              f"({m['growth'] / m['data']:.2f} x X)   traced {m['traced'] / mb:6.1f} MB")
        out.append(m)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 3 rounds (< 1 min)")
    ap.add_argument("--repeats", type=int, help="rounds per workload (default 5; quick 3)")
    ap.add_argument("--only", choices=WORKLOADS, action="append", help="only this (repeatable)")
    ap.add_argument("--threads", type=int, help="limit every BLAS/OpenMP pool, torch and "
                    "cbackprop's n_threads to this (default: as installed)")
    ap.add_argument("--pause", type=float, default=PAUSE, help="seconds between contenders")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child[0], int(args.memory_child[1]))
    cfg = dict(QUICK if args.quick else FULL, repeats=args.repeats or (3 if args.quick else 5))
    if args.threads:
        global THREADS
        THREADS = args.threads
        threadpool_limits(args.threads)          # stays in force for the whole run
        if torch is not None:
            torch.set_num_threads(args.threads)
    e = environment()
    print_environment(e)
    print(f"rounds: {cfg['repeats']}, contenders interleaved (order rotated, reversed every "
          f"other round), {args.pause} s pause between them; times are medians.")
    dig, rows, t0 = digits(), [], time.perf_counter()
    units = dict(online=("us/sample", 1e6), adam=("ms/epoch", 1e3), synthetic=("s/epoch", 1.0),
                 lbfgs=("ms/iter", 1e3))
    for name in [w for w in args.only or WORKLOADS if w != "memory"]:
        t = time.perf_counter()
        data = synthetic(cfg["synth_rows"]) if name == "synthetic" else dig
        rows += summarize(name, run_workload(name, data, cfg, args.pause), *units[name])
        print(f"  {name} done in {time.perf_counter() - t:.0f} s", flush=True)
    mem = memory(cfg, args.quick) if "memory" in (args.only or WORKLOADS) else []
    if rows:
        print("\nonline: 1 epoch, shuffle off, the same start for all: identical updates. adam: "
              f"{cfg['adam_epochs']} epochs, batch 32, rate {LR_ADAM}, softmax. synthetic: "
              f"{cfg['synth_rows']} x 784 -> 256 -> 10 float32, 2 epochs, batch 128, rate "
              f"{LR_ADAM}. lbfgs: max_iter {cfg['lbfgs_iter']}, tol 0, softmax. acc: test set.")
        print_table(rows)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(environment=e, config=cfg, rows=rows, memory=mem), f, indent=1,
                      default=float)


if __name__ == "__main__":
    main()
