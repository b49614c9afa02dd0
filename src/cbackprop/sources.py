"""Where fit's rows come from: arrays in memory, or blocks read one at a time.

Every source gives the solvers the same three things (cbackprop.training): the full-
batch cost and gradient, an online epoch and a mini-batch epoch. `InMemory` hands whole
arrays to the compiled core. `Blocked` reads any array that has a shape and row slicing
(numpy.memmap, zarr, h5py) a block of rows at a time, or an iterable of (X, y) batches,
so that memory is bounded by the block size, never by the data:

- full batch: the blocks' sums (cbackprop.blocks) added in order, the next block read
  while the compiled core works on this one;
- online and mini-batch: an epoch visits the blocks in a shuffled order and each block's
  rows in a shuffled order; a mini-batch may span two blocks (the last rows of one are
  carried over to the next), so the batches are those of an in-memory epoch in the same
  sample order.

The cluster (cbackprop.cluster) implements the same three over Dask partitions.
"""
import concurrent.futures

import numpy as np

from cbackprop import _sparse, _targets, _validation as v, _weighting, blocks
from cbackprop._core import core

DEFAULT_BLOCK_BYTES = 64 << 20      # rows a block: about this many bytes of X


# ------------------------------------------------------------------ in memory

class InMemory:
    """X, Y (coded targets) and w (empty: all ones) held as arrays; targets: the class
    weights and smoothing already applied to them (cbackprop._weighting)."""

    def __init__(self, X, Y, w, targets=_weighting.NONE):
        self.X, self.Y, self.w, self.targets = X, Y, w, targets
        self.m = X.shape[0]
        self.weight_sum = float(w.sum(dtype=np.float64)) if w.size else float(self.m)

    def cost_grad(self, run, layout, params, grad):
        threads, block_rows = run.row_plan
        X = self.X
        if isinstance(X, _sparse.CSR):
            hidden, itemsize = layout.sizes[1], params.itemsize
            X = X.with_columns(_sparse.segment_rows(hidden, itemsize)).with_blocks(
                _sparse.block_columns(hidden, itemsize))
        return core.cost_grad(layout, X, self.Y, self.w, params, grad, self.weight_sum,
                              run.reg, block_rows, threads, scratch=run.scratch)

    def online_epoch(self, run, layout, params, step, decay):
        return core.online_epoch(layout, self.X, self.Y, self.w, params, run.order(), step,
                                 decay, run.check_every, dropout=run.dropout)

    def minibatch_epoch(self, run, layout, rule, moments, params, batch_size):
        return core.minibatch_epoch(layout, rule, moments, self.X, self.Y, self.w, params,
                                    run.order(), batch_size, run.scale, run.reg,
                                    run.check_every, n_threads=run.row_plan[0],
                                    dropout=run.dropout, scratch=run.scratch)


# ------------------------------------------------------------------ blocks

def is_blocked(X, y):
    """Whether fit reads X in blocks: a numpy.memmap, a zarr array or h5py dataset, any
    array-like with a shape and row slicing that NumPy cannot take whole (no __array__),
    or (with y None) a list, function or iterable of (X, y) batches."""
    if isinstance(X, np.memmap) or type(X).__module__.split(".")[0] in ("zarr", "h5py"):
        return True
    if (hasattr(X, "shape") and hasattr(X, "dtype") and hasattr(X, "__getitem__")
            and not hasattr(X, "__array__") and not hasattr(X, "tocsr")):
        return True                    # another lazy array: a shape and row slicing only
    if isinstance(X, np.ndarray) or X is None or y is not None:
        return False
    return callable(X) or isinstance(X, (list, tuple)) or (
        hasattr(X, "__iter__") and not hasattr(X, "shape") and not isinstance(X, (str, bytes)))


def block_rows_for(n_features, itemsize, block_rows=None):
    if block_rows is not None:
        return v.check_int("block_rows", block_rows)
    return max(1024, DEFAULT_BLOCK_BYTES // max(1, n_features * itemsize))


class _Coder:
    """Codes one block's targets and weights as fit codes them in memory (cbackprop._targets,
    cbackprop._weighting): (Y, w)."""

    def __init__(self, net, classes, kind, targets):
        self.net, self.classes, self.kind, self.targets = net, classes, kind, targets

    def __call__(self, y, w, m, name):
        net = self.net
        Y = _targets.encode_like(y, self.classes, self.kind, net.layer_sizes[-1],
                                 net.output, net.loss, net.dtype, m, name)
        return self.targets.training(Y, w, m, net.dtype, allow_zero_sum=True)


def label_counts(y):
    """A block's (distinct labels, samples of each); a NaN label alone, for find_coding
    to name."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.isnan(y).any():
        return y[np.isnan(y)][:1], np.ones(1, dtype=np.int64)
    return np.unique(y, return_counts=True)


def find_coding(net, labels):
    """(classes, kind, one_dimensional) for the distinct labels of all blocks, or, for 2-D
    or regression targets, (None, kind, False/True): the checks of an in-memory fit."""
    return _targets.encode(labels, net.layer_sizes[-1], net.output, net.loss, net.dtype,
                           len(labels))[1:]


class Blocked:
    """Rows read a block at a time: from arrays X, y, w that have a shape and row slicing
    (block_rows rows a block), or from `batches`, a list of (X, y) or (X, y, w) or a
    function returning an iterator of them (a generator function reading files).

    A first pass checks every block (shape, finite values, targets), finds the classes
    (and counts them) and sums the weights, before any parameter changes; with class
    weights a second pass sums the class-weighted weights."""

    def __init__(self, net, X, y, w=None, block_rows=None, classes=None, options=None):
        self.net, self._given_classes, self._options = net, classes, options or {}
        if y is None:
            if w is not None:
                raise TypeError("fit on batches takes the sample weights inside them: "
                                "(X, y, sample_weight) tuples")
            self._batches, self.arrays = _rereadable(X), None
        else:
            self._batches, self.arrays = None, self._check_arrays(X, y, w)
            self.block_rows = block_rows_for(X.shape[1], net.dtype.itemsize, block_rows)
        self._first_pass()

    def _check_arrays(self, X, y, w):
        n_in = self.net.layer_sizes[0]
        shape = tuple(getattr(X, "shape", ()))
        if len(shape) != 2:
            raise ValueError(f"X must be 2-D (samples x features); got shape {shape}")
        if shape[0] == 0:
            raise ValueError(f"X is empty (shape {shape})")
        if shape[1] != n_in:
            raise ValueError(f"X has {shape[1]} features, the network expects {n_in}")
        for name, a in (("y", y), ("sample_weight", w)):
            if a is not None and len(a) != shape[0]:
                raise ValueError(f"{name} has {len(a)} samples but X has {shape[0]}")
        return X, y, w

    # the blocks, raw: (X, y, w or None) of each
    def n_blocks(self):
        if self.arrays is None:
            return self._n_batches
        return -(-self.arrays[0].shape[0] // self.block_rows)

    def _raw(self, order=None):
        if self.arrays is None:
            count = 0
            for k, batch in enumerate(self._batches()):
                count += 1
                yield k, _unpack(batch, k)
            if hasattr(self, "_n_batches") and count != self._n_batches:
                raise ValueError(f"the batches changed between passes over them ({count} "
                                 f"batches, {self._n_batches} in the first pass)")
            return
        X, y, w = self.arrays
        m = X.shape[0]
        for k in (range(self.n_blocks()) if order is None else order):
            a, b = k * self.block_rows, min(m, (k + 1) * self.block_rows)
            yield k, (X[a:b], y[a:b], None if w is None else w[a:b])

    def _name(self, k):
        if self.arrays is None:
            return f"batch {k}"
        a = k * self.block_rows
        return f"rows {a}:{min(self.arrays[0].shape[0], a + self.block_rows)}"

    def _first_pass(self):
        net = self.net
        labels, counts, rows, weight, one_dim = [], [], 0, 0.0, None
        self.sizes = []
        for k, (Xb, yb, wb) in self._raw():
            name = self._name(k)
            Xb = v.as_matrix(f"X ({name})", Xb, net.dtype, net.layer_sizes[0], "features")
            yb = v.to_array(f"y ({name})", yb)
            if yb.shape[:1] != Xb.shape[:1]:
                raise ValueError(f"y ({name}) has {yb.shape[0] if yb.ndim else 0} samples but "
                                 f"its X has {Xb.shape[0]}")
            if one_dim is None:
                one_dim = yb.ndim == 1
            elif one_dim != (yb.ndim == 1):
                raise ValueError(f"y ({name}) is {yb.ndim}-D, the earlier blocks' y was not")
            if one_dim and net.output != "identity":
                found = label_counts(yb)           # counts: for class_weight='balanced'
                labels.append(found[0])
                counts.append(found[1])
            else:
                _targets.encode(yb, net.layer_sizes[-1], net.output, net.loss, net.dtype,
                                Xb.shape[0])          # its checks, block by block
            wb = v.check_sample_weight(wb, Xb.shape[0], net.dtype, allow_zero_sum=True)
            weight += float(wb.sum(dtype=np.float64)) if wb.size else float(Xb.shape[0])
            rows += Xb.shape[0]
            self.sizes.append(Xb.shape[0])
        if rows == 0:
            raise ValueError("the batches hold no rows")
        self._n_batches = len(self.sizes)
        self.m, self.one_dimensional = rows, bool(one_dim)
        if self._given_classes is not None:
            self.classes, self.kind = np.asarray(self._given_classes), _targets.LABELS
        elif labels:
            self.classes, self.kind = find_coding(net, np.unique(np.concatenate(labels)))
        else:
            self.classes = None
            self.kind = (_targets.REGRESSION if net.output == "identity" else _targets.MATRIX)
        self.targets = _weighting.targets_for(
            self._options, self.kind, self.classes,
            _weighting.count_classes(labels, counts, self.classes) if labels else None)
        self.code = _Coder(net, self.classes, self.kind, self.targets)
        if self.targets.class_weights is not None:
            # the weights' sum as the first pass takes it, of the class-weighted weights: a
            # second pass (the same bits as a fit given those weights as sample_weight)
            weight = 0.0
            for _, _, wb in self.blocks():
                weight += float(wb.sum(dtype=np.float64))
        if not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"sample_weight sums to {weight}: the total weight must be "
                             "finite and > 0")
        self.weight_sum = weight

    def blocks(self, order=None):
        """(X, Y, w) of each block, ready for the compiled core, in order (None: stored
        order); the next block read in a thread while the caller works on this one."""
        net = self.net

        def ready(item):
            k, (Xb, yb, wb) = item
            Xb = v.cast_finite("X", Xb, net.dtype, finite=False)   # checked in the first pass
            m = Xb.shape[0]
            return (Xb, *self.code(yb, wb, m, f"y ({self._name(k)})"))

        raw = self._raw(order)
        with concurrent.futures.ThreadPoolExecutor(1) as reader:
            pending = reader.submit(lambda: next(raw, None))
            while True:
                item = pending.result()
                if item is None:
                    return
                pending = reader.submit(lambda: next(raw, None))
                yield ready(item)

    # ------------------------------------------------------------ the solvers' three
    def cost_grad(self, run, layout, params, grad):
        threads = run.row_plan[0]
        total = blocks.tree_sum(blocks.layout_sums(layout, X, Y, w, params, grad.size > 0,
                                                   threads) for X, Y, w in self.blocks())
        J, g = blocks.objective(self.net, total, run.o["lam"], params)
        if grad.size:
            grad[...] = g
        return J

    def _shuffled(self, run):
        plan = epoch_plan(run.rng, self.sizes, run.o["shuffle"], self.arrays is None)
        order = None if self.arrays is None else [k for k, _ in plan]
        for (_, seed), (X, Y, w) in zip(plan, self.blocks(order)):
            yield X, Y, w, row_order(seed, X.shape[0])

    def online_epoch(self, run, layout, params, step, decay):
        total, done = 0.0, 0
        for X, Y, w, rows in self._shuffled(run):
            t, d, status = core.online_epoch(layout, X, Y, w, params, rows, step, decay,
                                             run.check_every)
            total, done = total + t, done + d
            if status != core.STATUS_DONE or run.flag.requested:
                return total, done, status if status != core.STATUS_DONE else \
                    core.STATUS_INTERRUPTED
        return total, done, core.STATUS_DONE

    def minibatch_epoch(self, run, layout, rule, moments, params, batch_size):
        return minibatch_over(self._shuffled(run), layout, rule, moments, params, batch_size,
                              run.scale, run.reg, run.check_every,
                              lambda: run.flag.requested)[:3]


def epoch_plan(rng, sizes, shuffle, fixed_order=False):
    """One epoch's [(block, seed of its row order)], in the order visited: the blocks
    shuffled (unless fixed_order: batches read in their own order), each block's rows
    shuffled by its seed (None: in order). The same plan for the same generator state
    wherever the blocks are, on this machine or a cluster's workers."""
    n = len(sizes)
    if not shuffle:
        return [(k, None) for k in range(n)]
    order = range(n) if fixed_order else rng.permutation(n).tolist()
    seeds = rng.integers(0, 2 ** 63, size=n, dtype=np.int64).tolist()
    return [(k, seed) for k, seed in zip(order, seeds)]


def row_order(seed, n):
    """Rows 0..n-1 of a block in the order its seed gives (None: in order)."""
    if seed is None:
        return np.arange(n, dtype=np.intp)
    return np.random.default_rng(seed).permutation(n).astype(np.intp, copy=False)


def minibatch_over(shuffled, layout, rule, moments, params, batch_size, scale, reg,
                   check_every, stop_requested=lambda: False, carry=None, last=True):
    """One epoch of mini-batches over blocks (X, Y, w, row order), a batch spanning two
    blocks where one ends mid-batch: the rows of an unfinished batch are carried over (at
    most batch_size - 1 of them). carry: such rows from before; last: whether these are
    the epoch's last blocks (then a short last batch runs, as in memory).
    Returns (sum of b * batch cost, samples done, status, carry)."""
    total, done = 0.0, 0
    for X, Y, w, rows in shuffled:
        if carry is not None:
            need = batch_size - carry[0].shape[0]
            head, rows = rows[:need], rows[need:]
            carry = _join(carry, (X[head], Y[head], w[head] if w.size else w))
            if carry[0].shape[0] < batch_size:
                continue
            t, d, status = _batch(layout, rule, moments, carry, params, batch_size, scale,
                                  reg, check_every)
            total, done, carry = total + t, done + d, None
            if status != core.STATUS_DONE:
                return total, done, status, None
        full = rows.shape[0] - rows.shape[0] % batch_size
        if full:
            t, d, status = core.minibatch_epoch(layout, rule, moments, X, Y, w, params,
                                                rows[:full], batch_size, scale, reg,
                                                check_every)
            total, done = total + t, done + d
            if status != core.STATUS_DONE:
                return total, done, status, None
        if full < rows.shape[0]:
            tail = rows[full:]
            carry = (X[tail], Y[tail], w[tail] if w.size else w)
        if stop_requested():
            return total, done, core.STATUS_INTERRUPTED, carry
    if last and carry is not None:
        t, d, status = _batch(layout, rule, moments, carry, params, batch_size, scale, reg,
                              check_every)
        return total + t, done + d, status, None
    return total, done, core.STATUS_DONE, carry


def _join(a, b):
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b))


def _batch(layout, rule, moments, rows, params, batch_size, scale, reg, check_every):
    X, Y, w = (np.ascontiguousarray(a) for a in rows)
    order = np.arange(X.shape[0], dtype=np.intp)
    return core.minibatch_epoch(layout, rule, moments, X, Y, w, params, order, batch_size,
                                scale, reg, check_every)


def _unpack(batch, k):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(f"batch {k} must be a tuple (X, y) or (X, y, sample_weight); got "
                        f"{type(batch).__name__}")
    X, y, *w = batch
    return X, y, (w[0] if w else None)


def _rereadable(batches):
    """A function giving a fresh iterator over the batches on each call: a list or tuple,
    or a function returning an iterator. A generator object can be read only once, and
    fit passes over the data several times (a first pass, then each epoch)."""
    if isinstance(batches, (list, tuple)):
        return lambda: iter(batches)
    if callable(batches):
        def fresh():
            it = batches()
            if not hasattr(it, "__iter__"):
                raise TypeError(f"the batches function must return an iterable of (X, y) "
                                f"batches; it returned {type(it).__name__}")
            return iter(it)
        return fresh
    if iter(batches) is batches:
        raise TypeError("a generator (or other iterator) of batches can be read only once, "
                        "and fit reads the data several times: pass the function that makes "
                        "it (fit(read_batches, None), not fit(read_batches(), None)) or a list")
    return lambda: iter(batches)


