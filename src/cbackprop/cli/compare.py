"""The compiled core against the NumPy reference (cbackprop.reference): `check` compares
their costs and gradients (and finite differences), `bench` times them."""
import itertools
import time

import numpy as np

import cbackprop as cb
from cbackprop import _validation as v, reference
from cbackprop._core import BUILD, HAS_OPENMP
from cbackprop._core.threads import usable_cores
from cbackprop.cli.report import CLIError, out


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
    for dtype, act, out_layer, loss in itertools.product(
            ("float64", "float32"), reference.ACTIVATIONS, reference.OUTPUTS, reference.LOSSES):
        if ((loss == "cross_entropy" and out_layer in v.VALUE_OUTPUTS)
                or (loss == "poisson") != (out_layer == "exp")):
            continue
        sizes = [int(s) for s in rng.integers(2, 24, size=rng.integers(3, 6))]
        net = cb.Network(sizes, activation=act, output=out_layer, loss=loss, dtype=dtype,
                         random_state=rng)
        X = rng.normal(size=(int(rng.integers(1, 300)), sizes[0]))
        Y = rng.uniform(size=(X.shape[0], sizes[-1]))
        J, grads = net.cost_and_gradient(X, Y, 0.5)
        Jr, gr = reference.cost_and_gradient(
            [t.astype(np.float64) for t in net.thetas], X.astype(dtype).astype(np.float64),
            Y.astype(dtype).astype(np.float64), 0.5, activation=act, output=out_layer, loss=loss)
        err = max([abs(J - Jr) / max(abs(Jr), 1e-300)]
                  + [np.abs(g - r).max() / max(np.abs(r).max(), 1e-300) for g, r in zip(grads, gr)])
        worst[dtype] = max(worst.get(dtype, 0.0), err)
    return worst


def cmd_check(args):
    rng = np.random.default_rng(args.seed)
    out(f"cbackprop {cb.__version__}: the compiled gradients against the NumPy reference and "
        "finite differences\n")
    out("The course's gradient check (3-5-3 network, m = 5, debug weights):")
    out(f"  {'lambda':>6}  {'J':>10}  {'|J - J_ref|':>11}  {'max |grad - ref|':>16}  "
        f"{'finite-difference rel. diff':>27}")
    ok = True
    for lam, J, dj, dg, fd in _course_check():
        out(f"  {lam:6.1f}  {J:10.6f}  {dj:11.1e}  {dg:16.1e}  {fd:27.1e}")
        ok &= dj < 1e-12 and dg < 1e-12 and fd < 1e-8
    worst = _combinations_check(rng)
    out("\nEvery activation x output x loss, random shapes, max relative difference to the "
        "reference:")
    for dtype, err in worst.items():
        out(f"  {dtype}: {err:.1e}")
    ok &= worst["float64"] < 1e-10 and worst["float32"] < 1e-4
    if not ok:
        raise CLIError("gradient check FAILED: the compiled core disagrees with the reference "
                       "(see the table above)")
    out("\nall checks passed")
    return 0


class Timing:
    """Milliseconds of repeated calls: the median, and the spread (fastest to slowest run)
    that says how far one run's number can be trusted on a busy machine."""

    def __init__(self, seconds, scale=1.0):
        ms = 1e3 * scale * np.asarray(seconds)
        self.median = float(np.median(ms))
        self.low, self.high = float(ms.min()), float(ms.max())

    @property
    def spread(self):
        """The range of the runs, in percent of the median."""
        return 100 * (self.high - self.low) / self.median

    def __str__(self):
        return f"{self.median:.3g} [{self.low:.3g}-{self.high:.3g}]"


def _time(fn, repeats, scale=1.0):
    fn()                                    # one untimed call: caches, thread pools, buffers
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(times, scale)


def _timings(rng, repeats, quick):
    """The course's exercise shape: 5000 x 400 -> 25 -> 10, lambda 1 (1000 rows if quick)."""
    m, sizes = (1000 if quick else 5000), [400, 25, 10]
    X = rng.uniform(size=(m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    rows = []
    threads = cb.Network(sizes, random_state=0)._row_plan(m, X)[0]
    for dtype in ("float64", "float32"):
        net = cb.Network(sizes, dtype=dtype, random_state=0)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        thetas = net.thetas
        ours = _time(lambda: net.cost_and_gradient(Xd, Yd, 1.0), repeats)
        theirs = _time(lambda: reference.cost_and_gradient(thetas, Xd, Yd, 1.0), repeats)
        rows.append((f"cost+gradient, {dtype}", "ms", ours, theirs))
    net = cb.Network(sizes, random_state=0)
    few = 50 if quick else 500         # the NumPy loop is slow: time a few samples
    # One sample at a time is BLAS level 2 on small vectors: both on one BLAS thread (left
    # free, OpenBLAS would wake its thread pool for every 400 x 25 product).
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        ours = _time(lambda: net.cost_and_gradient(X[:few], Y[:few], 1.0, method="per_sample"),
                     repeats, 1e3 / few)
        theirs = _time(
            lambda: reference.cost_and_gradient_loop(net.thetas, X[:few], Y[:few], 1.0),
            min(repeats, 3), 1e3 / few)
    rows.append(("per-sample loop, float64", "us a sample", ours, theirs))
    return m, threads, rows


def _blas():
    """Each BLAS library loaded (threadpoolctl): its name, version and threads."""
    from threadpoolctl import threadpool_info
    found = {f"{i.get('internal_api')} {i.get('version') or ''}".strip()
             + f" ({i['num_threads']} threads)"
             for i in threadpool_info() if i.get("user_api") == "blas"}
    return ", ".join(sorted(found)) or "none found"


def cmd_bench(args):
    rng = np.random.default_rng(args.seed)
    repeats = args.repeats or (3 if args.quick else 7)
    m, threads, rows = _timings(rng, repeats, args.quick)
    openmp = "OpenMP" if HAS_OPENMP else "no OpenMP: one thread"
    out(f"cbackprop {cb.__version__}, build {BUILD} ({openmp}), {threads} threads for "
        f"{m} rows ({usable_cores()} usable cores); BLAS: {_blas()}")
    out(f"against the NumPy reference (cbackprop.reference), {m} x 400 -> 25 -> 10, lambda 1, "
        f"{repeats} runs each: median [fastest-slowest]")
    out(f"  {'':<26} {'cbackprop':>22} {'NumPy':>22} {'speed-up':>9}")
    for name, unit, ours, theirs in rows:
        short = unit.split()[0]
        out(f"  {name:<26} {str(ours):>19} {short:<2} {str(theirs):>19} {short:<2} "
            f"{theirs.median / ours.median:>8.1f}x")
    noisy = max(t.spread for _, _, *pair in rows for t in pair)
    out("  NumPy: the reference's vectorized cost_and_gradient and its per-sample loop, on the "
        "same BLAS;\n  the per-sample rows run on one thread and one BLAS thread, the others "
        "on the threads above\n  (BLAS held to one thread inside cbackprop's own threads).")
    if noisy > 50:
        out(f"  The runs spread by up to {noisy:.0f}% of their median: the machine is busy, and "
            "the speed-ups\n  may change from run to run (more --repeats, or a quieter machine).")
    return 0
