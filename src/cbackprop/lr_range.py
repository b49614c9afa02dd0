"""The learning-rate range test (issue 16; Smith, "Cyclical learning rates", 2017): a short run
whose learning rate grows exponentially from min_lr to max_lr, one mini-batch a rate, until
the loss explodes. Run on a copy: the network itself is left as it was."""
import warnings
from dataclasses import dataclass

import numpy as np

from cbackprop import _validation as v
from cbackprop.training import ConvergenceWarning, DivergenceError


@dataclass(frozen=True)
class LRFind:
    """rates and losses (each batch's loss as fit reports it, and their exponential
    moving average, bias-corrected) up to the step where the run stopped; suggestion:
    the rate where the smoothed loss falls fastest against log(rate). cbackprop.plot.lr_curve
    draws it."""
    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    diverged: bool


def lr_find(net, X, y, *, min_lr=1e-6, max_lr=1.0, steps=100, batch_size=32, solver="sgd",
            smoothing=0.9, diverge=4.0, random_state=None, **options):
    """Learning-rate range test: `steps` mini-batches of `batch_size` rows (a shuffled pass
    over X, repeated as needed) on a copy of net, the k-th at rate
    ``min_lr * (max_lr / min_lr) ** (k / (steps - 1))``, stopped when the smoothed loss
    exceeds `diverge` times its lowest (or is NaN or inf). net is not changed.

    solver: 'sgd' or 'adam'; options: fit's other options (momentum, lam, ...). Returns
    an LRFind: rates, losses, smoothed losses, and the suggestion: the rate at the steepest
    descent of the smoothed loss against log(rate), a rate of the run (so in
    [min_lr, max_lr]); pick a rate near it, or a little below."""
    if solver not in ("sgd", "adam"):
        raise ValueError(f"lr_find runs the mini-batch solvers 'sgd' or 'adam'; got {solver!r}")
    for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                              np.integer)) \
                or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    if not min_lr < max_lr:
        raise ValueError(f"min_lr must be below max_lr; got {min_lr!r} and {max_lr!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    if steps < 3:
        raise ValueError(f"steps must be at least 3 (a slope needs points); got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1); got {smoothing!r}")
    if not diverge > 1:
        raise ValueError(f"diverge must be > 1; got {diverge!r}")
    for given in ("learning_rate", "epochs", "batch_size", "shuffle"):
        if given in options:
            raise TypeError(f"lr_find sets {given} itself; it cannot be given")
    X = np.asarray(X) if not hasattr(X, "tocsr") else X.tocsr()
    y = np.asarray(y)
    if X.ndim != 2 or y.shape[:1] != X.shape[:1] or X.shape[0] == 0:
        raise ValueError(f"X must be 2-D with one row per sample of y; got X {X.shape}, "
                         f"y {y.shape}")
    rng = v.check_random_state(random_state)
    labels = y.ndim == 1 and net.output not in v.VALUE_OUTPUTS
    classes = np.unique(y) if labels else None
    trial = net.copy()
    rates = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
    order, pos = rng.permutation(X.shape[0]), 0
    losses, smoothed = [], []
    avg, best, diverged = 0.0, np.inf, False
    for k, rate in enumerate(rates):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(X.shape[0]), 0
        batch = order[pos:pos + batch_size]
        pos += batch_size
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                trial.fit(X[batch], y[batch], solver=solver, learning_rate=float(rate),
                          epochs=1, batch_size=len(batch), shuffle=False, tol=0.0,
                          classes=classes, reset_optimizer=k == 0, **options)
            loss = float(trial.history_["loss"][-1])
        except DivergenceError:
            loss = np.inf
        losses.append(loss)
        avg = smoothing * avg + (1 - smoothing) * loss
        smoothed.append(avg / (1 - smoothing ** (k + 1)))
        if not np.isfinite(smoothed[-1]) or smoothed[-1] > diverge * best:
            diverged = True
            break
        best = min(best, smoothed[-1])
    rates = rates[:len(losses)]
    losses, smoothed = np.array(losses), np.array(smoothed)
    usable = len(smoothed) - 1 if diverged else len(smoothed)   # the exploding step aside
    skip = usable // 10            # the first steps' average is still settling (fastai's rule)
    if usable - skip >= 2:
        slope = np.gradient(smoothed[skip:usable], np.log(rates[skip:usable]))
        suggestion = float(rates[skip + int(np.argmin(slope))])
    else:
        suggestion = float(rates[0])
    return LRFind(rates=rates, losses=losses, smoothed=smoothed, suggestion=suggestion,
                  diverged=diverged)
