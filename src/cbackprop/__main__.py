"""`python -m cbackprop`: check the compiled core against the reference, then time it.

Until the command-line issue lands this is the package's main job: it proves on
the user's own machine that the compiled gradients are the derivation's, and
shows what they cost next to NumPy.
"""
import argparse
import itertools
import sys
import time

import numpy as np

import cbackprop as cb
from cbackprop import reference


def _course_check():
    """The course's checkNNGradients network: 3-5-3, m = 5, debug weights."""
    net = cb.Network([3, 5, 3], init="debug")
    X = reference.debug_initialize_weights(5, 2)
    Y = np.eye(3)[np.arange(1, 6) % 3]
    rows = []
    for lam in (0.0, 3.0):
        J, grads = net.cost_and_gradient(X, Y, lam)
        Jr, gr = reference.cost_and_gradient(net.thetas, X, Y, lam)
        diff_ref = max(np.abs(g - r).max() for g, r in zip(grads, gr))
        rows.append((lam, J, abs(J - Jr), diff_ref, cb.check_gradients(net, X, Y, lam)))
    return rows


def _combinations_check(rng):
    """Every activation/output/loss pair, random shapes, compiled vs reference."""
    worst = {}
    for dtype, act, out, loss in itertools.product(
            ("float64", "float32"), reference.ACTIVATIONS, reference.OUTPUTS, reference.LOSSES):
        if loss == "cross_entropy" and out == "identity":
            continue
        sizes = [int(s) for s in rng.integers(2, 24, size=rng.integers(3, 6))]
        net = cb.Network(sizes, activation=act, output=out, loss=loss, dtype=dtype,
                         random_state=rng)
        X = rng.normal(size=(int(rng.integers(1, 300)), sizes[0]))
        Y = rng.uniform(size=(X.shape[0], sizes[-1]))
        J, grads = net.cost_and_gradient(X, Y, 0.5)
        Jr, gr = reference.cost_and_gradient(
            [t.astype(np.float64) for t in net.thetas], X.astype(dtype).astype(np.float64),
            Y.astype(dtype).astype(np.float64), 0.5, activation=act, output=out, loss=loss)
        err = max([abs(J - Jr) / max(abs(Jr), 1e-300)]
                  + [np.abs(g - r).max() / max(np.abs(r).max(), 1e-300) for g, r in zip(grads, gr)])
        worst[dtype] = max(worst.get(dtype, 0.0), err)
    return worst


def _median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _timings(rng, repeats):
    """The course's exercise shape: 5000 x 400 -> 25 -> 10, lambda 1."""
    m, sizes = 5000, [400, 25, 10]
    X = rng.uniform(size=(m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    rows = []
    for dtype in ("float64", "float32"):
        net = cb.Network(sizes, dtype=dtype, random_state=0)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        thetas = net.thetas
        rows.append((f"cost+gradient {dtype}, cbackprop",
                     _median_ms(lambda: net.cost_and_gradient(Xd, Yd, 1.0), repeats)))
        rows.append((f"cost+gradient {dtype}, NumPy reference",
                     _median_ms(lambda: reference.cost_and_gradient(thetas, Xd, Yd, 1.0), repeats)))
    net = cb.Network(sizes, random_state=0)
    few = 500   # the NumPy loop is slow: time 500 samples, report per sample
    rows.append(("per-sample kernel, us a sample", 1e3 / few * _median_ms(
        lambda: net.cost_and_gradient(X[:few], Y[:few], 1.0, method="per_sample"), repeats)))
    rows.append(("NumPy per-sample loop, us a sample", 1e3 / few * _median_ms(
        lambda: reference.cost_and_gradient_loop(net.thetas, X[:few], Y[:few], 1.0), 3)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cbackprop", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats (median shown)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    print(f"cbackprop {cb.__version__}: compiled backpropagation, checked and timed\n")
    print("The course's gradient check (3-5-3 network, m = 5, debug weights):")
    print(f"  {'lambda':>6}  {'J':>10}  {'|J - J_ref|':>11}  {'max |grad - ref|':>16}  "
          f"{'finite-difference rel. diff':>27}")
    ok = True
    for lam, J, dj, dg, fd in _course_check():
        print(f"  {lam:6.1f}  {J:10.6f}  {dj:11.1e}  {dg:16.1e}  {fd:27.1e}")
        ok &= dj < 1e-12 and dg < 1e-12 and fd < 1e-8
    worst = _combinations_check(rng)
    print("\nEvery activation x output x loss, random shapes, max relative difference to the "
          "reference:")
    for dtype, err in worst.items():
        print(f"  {dtype}: {err:.1e}")
    ok &= worst["float64"] < 1e-10 and worst["float32"] < 1e-4

    print("\nTiming, the course's exercise shape (5000 x 400 -> 25 -> 10, lambda 1), "
          f"median of {args.repeats}:")
    for name, ms in _timings(rng, args.repeats):
        unit = "" if "us a sample" in name else " ms"
        print(f"  {name:<40} {ms:9.2f}{unit}")
    print("\nall checks passed" if ok else "\nCHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
