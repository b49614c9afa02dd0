"""cbackprop.sklearn against scikit-learn's MLPClassifier: accuracy next to time (issue 4).

Workloads:
  fit    digits (1797 x 64, 10 classes; 75/25 stratified split), MLPClassifier's parameters
         for both: hidden_layer_sizes=(30,), activation='logistic', solver 'adam' and 'lbfgs',
         everything else at its default (max_iter=200, tol=1e-4, alpha=1e-4, batch 'auto').
         Test accuracy (median over rounds; round r uses random_state=r for both, so lbfgs
         starts both from the same weights) and fit time.
  grid   GridSearchCV(Pipeline(StandardScaler(), est), 12 settings: alpha x hidden sizes x
         solver, cv=3, n_jobs=2) on the same training set, end to end (fit of every
         candidate, scoring and the refit). cbackprop also runs with n_threads=2 forced in
         each of the 2 jobs (oversubscribed), to show why n_threads=None keeps to the
         OMP_NUM_THREADS that joblib gives its workers.

Contenders run interleaved (order rotated and reversed from round to round) with a pause
between them; figures are medians over rounds (min-max beside). Goals: accuracy within one
point, fit at least 5x faster, the grid search at least 3x faster. Prints figures; asserts
nothing.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/bench_sklearn.py
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one cbackprop's cython_blas calls)
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from cbackprop.sklearn import BackpropClassifier
from _common import PAUSE, environment, interleave, print_environment, timed

warnings.simplefilter("ignore")       # ConvergenceWarning: both run the same budget
PARAMS = dict(hidden_layer_sizes=(30,), activation="logistic")
GRID = {"alpha": [1e-4, 1e-2, 1.0], "hidden_layer_sizes": [(30,), (60,)],
        "solver": ["adam", "lbfgs"]}
FIT_GOAL, GRID_GOAL, ACC_SLACK = 5.0, 3.0, 0.01


def spread(values):
    return f"{statistics.median(values):8.3f} s  ({min(values):.3f}-{max(values):.3f})"


def bench_fit(X_train, X_test, y_train, y_test, rounds, pause):
    print("\n== fit on digits: hidden_layer_sizes=(30,), activation='logistic', defaults "
          "otherwise ==")
    for solver in ("adam", "lbfgs"):
        def run(cls):
            def one(r):
                est = cls(**PARAMS, solver=solver, random_state=r)
                seconds, _ = timed(lambda: est.fit(X_train, y_train))
                return seconds, est.score(X_test, y_test), est.n_iter_
            return one

        contenders = {"scikit-learn": run(MLPClassifier), "cbackprop": run(BackpropClassifier)}
        for one in contenders.values():           # warm-up: imports, first-call costs
            one(0)
        res = interleave(contenders, rounds, pause, progress=True)
        med = {k: statistics.median(s for s, _, _ in v) for k, v in res.items()}
        acc = {k: statistics.median(a for _, a, _ in v) for k, v in res.items()}
        print(f"solver={solver!r}")
        for name, runs in res.items():
            iters = statistics.median(n for _, _, n in runs)
            per = 1e3 * statistics.median(s / n for s, _, n in runs)
            print(f"  {name:13s} fit {spread([s for s, _, _ in runs])}  accuracy "
                  f"{acc[name]:.4f}  n_iter {iters:5.0f}  ({per:.2f} ms an iteration)")
        speedup = med["scikit-learn"] / med["cbackprop"]
        print(f"  cbackprop is {speedup:.1f}x faster (goal {FIT_GOAL:.0f}x: "
              f"{'met' if speedup >= FIT_GOAL else 'NOT met'}); accuracy "
              f"{100 * (acc['cbackprop'] - acc['scikit-learn']):+.2f} points (goal within 1: "
              f"{'met' if acc['cbackprop'] >= acc['scikit-learn'] - ACC_SLACK else 'NOT met'})")


def bench_grid(X_train, X_test, y_train, y_test, rounds, pause):
    n = len(GRID["alpha"]) * len(GRID["hidden_layer_sizes"]) * len(GRID["solver"])
    print(f"\n== GridSearchCV(Pipeline(StandardScaler(), est), {n} settings, cv=3, n_jobs=2): "
          f"alpha x hidden_layer_sizes x solver, activation='logistic' ==")

    def run(make):
        def one(r):
            grid = {f"est__{k}": v for k, v in GRID.items()}
            pipe = make_pipeline(StandardScaler(), make(r))
            pipe.steps[-1] = ("est", pipe.steps[-1][1])
            search = GridSearchCV(pipe, grid, cv=3, n_jobs=2)
            seconds, _ = timed(lambda: search.fit(X_train, y_train))
            return seconds, search.score(X_test, y_test), search.best_params_
        return one

    contenders = {
        "scikit-learn": run(lambda r: MLPClassifier(activation="logistic", random_state=r)),
        "cbackprop": run(lambda r: BackpropClassifier(activation="logistic", random_state=r)),
        "cbackprop, n_threads=2": run(lambda r: BackpropClassifier(
            activation="logistic", random_state=r, n_threads=2)),
    }
    run(lambda r: BackpropClassifier(activation="logistic", random_state=r))(0)   # workers up
    res = interleave(contenders, rounds, pause, progress=True)
    med = {k: statistics.median(s for s, _, _ in v) for k, v in res.items()}
    for name, runs in res.items():
        acc = statistics.median(a for _, a, _ in runs)
        best = runs[0][2]
        print(f"  {name:23s} {spread([s for s, _, _ in runs])}  best-model test accuracy "
              f"{acc:.4f}  (round 0's best: {', '.join(f'{k[5:]}={v}' for k, v in best.items())})")
    speedup = med["scikit-learn"] / med["cbackprop"]
    print(f"  cbackprop is {speedup:.1f}x faster end to end (goal {GRID_GOAL:.0f}x: "
          f"{'met' if speedup >= GRID_GOAL else 'NOT met'}); with n_threads=2 in each job "
          f"{med['cbackprop, n_threads=2'] / med['cbackprop']:.2f}x the time of n_threads=None")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds of the fit workload")
    parser.add_argument("--grid-repeats", type=int, default=3, help="rounds of the grid search")
    parser.add_argument("--pause", type=float, default=PAUSE, help="seconds between contenders")
    parser.add_argument("--only", choices=("fit", "grid"), action="append")
    args = parser.parse_args(argv)

    print_environment(environment())
    X, y = load_digits(return_X_y=True)
    split = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)
    t0 = time.perf_counter()
    if not args.only or "fit" in args.only:
        bench_fit(*split, args.repeats, args.pause)
    if not args.only or "grid" in args.only:
        bench_grid(*split, args.grid_repeats, args.pause)
    print(f"\n({time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
