"""`cbackprop train`: a network fitted to a data file and saved as a model file, with the
feature scaling, and for regression the target's standardization folded into it."""
import os
import time
import warnings

import numpy as np

import cbackprop as cb
from cbackprop import _targets, cluster
from cbackprop.cli import dask_files
from cbackprop.cli.data import as_labels, check_writable, infer_task, read_data
from cbackprop.cli.report import CLIError, iteration_unit, out, score_text, shortened
from cbackprop.preprocessing import Scaler, TargetScaler

DEFAULT_RATES = {"adam": 0.01, "sgd": 0.01, "online": 0.1}
TASKS = {"auto": None, "classify": "classification", "regress": "regression"}


def _task_and_target(args, data):
    """(task, y as the fit takes it, classes), the task line printed."""
    task = TASKS[args.task]
    inferred = task is None
    distinct = data.distinct()
    task = task or infer_task(distinct)
    if task == "regression" and data.y.dtype.kind not in "biuf":
        raise CLIError(f"{data.path}: the target {data.target!r} holds text, which a regression "
                       "cannot predict (use --task classify)")
    target_name = data.target if isinstance(data.target, str) else f"column {data.target}"
    if task == "regression":
        how = " (inferred; --task classify to override)" if inferred else ""
        out(f"task: regression of {target_name}{how}")
        return task, data.y.astype(np.float64), np.array([])
    labels = as_labels(distinct)
    y = data.y if labels.dtype == distinct.dtype else data.y.astype(labels.dtype)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise CLIError(f"{data.path}: the target {target_name} has a single value "
                       f"({classes.tolist()[0]!r}); a classifier needs at least 2 classes")
    how = " (inferred; --task regress to override)" if inferred else ""
    out(f"task: classification of {target_name}{how}: {len(classes)} classes "
        f"({shortened(classes.tolist(), 10)})")
    return task, y, classes


def _architecture(args, task, n_classes):
    """(output units, output layer, loss) for the task and --output."""
    if task == "regression":
        if args.output == "exp":                    # counts: the half Poisson deviance
            return 1, "exp", "poisson"
        if args.output not in ("auto", "identity"):
            raise CLIError(f"--output {args.output} is for classification; regression uses "
                           "identity (or exp) outputs")
        return 1, "identity", "squared_error"
    if args.output in ("identity", "exp"):
        raise CLIError(f"--output {args.output} is for regression (--task regress)")
    if args.output == "auto":
        output = "sigmoid" if n_classes == 2 else "softmax"
    else:
        output = args.output
    n_out = 1 if (n_classes == 2 and output == "sigmoid") else n_classes
    return n_out, output, "cross_entropy"


def _validation_split(args, y, task):
    """Indices (train, validation or None): stratified for labels (as fit's own split).
    On Dask data: every row trains (slice(None)); a validation split is refused."""
    fraction = args.validation_fraction
    if cluster.is_dask(y):
        if fraction:
            raise CLIError("--validation-fraction holds rows out in memory: not with data "
                           "read through Dask (train on every row, evaluate on other files)")
        if args.early_stopping:
            raise CLIError("--early-stopping needs a validation split: not with data read "
                           "through Dask")
        return slice(None), None
    if fraction is None:
        fraction = 0.1 if len(y) >= 100 else 0.0
    if args.early_stopping and fraction == 0:
        raise CLIError("--early-stopping needs validation data: set --validation-fraction")
    if fraction == 0:
        return np.arange(len(y)), None
    labels = y if task == "classification" else None
    try:
        return _targets.validation_split(len(y), labels, fraction,
                                         np.random.default_rng(args.random_state))
    except ValueError as exc:
        raise CLIError(f"--validation-fraction {fraction}: {exc}") from None


def _training_line(args, n_train, val, rate):
    """What the fit is about to do: solver, samples, length, lam and the step settings."""
    line = f"training: {args.solver}, {n_train} samples"
    if val is not None:
        line += f" (+ {len(val)} for validation)"
    line += f", up to {args.epochs} {iteration_unit(args.solver)}, lam {args.lam:g}"
    if args.solver in ("adam", "sgd", "online"):
        line += f", learning rate {rate:g}"
    if args.solver in ("adam", "sgd"):
        line += f", batch {args.batch_size}"
    return line


def _baseline(task, y):
    """The training score of a model that learned nothing: the largest class's share
    (always predicting it), or R^2 = 0 (always predicting the mean)."""
    if task == "regression":
        return 0.0
    y = np.asarray(y)                          # a Dask y's labels come to the client here
    return float(np.unique(y, return_counts=True)[1].max() / len(y))


def _why_stopped(args, net, caught, learned):
    """One line: why training stopped (diverging, converged, out of epochs, early
    stopping, interrupted), and a ConvergenceWarning where it did not end well. Warnings
    go to stderr, --quiet or not."""
    unit = iteration_unit(args.solver)
    losses = net.history_["loss"]
    if any(issubclass(w.category, cb.TrainingInterrupted) for w in caught):
        return "stopped: interrupted (Ctrl-C); the parameters reached are saved"
    out_of_epochs = net.n_iter_ >= args.epochs
    # a cost that rose, or one that settled without learning anything, is a step too large
    if (len(losses) > 1 and losses[-1] > losses[0]) or (not learned and not out_of_epochs):
        warnings.warn(f"training diverged or learned nothing: the cost went from "
                      f"{losses[0]:.4g} to {losses[-1]:.4g} and the training score is no "
                      "better than always predicting the most frequent class (or the mean); "
                      "try a smaller --learning-rate, a smaller --lam or another --solver",
                      cb.ConvergenceWarning)
        return f"stopped after {net.n_iter_} {unit}: diverging (the model learned nothing)"
    if out_of_epochs:
        return (f"stopped: out of {unit} ({args.epochs}) before converging; more --epochs "
                "may help" + ("" if learned else " (it has learned nothing yet)"))
    if args.early_stopping:
        best = int(np.argmax(net.history_["val_score"])) + 1
        return (f"stopped early: the validation score stopped improving; the parameters of "
                f"epoch {best} (the best) are saved")
    return f"stopped after {net.n_iter_} {unit}: converged (the cost stopped improving)"


def cmd_train(args):
    check_writable(args.out)
    if dask_files.wanted(args.data, args.dask):
        data = dask_files.read(args.data, args.target, args.drop)
        connection = cluster.Connection(args.dask, verbose=False)   # fit says where
        try:
            return _train(args, data, connection.client)
        finally:
            connection.close()
    return _train(args, read_data(args.data, args.target, need_target=True, drop=args.drop))


def _train(args, data, client=None):
    X = data.X
    task, y, classes = _task_and_target(args, data)
    n_out, output, loss = _architecture(args, task, len(classes))
    activation = args.activation               # a name, or one a hidden layer (the parser's)
    seed = args.random_state
    net = cb.Network([X.shape[1]] + args.hidden + [n_out], activation=activation,
                     output=output, loss=loss, dtype=args.dtype, random_state=seed)

    train, val = _validation_split(args, y, task)
    scaler = Scaler.fit(X[train], args.scale) if args.scale != "none" else None
    Xs = scaler.transform(X) if scaler is not None else X
    # a regression learns its target on a standard scale, folded into the network after;
    # not a Poisson target (counts >= 0, whose exp output cannot be rescaled by folding)
    target_scaler = (TargetScaler.fit(y[train])
                     if task == "regression" and args.scale != "none" and loss != "poisson"
                     else None)
    y_fit = target_scaler.transform(y) if target_scaler is not None else y
    rate = args.learning_rate or DEFAULT_RATES.get(args.solver, 0.01)
    out(f"network: {net!r}, {net.params.size} parameters")
    n_train = X.shape[0] if isinstance(train, slice) else len(train)
    out(_training_line(args, n_train, val, rate))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:   # shown below, after the bar
        warnings.simplefilter("always")
        net.fit(Xs[train], y_fit[train], solver=args.solver, lam=args.lam, epochs=args.epochs,
                batch_size=args.batch_size, learning_rate=rate, random_state=seed,
                validation_data=(Xs[val], y_fit[val]) if val is not None else None,
                early_stopping=args.early_stopping, verbose=not args.quiet,
                class_weight=args.class_weight, label_smoothing=args.label_smoothing,
                clip_norm=args.clip_norm, weight_decay=args.weight_decay,
                dropout=args.dropout, input_dropout=args.input_dropout,
                **({"client": client} if client is not None else {}))
    seconds = time.perf_counter() - t0
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if target_scaler is not None:
        target_scaler.fold_into(net)

    summary = {"final_cost": net.history_["loss"][-1], "epochs_run": net.n_iter_,
               "seconds": round(seconds, 3), "train_score": net.score(Xs[train], y[train])}
    out(f"done in {seconds:.2f} s, {net.n_iter_} {iteration_unit(args.solver)}: "
        f"final cost J = {summary['final_cost']:.6g}"
        + (" (on the standardized target)" if target_scaler is not None else ""))
    score_name = "accuracy" if task == "classification" else "R^2"
    scores = f"training {score_name} {score_text(summary['train_score'], task)}"
    if val is not None:
        summary["validation_score"] = net.score(Xs[val], y[val])
        scores += f", validation {score_name} {score_text(summary['validation_score'], task)}"
    out(scores)
    learned = summary["train_score"] > _baseline(task, y[train]) + 1e-9
    out(_why_stopped(args, net, caught, learned))
    if task == "regression":
        rmse = float(np.sqrt(np.mean((net.predict(Xs[train]) - y[train]) ** 2)))
        out(f"training RMSE {rmse:.6g}")

    net.scaler_ = scaler
    net.info_ = {
        **net.info_,                           # what fit recorded (class weights, smoothing)
        "trained_with": "cbackprop train",
        "data": os.path.basename(data.path), "data_format": data.kind,
        "n_columns": data.n_columns,
        "features": data.features, "target": data.target, "task": task,
        "solver": args.solver, "lam": args.lam, "epochs": args.epochs,
        "learning_rate": rate, "batch_size": args.batch_size, "scale": args.scale,
        "random_state": seed, "n_train": int(n_train),
        "n_validation": int(len(val)) if val is not None else 0,
        "early_stopping": args.early_stopping,
        "target_scaling": ({"mean": float(target_scaler.mean[0]),
                            "std": float(target_scaler.std[0])}
                           if target_scaler is not None else None),
        **{k: float(v) if isinstance(v, float) else v for k, v in summary.items()},
    }
    net.save(args.out)
    out(f"saved {args.out}")
    return 0
