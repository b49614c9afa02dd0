"""Sparse input (issue 15): cbackprop on a scipy.sparse CSR matrix against scikit-learn's MLP
on the same matrix, and against cbackprop on the densified matrix.

Data: a matrix shaped like TF-IDF text features, made here: 20,000 x 50,000 at 0.2%
density (100 stored entries a row), column popularity falling as a power law (a few
frequent "words", a long tail: Zipf's law, as in text), values log(1 + count) * idf, rows
scaled to unit length (TfidfVectorizer's defaults); 10 classes from a planted linear model
on the 2,000 most frequent columns, plus noise. 80/20 split. Both estimators: hidden_layer_sizes=(64,), relu, alpha=1e-4, the
same fixed budget (adam: 10 epochs of batch 200; lbfgs: 30 iterations; tol=0, so that both
run it all), float64.

Workloads:
  fit        fit time and test accuracy: scikit-learn on CSR, cbackprop on CSR, cbackprop on
             the densified matrix (only where it fits in memory: `--dense-rows` rows of it,
             its time scaled to the full data per epoch or iteration).
  crossover  where sparse stops paying: one adam epoch and one full-batch cost and gradient
             (what lbfgs calls), CSR against dense, on 20,000 x 5,000 at densities from
             0.1% to 30%.

Contenders run interleaved (order rotated from round to round) with a pause between them;
figures are medians over rounds. Goal: cbackprop on CSR >= 5x faster than scikit-learn at
equal accuracy (within one point), and faster than the dense path below a few percent
density. Prints figures; asserts nothing.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/bench_sparse.py
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one cbackprop's cython_blas calls)
import scipy.sparse as sp

import cbackprop as cb
from cbackprop.sklearn import BackpropClassifier
from _common import PAUSE, environment, interleave, print_environment, timed

warnings.simplefilter("ignore")       # ConvergenceWarning: both run the same budget
PARAMS = dict(hidden_layer_sizes=(64,), activation="relu", alpha=1e-4, tol=0.0,
              n_iter_no_change=10 ** 6)
BUDGET = {"adam": dict(max_iter=10, batch_size=200), "lbfgs": dict(max_iter=30)}
GOAL, ACC_SLACK = 5.0, 0.01
FULL = dict(rows=20000, cols=50000, density=0.002, rounds=3, dense_rows=2000,
            cross_rows=20000, cross_cols=5000, densities=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3])
QUICK = dict(rows=3000, cols=8000, density=0.005, rounds=1, dense_rows=1000,
             cross_rows=2000, cross_cols=2000, densities=[0.003, 0.03, 0.3])


def tfidf_like(m, n, density, n_classes=10, seed=0):
    """(X as CSR float64, y): see the module's docstring."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(n) + 10.0)
    popularity = rng.permutation(popularity / popularity.sum())
    per_row = np.maximum(1, rng.poisson(density * n, m))
    cols = rng.choice(n, size=int(per_row.sum()), p=popularity)
    rows = np.repeat(np.arange(m), per_row)
    counts = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(m, n))
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=n)
    idf = np.log((1 + m) / (1 + df)) + 1
    X = counts.copy()
    X.data = np.log1p(X.data) * idf[X.indices]
    X = sp.csr_matrix(X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1))))
    # the classes: a linear model on the 2,000 most frequent words (as topics are), plus noise
    weights = np.zeros((n, n_classes))
    frequent = np.argsort(popularity)[-2000:]
    weights[frequent] = rng.normal(size=(len(frequent), n_classes))
    scores = X @ weights
    scores += rng.normal(scale=scores.std() * 0.1, size=scores.shape)
    return X, scores.argmax(axis=1)


def _split(X, y, test=0.2):
    k = int(X.shape[0] * (1 - test))
    return X[:k], X[k:], y[:k], y[k:]


def _median(v):
    return statistics.median(v)


def bench_fit(cfg, pause, solvers=None):
    from sklearn.neural_network import MLPClassifier
    X, y = tfidf_like(cfg["rows"], cfg["cols"], cfg["density"])
    X_train, X_test, y_train, y_test = _split(X, y)
    k = cfg["dense_rows"]
    dense_train = X_train[:k].toarray()
    print(f"\n== fit: {X.shape[0]} x {X.shape[1]} CSR, {X.nnz / X.shape[0]:.0f} entries a row "
          f"({100 * X.nnz / X.shape[0] / X.shape[1]:.2f}%), 10 classes, (64,) relu ==")
    for solver, budget in BUDGET.items():
        if solvers and solver not in solvers:
            continue
        def fit(cls, X_fit, y_fit):
            def one(r):
                est = cls(**PARAMS, **budget, solver=solver, random_state=r)
                seconds, _ = timed(lambda: est.fit(X_fit, y_fit))
                acc = est.score(X_test, y_test) if X_fit.shape[0] == X_train.shape[0] else None
                return seconds, acc, est.n_iter_
            return one

        contenders = {"scikit-learn, CSR": fit(MLPClassifier, X_train, y_train),
                      "cbackprop, CSR": fit(BackpropClassifier, X_train, y_train),
                      f"cbackprop, dense ({k} rows)": fit(BackpropClassifier, dense_train,
                                                           y_train[:k])}
        res = interleave(contenders, cfg["rounds"], pause, progress=True)
        unit = "epoch" if solver == "adam" else "iteration"
        per = {}
        print(f"solver={solver!r}, {budget}")
        for name, runs in res.items():
            seconds = _median([s for s, _, _ in runs])
            per[name] = _median([s / n for s, _, n in runs])
            if name.startswith("cbackprop, dense"):
                per[name] *= X_train.shape[0] / k          # scaled to the full training rows
            accs = [a for _, a, _ in runs if a is not None]
            acc = f"accuracy {_median(accs):.4f}" if accs else "(a subset: time only)"
            print(f"  {name:30s} fit {seconds:8.2f} s  {acc:24s} {per[name]:8.3f} s an {unit}"
                  f" (full data)")
        acc = {n: _median([a for _, a, _ in res[n]]) for n in list(res)[:2]}
        speedup = per["scikit-learn, CSR"] / per["cbackprop, CSR"]
        dense = per[f"cbackprop, dense ({k} rows)"] / per["cbackprop, CSR"]
        print(f"  cbackprop on CSR: {speedup:.1f}x scikit-learn's speed (goal {GOAL:.0f}x: "
              f"{'met' if speedup >= GOAL else 'NOT met'}), accuracy "
              f"{100 * (acc['cbackprop, CSR'] - acc['scikit-learn, CSR']):+.2f} points (goal "
              f"within 1: {'met' if acc['cbackprop, CSR'] >= acc['scikit-learn, CSR'] - ACC_SLACK else 'NOT met'}); "
              f"{dense:.1f}x the dense path's speed")


def bench_crossover(cfg, pause):
    m, n = cfg["cross_rows"], cfg["cross_cols"]
    print(f"\n== crossover: {m} x {n}, (64,) relu, 10 classes; CSR time / dense time (< 1: "
          f"CSR faster) ==")
    print(f"  {'density':>8s} {'adam epoch':>12s} {'cost+grad':>12s}")
    crossed = {}
    for density in cfg["densities"]:
        X, y = tfidf_like(m, n, density, seed=1)
        Xd = X.toarray()
        Y = np.eye(10)[y]
        net = cb.Network([n, 64, 10], activation="relu", output="softmax", random_state=0)
        csr = net._check_X(X).with_columns()        # as fit holds it

        def epoch(data):
            def one(r):
                twin = net.copy()
                return timed(lambda: twin.fit(data, y, solver="adam", epochs=1,
                                              batch_size=200, random_state=r))[0]
            return one

        def cost_grad(data):
            return lambda r: timed(lambda: net.cost_and_gradient(data, Y, lam=1e-4))[0]

        res = interleave({"adam csr": epoch(X), "adam dense": epoch(Xd),
                          "cg csr": cost_grad(csr), "cg dense": cost_grad(Xd)},
                         cfg["rounds"], pause)
        ratios = [_median(res[f"{w} csr"]) / _median(res[f"{w} dense"]) for w in ("adam", "cg")]
        for w, r in zip(("adam", "cg"), ratios):
            if r < 1:
                crossed.pop(w, None)              # CSR faster again: not crossed for good
            elif w not in crossed:
                crossed[w] = density
        print(f"  {100 * density:7.1f}% {ratios[0]:12.2f} {ratios[1]:12.2f}")
    for w, name in (("adam", "adam epoch"), ("cg", "cost and gradient")):
        if w in crossed:
            print(f"  {name}: the dense path is as fast or faster from {100 * crossed[w]:.1f}% "
                  f"density on")
        else:
            print(f"  {name}: CSR is faster at the highest density measured")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, one round")
    parser.add_argument("--rounds", type=int, help="rounds of each workload")
    parser.add_argument("--pause", type=float, default=PAUSE, help="seconds between contenders")
    parser.add_argument("--only", choices=("fit", "crossover"), action="append")
    parser.add_argument("--solver", choices=tuple(BUDGET), action="append",
                        help="the fit workload for this solver only (repeatable)")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    print_environment(environment())
    t0 = time.perf_counter()
    if not args.only or "fit" in args.only:
        bench_fit(cfg, args.pause, args.solver)
    if not args.only or "crossover" in args.only:
        bench_crossover(cfg, args.pause)
    print(f"\n({time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
