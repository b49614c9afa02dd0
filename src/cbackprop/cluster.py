"""Training and prediction on Dask collections (``pip install "cbackprop[dask]"``).

fit on a dask.array or dask.dataframe (X, y, sample_weight) runs where the data are:

- The partitions are checked, cast and their targets coded on the workers once, and
  kept there (persisted), before any parameter changes: NaN or a wrong column count in
  one partition is an error that names it.
- Full-batch solvers (lbfgs, cg, rprop): each evaluation sends the parameters to every
  worker once, runs one task a worker over the partitions it holds (cbackprop.blocks'
  sums of each partition, on one thread, so a partition gives the same bits on any
  worker) and adds the sums in a fixed pairwise tree in partition order: the result is
  the same for any number of workers. The last evaluation is kept for the line search's
  repeated points.
- online, sgd, adam ('sequential', the default): the epoch visits the partitions in a
  shuffled order and the model moves to the data: a chain of tasks, each taking the
  parameters and the optimizer's state from the last and training on its partition,
  where it lies. A mini-batch that spans two partitions carries its first rows along
  (fewer than batch_size); no other row travels. The batches are those of a fit on
  cbackprop.sources.Blocked with the same blocks and random_state.
- 'averaging' (an option, and an approximation): every partition trains a copy of the
  model for an epoch at once; the copies are averaged by sample weight.

Without a client (the `client` option), fit uses the current one (distributed's
default client), else starts a LocalCluster for the fit and closes it after.
predict, predict_proba and forward on Dask input return Dask arrays computed in
parallel (`map_rows`).
"""
import logging
import math
import time

import numpy as np

from cbackprop import _targets, _validation as v, _weighting, blocks, sources
from cbackprop._core import core

CONNECT_TIMEOUT = 10          # seconds to reach a scheduler given by address
POLL = 0.1                    # seconds between looks for Ctrl-C while tasks run
INLINE_BYTES = 4 << 20        # parameters sent inside the tasks up to this much in all
BROADCAST_TRIES = 10          # a broadcast that met a dead worker is tried again


def is_dask(*objects):
    """Whether any of objects is a Dask collection (without importing Dask)."""
    return any(o is not None and type(o).__module__.split(".")[0] == "dask" for o in objects)


def _require():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"Dask input needs dask and distributed ({exc.name} is missing): "
                          "pip install 'cbackprop[dask]'") from None


# ------------------------------------------------------------------ clients

class Connection:
    """The client to use: `spec` a distributed.Client, a scheduler's address, 'local' (a
    LocalCluster started here) or None (the current client, else a LocalCluster); close()
    closes what it started."""

    def __init__(self, spec, verbose):
        import distributed

        self.cluster, self.owned = None, False
        if spec is None:
            try:
                self.client = distributed.get_client()
            except ValueError:
                spec = "local"
        if isinstance(spec, str):
            if spec == "local":
                self.cluster = distributed.LocalCluster(
                    n_workers=max(1, min(_usable_cores(), 8)), threads_per_worker=1,
                    processes=True, dashboard_address=":0" if verbose else None,
                    silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
            else:
                try:
                    self.client = distributed.Client(spec, timeout=CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as exc:
                    raise ConnectionError(
                        f"could not reach the Dask scheduler at {spec!r} within "
                        f"{CONNECT_TIMEOUT} s ({type(exc).__name__}: {exc}); is "
                        "`dask scheduler` running there?") from None
            self.owned = True
        elif spec is not None:
            self.client = spec
        if verbose:
            link = getattr(self.client, "dashboard_link", None)
            print(f"Dask: {len(self.client.scheduler_info()['workers'])} workers"
                  + (f", dashboard at {link}" if link else ""))

    def close(self):
        if self.owned:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def _usable_cores():
    try:
        import os
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return 1


# ------------------------------------------------------------------ collections

def as_rows(name, a, row_chunks=None, ndim=None):
    """a as a Dask array with known row chunks (row_chunks: those of X, for y and w)."""
    import dask.array as da

    if a is None:
        return None
    if hasattr(a, "to_dask_array"):                       # dask.dataframe
        a = a.to_dask_array(lengths=True)
    elif not is_dask(a):                                  # in memory, beside a Dask X
        a = v.to_array(name, a)
        if row_chunks is not None and a.shape[:1] == (sum(row_chunks),):
            a = da.from_array(a, chunks=(row_chunks,) + a.shape[1:])
        else:
            a = da.from_array(a)
    if not isinstance(a, da.Array):
        raise TypeError(f"{name}: a Dask collection that is not an array or data frame "
                        f"({type(a).__name__})")
    if ndim is not None and a.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndim)}; got "
                         f"{a.ndim}-D with shape {a.shape}")
    if any(math.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    if a.ndim == 2 and a.numblocks[1] > 1:
        a = a.rechunk({1: -1})                            # a partition holds whole rows
    if row_chunks is not None and a.chunks[0] != tuple(row_chunks):
        if a.shape[0] != sum(row_chunks):
            raise ValueError(f"{name} has {a.shape[0]} samples but X has {sum(row_chunks)}")
        a = a.rechunk({0: tuple(row_chunks)})
    return a


def _partition_list(a):
    return None if a is None else list(a.to_delayed().ravel())


class _Coding:
    """What a worker needs to check a partition and code its targets as fit does."""

    def __init__(self, net, classes, kind, targets):
        self.n_inputs, self.n_outputs = net.layer_sizes[0], net.layer_sizes[-1]
        self.output, self.loss, self.dtype = net.output, net.loss, net.dtype
        self.classes, self.kind, self.targets = classes, kind, targets

    def prepare(self, index, X, y, w):
        """(X, Y, w) of partition index, checked, as the compiled core takes them; or, for a
        partition that fails the checks, the error to raise on the client (returned, not
        raised: a task that raises fills every worker's log with its traceback)."""
        where = f"partition {index}"
        try:
            X = v.as_matrix(f"X ({where})", X, self.dtype, self.n_inputs, "features")
            Y = _targets.encode_like(y, self.classes, self.kind, self.n_outputs, self.output,
                                     self.loss, self.dtype, X.shape[0], f"y ({where})")
            Y, w = self.targets.training(Y, w, X.shape[0], self.dtype, allow_zero_sum=True)
        except (ValueError, TypeError) as exc:
            return exc
        return X, Y, w


def _labels(y):
    return sources.label_counts(y)[0]


def _size(part):
    if isinstance(part, Exception):
        return part
    X, _, w = part
    return X.shape[0], float(w.sum(dtype=np.float64)) if w.size else float(X.shape[0])


def _parts_sums(layout, parts, params, want_grad):
    """Each partition's sums, on one thread (the same bits on any worker)."""
    return [blocks.layout_sums(layout, X, Y, w, params, want_grad, 1) for X, Y, w in parts]


class DaskData:
    """fit's rows as persisted Dask partitions; the solvers' three (cbackprop.sources)."""

    def __init__(self, net, X, y, w, o, classes=None):
        _require()
        import dask
        import distributed

        self.net, self.o = net, o
        X = as_rows("X", X, ndim=(2,))
        if X.shape[1] != net.layer_sizes[0]:
            raise ValueError(f"X has {X.shape[1]} features, the network expects "
                             f"{net.layer_sizes[0]}")
        if X.shape[0] == 0:
            raise ValueError(f"X is empty (shape {X.shape})")
        if y is None:
            raise TypeError("fit on Dask data needs y, the targets")
        y = as_rows("y", y, X.chunks[0], ndim=(1, 2))
        w = as_rows("sample_weight", w, X.chunks[0], ndim=(1,))
        self.one_dimensional = y.ndim == 1
        self.connection = Connection(o["client"], o["verbose"])
        client = self.client = self.connection.client
        try:
            balanced, labels = isinstance(o["class_weight"], str), None
            if y.ndim == 1 and net.output != "identity" and (classes is None or balanced):
                # each partition's distinct labels, and their counts for 'balanced'
                labels, counts = zip(*client.gather(client.compute(
                    [dask.delayed(sources.label_counts)(b) for b in _partition_list(y)])))
            if classes is not None:
                self.classes, self.kind = np.asarray(classes), _targets.LABELS
            elif labels is not None:
                self.classes, self.kind = sources.find_coding(
                    net, np.unique(np.concatenate(labels)))
            else:
                self.classes = None
                self.kind = _targets.REGRESSION if net.output == "identity" else _targets.MATRIX
            self.targets = _weighting.targets_for(
                o, self.kind, self.classes, _weighting.count_classes(labels, counts, self.classes)
                if balanced and labels is not None and self.kind == _targets.LABELS else None)
            coding = _Coding(net, self.classes, self.kind, self.targets)
            ws = _partition_list(w) or [None] * X.numblocks[0]
            prepared = [dask.delayed(coding.prepare)(k, xb, yb, wb) for k, (xb, yb, wb)
                        in enumerate(zip(_partition_list(X), _partition_list(y), ws))]
            self.parts = client.compute(prepared)          # kept on the workers
            distributed.wait(self.parts)
            for part in self.parts:                        # the first bad one, in order
                if part.status == "error":
                    part.result()
            sizes = client.gather(client.map(_size, self.parts, pure=False))
            for refused in sizes:                          # the first bad one, in order
                if isinstance(refused, Exception):
                    raise refused
        except BaseException:
            self.close()
            raise
        self.sizes = [s for s, _ in sizes]
        self.weights = [wt for _, wt in sizes]
        self.m = sum(self.sizes)
        self.weight_sum = math.fsum(s for _, s in sizes)
        if not (math.isfinite(self.weight_sum) and self.weight_sum > 0):
            self.close()
            raise ValueError(f"sample_weight sums to {self.weight_sum}: the total weight must "
                             "be finite and > 0")
        self._last = None            # (parameters, J, gradient) of the last evaluation

    def close(self):
        self.connection.close() if hasattr(self, "connection") else None

    def _wait(self, futures, run):
        """The results of futures, watching for Ctrl-C (KeyboardInterrupt on one)."""
        import distributed

        while True:
            try:
                distributed.wait(futures, timeout=POLL)
                break
            except distributed.TimeoutError:
                if run.flag.requested:
                    self.client.cancel(futures)
                    raise KeyboardInterrupt from None
        return self.client.gather(futures)

    def _broadcast(self, params):
        """params on every worker (one copy each, not one a task). A worker that died since
        the scheduler last heard from it fails the broadcast: try again, without it."""
        from distributed.comm.core import CommClosedError

        for attempt in range(BROADCAST_TRIES):
            try:
                return self.client.scatter(params, broadcast=True, hash=False)
            except (CommClosedError, OSError):
                if attempt + 1 == BROADCAST_TRIES:
                    raise
                time.sleep(POLL * (attempt + 1))

    def _partition_sums(self, layout, params, want, run):
        """Every partition's BlockSums, in partition order: one task a worker, over the
        partitions it holds (a task costs milliseconds of the scheduler's time, a
        partition's sums microseconds). Each partition's sums are returned apart, so that
        the client's tree, and the bits, do not depend on who held what."""
        held = self.client.who_has(self.parts)
        groups = {}
        for k, part in enumerate(self.parts):
            holders = held.get(part.key) or ("",)
            groups.setdefault(sorted(holders)[0], []).append(k)
        # a partition held by no one (its worker died, the scheduler is recomputing it)
        # goes wherever the scheduler likes: distributed refuses allow_other_workers alone
        tasks = [(ks, self.client.submit(_parts_sums, layout, [self.parts[k] for k in ks],
                                         params, want, pure=False,
                                         **({"workers": [w], "allow_other_workers": True}
                                            if w else {})))
                 for w, ks in groups.items()]
        results = self._wait([t for _, t in tasks], run)
        sums = [None] * len(self.parts)
        for (ks, _), result in zip(tasks, results):
            for k, s in zip(ks, result):
                sums[k] = s
        return sums

    def cost_grad(self, run, layout, params, grad):
        want = grad.size > 0
        last = self._last
        if last is not None and np.array_equal(last[0], params) and (last[2] is not None
                                                                       or not want):
            J, g = last[1], last[2]
        else:
            # small parameters travel inside the tasks (one message less an evaluation);
            # large ones are broadcast once, a copy a worker rather than one a task
            shared = (params.copy() if params.nbytes * len(self.parts) <= INLINE_BYTES
                      else self._broadcast(params.copy()))
            sums = self._partition_sums(layout, shared, want, run)
            J, g = blocks.objective(self.net, blocks.tree_sum(sums), run.o["lam"], params)
            self._last = (params.copy(), J, g)
        if want:
            grad[...] = g
        return J

    def online_epoch(self, run, layout, params, step, decay):
        state = (params, None, None, 0)
        return self._epoch(run, _train_part, layout, ("online", step, decay), state)

    def minibatch_epoch(self, run, layout, rule, moments, params, batch_size):
        settings = ("minibatch", (rule.solver, rule.rate, rule.momentum, rule.nesterov,
                                  rule.beta1, rule.beta2, rule.epsilon, rule.clip_norm,
                                  rule.weight_decay), batch_size,
                    run.scale, run.reg)
        state = (params, moments.m1, moments.m2, moments.t)
        total, done, status, new = self._epoch(run, _train_part, layout, settings, state,
                                               full=True)
        np.copyto(moments.m1, new[1])
        np.copyto(moments.m2, new[2])
        moments.t = new[3]
        return total, done, status

    def _epoch(self, run, task, layout, settings, state, full=False):
        self._last = None
        plan = sources.epoch_plan(run.rng, self.sizes, run.o["shuffle"])
        client, params = self.client, state[0]
        if run.o["dask_training"] == "averaging":
            futures = [client.submit(task, layout, settings, self.parts[k], seed, state, None,
                                     True, run.check_every, pure=False) for k, seed in plan]
            results = self._wait(futures, run)
            new = _average(results, [self.weights[k] for k, _ in plan], state)
            total = math.fsum(r[0] for r in results)
            done = sum(r[1] for r in results)
            status = max(r[2] for r in results)
        else:
            link = (state, None)                       # (state, carried rows)
            for i, (k, seed) in enumerate(plan):
                link = client.submit(_chain, task, layout, settings, self.parts[k], seed, link,
                                     i == len(plan) - 1, run.check_every, pure=False)
            total, done, status, new = self._wait([link], run)[0][2]
        np.copyto(params, new[0])
        if full:
            return total, done, status, new
        return total, done, status


def _chain(task, layout, settings, part, seed, link, last, check_every):
    """One link of a sequential epoch: train on part from the state link brings, add its
    figures to the epoch's; returns the next link."""
    state, carry = link[0], link[1]
    totals = link[2][:3] if len(link) > 2 else (0.0, 0, core.STATUS_DONE)
    if totals[2] != core.STATUS_DONE:          # diverged or stopped earlier in the chain
        return link
    total, done, status, new, carry = task(layout, settings, part, seed, state, carry, last,
                                           check_every)
    figures = (totals[0] + total, totals[1] + done, status, new)
    return (new, carry, figures)


def _train_part(layout, settings, part, seed, state, carry, last, check_every):
    """Train on one partition's rows, from state (params, m1, m2, t); returns (loss sum,
    samples done, status, new state, rows carried to the next partition)."""
    X, Y, w = part
    params = np.array(state[0])
    rows = sources.row_order(seed, X.shape[0])
    if settings[0] == "online":
        total, done, status = core.online_epoch(layout, X, Y, w, params, rows, settings[1],
                                                settings[2], check_every)
        return total, done, status, (params, None, None, 0), None
    _, rule_args, batch_size, scale, reg = settings
    moments = core.StepState(np.array(state[1]), np.array(state[2]), state[3])
    total, done, status, carry = sources.minibatch_over(
        [(X, Y, w, rows)], layout, core.StepRule(*rule_args), moments, params, batch_size,
        scale, reg, check_every, carry=carry, last=last)
    return total, done, status, (params, moments.m1, moments.m2, moments.t), carry


def _average(results, weights, state):
    """The copies' parameters and moments averaged with weights in proportion to their
    partitions' sample weights (each trained from the same start)."""
    weights = np.asarray(weights, dtype=np.float64) / math.fsum(weights)
    new = []
    for j in range(3):
        if state[j] is None:
            new.append(None)
            continue
        avg = sum(wt * np.asarray(r[3][j], dtype=np.float64) for wt, r in zip(weights, results))
        new.append(avg.astype(state[0].dtype))
    new.append(max(r[3][3] for r in results))
    return new


# ------------------------------------------------------------------ prediction

def map_rows(model, X, method, n_features=None, dtype=None):
    """model.<method>(X) over a Dask X's partitions, as a Dask array computed in parallel
    when asked for. model: a Network (n_features, dtype: its own) or an estimator. The
    partitions of a data frame reach the model as pandas frames, with their column names."""
    _require()
    columns = list(X.columns) if hasattr(X, "columns") else None
    X = as_rows("X", X, ndim=(2,))
    n_features = model.layer_sizes[0] if n_features is None else n_features
    dtype = model.dtype if dtype is None else dtype
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, the model expects {n_features}")
    sample = _apply(np.zeros((1, n_features), dtype=dtype), model, method, columns)
    if sample.ndim == 1:
        return X.map_blocks(_apply, model, method, columns, drop_axis=1, dtype=sample.dtype,
                            meta=np.empty((0,), sample.dtype))
    return X.map_blocks(_apply, model, method, columns,
                        chunks=(X.chunks[0], (sample.shape[1],)), dtype=sample.dtype,
                        meta=np.empty((0, 0), sample.dtype))


def _apply(block, model, method, columns=None):
    if columns is not None:
        import pandas as pd
        block = pd.DataFrame(block, columns=columns)
    return np.asarray(getattr(model, method)(block))


def unique_labels(y):
    """The distinct labels of a Dask y, from each partition's."""
    import dask

    _require()
    found = dask.compute(*[dask.delayed(_labels)(b) for b in _partition_list(y)])
    return np.unique(np.concatenate(found))


def label_indices(y, classes):
    """A Dask y's labels as their positions in classes (every label among them: checked
    before, by the caller's look at unique_labels)."""
    return y.map_blocks(lambda b: np.searchsorted(classes, b), dtype=np.intp)


def cost_and_gradient(net, X, y, lam=0.0, sample_weight=None, client=None):
    """(J, [dJ/dTheta(l)]) of net on Dask data, as Network.cost_and_gradient gives them in
    memory (y: labels or targets as fit takes them): the partitions' sums, added in a fixed
    tree in partition order, so that the bits do not depend on the number of workers."""
    from types import SimpleNamespace

    from cbackprop import options

    o = options.resolve({"client": client, "lam": lam})
    data = DaskData(net, X, y, sample_weight, o)
    try:
        run = SimpleNamespace(o=o, flag=SimpleNamespace(requested=False))
        grad = np.empty_like(net.params)
        J = data.cost_grad(run, net._layout, net.params, grad)
    finally:
        data.close()
    return J, net.split(grad)


def score(net, X, y):
    """net.score on Dask data: accuracy, or R^2 for identity outputs, from sums that each
    partition computes where it lies (so that X is never gathered)."""
    import dask

    _require()
    X = as_rows("X", X, ndim=(2,))
    y = as_rows("y", y, X.chunks[0], ndim=(1, 2))
    sums = dask.compute(*[dask.delayed(_score_sums)(net, xb, yb) for xb, yb
                          in zip(_partition_list(X), _partition_list(y))])
    if net.output != "identity":
        return math.fsum(s[0] for s in sums) / sum(s[1] for s in sums)
    n = sum(s[1] for s in sums)
    residual, s1, s2 = (np.sum([s[k] for s in sums], axis=0) for k in (0, 2, 3))
    total = s2 - s1 ** 2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / total, np.where(residual > 0, 0.0, 1.0))
    return float(r2.mean())


def _score_sums(net, X, y):
    """(correct rows, rows) for a classifier; (squared residuals, rows, sum of y, sum of
    y^2), per output, for identity outputs."""
    if net.output != "identity":
        return net.score(X, y) * X.shape[0], X.shape[0]
    net.score(X, y)                                  # its checks of y
    Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    h = net.forward(X).astype(np.float64)
    return ((Y - h) ** 2).sum(axis=0), X.shape[0], Y.sum(axis=0), (Y ** 2).sum(axis=0)

