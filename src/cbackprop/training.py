"""Network.fit: the solvers and the loop around them.

Every solver runs through one `_Run`, which records `history_`, evaluates the
validation set, calls the user's callback, shows progress, applies early stopping
and the learning-rate schedule, and notices interrupts and divergence. The
solvers themselves only produce one epoch (or iteration) at a time:

- online, sgd, adam: a whole epoch is one compiled call (cbackprop._core.core);
- rprop: a full-batch gradient from the compiled core, then a compiled iRPROP- step;
- lbfgs: cbackprop._lbfgs (scipy's L-BFGS-B path, unbounded), cg: scipy.optimize.minimize
  (jac=True), on the flat parameter vector.
"""
import math
import time
import warnings

import numpy as np

from cbackprop import (_lbfgs, _sparse, _targets, _validation as v, _weighting, cluster,
                       options as fit_options, sources)
from cbackprop._core import core
from cbackprop._core.interrupt import graceful_interrupt
from cbackprop._core.threads import blas_single_threaded

FULL_BATCH = v.FULL_BATCH_SOLVERS

ADAPTIVE_DIVISOR, MIN_ADAPTIVE_RATE = 5.0, 1e-6
RPROP = dict(increase=1.2, decrease=0.5, step_min=1e-6, step_max=50.0, step_init=0.0125)
SIGNAL_CHECK_FLOPS = 2e6                   # look for Ctrl-C about every millisecond of work
BLOW_UP = 1e4                              # a cost this many times its first value: diverging


class ConvergenceWarning(UserWarning):
    """fit ran out of epochs or iterations before the cost stopped improving."""


class DivergenceError(ValueError, FloatingPointError):
    """fit diverged: the cost or the parameters stopped being finite (or the cost blew up).

    Both a FloatingPointError (cbackprop's error for it) and a ValueError (scikit-learn's
    MLP raises ValueError for non-finite weights), so that either ``except`` catches it.
    ``epoch`` is the epoch (iteration) that diverged, ``cost`` its cost.
    """

    def __init__(self, message, epoch=None, cost=None):
        super().__init__(message)
        self.epoch, self.cost = epoch, cost


class TrainingInterrupted(UserWarning):
    """fit was stopped by Ctrl-C; the network keeps the parameters it had reached."""


class _Progress:
    """tqdm's bar when tqdm is installed, else a line every few epochs."""

    def __init__(self, total, verbose, solver):
        self.bar, self.verbose, self.total = None, verbose, total
        if not verbose:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            print(f"training with {solver} for up to {total} "
                  f"{'iterations' if solver in FULL_BATCH else 'epochs'}")
        else:
            self.bar = tqdm(total=total, desc=f"fit ({solver})", unit="epoch", leave=True)

    def update(self, epoch, logs):
        if not self.verbose:
            return
        shown = {k: f"{val:.5g}" for k, val in logs.items() if k != "time"}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(shown, refresh=False)
        elif epoch == 1 or epoch % max(1, self.total // 20) == 0:
            print(f"epoch {epoch}: " + ", ".join(f"{k} {val}" for k, val in shown.items()))

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _Run:
    """One call of fit: data, options, and the bookkeeping after every epoch."""

    def __init__(self, net, data, val, o, rng):
        self.net, self.data, self.o, self.rng = net, data, o, rng
        self.val = val                               # (X_val, y_val, Y_val) or None
        self.m = data.m
        self.weight_sum = data.weight_sum
        self.scale = self.m / self.weight_sum        # m / W
        self.reg = o["lam"] / self.weight_sum        # lam / W
        self.rate = o["learning_rate"]
        X = getattr(data, "X", None)
        self.check_every = max(1, int(SIGNAL_CHECK_FLOPS // net._row_flops(X)))
        self.row_plan = net._row_plan(self.m, X)     # (threads, rows a block) for full batches
        self.scratch = {}                            # the compiled epochs' large buffers, kept
                                                     # for the fit (core.cost_grad's scratch)
        self.epoch = 0
        self.history = {"loss": [], "time": []}
        if val is not None:
            self.history.update(val_loss=[], val_score=[])
        self.best_loss, self.best_score, self.best_params = np.inf, -np.inf, None
        self.no_improve = 0
        self.converged = False
        self.failure = None                          # why scipy's solver gave up, if it did
        self.snapshot = net.params.copy()           # parameters of the last epoch that ended well
        self.spare = np.empty_like(self.snapshot)   # the next snapshot, until it is tested
        self.in_order = None if o["shuffle"] else np.arange(self.m, dtype=np.intp)
        self.dropout = None                          # core.Dropout of the fit, if any
        self.t0 = time.perf_counter()

    def order(self):
        """This epoch's sample order: a fresh permutation, or 0..m-1."""
        if self.in_order is not None:
            return self.in_order
        return self.rng.permutation(self.m).astype(np.intp, copy=False)

    def reg_term(self):
        """(lam / 2W) * sum of the squared weights (bias excluded)."""
        net = self.net
        return core.reg_cost(net._layout, net.params, self.reg)

    def diverged(self, cost, how=None):
        """Raise, with the parameters of the last epoch that ended well."""
        self.net.params[...] = self.snapshot
        # lam / W beyond the square root of the dtype's range, or a regularization term of the
        # last good parameters beyond it: lam is to blame, whatever the learning rate
        if self.lam_absurd():
            raise DivergenceError(
                f"training diverged in epoch {self.epoch + 1}: the cost {how or f'became {cost}'} "
                f"with lam={self.o['lam']:g}, a regularization too strong for this data "
                f"(lam / total sample weight = {self.reg:g}); the parameters were restored to "
                f"those of epoch {self.epoch} (try a smaller lam)", self.epoch + 1, cost)
        what = (f"learning_rate={self.rate:g}" if self.o["solver"] not in ("lbfgs", "cg")
                else f"solver={self.o['solver']!r}")
        how = how or f"became {cost}"
        raise DivergenceError(
            f"training diverged in epoch {self.epoch + 1}: the cost {how} with {what}; "
            f"the parameters were restored to those of epoch {self.epoch} (try a smaller "
            f"learning_rate, scaled inputs, or lam > 0)", self.epoch + 1, cost)

    def lam_absurd(self):
        """lam / W beyond the square root of the dtype's range, or the regularization term
        of the last good parameters beyond it."""
        with np.errstate(over="ignore", invalid="ignore"):
            limit = math.sqrt(float(np.finfo(self.snapshot.dtype).max))
            reg = float(self.reg)
            sq = self.sum_of_squares(self.snapshot)
            return not math.isfinite(reg) or reg > limit or not reg * sq <= limit

    def sum_of_squares(self, params):
        """The weights' sum of squares (bias excluded), summed in double by the compiled
        core: np.dot would wake OpenBLAS's thread pool every epoch, whose spinning slows the
        row-split kernels that follow (benchmarks/README.md)."""
        return core.reg_cost(self.net._layout, params, 2.0, self.row_plan[0])

    def end_epoch(self, loss, iterate=None):
        """Record an epoch; False when training should stop. iterate: the parameters to
        take first (L-BFGS's, which evaluates its trial points without copying them)."""
        params, history = self.net.params, self.history
        src = params[:0] if iterate is None else iterate
        finite, sumsq = core.epoch_check(self.net._layout, params, src, self.spare,
                                         self.row_plan[0])
        if not math.isfinite(loss) or not finite:
            self.diverged(loss)
        # so large that the sum of their squares (the regularization's) overflows the dtype:
        # online SGD with a huge rate reaches 1e299 with a finite, saturated cost
        if not sumsq <= float(np.finfo(params.dtype).max):
            self.diverged(loss, f"was {loss:.4g} but the parameters left the finite range "
                                f"(largest |weight| {float(np.max(np.abs(params))):.3g})")
        losses = history["loss"]
        if losses and loss > BLOW_UP * max(losses[0], 1e-12):
            self.diverged(loss, f"grew from {losses[0]:.4g} to {loss:.4g}")
        self.snapshot, self.spare = self.spare, self.snapshot
        self.epoch += 1
        logs = {"loss": float(loss)}
        if self.val is not None:
            Xv, yv, Yv = self.val
            logs["val_loss"] = float(self.net.cost(Xv, Yv, 0.0))
            logs["val_score"] = float(self.net.score(Xv, yv))
        logs["time"] = time.perf_counter() - self.t0
        for key, value in logs.items():
            history[key].append(value)
        self.progress.update(self.epoch, logs)
        keep_going = self._monitor(logs)
        if self.o["callback"] is not None and self.o["callback"](self.net, self.epoch, logs) is False:
            keep_going = False
        return keep_going and not self.flag.requested

    def _monitor(self, logs):
        """Early stopping on the validation score, or the no-improvement rule on the cost."""
        o = self.o
        if o["early_stopping"]:
            if logs["val_score"] > self.best_score + o["tol"]:
                self.no_improve = 0
            else:
                self.no_improve += 1
            if logs["val_score"] > self.best_score:
                self.best_score, self.best_params = logs["val_score"], self.net.params.copy()
        else:
            self.no_improve = 0 if logs["loss"] < self.best_loss - o["tol"] else self.no_improve + 1
            self.best_loss = min(self.best_loss, logs["loss"])
        if o["solver"] in ("lbfgs", "cg") and not o["early_stopping"]:
            return True                            # scipy's own tolerance decides
        if self.no_improve < o["n_iter_no_change"]:
            return True
        # scikit-learn's rule: a rate above 1e-6 is divided by 5 and training goes on; one
        # at or below it stops
        if (o["schedule"] == "adaptive" and o["solver"] in ("online", "sgd", "adam")
                and self.rate > MIN_ADAPTIVE_RATE):
            self.rate /= ADAPTIVE_DIVISOR
            self.no_improve = 0
            return True
        self.converged = True
        return False

    def dropout_epoch(self):
        """The masks of this epoch: the fit's epoch number is the generator's counter."""
        if self.dropout is not None:
            self.dropout.epoch = self.epoch

    def epoch_rate(self):
        if self.o["schedule"] == "invscaling":
            return self.o["learning_rate"] / (self.epoch + 1) ** self.o["power_t"]
        return self.rate


# ------------------------------------------------------------------- solvers

def _check_unchanged(net, layout, params):
    """Refuse to go on with a network rebuilt during fit (by a callback calling __init__,
    say): each solver holds the layout and the parameter vector it started with, and its
    buffers are sized for them."""
    if net._layout is not layout or net._params is not params or (
            net.layer_sizes != list(layout.sizes)):
        raise RuntimeError(
            f"the network was rebuilt during fit (layers {list(layout.sizes)} at the start, "
            f"{net.layer_sizes} now): fit trains one network from start to end; rebuild "
            "it before or after fit, not from a callback")


def _run_online(run, n_epochs):
    net = run.net
    layout, params = net._layout, net.params
    for _ in range(n_epochs):
        _check_unchanged(net, layout, params)
        run.dropout_epoch()
        rate = run.epoch_rate()
        total, done, status = run.data.online_epoch(run, layout, params, rate * run.scale,
                                                    1.0 - rate * run.reg)
        if status == core.STATUS_DIVERGED:
            run.diverged(np.nan)
        if done == 0:
            return
        loss = total * run.scale / done + run.reg_term()
        if not run.end_epoch(loss) or status == core.STATUS_INTERRUPTED:
            return


def _run_minibatch(run, n_epochs, state):
    net, o = run.net, run.o
    layout, params = net._layout, net.params
    if state.get("solver") != o["solver"] or state["m1"].shape != params.shape:
        state.clear()
        state.update(solver=o["solver"], t=0, m1=np.zeros_like(params),
                     m2=np.zeros_like(params))
    # the optimizer's settings, built once; its state, advanced in place (state's arrays)
    rule = core.StepRule(o["solver"], run.rate, o["momentum"], o["nesterov"], o["beta_1"],
                         o["beta_2"], o["epsilon"], o["clip_norm"] or 0.0, o["weight_decay"])
    moments = core.StepState(state["m1"], state["m2"], state["t"])
    # a batch larger than the data is the whole data (as scikit-learn clips it): the compiled
    # call takes a C int, and batch_size >= 2**31 raised OverflowError there
    batch_size = max(1, min(int(o["batch_size"]), run.m))
    for _ in range(n_epochs):
        _check_unchanged(net, layout, params)
        run.dropout_epoch()
        rule.rate = run.epoch_rate()
        total, done, status = run.data.minibatch_epoch(run, layout, rule, moments, params,
                                                       batch_size)
        state["t"] = moments.t
        if status == core.STATUS_DIVERGED:
            run.diverged(np.nan)
        if done == 0:
            return
        if not run.end_epoch(total / done) or status == core.STATUS_INTERRUPTED:
            return


def _full_cost_grad(run, layout, params, grad, at=None):
    """J and its gradient on the whole training set, for the layout and parameters the fit
    started with, at those parameters or at `at` (of their size and dtype); fit holds
    BLAS to one thread around it."""
    _check_unchanged(run.net, layout, params)
    return run.data.cost_grad(run, layout, params if at is None else at, grad)


def _run_rprop(run, n_iter):
    layout, params = run.net._layout, run.net.params
    grad, prev = np.zeros_like(params), np.zeros_like(params)
    steps = np.full_like(params, RPROP["step_init"])
    for _ in range(n_iter):
        cost = _full_cost_grad(run, layout, params, grad)
        if not np.isfinite(cost):
            run.diverged(cost)
        core.rprop_update(layout, params, grad, prev, steps, RPROP["increase"],
                          RPROP["decrease"], RPROP["step_min"], RPROP["step_max"])
        if not run.end_epoch(cost):
            return


def _run_scipy(run, n_iter):
    """L-BFGS: cbackprop._lbfgs, scipy's L-BFGS-B path without its cost at large n; CG:
    scipy's."""
    layout, params = run.net._layout, run.net.params
    evaluations = [0]
    lbfgs = run.o["solver"] == "lbfgs"
    # float64 parameters: evaluated at _lbfgs's points, the gradient straight into its
    # buffer (gradient_into); the accepted iterate becomes params at the epoch's end
    into = lbfgs and params.dtype == np.float64
    grad = None if into else np.zeros_like(params)

    def fun(x, out=None):
        if into:
            cost = _full_cost_grad(run, layout, params, out, at=x)
        else:
            params[...] = x
            cost = _full_cost_grad(run, layout, params, grad)
        g = grad if out is None else out
        evaluations[0] += 1
        # at the starting point a cost or gradient that is not finite is divergence (scipy
        # would return at once, with no iteration); later, at a line search's trial point,
        # the search backs off from it, and the accepted iterates are checked by end_epoch
        if evaluations[0] == 1 and (not math.isfinite(cost) or not v.all_finite(g)
                                    or run.lam_absurd()):
            run.diverged(cost, f"became {cost} or its gradient was not finite at the start")
        if into:
            return cost
        # _lbfgs copies the gradient into its own float64 buffer; scipy's CG keeps it
        return cost, (grad if lbfgs else grad.astype(np.float64))

    def callback(intermediate_result):
        # CG's iterate, and _lbfgs's in float64, are not params yet; _lbfgs's in float32 is
        # the point of fun's last call, which params holds
        if not lbfgs:
            params[...] = intermediate_result.x
        iterate = intermediate_result.x if into else None
        if not run.end_epoch(intermediate_result.fun, iterate):
            raise StopIteration

    method = "L-BFGS-B" if lbfgs else "CG"
    if lbfgs:
        result = _lbfgs.minimize(fun, params, maxiter=n_iter,      # minimize copies x0
                                 maxfun=run.o["max_fun"], gtol=run.o["tol"], callback=callback,
                                 gradient_into=into, n_threads=run.row_plan[0])
    else:
        from scipy.optimize import minimize

        result = minimize(fun, params.astype(np.float64), jac=True, method=method,
                          callback=callback, options={"maxiter": n_iter, "gtol": run.o["tol"]})
    if np.isfinite(result.x).all():
        params[...] = result.x
    run.converged = result.success or run.converged
    stopped_by_us = run.flag.requested or "StopIteration" in str(result.message)
    if not result.success and not stopped_by_us and result.nit < n_iter:
        run.failure = f"{method} stopped after {result.nit} iterations: {result.message}"


def fit(net, X, y, sample_weight=None, *, classes=None, reset_optimizer=True, **options):
    """Refuses a fit of a network already being fitted (from its own callback, or another
    thread): the two would share and corrupt one optimizer state and parameter vector."""
    if getattr(net, "_fitting", False):
        raise RuntimeError("this network is already being fitted (fit called again from its "
                           "callback or another thread): re-entrant fits of one network are "
                           "not supported; fit a copy (copy.deepcopy(net)) instead")
    net._fitting = True
    try:
        return _fit(net, X, y, sample_weight, classes=classes, reset_optimizer=reset_optimizer,
                    **options)
    finally:
        net._fitting = False


def _fit(net, X, y, sample_weight=None, *, classes=None, reset_optimizer=True, **options):
    """Network.fit's body; options: cbackprop.options.FIT_OPTIONS. Two more arguments for
    scikit-learn's estimators: classes, the full list of labels when y may hold only some
    of them (partial_fit); reset_optimizer=False, to carry momentum and Adam's moments over
    from the last call."""
    o = fit_options.resolve(options)
    _check_for_solver(o)
    if o["max_iter"] is not None and "epochs" not in options and o["solver"] not in FULL_BATCH:
        # scikit-learn's max_iter counts adam's and sgd's epochs; ours does not
        warnings.warn(f"max_iter={o['max_iter']} bounds the full-batch solvers' iterations; "
                      f"{o['solver']} runs epochs={o['epochs']} (pass epochs="
                      f"{o['max_iter']} for that many)", UserWarning, stacklevel=4)
    rng = v.check_random_state(o["random_state"], lazy=True)
    if not v.all_finite(net.params):
        raise ValueError("the network's parameters contain NaN or inf (written into params "
                         "or thetas by hand?); set finite values before fit")

    rates = _dropout_rates(net, o)
    data, classes, kind, one_dimensional = _training_data(net, X, y, sample_weight, classes, o)
    if rates is not None and not isinstance(data, sources.InMemory):
        data.close() if hasattr(data, "close") else None
        raise ValueError("dropout trains on data in memory only (not yet on blocks or Dask)")
    if rates is not None and rates[0] > 0 and isinstance(data.X, _sparse.CSR):
        raise ValueError("input_dropout of a sparse X is not supported (the first layer "
                         "reads only its stored entries); dropout of the hidden layers is")
    o["_dropout_rates"] = rates
    try:
        return _train(net, data, y, classes, kind, one_dimensional, reset_optimizer, o, rng)
    finally:
        if hasattr(data, "close"):
            data.close()


# the options of the mini-batch solvers' step alone (StepRule)
MINIBATCH_ONLY = ("clip_norm", "weight_decay")


def _dropout_rates(net, o):
    """Dropout's rates, one a layer but the output (the input first), or None: no dropout.
    Refused for the full-batch solvers, whose objective must be deterministic."""
    hidden = net.layer_sizes[1:-1]
    rates = o["dropout"]
    if isinstance(rates, list):
        if len(rates) != len(hidden):
            raise ValueError(f"dropout has {len(rates)} rates; the network has "
                             f"{len(hidden)} hidden layers (one rate each, or one for all)")
    else:
        rates = [rates] * len(hidden)
    rates = [o["input_dropout"]] + rates
    if not any(rates):
        return None
    if o["solver"] in FULL_BATCH:
        raise ValueError(f"dropout and input_dropout apply to 'online', 'sgd' and 'adam', not "
                         f"to {o['solver']!r}: a full-batch solver's objective must be "
                         "deterministic (its line searches and steps compare costs)")
    return rates


def _check_for_solver(o):
    """Refuse options the solver has no use for, rather than ignore them."""
    given = [name for name in MINIBATCH_ONLY
             if o[name] != fit_options.DEFAULTS[name]]
    if not given or o["solver"] in ("sgd", "adam"):
        return
    names = " and ".join(given)
    if o["solver"] in FULL_BATCH:
        raise ValueError(f"{names} apply to the mini-batch solvers 'sgd' and 'adam', not to "
                         f"{o['solver']!r}: a full-batch solver minimizes J itself (use lam "
                         "for an L2 penalty)")
    raise ValueError(f"{names} apply to the mini-batch solvers 'sgd' and 'adam', not to "
                     "'online': its per-sample step is the derivation's (for plain SGD, "
                     "decoupled decay is lam's decay; clip a sample's step by lowering "
                     "learning_rate), or use solver='sgd' with batch_size=1")


def _training_data(net, X, y, sample_weight, classes, o):
    """(source of the training rows, classes, kind, whether y is 1-D), every check done."""
    if cluster.is_dask(X, y, sample_weight):
        data = cluster.DaskData(net, X, y, sample_weight, o, classes)
    elif sources.is_blocked(X, y):
        data = sources.Blocked(net, X, y, sample_weight, o["block_rows"], classes, o)
    else:
        return _in_memory(net, X, y, sample_weight, classes, o)
    if o["validation_fraction"] > 0 or (o["early_stopping"] and o["validation_data"] is None):
        data.close() if hasattr(data, "close") else None
        raise ValueError("validation_fraction and early stopping without validation_data "
                         "hold out rows in memory: with data out of memory or on Dask, pass "
                         "validation_data=(X_val, y_val) instead")
    return data, data.classes, data.kind, data.one_dimensional


def _in_memory(net, X, y, sample_weight, classes, o):
    X = net._check_X(X)
    if classes is None:
        Y, classes, kind = _targets.encode(y, net.layer_sizes[-1], net.output, net.loss,
                                           net.dtype, X.shape[0])
    else:
        classes, kind = np.asarray(classes), _targets.LABELS
        Y = _targets.encode_like(y, classes, kind, net.layer_sizes[-1], net.output, net.loss,
                                 net.dtype, X.shape[0], "y")
    counts = None
    if isinstance(o["class_weight"], str) and kind == _targets.LABELS:
        counts = np.bincount(_weighting.class_index(Y), minlength=len(classes))
    targets = _weighting.targets_for(o, kind, classes, counts)
    Y, w = targets.training(Y, sample_weight, X.shape[0], net.dtype)
    return sources.InMemory(X, Y, w, targets), classes, kind, np.ndim(y) == 1


def _train(net, data, y, classes, kind, one_dimensional, reset_optimizer, o, rng):
    solver, epochs, max_iter, tol = o["solver"], o["epochs"], o["max_iter"], o["tol"]
    validation_data, early_stopping = o["validation_data"], o["early_stopping"]
    validation_fraction = o["validation_fraction"]
    val = None                         # (X_val, y_val as given, Y_val coded like Y)
    if validation_data is not None:
        Xv, yv = validation_data
        Xv = net._check_X(Xv, name="validation_data[0]")
        Yv = _targets.encode_like(yv, classes, kind, net.layer_sizes[-1], net.output, net.loss,
                                  net.dtype, Xv.shape[0], "validation_data[1]")
        val = (Xv, yv, data.targets.targets(Yv))     # smoothed as the training targets
    elif validation_fraction > 0 or early_stopping:
        X, Y, w = data.X, data.Y, data.w
        frac = validation_fraction or 0.1
        labels = np.asarray(y) if kind == _targets.LABELS else None
        train, held = _targets.validation_split(X.shape[0], labels, frac, rng)
        val = (X[held], np.asarray(y)[held], Y[held])
        w = w[train] if w.size else w
        if w.size and w.sum() <= 0:
            raise ValueError("sample_weight: the training part of the split has zero total weight")
        data = sources.InMemory(X[train], Y[train], w, data.targets)
    if early_stopping and val is None:
        raise ValueError("early_stopping needs validation data")

    # every check has passed: from here on the network changes
    net.classes_ = classes
    net.target_coding_ = _targets.TargetCoding(kind, one_dimensional)
    net.info_ = dict(net.info_ or {})
    data.targets.record(net.info_)
    if reset_optimizer:
        net._solver_state.clear()      # a new fit starts its optimizer afresh

    n = max_iter if (max_iter is not None and solver in FULL_BATCH) else epochs
    run = _Run(net, data, val, o, rng)
    if o["_dropout_rates"] is not None:
        # drawn only with dropout, so that fits without it keep their random streams (the
        # estimators hand a RandomState, which has randint)
        draw = getattr(rng, "integers", None) or rng.randint
        run.dropout = core.Dropout(net._layout, o["_dropout_rates"],
                                   int(draw(0, 2 ** 63, dtype=np.int64)))
    run.progress = _Progress(n, o["verbose"], solver)
    interrupted = False
    # Full-batch solvers split rows across threads: hold BLAS to one thread for the whole fit,
    # not call by call, or scipy's own BLAS calls between ours wake OpenBLAS's pool, whose
    # spinning threads then take the cores from ours (benchmarks/README.md has the cost).
    # The online solver's many small level-2 calls gain nothing from BLAS threads either
    # (on small layers it calls no BLAS at all: then there is nothing to hold).
    one_blas_thread = ((solver in FULL_BATCH and run.row_plan[0] > 1)
                       or (solver == "online" and net._layout.per_sample_calls_blas()))
    try:
        with graceful_interrupt() as flag, blas_single_threaded(one_blas_thread):
            run.flag = flag
            if solver == "online":
                _run_online(run, n)
            elif solver in ("sgd", "adam"):
                _run_minibatch(run, n, net._solver_state)
            elif solver == "rprop":
                _run_rprop(run, n)
            else:
                _run_scipy(run, n)
            interrupted = flag.requested
    except KeyboardInterrupt:
        interrupted = True
        net.params[...] = run.snapshot if not np.isfinite(net.params).all() else net.params
    finally:
        run.progress.close()

    if early_stopping and run.best_params is not None:
        net.params[...] = run.best_params
    net.history_ = run.history
    net.n_iter_ = run.epoch
    if run.failure:
        warnings.warn(f"{run.failure}; the network keeps the parameters reached",
                      ConvergenceWarning, stacklevel=3)
    losses = run.history["loss"]
    if not interrupted and len(losses) > 1 and losses[-1] > 1.5 * losses[0]:
        warnings.warn(f"the cost rose from {losses[0]:.4g} to {losses[-1]:.4g} during training; "
                      f"the learning rate may be too large", ConvergenceWarning, stacklevel=3)
    if interrupted:
        unit = "iteration" if solver in FULL_BATCH else "epoch"
        warnings.warn(f"training interrupted by the user in {unit} {run.epoch}; the network keeps "
                      "the parameters it had reached", TrainingInterrupted, stacklevel=3)
    elif not run.converged and run.epoch >= n:
        warnings.warn(f"{solver} ran all {n} {'iterations' if solver in FULL_BATCH else 'epochs'} "
                      f"without converging (tol={tol:g}); more may help", ConvergenceWarning,
                      stacklevel=3)
    return net
