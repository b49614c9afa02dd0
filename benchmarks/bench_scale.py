"""Scale (issue 14): cbackprop on a Dask cluster and out of core, for benchmarks/run.py
(`--only scale`) or alone (`python benchmarks/bench_scale.py [--quick] [--part NAME]`).

dask      L-BFGS on 1,000,000 x 100 -> 64 -> 10 (float64, 10 classes, softmax): a cost
          evaluation on a LocalCluster of 2 single-threaded worker processes against the
          in-process fit (2 threads), with X made on the workers (dask.array.random) or
          shipped from the client; the persist-once cost apart.
exercise  the same on the course's exercise shape (5000 x 400 -> 25 -> 10): the fixed cost
          of one distributed evaluation (distributed minus in-process time), in ms.
spark     Spark MLlib's MultilayerPerceptronClassifier, local[2], on the same data and layers
          (200,000 x 100 -> 64 -> 10): time an L-BFGS iteration, test accuracy of both at equal
          iterations (pyspark, Java 17 and Debian's libopenblas0-pthread; skipped with a note
          when absent).
memmap    fit (Adam, one epoch) on a float32 numpy.memmap of 8 GB: the peak memory growth, in
          a fresh child process (anonymous memory sampled from /proc/self/status, and VmHWM,
          which counts the file's mapped pages too), and the epoch's time against the same
          epoch on the rows in memory, once the file is in the page cache.
model     the constants of a distributed evaluation (an empty task's round trip, a broadcast
          of P parameters, the gather of n partial gradients) on 2 and more workers, for the
          model of one iteration on W workers in benchmarks/README.md.

Time per evaluation: fits of 1 and of 1 + k iterations from the same start; every cost
evaluation is timed where the solver calls it (training._full_cost_grad wrapped; a Dask fit's
repeat of its last point, served from its cache, runs no task and is not counted), and the
figure is the mean of the longer fit's evaluations after its first. A fit's setup (checks,
persisting the partitions on the workers, done before the solver starts) is reported apart:
the 1-iteration fit's time less its evaluations. The difference of the two fits' times over
the difference of their evaluations, which needs no timing inside fit, is printed beside: it
agrees, less the setup's variation from fit to fit. An iteration: history_["time"] of the
longer fit after its first iteration (Spark: the difference of two fits). Contenders are
interleaved (_common.interleave). Asserts no time.
"""
import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cbackprop as cb                                     # noqa: E402
from cbackprop import training                             # noqa: E402
from _common import fmt, interleave, order_effect, spread  # noqa: E402

SIZES = [100, 64, 10]          # the dask, spark and memmap workloads' network
EXERCISE = [400, 25, 10]
FULL = dict(scale_rounds=3, dask_rows=1_000_000, dask_parts=16, dask_iters=10,
            dask_ship=True, ex_rows=5000, ex_parts=[2, 10], ex_iters=20, ex_rounds=5,
            spark_rows=200_000, spark_test=50_000, spark_iters=10, spark_acc_iters=40,
            spark_rounds=3, memmap_bytes=8_000_000_000, memmap_rounds=2,
            model_workers=[2, 8], model_reps=30, model_sizes=(SIZES, EXERCISE),
            model_tasks=(2, 8, 16, 32), model_big=True)
QUICK = dict(scale_rounds=2, dask_rows=20_000, dask_parts=4, dask_iters=3,
             dask_ship=True, ex_rows=5000, ex_parts=[2], ex_iters=3, ex_rounds=2,
             spark_rows=0, spark_test=0, spark_iters=2, spark_acc_iters=3,
             spark_rounds=1, memmap_bytes=40_000_000, memmap_rounds=1,
             model_workers=[2], model_reps=3, model_sizes=(SIZES,), model_tasks=(2, 8),
             model_big=False)
PARTS = ("dask", "exercise", "spark", "memmap", "model")
SEED = 0
GOAL_DASK = 1.3                # distributed evaluation <= 1.3x the in-process one
GOAL_SPARK = 8.0               # cbackprop on Dask >= 8x faster an iteration than Spark
GOAL_MEMORY_MB = 300
GOAL_EPOCH = 1.2
ACC_SLACK = 0.01


# ------------------------------------------------------------------------------ data

def teacher(n_in, n_out):
    """A fixed random linear teacher: labels = argmax(X @ T), learnable by the MLP."""
    return np.random.default_rng(SEED + 1).standard_normal((n_in, n_out)) / math.sqrt(n_in)


def numpy_data(m, n_in, n_out, seed=SEED, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n_in)).astype(dtype, copy=False)
    return X, np.argmax(X @ teacher(n_in, n_out).astype(dtype), axis=1)


def dask_data(client, m, n_in, n_out, parts, seed=SEED):
    """X and its labels made on the workers (dask.array.random, dask's own matmul and argmax:
    nothing of this module needs to be importable there), persisted."""
    import dask.array as da
    import distributed
    chunk = -(-m // parts)
    X = da.random.default_rng(seed).standard_normal((m, n_in), chunks=(chunk, n_in))
    y = da.argmax(X @ teacher(n_in, n_out), axis=1)
    X, y = client.persist([X, y])
    distributed.wait([X, y])
    return X, y


# ------------------------------------------------------------------------------ cluster

@contextlib.contextmanager
def _main_not_reimported():
    """Worker processes start by multiprocessing's spawn, which imports the parent's main
    script again in each child (run.py: torch, scikit-learn, every benchmark module: seconds
    and hundreds of MB a worker). Without __main__.__file__ it does not; the workers run
    nothing of the main script (only cbackprop's, NumPy's and builtin functions)."""
    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


@contextlib.contextmanager
def local_cluster(n_workers=2):
    import distributed
    with _main_not_reimported():
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def have_dask():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
        return None
    except ImportError as exc:
        return f"dask/distributed not installed ({exc.name}): pip install 'cbackprop[dask]'"


# ------------------------------------------------------------------------------ timing fits

@contextlib.contextmanager
def counting_evaluations():
    """A list that counts the cost evaluations of the fits inside (training._full_cost_grad;
    a Dask fit's cached repeat of its last point, which runs no task, is not counted) and
    records each one's seconds."""
    real = training._full_cost_grad
    log = []

    def counted(run, layout, params, grad, at=None):
        before = getattr(run.data, "_last", None)
        t0 = time.perf_counter()
        J = real(run, layout, params, grad, at=at)
        dt = time.perf_counter() - t0
        if not hasattr(run.data, "_last") or run.data._last is not before:
            log.append(dt)
        return J
    training._full_cost_grad = counted
    try:
        yield log
    finally:
        training._full_cost_grad = real


def lbfgs_fit(sizes, X, y, iters, client=None, dtype="float64"):
    """(seconds, cost evaluations, evaluation seconds, net) of one L-BFGS fit."""
    net = cb.Network(sizes, output="softmax", dtype=dtype, random_state=SEED)
    kw = {} if client is None else dict(client=client)
    with counting_evaluations() as log:
        t0 = time.perf_counter()
        net.fit(X, y, solver="lbfgs", max_iter=iters, tol=0.0, **kw)
        t = time.perf_counter() - t0
    return t, len(log), log, net


def per_evaluation(sizes, X, y, k, client=None, Xte=None, yte=None):
    """One round of a contender: fits of 1 and of 1 + k iterations from the same start.
    time: the mean of the longer fit's evaluations after its first (each timed where the
    solver calls it: a Dask fit's broadcast, tasks, gather and sum included); iteration:
    the longer fit's iterations after its first, from history_["time"]; diff_eval,
    diff_iteration: the same from the difference of the two fits' times (the method that
    needs no timing inside fit; the setup's variation adds to it); setup: what the
    1-iteration fit took besides its evaluations (checks, persisting the partitions)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # "lbfgs ran all N iterations"
        t1, e1, log1, _ = lbfgs_fit(sizes, X, y, 1, client)
        tk, ek, logk, net = lbfgs_fit(sizes, X, y, 1 + k, client)
    hist = net.history_["time"]
    acc = None if Xte is None else float(net.score(Xte, yte))
    return dict(time=statistics.fmean(logk[1:]) if len(logk) > 1 else logk[0],
                iteration=(hist[-1] - hist[0]) / (len(hist) - 1) if len(hist) > 1 else hist[0],
                diff_eval=(tk - t1) / max(1, ek - e1),
                diff_iteration=(tk - t1) / max(1, net.n_iter_ - 1),
                setup=t1 - sum(log1), evals=ek, iters=net.n_iter_,
                eval_median=statistics.median(logk), acc=acc, params=net.params.copy(),
                loss=net.history_["loss"][-1])


def rows_from(workload, runs, unit, scale, baseline, notes=None, checks=None):
    """run.py's table rows ({contender: [round results]}); ratio = median / baseline's."""
    rows = []
    for name, results in runs.items():
        times = [r["time"] for r in results]
        accs = [r["acc"] for r in results if r.get("acc") is not None]
        rows.append(dict(workload=workload, contender=name, unit=unit, **spread(times, scale),
                         order=order_effect(times),
                         accuracy=statistics.median(accs) if accs else None,
                         check=(checks or {}).get(name, ""), note=(notes or {}).get(name, ""),
                         baseline=baseline))
    base = next((r["median"] for r in rows if r["contender"] == baseline), None)
    for r in rows:
        r["ratio"] = r["median"] / base if base else None
    return rows


def med(results, key):
    return statistics.median(r[key] for r in results)


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def skip_goal(workload, text, why):
    return dict(workload=workload, goal=text, value="skipped", met=None, detail=why)


# ------------------------------------------------------------------------------ dask

IN_PROCESS = "cbackprop in process (2 threads)"
ON_WORKERS = "cbackprop Dask, 2 workers, X made there"
SHIPPED = "cbackprop Dask, 2 workers, X from the client"


def dask_workload(cfg, client):
    """L-BFGS evaluation, 1e6 x 100 -> 64 -> 10: 2 single-threaded workers vs in process."""
    import dask.array as da
    m, parts, k = cfg["dask_rows"], cfg["dask_parts"], cfg["dask_iters"]
    t0 = time.perf_counter()
    Xd, yd = dask_data(client, m, SIZES[0], SIZES[-1], parts)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    X, y = client.compute([Xd, yd], sync=True)           # the same rows, in the client
    pulled = time.perf_counter() - t0
    Xte, yte = numpy_data(20000, SIZES[0], SIZES[-1], seed=SEED + 7)
    one_core = one_core_evaluation(SIZES, X, y, parts)
    contenders = {IN_PROCESS: lambda r: per_evaluation(SIZES, X, y, k, None, Xte, yte),
                  ON_WORKERS: lambda r: per_evaluation(SIZES, Xd, yd, k, client, Xte, yte)}
    if cfg["dask_ship"]:
        Xs = da.from_array(X, chunks=(Xd.chunks[0], SIZES[0]))
        contenders[SHIPPED] = lambda r: per_evaluation(SIZES, Xs, y, k, client, Xte, yte)
    runs = interleave(contenders, cfg["scale_rounds"])
    ref = runs[IN_PROCESS][0]["params"]
    checks = {name: f"params vs in process: {max(rel_diff(r['params'], ref) for r in rs):.0e}"
              for name, rs in runs.items() if name != IN_PROCESS}
    notes = {name: (f"{med(rs, 'evals'):.0f} evals for {med(rs, 'iters'):.0f} iterations; "
                    f"{fmt(med(rs, 'iteration') * 1e3)} ms/iteration; by the difference of "
                    f"the fits {fmt(med(rs, 'diff_eval') * 1e3)} ms/evaluation; setup "
                    f"{fmt(med(rs, 'setup'))} s")
             for name, rs in runs.items()}
    rows = rows_from("scale", runs, "ms/evaluation", 1e3, IN_PROCESS, notes, checks)
    for r in rows:
        r["contender"] += f" [{m} x {'-'.join(map(str, SIZES))}]"
        r["baseline"] += f" [{m} x {'-'.join(map(str, SIZES))}]"
    ratio = med(runs[ON_WORKERS], "time") / med(runs[IN_PROCESS], "time")
    goals = [dict(workload="scale", goal=f"L-BFGS evaluation, {m} x 100-64-10, LocalCluster of 2 "
                  f"single-threaded workers <= {GOAL_DASK}x in process", value=f"{ratio:.2f}x",
                  ratio=ratio, met=ratio <= GOAL_DASK,
                  detail=f"{fmt(med(runs[ON_WORKERS], 'time') * 1e3)} vs "
                         f"{fmt(med(runs[IN_PROCESS], 'time') * 1e3)} ms/evaluation, "
                         f"{parts} partitions")]
    extra = dict(made_on_workers_s=made, pulled_to_client_s=pulled, rows=m, partitions=parts,
                 one_core_s=one_core, params=cb.Network(SIZES).params.size,
                 eval_median={name: med(rs, "eval_median") for name, rs in runs.items()},
                 setup={name: med(rs, "setup") for name, rs in runs.items()},
                 per_eval={name: med(rs, "time") for name, rs in runs.items()},
                 per_iteration={name: med(rs, "iteration") for name, rs in runs.items()},
                 per_eval_by_difference={name: med(rs, "diff_eval") for name, rs in runs.items()})
    notes_out = [f"dask: {m} x {SIZES[0]} float64 in {parts} partitions made and persisted on "
                 f"the workers in {made:.1f} s, pulled into the client in {pulled:.1f} s; "
                 "setup = the 1-iteration fit's time besides its evaluations (checks, and on "
                 "Dask persisting the prepared partitions): "
                 + "; ".join(f"{n} {fmt(s)} s" for n, s in extra["setup"].items()),
                 f"dask: one evaluation's sums on one core, partition by partition, in the "
                 "client (cbackprop.blocks.layout_sums, the workers' task): "
                 f"{one_core * 1e3:.1f} ms (median of 3); the median single evaluation "
                 "inside the fits: "
                 + "; ".join(f"{n} {v * 1e3:.1f} ms" for n, v in extra["eval_median"].items())]
    return rows, goals, notes_out, extra


def one_core_evaluation(sizes, X, y, parts, reps=3):
    """Seconds of the workers' work for one evaluation done on one core here: every
    partition's sums (cbackprop.blocks.layout_sums, 1 thread) and their tree_sum."""
    from cbackprop import blocks
    net = cb.Network(sizes, output="softmax", random_state=SEED)
    Y = np.eye(sizes[-1])[y]
    w = np.empty(0)
    chunk = -(-X.shape[0] // parts)
    cut = [(np.ascontiguousarray(X[a:a + chunk]), np.ascontiguousarray(Y[a:a + chunk]))
           for a in range(0, X.shape[0], chunk)]

    def evaluate():
        blocks.tree_sum(blocks.layout_sums(net._layout, Xp, Yp, w, net.params, True, 1)
                        for Xp, Yp in cut)
    evaluate()
    return statistics.median(timed_call(evaluate) for _ in range(reps))


def timed_call(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def exercise_workload(cfg, client):
    """The exercise shape: the fixed cost of one distributed evaluation."""
    import dask.array as da
    m, k = cfg["ex_rows"], cfg["ex_iters"]
    X, y = numpy_data(m, EXERCISE[0], EXERCISE[-1], seed=SEED + 3)
    contenders = {IN_PROCESS: lambda r: per_evaluation(EXERCISE, X, y, k)}
    for parts in cfg["ex_parts"]:
        chunk = -(-m // parts)
        Xd, yd = client.persist([da.from_array(X, chunks=(chunk, EXERCISE[0])),
                                 da.from_array(y, chunks=chunk)])
        contenders[f"cbackprop Dask, 2 workers, {parts} partitions"] = (
            lambda Xd, yd: lambda r: per_evaluation(EXERCISE, Xd, yd, k, client))(Xd, yd)
    runs = interleave(contenders, cfg["ex_rounds"])
    ref = runs[IN_PROCESS][0]["params"]
    checks = {name: f"params vs in process: {max(rel_diff(r['params'], ref) for r in rs):.0e}"
              for name, rs in runs.items() if name != IN_PROCESS}
    base = med(runs[IN_PROCESS], "time")
    fixed = {name: (med(rs, "time") - base) * 1e3 for name, rs in runs.items()
             if name != IN_PROCESS}
    notes = {name: (f"{med(rs, 'evals'):.0f} evals for {med(rs, 'iters'):.0f} iterations; "
                    f"by the difference of the fits {med(rs, 'diff_eval') * 1e3:.2f} ms"
                    + (f"; fixed cost {fixed[name]:.2f} ms/evaluation" if name in fixed else ""))
             for name, rs in runs.items()}
    rows = rows_from("scale", runs, "ms/evaluation", 1e3, IN_PROCESS, notes, checks)
    for r in rows:
        r["contender"] += " [5000 x 400-25-10]"
        r["baseline"] += " [5000 x 400-25-10]"
    base1 = med(runs[IN_PROCESS], "diff_eval")
    single = {name: (med(rs, "diff_eval") - base1) * 1e3 for name, rs in runs.items()
              if name != IN_PROCESS}
    goals = [dict(workload="scale", goal=f"exercise shape: fixed cost of a distributed "
                  f"evaluation ({name.split(', ')[-1]}; reported)", value=f"{ms:.2f} ms",
                  met=True, report=True,
                  detail=f"distributed minus in process ({fmt(base * 1e3)} ms); by the "
                         f"difference of the fits: {single[name]:.2f} ms")
             for name, ms in fixed.items()]
    return rows, goals, [], dict(fixed_ms=fixed, in_process_ms=base * 1e3,
                                 fixed_by_difference_ms=single,
                                 eval_median_ms={n: med(rs, "eval_median") * 1e3
                                                 for n, rs in runs.items()})


# ------------------------------------------------------------------------------ spark

def spark_missing():
    """Why Spark cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return ("pyspark is not installed (pip install pyspark; it needs Java 17+: "
                "apt-get install openjdk-17-jre-headless libopenblas0-pthread)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (apt-get install openjdk-17-jre-headless)"
    return None


def spark_blas():
    """Whether netlib's native BLAS (libblas.so.3, Debian's libopenblas0-pthread) is there."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
              "/usr/lib"):
        if os.path.exists(os.path.join(d, "libblas.so.3")):
            return os.path.realpath(os.path.join(d, "libblas.so.3"))
    return None


class Spark:
    """A local[2] SparkSession and the train/test data as cached DataFrames (read from CSV
    written with 17 significant digits: the same float64 values)."""

    def __init__(self, X, y, Xte, yte, folder):
        from pyspark.sql import SparkSession
        t0 = time.perf_counter()
        self.spark = (SparkSession.builder.master("local[2]").appName("cbackprop-bench")
                      .config("spark.driver.memory", "6g")
                      .config("spark.ui.enabled", "false")
                      .config("spark.ui.showConsoleProgress", "false")
                      .config("spark.sql.shuffle.partitions", "2").getOrCreate())
        self.spark.sparkContext.setLogLevel("ERROR")
        self.started = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.train = self._frame(X, y, os.path.join(folder, "train.csv"))
        self.test = self._frame(Xte, yte, os.path.join(folder, "test.csv"))
        self.loaded = time.perf_counter() - t0
        row = self.train.selectExpr("sum(label)").first()[0]
        self.check = f"labels sum {row:.0f} vs {int(y.sum())}"
        t0 = time.perf_counter()
        self.fit(2)                                  # warm-up: the JVM's JIT, netlib's load
        self.warm = time.perf_counter() - t0
        self.partitions = self.train.rdd.getNumPartitions()
        import pyspark
        self.version = pyspark.__version__
        self.java = self.spark.sparkContext._jvm.java.lang.System.getProperty("java.version")

    def _frame(self, X, y, path):
        from pyspark.ml.feature import VectorAssembler
        from pyspark.sql.types import DoubleType, StructField, StructType
        np.savetxt(path, np.column_stack([y, X]), fmt="%.17g", delimiter=",")
        cols = [f"x{i}" for i in range(X.shape[1])]
        schema = StructType([StructField("label", DoubleType())]
                            + [StructField(c, DoubleType()) for c in cols])
        raw = self.spark.read.csv(path, schema=schema)
        df = VectorAssembler(inputCols=cols, outputCol="features").transform(raw)
        df = df.select("label", "features").cache()
        df.count()
        return df

    def fit(self, iters):
        from pyspark.ml.classification import MultilayerPerceptronClassifier
        t0 = time.perf_counter()
        model = MultilayerPerceptronClassifier(layers=SIZES, maxIter=iters, tol=0.0,
                                               seed=SEED, solver="l-bfgs").fit(self.train)
        t = time.perf_counter() - t0
        summary = model.summary()
        return t, summary.totalIterations, summary.objectiveHistory[-1], model

    def accuracy(self, model):
        from pyspark.ml.evaluation import MulticlassClassificationEvaluator
        return MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
            model.transform(self.test))

    def per_iteration(self, k, acc=False):
        t1, i1, _, _ = self.fit(1)
        tk, ik, loss, model = self.fit(1 + k)
        per = (tk - t1) / max(1, ik - i1)
        return dict(time=per, iteration=per, iters=ik, iters_short=i1, setup=t1 - per * i1,
                    acc=self.accuracy(model) if acc else None, loss=loss)

    def close(self):
        self.spark.stop()


SPARK = "Spark MLlib MLP, local[2]"
SPARK_DASK = "cbackprop Dask, 2 workers"
SPARK_LOCAL = "cbackprop in process (2 threads)"


def spark_workload(cfg, client):
    import dask.array as da
    m, mt, k, ka = cfg["spark_rows"], cfg["spark_test"], cfg["spark_iters"], cfg["spark_acc_iters"]
    text = (f"{m or FULL['spark_rows']} x 100-64-10: cbackprop on Dask with 2 workers >= "
            f"{GOAL_SPARK:g}x faster an L-BFGS iteration than Spark MLlib local[2], at equal "
            "accuracy")
    why = spark_missing() or (None if m else "skipped in --quick (a JVM start alone takes "
                                             "10-15 s); run without --quick")
    if why:
        return [], [skip_goal("scale", text, why)], [f"spark: {why}"], dict(skipped=why)
    X, y = numpy_data(m, SIZES[0], SIZES[-1], seed=SEED + 5)
    Xte, yte = numpy_data(mt, SIZES[0], SIZES[-1], seed=SEED + 6)
    parts = 8
    chunk = -(-m // parts)
    Xd, yd = client.persist([da.from_array(X, chunks=(chunk, SIZES[0])),
                             da.from_array(y, chunks=chunk)])
    folder = tempfile.mkdtemp(prefix="cbackprop-spark-")
    try:
        spark = Spark(X, y, Xte, yte, folder)
        try:
            contenders = {
                SPARK: lambda r: spark.per_iteration(k),
                SPARK_DASK: lambda r: per_evaluation(SIZES, Xd, yd, k, client),
                SPARK_LOCAL: lambda r: per_evaluation(SIZES, X, y, k)}
            runs = interleave(contenders, cfg["spark_rounds"])
            for name in (SPARK_DASK, SPARK_LOCAL):          # per iteration, like Spark's
                for r in runs[name]:
                    r["time"] = r["iteration"]
            # accuracy at equal iterations: one longer fit each
            t0 = time.perf_counter()
            ts, its, sloss, smodel = spark.fit(ka)
            sacc = spark.accuracy(smodel)
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tc, _, _, net = lbfgs_fit(SIZES, Xd, yd, ka, client)
            cacc = float(net.score(Xte, yte))
            acc_s = time.perf_counter() - t0
            info = dict(spark_version=spark.version, java=spark.java, started_s=spark.started,
                        loaded_s=spark.loaded, warm_s=spark.warm, partitions=spark.partitions,
                        native_blas=spark_blas(), check=spark.check)
        finally:
            spark.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for name, acc in ((SPARK, sacc), (SPARK_DASK, cacc)):
        for r in runs[name]:
            r["acc"] = acc
    notes = {SPARK: (f"fits of {med(runs[SPARK], 'iters_short'):.0f} and "
                     f"{med(runs[SPARK], 'iters'):.0f} iterations, setup "
                     f"{fmt(med(runs[SPARK], 'setup'))} s; "
                     f"{ka} iterations: {its} done, loss {sloss:.4f}, {ts:.1f} s; "
                     f"{info['partitions']} partitions; {info['check']}"),
             SPARK_DASK: (f"{ka} iterations: {net.n_iter_} done, loss "
                          f"{net.history_['loss'][-1]:.4f}, {tc:.1f} s; {parts} partitions"),
             SPARK_LOCAL: "accuracy: the same parameters as on Dask"}
    for name in (SPARK_DASK, SPARK_LOCAL):
        notes[name] += (f"; by the difference of the fits "
                        f"{fmt(med(runs[name], 'diff_iteration') * 1e3)} ms/iteration")
    ref = runs[SPARK_LOCAL][0]["params"]
    checks = {SPARK_DASK: "params vs in process: "
                          f"{max(rel_diff(r['params'], ref) for r in runs[SPARK_DASK]):.0e}"}
    rows = rows_from("scale", runs, "ms/iteration", 1e3, SPARK_DASK, notes, checks)
    for r in rows:
        r["contender"] += f" [{m} x 100-64-10]"
        r["baseline"] += f" [{m} x 100-64-10]"
    ratio = med(runs[SPARK], "time") / med(runs[SPARK_DASK], "time")
    ratio_local = med(runs[SPARK], "time") / med(runs[SPARK_LOCAL], "time")
    met = ratio >= GOAL_SPARK and cacc >= sacc - ACC_SLACK
    goals = [dict(workload="scale", goal=text, value=f"{ratio:.2f}x", ratio=ratio, met=met,
                  detail=f"{fmt(med(runs[SPARK_DASK], 'time') * 1e3)} vs "
                         f"{fmt(med(runs[SPARK], 'time') * 1e3)} ms/iteration; accuracy after "
                         f"{ka} iterations {cacc:.4f} vs {sacc:.4f}; in process "
                         f"{ratio_local:.2f}x")]
    notes_out = [f"spark: pyspark {info['spark_version']}, Java {info['java']}, native BLAS "
                 f"{info['native_blas'] or 'absent (netlib falls back to Java)'}; JVM start "
                 f"{info['started_s']:.1f} s, data written as CSV and cached in "
                 f"{info['loaded_s']:.1f} s, a warm-up fit of 2 iterations {info['warm_s']:.1f} s; "
                 f"the accuracy fits took {acc_s:.0f} s"]
    return rows, goals, notes_out, dict(info, accuracy=dict(spark=sacc, cbackprop=cacc),
                                        ratio=ratio, ratio_in_process=ratio_local)


# ------------------------------------------------------------------------------ memmap

def status_fields(*names):
    """Fields of /proc/self/status in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for ln in f:
            key = ln.split(":", 1)[0]
            if key in names:
                out[key] = int(ln.split()[1]) * 1024
    return out


def write_memmap(folder, rows, n_in=SIZES[0], n_out=SIZES[-1], block=1_000_000):
    """X (rows x n_in float32) and y (uint8) as .npy files, written a block at a time."""
    T = teacher(n_in, n_out).astype(np.float32)
    xp, yp = os.path.join(folder, "X.npy"), os.path.join(folder, "y.npy")
    X = np.lib.format.open_memmap(xp, "w+", np.float32, (rows, n_in))
    y = np.lib.format.open_memmap(yp, "w+", np.uint8, (rows,))
    rng = np.random.default_rng(SEED)
    for a in range(0, rows, block):
        b = min(rows, a + block)
        X[a:b] = rng.standard_normal((b - a, n_in), dtype=np.float32)
        y[a:b] = np.argmax(X[a:b] @ T, axis=1)
    X.flush()
    y.flush()
    del X, y
    return xp, yp


def memmap_child(xp, yp, mode, rows):
    """In a fresh process: one Adam epoch on the memmap (mode 'memmap') or on its rows read
    into memory ('memory'), with tracemalloc on ('+trace': its time then counts less); prints
    JSON figures. Anonymous and file-backed resident memory
    are sampled every 5 ms while fit runs; VmHWM is reset just before fit."""
    from _common import reset_peak_rss
    import tracemalloc
    trace = mode.endswith("+trace")
    mode = mode.split("+")[0]
    X = np.load(xp, mmap_mode="r")[:rows]
    y = np.load(yp, mmap_mode="r")[:rows]
    if mode == "memory":
        X, y = np.array(X), np.array(y)
    net = cb.Network(SIZES, output="softmax", dtype="float32", random_state=SEED)
    base = status_fields("VmRSS", "RssAnon", "RssFile")
    peak = dict(base)
    done = threading.Event()

    def sample():
        while not done.is_set():
            now = status_fields("RssAnon", "RssFile")
            for key, value in now.items():
                peak[key] = max(peak[key], value)
            time.sleep(0.005)
    sampler = threading.Thread(target=sample, daemon=True)
    reset_peak_rss()
    sampler.start()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    net.fit(X, y, solver="adam", epochs=1, batch_size=128, random_state=SEED, tol=0.0)
    total = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    done.set()
    sampler.join()
    end = status_fields("VmHWM", "RssAnon", "RssFile")
    epoch = net.history_["time"][0]
    print(json.dumps(dict(mode=mode, rows=int(X.shape[0]), data=int(X.nbytes),
                          epoch=epoch, setup=total - epoch, loss=net.history_["loss"][0],
                          hwm_growth=end["VmHWM"] - base["VmRSS"],
                          anon_growth=peak["RssAnon"] - base["RssAnon"],
                          file_peak=peak["RssFile"], file_before=base["RssFile"],
                          file_end=end["RssFile"], traced=traced)))


def memmap_run(xp, yp, mode, rows):
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--memmap-child", xp, yp,
                        mode, str(rows)], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"memmap child ({mode}) failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["time"] = r["epoch"]
    return r


def mem_available():
    with open("/proc/meminfo") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemAvailable:"))


def memmap_workload(cfg, scratch=None):
    mb = 2.0 ** 20
    want = cfg["memmap_bytes"]
    folder = tempfile.mkdtemp(prefix="cbackprop-memmap-", dir=scratch)
    notes = []
    try:
        free = shutil.disk_usage(folder).free
        size = want if free >= want + (12 << 30) or want < (1 << 30) else \
            max(1 << 30, (free - (12 << 30)) // 2)
        if size < want:
            notes.append(f"memmap: {free / 1e9:.0f} GB free on {folder}: {size / 1e9:.1f} GB "
                         f"instead of {want / 1e9:.0f} GB")
        rows = int(size // (4 * SIZES[0]))
        t0 = time.perf_counter()
        xp, yp = write_memmap(folder, rows)
        written = time.perf_counter() - t0
        # peak memory: the whole file, in a fresh process (its first pass caches the file)
        mem = memmap_run(xp, yp, "memmap+trace", rows)
        # the epoch against the same epoch in memory: the in-memory copy must fit beside the
        # file's page cache (and whatever else runs here); else both on the first rows
        # (MemAvailable counts the file's cached pages: they and the copy, X and its one-hot
        # targets, 1.1 x X, must fit with 1 GB to spare)
        avail = mem_available()
        cmp_rows = rows if avail >= 2.1 * size + (1 << 30) else \
            max(1000, int((avail - (1 << 30)) / 2.1 / (4 * SIZES[0])))
        if cmp_rows < rows:
            notes.append(f"memmap: {avail / 2 ** 30:.1f} GiB available: epochs compared on "
                         f"the first {cmp_rows} rows ({cmp_rows * 400 / 1e9:.1f} GB), not all")
        contenders = {"cbackprop memmap, adam epoch": lambda r: memmap_run(xp, yp, "memmap",
                                                                          cmp_rows),
                      "cbackprop in memory, adam epoch": lambda r: memmap_run(xp, yp, "memory",
                                                                             cmp_rows)}
        runs = interleave(contenders, cfg["memmap_rounds"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    label = f" [{cmp_rows} x 100-64-10 float32, batch 128]"
    notes_r = {name: f"setup (first pass, targets) {fmt(med(rs, 'setup'))} s; loss "
                     f"{med(rs, 'loss'):.4f}" for name, rs in runs.items()}
    rows_ = rows_from("scale", runs, "s/epoch", 1.0, "cbackprop in memory, adam epoch", notes_r)
    for r in rows_:
        r["contender"] += label
        r["baseline"] += label
    anon, hwm = mem["anon_growth"] / mb, mem["hwm_growth"] / mb
    ratio = med(runs["cbackprop memmap, adam epoch"], "time") / \
        med(runs["cbackprop in memory, adam epoch"], "time")
    gb = mem["data"] / 1e9
    goals = [dict(workload="scale", goal=f"fit on a {gb:.3g} GB float32 memmap: peak memory growth "
                  f"<= {GOAL_MEMORY_MB} MB (anonymous)", value=f"{anon:.0f} MB",
                  met=anon <= GOAL_MEMORY_MB,
                  detail=f"VmHWM growth {hwm:.0f} MB counts the file's mapped pages "
                         f"(RssFile peak {mem['file_peak'] / mb:.0f} MB): page cache, "
                         "reclaimable"),
             dict(workload="scale", goal=f"memmap epoch within {GOAL_EPOCH}x of in memory "
                  "(file cached)", value=f"{ratio:.2f}x", ratio=ratio, met=ratio <= GOAL_EPOCH,
                  detail=f"on {cmp_rows * 400 / 1e9:.3g} GB")]
    notes.append(f"memmap: {rows} x 100 float32 ({gb:.3g} GB) written in {written:.0f} s; "
                 f"one fit in a fresh process: epoch {mem['epoch']:.1f} s, setup (first pass) "
                 f"{mem['setup']:.1f} s; growth: anonymous {anon:.0f} MB (sampled every 5 ms), "
                 f"tracemalloc's peak {mem['traced'] / mb:.0f} MB (NumPy and Python "
                 f"allocations), VmHWM {hwm:.0f} MB, file-backed resident "
                 f"{mem['file_before'] / mb:.0f} -> "
                 f"peak {mem['file_peak'] / mb:.0f} MB")
    return rows_, goals, notes, dict(memory=mem, compare_rows=cmp_rows, epoch_ratio=ratio)


# ------------------------------------------------------------------------------ model

def _median_time(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def model_constants(client, reps, sizes=(SIZES, EXERCISE), ns=(2, 8, 16, 32), big=True):
    """Seconds of: an empty task's round trip; a broadcast of P float64 (scatter to every
    worker); n tasks that each return P float64, gathered; tree_sum of n partial sums."""
    import distributed
    from cbackprop import blocks
    workers = len(client.scheduler_info()["workers"])
    out = dict(workers=workers)
    out["empty_task"] = _median_time(lambda: client.submit(int, 0, pure=False).result(), reps)
    Ps = sorted({cb.Network(s).params.size for s in sizes} | ({1_000_000} if big else set()))
    out["broadcast"], out["gather"], out["tree_sum"] = {}, {}, {}
    for P in Ps:
        v = np.random.default_rng(0).standard_normal(P)
        reps_p = reps if P < 100_000 else max(3, reps // 6)      # 8 MB a gradient: fewer
        out["broadcast"][P] = _median_time(
            lambda: distributed.wait(client.scatter(v, broadcast=True, hash=False)), reps_p)
        shared = client.scatter(v, broadcast=True, hash=False)
        for n in ns:
            out["gather"][(P, n)] = _median_time(lambda: client.gather(
                [client.submit(np.copy, shared, pure=False) for _ in range(n)]), reps_p)
            sums = [blocks.BlockSums(1.0, v.copy(), 1.0, 1) for _ in range(n)]
            out["tree_sum"][(P, n)] = _median_time(lambda: blocks.tree_sum(sums), reps_p)
    return out


def model_workload(cfg):
    notes, consts = [], []
    for w in cfg["model_workers"]:
        with local_cluster(w) as client:
            consts.append(model_constants(client, cfg["model_reps"], cfg["model_sizes"],
                                          cfg["model_tasks"], cfg["model_big"]))
    for c in consts:
        notes.append(f"model, {c['workers']} workers: empty task {c['empty_task'] * 1e3:.2f} ms; "
                     "broadcast " + ", ".join(f"P={P}: {t * 1e3:.2f} ms" for P, t in
                                              c["broadcast"].items())
                     + "; n tasks returning P floats, gathered: "
                     + ", ".join(f"(P={P}, n={n}) {t * 1e3:.2f} ms" for (P, n), t in
                                 c["gather"].items())
                     + "; tree_sum: " + ", ".join(f"(P={P}, n={n}) {t * 1e3:.3f} ms"
                                                  for (P, n), t in c["tree_sum"].items()))
    jsonable = [dict(c, broadcast={str(k): t for k, t in c["broadcast"].items()},
                     gather={f"{P},{n}": t for (P, n), t in c["gather"].items()},
                     tree_sum={f"{P},{n}": t for (P, n), t in c["tree_sum"].items()})
                for c in consts]
    return notes, jsonable


def fit_line(points):
    """(intercept, slope) of a least-squares line through [(x, y)] (slope 0 for one x)."""
    xs = np.array([p[0] for p in points], float)
    ys = np.array([p[1] for p in points], float)
    if len(set(xs)) < 2:
        return float(ys.mean()), 0.0
    slope, icpt = np.polyfit(xs, ys, 1)
    return float(icpt), float(slope)


def projection(consts, one_core, P, rows, workers=(2, 8, 64, 512), per_worker_rows=None):
    """The model of one distributed evaluation on W workers (benchmarks/README.md):
    T(W) = C/W + L + B(W) + G(n) + S(n), n = partitions = max(16, W):
    C the sums on one core (measured), L an empty task's round trip, B the broadcast of the
    P parameters (linear in W, fitted over the clusters measured), G the n tasks whose P-float
    partial gradients are gathered, beyond one round trip (linear in n, fitted), S the
    client's tree_sum of the n (linear in n). Efficiency = (C/W) / T(W). With
    per_worker_rows, weak scaling: every worker holds that many rows (C grows with W)."""
    L = statistics.median(c["empty_task"] for c in consts)
    b = fit_line([(c["workers"], c["broadcast"][P]) for c in consts if P in c["broadcast"]])
    last = max(consts, key=lambda c: c["workers"])
    g = fit_line([(n, t) for (p, n), t in last["gather"].items() if p == P])
    s_ = fit_line([(n, t) for (p, n), t in last["tree_sum"].items() if p == P])
    out = []
    for W in workers:
        n = max(16, W)
        C = one_core * (per_worker_rows * W / rows if per_worker_rows else 1.0)
        parts = dict(compute=C / W, latency=L, broadcast=max(0.0, b[0] + b[1] * W),
                     gather=max(0.0, g[0] + g[1] * n - L), tree_sum=max(0.0, s_[0] + s_[1] * n))
        T = sum(parts.values())
        out.append(dict(W=W, n=n, T=T, efficiency=parts["compute"] / T, **parts))
    return dict(L=L, broadcast=b, gather=g, tree_sum=s_, table=out)


def projection_lines(proj, title):
    head = (f"{title}: L {proj['L'] * 1e3:.2f} ms, broadcast {proj['broadcast'][0] * 1e3:.2f} + "
            f"{proj['broadcast'][1] * 1e3:.3f} ms x W, gather {proj['gather'][0] * 1e3:.2f} + "
            f"{proj['gather'][1] * 1e3:.3f} ms x n, tree_sum {proj['tree_sum'][1] * 1e3:.4f} "
            "ms x n")
    rows = [f"  W={r['W']}: n={r['n']}, compute {r['compute'] * 1e3:.2f} ms + latency "
            f"{r['latency'] * 1e3:.2f} + broadcast {r['broadcast'] * 1e3:.2f} + gather "
            f"{r['gather'] * 1e3:.2f} + tree_sum {r['tree_sum'] * 1e3:.2f} = "
            f"{r['T'] * 1e3:.2f} ms: efficiency {r['efficiency']:.2f}" for r in proj["table"]]
    return [head] + rows


# ------------------------------------------------------------------------------ the workload

def scale(cfg, parts=PARTS, scratch=None, progress=print):
    """run.py's workload: every part; rows, goals, notes, and the figures under 'scale'."""
    rows, goals, notes, figures = [], [], [], {}
    missing = have_dask()
    dask_parts = [p for p in parts if p in ("dask", "exercise", "spark", "model")]
    if missing and dask_parts:
        for p in dask_parts:
            goals.append(skip_goal("scale", p, missing))
        notes.append(f"scale: {missing}: the Dask parts are skipped")
        dask_parts = []
    from cbackprop import _core
    notes.append(f"scale: cbackprop build {_core.BUILD} (CBACKPROP_CPU="
                 f"{os.environ.get('CBACKPROP_CPU', '(unset)')})")
    if any(p in dask_parts for p in ("dask", "exercise", "spark")):
        with local_cluster(2) as client:
            builds = client.run(eval, "__import__('cbackprop._core', fromlist=['BUILD']).BUILD")
            notes.append("scale: the workers' cbackprop build: " + ", ".join(builds.values()))
            for name, fn in (("dask", dask_workload), ("exercise", exercise_workload),
                             ("spark", spark_workload)):
                if name in parts:
                    t0 = time.perf_counter()
                    r, g, n, f = fn(cfg, client)
                    rows += r
                    goals += g
                    notes += n
                    figures[name] = dict(f, seconds=time.perf_counter() - t0)
                    progress(f"  scale/{name}: {figures[name]['seconds']:.0f} s")
    if "memmap" in parts:
        t0 = time.perf_counter()
        r, g, n, f = memmap_workload(cfg, scratch)
        rows, goals, notes = rows + r, goals + g, notes + n
        figures["memmap"] = dict(f, seconds=time.perf_counter() - t0)
        progress(f"  scale/memmap: {figures['memmap']['seconds']:.0f} s")
    if "model" in dask_parts:
        t0 = time.perf_counter()
        n, consts = model_workload(cfg)
        notes += n
        figures["model"] = dict(constants=consts, seconds=time.perf_counter() - t0)
        if "dask" in figures:
            d = figures["dask"]
            raw = [dict(c, broadcast={int(k): v for k, v in c["broadcast"].items()},
                        gather={tuple(map(int, k.split(","))): v
                                for k, v in c["gather"].items()},
                        tree_sum={tuple(map(int, k.split(","))): v
                                  for k, v in c["tree_sum"].items()}) for c in consts]
            for label, pw in (("strong scaling, the same rows", None),
                              ("weak scaling, these rows on every worker", d["rows"])):
                proj = projection(raw, d["one_core_s"], d["params"], d["rows"],
                                  per_worker_rows=pw)
                notes += projection_lines(proj, f"model ({d['rows']} x 100-64-10, {label})")
                figures["model"][label] = proj["table"]
        two = next((c for c in consts if c["workers"] == 2), None)
        if "exercise" in figures and two is not None:
            P = cb.Network(EXERCISE).params.size
            for name, ms in figures["exercise"]["fixed_ms"].items():
                n = int(name.split(", ")[-1].split()[0])
                key = f"{P},{n}"
                if key in two["gather"]:
                    pred = (two["broadcast"][str(P)] + two["gather"][key]
                            + two["tree_sum"][key]) * 1e3
                    notes.append(f"model check, exercise shape on 2 workers, {n} partitions: "
                                 f"broadcast + {n} tasks gathered + tree_sum = {pred:.2f} ms "
                                 f"predicted, {ms:.2f} ms measured (distributed minus in "
                                 "process)")
        progress(f"  scale/model: {figures['model']['seconds']:.0f} s")
    for r in rows:
        r.setdefault("workload", "scale")
    return dict(rows=rows, goals=goals, notes=notes, series={"scale": figures})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    p.add_argument("--part", action="append", choices=PARTS, help="run only this part")
    p.add_argument("--scratch", help="folder for the memmap file (default: the temp folder)")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting (Python literal), e.g. --set scale_rounds=5")
    p.add_argument("--memmap-child", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.memmap_child:
        xp, yp, mode, rows = a.memmap_child
        return memmap_child(xp, yp, mode, int(rows))
    import _report
    from _common import environment, print_environment
    env = environment()
    print_environment(env)
    import ast
    cfg = dict(QUICK if a.quick else FULL)
    for item in a.set:
        key, value = item.split("=", 1)
        if key not in cfg:
            p.error(f"--set: unknown setting {key!r} (one of {', '.join(cfg)})")
        cfg[key] = ast.literal_eval(value)
    res = scale(cfg, a.part or PARTS, a.scratch)
    if res["rows"]:
        print(_report.rows_table(res["rows"]))
    for n in res["notes"]:
        print("  " + n)
    print(_report.goals_table(res["goals"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(environment=env, results=res), f, indent=1, default=str)


if __name__ == "__main__":
    main()
