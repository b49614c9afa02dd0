"""What every benchmark script shares: the environment header, interleaved timing, statistics,
tables and the peak-memory counters of /proc.

Timing on a shared 2-core machine: contenders run interleaved (every round runs each one once),
with the order rotated and reversed from round to round and a pause before each turn, so that
drift hits all of them alike and no contender always follows the same neighbour. The pause
matters: OpenBLAS keeps its worker threads spinning for about 0.1 s after a call, PyTorch has its
own OpenMP pool, and on 2 cores a call made straight after another library's can be several
times slower. `order_effect` compares each contender's rounds run in one order with those run in
the reverse one, to show whether its figure depends on the order.
"""
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time

CORES = len(os.sched_getaffinity(0))
PAUSE = 0.2                  # seconds of rest before each contender's turn
# steady_run's warm-up and calls for fits of about 20 ms (bench_units, bench_dropout): with
# 0.02 s the first fits after the pause came out slow (benchmarks/README.md)
SHORT_FIT = dict(warm=0.25, calls=5)
BUSY_LOAD = 0.5              # a load average above this on arrival: other work skews figures
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "CBACKPROP_CPU")


# ---------------------------------------------------------------------------- environment

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def thread_pools():
    """Every BLAS and OpenMP pool threadpoolctl sees: library, version, kernel, threads, owner
    (the folder of the shared library: numpy.libs, scipy.libs, torch/lib, ...)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [dict(api=p["user_api"], lib=p["internal_api"], version=p.get("version"),
                 kernel=p.get("architecture"), threads=p["num_threads"],
                 owner=os.path.basename(os.path.dirname(p["filepath"])),
                 file=os.path.basename(p["filepath"])) for p in threadpool_info()]


def environment(**extra):
    """Versions, CPU, load average, the BLAS pools and their kernels, thread-related variables.

    Import the contenders' libraries (SciPy's BLAS, torch, ...) first: threadpoolctl only sees
    the pools already loaded. `extra` adds entries (for example the FANN library found).
    """
    versions = dict(python=platform.python_version())
    versions.update((name, _version(module)) for name, module in (
        ("cbackprop", "cbackprop"), ("numpy", "numpy"), ("scipy", "scipy"),
        ("scikit-learn", "sklearn"), ("torch", "torch"), ("threadpoolctl", "threadpoolctl")))
    try:
        import torch
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    from cbackprop import _core
    return dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                cpu=cpu_model(), cores=CORES, load=list(os.getloadavg()), versions=versions,
                env={k: os.environ.get(k) for k in ENV_VARS}, pools=thread_pools(),
                torch_threads=torch_threads,
                cbackprop_build=f"{_core.BUILD} (of {', '.join(_core.runnable_builds())})"
                                + ("" if _core.HAS_OPENMP else ", without OpenMP: one thread"),
                **extra)


def environment_lines(env):
    """The environment as lines of text (for the console and for markdown)."""
    load = " ".join(f"{x:.2f}" for x in env["load"])
    busy = "  <- busy: other work skews the figures" if env["load"][0] > BUSY_LOAD else ""
    lines = [f"{env['date']}; CPU: {env['cpu']}, {env['cores']} usable cores; "
             f"load average {load}{busy}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
             + "".join(f"; {k} not installed" for k, v in env["versions"].items() if not v)]
    lines.append("env: " + ", ".join(f"{k}={'(unset)' if v is None else v}"
                                     for k, v in env["env"].items()))
    if env["pools"] is None:
        lines.append("thread pools: unknown (threadpoolctl is not installed)")
    for p in env["pools"] or []:
        lines.append(f"{p['api']} ({p['owner']}): {p['lib']} {p['version'] or ''}, kernel "
                     f"{p['kernel'] or '-'}, {p['threads']} threads")
    if env["torch_threads"] is not None:
        lines.append(f"torch intra-op threads: {env['torch_threads']}")
    lines += [f"{k}: {v}" for k, v in env.items() if k not in (
        "date", "cpu", "cores", "load", "versions", "env", "pools", "torch_threads",
        "load_after", "seconds")]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if env["env"].get(var) is not None:
            lines.append(f"{var} is set: it forces a kernel; unset it in the benchmark command "
                         f"(env -u {var} ...)")
    return lines


def print_environment(env):
    print("\n".join(environment_lines(env)), flush=True)


# ---------------------------------------------------------------------------- timing

def timed(fn):
    """(seconds, fn's result)."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


@contextlib.contextmanager
def all_threads(n):
    """Every BLAS and OpenMP pool (threadpoolctl) and PyTorch, if loaded, held to n threads."""
    from threadpoolctl import threadpool_limits
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)


def steady(op, warm=0.02, calls=3):
    """Seconds of one call of op in its steady state, the state of a loop that calls it back
    to back: untimed calls for at least `warm` seconds (two at least), then the median of
    `calls` timed calls. After a rest, the first calls are slow (threads asleep, idle cores
    clocked down or descheduled by the hypervisor): measured here, the first call of a
    2-millisecond cost and gradient after 0.2 s of rest took 4x longer, the second 1.6x."""
    t0 = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - t0 < warm:
        op()
        n += 1
    return statistics.median(timed(op)[0] for _ in range(calls))


def steady_run(fn, warm=0.02, calls=3):
    """fn(r) -> {"time": seconds, ...} timed like `steady`: untimed calls for at least `warm`
    seconds (two at least), then the result of the median of `calls` timed calls. For
    contenders that time themselves (an online epoch: a new network trained from the same
    start each call, so every call does the same work)."""
    def run(r):
        t0 = time.perf_counter()
        n = 0
        while n < 2 or time.perf_counter() - t0 < warm:
            fn(r)
            n += 1
        results = sorted((fn(r) for _ in range(calls)), key=lambda res: res["time"])
        return results[len(results) // 2]
    return run


def round_order(names, r):
    """The order of round r: rotated by one every two rounds, reversed in odd rounds."""
    names = list(names)
    k = (r // 2) % len(names)
    names = names[k:] + names[:k]
    return names[::-1] if r % 2 else names


def interleave(contenders, rounds, pause=PAUSE, progress=False):
    """{name: [fn(r) for each round r]}: each round runs every contender once, in round_order.

    Each contender's turn starts with `pause` seconds of rest (see the module's docstring).
    """
    results = {name: [None] * rounds for name in contenders}
    for r in range(rounds):
        for name in round_order(contenders, r):
            time.sleep(pause)
            results[name][r] = contenders[name](r)
        if progress:
            print(".", end="", flush=True)
    if progress:
        print()
    return results


def order_effect(values):
    """median of the rounds run in the forward order / median of those run reversed (even and
    odd rounds of `interleave`): near 1 when a contender's figure does not depend on order."""
    forward, reverse = values[0::2], values[1::2]
    if not forward or not reverse or statistics.median(reverse) == 0:
        return None
    return statistics.median(forward) / statistics.median(reverse)


def spread(values, scale=1.0):
    """median, min, max (times scale) and the number of values."""
    return dict(median=statistics.median(values) * scale, min=min(values) * scale,
                max=max(values) * scale, n=len(values))


# ---------------------------------------------------------------------------- tables

def fmt(x, digits=4):
    """A number in `digits` significant digits; '-' for None."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if x == 0 or 1e-3 <= abs(x) < 10 ** digits:
        return f"{x:.{digits}g}"
    return f"{x:.{digits - 1}e}"


def markdown_table(headers, rows, right=()):
    """A markdown table; columns named in `right` are right-aligned. Cells are str()'d."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if h in right else c.ljust(w)
                                 for c, w, h in zip(cells, widths, headers)) + " |"
    rule = "|" + "|".join(("-" * (w + 1) + ":") if h in right else "-" * (w + 2)
                          for w, h in zip(widths, headers)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


# ---------------------------------------------------------------------------- memory (Linux)

def proc_status_bytes(field):
    """A field of /proc/self/status in bytes (VmRSS, VmHWM: the peak resident set size)."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":")) * 1024


def reset_peak_rss():
    """Reset VmHWM to the current resident set size (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
