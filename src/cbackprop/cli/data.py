"""The ``cbackprop`` command (also ``python -m cbackprop``).

    cbackprop demo                         train on scikit-learn's digits, time it, plot it
    cbackprop train DATA --target COLUMN   train on a CSV/.npy/.npz file, save a model file
    cbackprop predict MODEL DATA           predictions as CSV
    cbackprop evaluate MODEL DATA          scores on labelled data
    cbackprop inspect MODEL                what a model file holds
    cbackprop check                        the compiled gradients against the reference
    cbackprop bench                        a quick timing table against NumPy

Exit status: 0 on success, 2 on a usage error, 1 on a data or model error, which is
reported as one line on stderr (``--debug`` shows the traceback).
"""
import argparse
import csv
import itertools
import math
import os
import sys
import time
import traceback
import warnings

import numpy as np

import cbackprop as cb
from cbackprop import _targets, modelfile, reference
from cbackprop.preprocessing import Scaler

PROG = "cbackprop"
DEMO_PNG = "cbackprop-demo.png"
DEMO_EXTRA = 'pip install "cbackprop[demo]"'
MAX_CLASSES_INFERRED = 20          # an integer target with at most this many values is labels


class CLIError(Exception):
    """A problem with the user's data or files: reported as one line, exit status 1."""


# =============================================================================== data files


class Data:
    """Features X (float64, m x n), target y (or None), and where they came from."""

    def __init__(self, path, X, y, features, target, kind, n_columns):
        self.path, self.X, self.y = path, X, y
        self.features, self.target = features, target     # names (CSV) or None; name/index
        self.kind, self.n_columns = kind, n_columns


def _data_kind(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in (".npy", ".npz"):
        return ext[1:]
    return "csv"


def _check_exists(path):
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a data file")


def _finite_matrix(path, X, names, lines=None):
    """Refuse NaN and inf, naming the first bad cell (by CSV line, or by row from 0)."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"line {lines[row]}" if lines else f"row {row}"
        what = f"column {names[col]!r}" if names else f"column {col}"
        raise CLIError(f"{path}: {where}, {what} is {X[row, col]}: NaN and inf are not allowed "
                       "(remove or impute missing values first)")
    return X


def _read_csv(path, target, features, drop, need_target):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CLIError(f"{path}: empty file: a CSV needs a header row of column names")
        header = [h.strip() for h in header]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue                                   # blank line
            if len(row) != len(header):
                raise CLIError(f"{path}: line {reader.line_num} has {len(row)} fields but the "
                               f"header has {len(header)} (a bad CSV file?)")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise CLIError(f"{path}: bad CSV at line {reader.line_num}: {exc}") from None
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise CLIError(f"{path}: duplicate column names {dup}")
    if not rows:
        raise CLIError(f"{path}: no data rows after the header")

    def column(name, what):
        if name in header:
            return header.index(name)
        try:
            index = int(name)
        except (TypeError, ValueError):
            index = None
        if index is not None and -len(header) <= index < len(header):
            return index % len(header)
        shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
        raise CLIError(f"{path}: no {what} column {name!r}; the columns are: {shown}")

    t = column(target, "target") if target is not None else None
    if t is None and need_target:
        raise CLIError("--target COLUMN is needed: name the column to predict")
    if features is not None:
        missing = [n for n in features if n not in header]
        if missing:
            raise CLIError(f"{path}: the model's feature column(s) {missing[:5]} are missing")
        cols = [header.index(n) for n in features]
    else:
        dropped = {column(n, "--drop") for n in drop}
        cols = [j for j in range(len(header)) if j != t and j not in dropped]
        if not cols:
            raise CLIError(f"{path}: no feature columns left besides the target")
    names = [header[j] for j in cols]
    cells = [[row[j] for j in cols] for row in rows]
    try:
        X = np.array(cells, dtype=np.float64)
    except ValueError:
        for r, row in enumerate(cells):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "is empty" if not cell.strip() else f"is {cell!r}, not a number"
                    raise CLIError(f"{path}: line {lines[r]}, column {names[j]!r} {what} "
                                   "(features must be numbers: encode or drop that column, "
                                   "impute missing values)") from None
        raise
    _finite_matrix(path, X, names, lines)
    y = None
    if t is not None:
        raw = [row[t].strip() for row in rows]
        for r, cell in enumerate(raw):
            if not cell:
                raise CLIError(f"{path}: line {lines[r]}: the target {header[t]!r} is missing")
        try:
            y = np.array(raw, dtype=np.float64)
        except ValueError:
            y = np.array(raw)                              # text labels
        else:
            bad = ~np.isfinite(y)
            if bad.any():
                r = int(np.argmax(bad))
                raise CLIError(f"{path}: line {lines[r]}: the target {header[t]!r} is {raw[r]!r}; "
                               "NaN and inf are not allowed")
    return Data(path, X, y, names, header[t] if t is not None else None, "csv", len(header))


def _numeric(path, arr, what):
    if arr.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} must hold numbers; got dtype {arr.dtype}")
    return arr


def _read_npy(path, target, need_target):
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read this .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or 0 in arr.shape:
        raise CLIError(f"{path}: a .npy data file must hold one non-empty 2-D array (samples x "
                       f"columns); got shape {getattr(arr, 'shape', None)}")
    _numeric(path, arr, "the array")
    n_cols = arr.shape[1]
    if target is None and not need_target:          # every column a feature
        X = _finite_matrix(path, arr.astype(np.float64), None)
        return Data(path, X, None, None, None, "npy", n_cols)
    try:
        t = -1 if target is None else int(target)
    except (TypeError, ValueError):
        raise CLIError(f"for .npy data --target is a column index (default -1, the last "
                       f"column); got {target!r}") from None
    if not -n_cols <= t < n_cols:
        raise CLIError(f"{path}: no column {t}; the array has {n_cols} columns")
    t %= n_cols
    X = np.delete(arr, t, axis=1).astype(np.float64)
    y = arr[:, t].astype(np.float64)
    _finite_matrix(path, np.column_stack([X, y]), None)
    return Data(path, X, y, None, t, "npy", n_cols)


def _read_npz(path, target, need_target):
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read this .npz file ({exc})") from None
    except Exception as exc:                       # zipfile's errors for a damaged archive
        raise CLIError(f"{path}: not a readable .npz file ({exc})") from None
    y_name = target if target is not None else "y"
    if target is not None and y_name not in arrays:
        raise CLIError(f"{path}: no array {y_name!r}; the file holds {sorted(arrays)}")
    others = [k for k in arrays if k != y_name]
    x_name = "X" if "X" in arrays else (others[0] if len(others) == 1 else None)
    if x_name is None:
        raise CLIError(f"{path}: a .npz data file needs arrays 'X' and 'y' (or --target NAME); "
                       f"it holds {sorted(arrays)}")
    X = _numeric(path, arrays[x_name], f"the array {x_name!r}")
    if X.ndim != 2 or 0 in X.shape:
        raise CLIError(f"{path}: {x_name!r} must be a non-empty 2-D array; got shape {X.shape}")
    X = _finite_matrix(path, X.astype(np.float64), None)
    y = arrays.get(y_name)
    if y is None:
        if need_target:
            raise CLIError(f"{path}: no target array 'y'; name it with --target (the file holds "
                           f"{sorted(arrays)})")
    else:
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise CLIError(f"{path}: {y_name!r} must be 1-D with one value per row of "
                           f"{x_name!r} ({X.shape[0]}); got shape {y.shape}")
        if y.dtype.kind not in "biufU":
            raise CLIError(f"{path}: {y_name!r} must hold numbers or text; got dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise CLIError(f"{path}: {y_name!r} contains NaN or inf")
    return Data(path, X, y, None, y_name if y is not None else None, "npz", X.shape[1])


def read_data(path, target=None, need_target=True, features=None, drop=()):
    """A Data from a CSV file (with a header row), a .npy matrix or a .npz archive.

    target: the column (CSV name or index, .npy index) or array (.npz) to predict; None
    with need_target=False reads features only. features: the CSV columns to take as
    features, by name (a model's); default every column but the target and drop."""
    _check_exists(path)
    kind = _data_kind(path)
    if kind == "csv":
        return _read_csv(path, target, features, drop, need_target)
    if drop:
        raise CLIError("--drop applies to CSV files (name columns in the header)")
    if kind == "npy":
        return _read_npy(path, target, need_target)
    return _read_npz(path, target, need_target)


def infer_task(y):
    """'classification' for text labels or integer values with few distinct values."""
    if y.dtype.kind not in "biuf":
        return "classification"
    values = np.unique(y)
    if np.all(np.mod(values, 1) == 0) and len(values) <= MAX_CLASSES_INFERRED:
        return "classification"
    return "regression"


def as_labels(y):
    """Integer-valued numbers as int64 labels (so that '3' prints as 3, not 3.0)."""
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0) and np.abs(y).max() < 2**53:
        return y.astype(np.int64)
    return y


# ================================================================================ messages


def _out(*args):
    print(*args, flush=True)


def _percent(x):
    return f"{100 * x:.1f}%"


def _class_table(y_true, y_pred, classes, name="class"):
    """Per class: samples, correct, recall, precision, the label most often predicted instead."""
    width = max([len(name)] + [len(str(c)) for c in classes.tolist()])
    lines = [f"  {name:>{width}}  samples  correct  recall  precision  most often mistaken for"]
    for c in classes.tolist():
        mine = y_true == c
        n, correct = int(mine.sum()), int(np.sum(mine & (y_pred == c)))
        predicted = int(np.sum(y_pred == c))
        recall = f"{100 * correct / n:5.1f}%" if n else "     -"
        precision = f"{100 * correct / predicted:8.1f}%" if predicted else "        -"
        wrong = y_pred[mine & (y_pred != c)]
        if wrong.size:
            labels, counts = np.unique(wrong, return_counts=True)
            mistaken = f"{labels[np.argmax(counts)]} ({counts.max()}x)"
        else:
            mistaken = "-"
        lines.append(f"  {str(c):>{width}}  {n:7d}  {correct:7d}  {recall}  {precision}  "
                     f"{mistaken}")
    return "\n".join(lines)


def _confusion_text(y_true, y_pred, classes):
    names = [str(c) for c in classes.tolist()]
    w = max(5, max(map(len, names)) + 1)
    lines = ["  true \\ predicted", "  " + " " * w + "".join(f"{n:>{w}}" for n in names)]
    for c, n in zip(classes.tolist(), names):
        counts = [int(np.sum((y_true == c) & (y_pred == p))) for p in classes.tolist()]
        lines.append(f"  {n:>{w}}" + "".join(f"{k:>{w}}" for k in counts))
    return "\n".join(lines)


# ==================================================================================== train


def _hidden_sizes(text):
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes like 25 or 25,25; got {text!r}")
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be >= 1; got {text!r}")
    return sizes


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _nonnegative(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def _positive(text):
    value = _nonnegative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0; got {text!r}")
    return value


DEFAULT_RATES = {"adam": 0.01, "sgd": 0.01, "online": 0.1}


def _architecture(args, task, n_classes):
    if task == "regression":
        if args.output not in ("auto", "identity"):
            raise CLIError(f"--output {args.output} is for classification; regression uses "
                           "identity outputs")
        return 1, "identity", "squared_error"
    if args.output == "identity":
        raise CLIError("--output identity is for regression (--task regress)")
    if args.output == "auto":
        output = "sigmoid" if n_classes == 2 else "softmax"
    else:
        output = args.output
    n_out = 1 if (n_classes == 2 and output == "sigmoid") else n_classes
    return n_out, output, "cross_entropy"


def _validation_split(y, fraction, task, seed):
    """Indices (train, validation): stratified for labels (as fit's own split)."""
    if fraction == 0:
        return np.arange(len(y)), None
    labels = y if task == "classification" else None
    try:
        return _targets.validation_split(len(y), labels, fraction,
                                         np.random.default_rng(seed))
    except ValueError as exc:
        raise CLIError(f"--validation-fraction {fraction}: {exc}") from None


def _check_writable(path, suffixes=None):
    """Fail before the work, not after it: the folder of path must exist, path must not be
    a folder, and (for a picture) its suffix must be one matplotlib writes."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{path}: no such folder to write into ({folder})")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a folder, not a file to write")
    if suffixes and os.path.splitext(path)[1].lower() not in suffixes:
        raise CLIError(f"{path}: the picture must end in one of {', '.join(suffixes)}")


def cmd_train(args):
    _check_writable(args.out)
    data = read_data(args.data, args.target, need_target=True, drop=args.drop)
    X, y = data.X, data.y
    task = {"auto": None, "classify": "classification", "regress": "regression"}[args.task]
    inferred = task is None
    task = task or infer_task(y)
    if task == "regression" and y.dtype.kind not in "biuf":
        raise CLIError(f"{data.path}: the target {data.target!r} holds text, which a regression "
                       "cannot predict (use --task classify)")
    target_name = data.target if isinstance(data.target, str) else f"column {data.target}"
    if task == "classification":
        y = as_labels(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise CLIError(f"{data.path}: the target {target_name} has a single value "
                           f"({classes.tolist()[0]!r}); a classifier needs at least 2 classes")
        shown = ", ".join(map(str, classes[:10].tolist())) + (", ..." if len(classes) > 10 else "")
        how = " (inferred; --task regress to override)" if inferred else ""
        _out(f"task: classification of {target_name}{how}: {len(classes)} classes ({shown})")
    else:
        y = y.astype(np.float64)
        classes = np.array([])
        how = " (inferred; --task classify to override)" if inferred else ""
        _out(f"task: regression of {target_name}{how}")
    n_out, output, loss = _architecture(args, task, len(classes))
    sizes = [X.shape[1]] + args.hidden + [n_out]
    activation = args.activation.split(",") if "," in args.activation else args.activation
    seed = args.random_state
    net = cb.Network(sizes, activation=activation, output=output, loss=loss, dtype=args.dtype,
                     random_state=seed)

    fraction = args.validation_fraction
    if fraction is None:
        fraction = 0.1 if X.shape[0] >= 100 else 0.0
    if args.early_stopping and fraction == 0:
        raise CLIError("--early-stopping needs validation data: set --validation-fraction")
    train, val = _validation_split(y, fraction, task, seed)
    scaler = Scaler.fit(X[train], args.scale) if args.scale != "none" else None
    Xs = scaler.transform(X) if scaler is not None else X
    y_fit, y_mean, y_std = y, 0.0, 1.0
    if task == "regression" and args.scale != "none":
        y_mean, y_std = float(y[train].mean()), float(y[train].std()) or 1.0
        y_fit = (y - y_mean) / y_std          # learned on a standard scale, folded in below
    rate = args.learning_rate or DEFAULT_RATES.get(args.solver, 0.01)
    validation = (Xs[val], y_fit[val]) if val is not None else None
    _out(f"network: {net!r}, {net.params.size} parameters")
    unit = "iterations" if args.solver in ("lbfgs", "cg", "rprop") else "epochs"
    _out(f"training: {args.solver}, {len(train)} samples"
         + (f" (+ {len(val)} for validation)" if val is not None else "")
         + f", up to {args.epochs} {unit}"
         + f", lam {args.lam:g}"
         + (f", learning rate {rate:g}, batch {args.batch_size}" if args.solver in ("adam", "sgd")
            else f", learning rate {rate:g}" if args.solver == "online" else ""))
    t0 = time.perf_counter()
    net.fit(Xs[train], y_fit[train], solver=args.solver, lam=args.lam, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=rate, random_state=seed,
            validation_data=validation, early_stopping=args.early_stopping,
            verbose=not args.quiet)
    seconds = time.perf_counter() - t0
    if task == "regression" and (y_mean, y_std) != (0.0, 1.0):
        last = net.thetas[-1]                 # h = y_std * h_standard + y_mean, exactly linear
        last *= y_std
        last[:, 0] += y_mean

    hist = net.history_
    summary = {"final_cost": hist["loss"][-1], "epochs_run": net.n_iter_,
               "seconds": round(seconds, 3)}
    score_name = "accuracy" if task == "classification" else "R^2"
    summary["train_score"] = net.score(Xs[train], y[train])
    msg = (f"done in {seconds:.2f} s, {net.n_iter_} {unit}: "
           f"final cost J = {summary['final_cost']:.6g}"
           + (" (on the standardized target)" if task == "regression" and args.scale != "none"
              else ""))
    _out(msg)
    scores = f"training {score_name} {_fmt_score(summary['train_score'], task)}"
    if val is not None:
        summary["validation_score"] = net.score(Xs[val], y[val])
        scores += f", validation {score_name} {_fmt_score(summary['validation_score'], task)}"
    _out(scores)
    if task == "regression":
        rmse = float(np.sqrt(np.mean((net.predict(Xs[train]) - y[train]) ** 2)))
        _out(f"training RMSE {rmse:.6g}")

    net.scaler_ = scaler
    net.info_ = {
        "trained_with": "cbackprop train",
        "data": os.path.basename(data.path), "data_format": data.kind,
        "n_columns": data.n_columns,
        "features": data.features, "target": data.target, "task": task,
        "solver": args.solver, "lam": args.lam, "epochs": args.epochs,
        "learning_rate": rate, "batch_size": args.batch_size, "scale": args.scale,
        "random_state": seed, "n_train": int(len(train)),
        "n_validation": int(len(val)) if val is not None else 0,
        "early_stopping": args.early_stopping,
        "target_scaling": ({"mean": y_mean, "std": y_std} if task == "regression"
                           and args.scale != "none" else None),
        **{k: float(v) if isinstance(v, float) else v for k, v in summary.items()},
    }
    net.save(args.out)
    _out(f"saved {args.out}")
    return 0


def _fmt_score(value, task):
    return _percent(value) if task == "classification" else f"{value:.4f}"


# ===================================================================== predict / evaluate


def _load_model(path):
    _check_exists(path)
    return cb.load(path)


def _model_data(net, args, need_target):
    """DATA read for a model: its CSV feature columns found by name, its training target
    column (or --target) taken out, and its feature scaling applied."""
    info = net.info_ or {}
    n_features = net.layer_sizes[0]
    kind = _data_kind(args.data)
    same_kind = info.get("data_format") == kind
    target = args.target
    if target is None and same_kind and (need_target or kind == "csv"):
        target = info.get("target")          # the column the model was trained to predict
    if kind == "csv":
        features = info.get("features") if same_kind else None
        if target is not None and not need_target and features:
            target = None                    # found by name; a target column is not needed
        data = read_data(args.data, target, need_target=need_target, features=features)
    else:
        data = read_data(args.data, target, need_target=need_target)
        if (kind == "npy" and data.y is None and data.X.shape[1] == n_features + 1
                and same_kind and info.get("target") is not None):
            data.X = np.delete(data.X, info["target"], axis=1)   # predict on training data
    if data.X.shape[1] != n_features:
        raise CLIError(f"{args.data}: {data.X.shape[1]} feature columns, the model takes "
                       f"{n_features}")
    X = net.scaler_.transform(data.X) if net.scaler_ is not None else data.X
    return data, X


def _task(net):
    return "regression" if net.output == "identity" else "classification"


def _format_value(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def cmd_predict(args):
    net = _load_model(args.model)
    data, X = _model_data(net, args, need_target=False)
    task = _task(net)
    if args.proba and task != "classification":
        raise CLIError("--proba needs a classifier; this model predicts values (regression)")
    pred = net.predict(X)
    if pred.ndim == 2:                     # several outputs (multi-label, several values)
        header = [f"prediction_{k}" for k in range(pred.shape[1])]
        columns = list(pred.T)
    else:
        header, columns = ["prediction"], [pred]
    if args.proba:
        proba = net.predict_proba(X)
        classes = net.classes_ if net.classes_ is not None else np.arange(proba.shape[1])
        header += [f"p_{c}" for c in classes.tolist()]
        columns += [proba[:, k] for k in range(proba.shape[1])]
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in zip(*columns):
            writer.writerow([_format_value(value) for value in row])
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(pred)} predictions to {args.out}", file=sys.stderr)
    return 0


def cmd_evaluate(args):
    net = _load_model(args.model)
    data, X = _model_data(net, args, need_target=True)
    if data.y is None:
        raise CLIError("--target COLUMN is needed: name the column holding the true values")
    task = _task(net)
    if net.target_coding_.kind == _targets.MATRIX or (task == "regression" and net.layer_sizes[-1] > 1):
        raise CLIError(f"{args.model} predicts {net.layer_sizes[-1]} outputs a sample; "
                       "evaluate scores models of one target column")
    y = data.y
    _out(f"{args.model} on {args.data}: {len(y)} samples")
    if task == "classification":
        y = as_labels(y) if y.dtype.kind == "f" else y
        if net.classes_ is not None and y.dtype.kind != net.classes_.dtype.kind:
            if net.classes_.dtype.kind in "US" and y.dtype.kind in "biuf":
                y = y.astype(str)               # a numeric column of text-trained labels
        try:
            pred = net.predict(X)
            accuracy = net.score(X, y)
        except (TypeError, ValueError) as exc:
            raise CLIError(f"{args.data}: {exc}") from None
        classes = net.classes_ if net.classes_ is not None else np.unique(np.r_[y, pred])
        Y = (y[:, None] == classes[None, :]).astype(np.float64)
        if Y.shape[1] == 2 and net.layer_sizes[-1] == 1:
            Y = Y[:, 1:]
        _out(f"cost J = {net.cost(X, Y):.6g} (the training loss, unregularized)")
        _out(f"accuracy {_percent(accuracy)} ({int(round(accuracy * len(y)))} of {len(y)})")
        _out(_class_table(y, pred, classes))
        if len(classes) <= 20:
            _out(_confusion_text(y, pred, classes))
    else:
        if y.dtype.kind not in "biuf":
            raise CLIError(f"{args.data}: the target holds text; this model predicts numbers")
        y = y.astype(np.float64)
        pred = net.predict(X)
        r2 = net.score(X, y)
        _out(f"R^2 {r2:.4f}, RMSE {np.sqrt(np.mean((pred - y) ** 2)):.6g}, "
             f"MAE {np.mean(np.abs(pred - y)):.6g}")
    return 0


# ================================================================================== inspect


def cmd_inspect(args):
    net = _load_model(args.model)
    meta = modelfile.read_metadata(args.model)
    if args.json:
        import json
        _out(json.dumps(meta, indent=1))
        return 0
    info = net.info_ or {}
    sizes = net.layer_sizes
    _out(f"{args.model}: cbackprop model, format version {meta['format_version']}, written by "
         f"cbackprop {meta.get('cbackprop_version', '?')} on {meta.get('created', '?')}")
    acts = ", ".join(net.activation) if net.activation else "none"
    _out(f"network: {' -> '.join(map(str, sizes))} ({len(sizes) - 2} hidden layer"
         f"{'s' if len(sizes) != 3 else ''}: {acts}; output {net.output}; loss {net.loss}; "
         f"{net.dtype.name}), {net.params.size} parameters")
    for l, t in enumerate(net.thetas, start=1):
        weights = np.abs(t[:, 1:])
        _out(f"  Theta({l}): {t.shape[0]} x {t.shape[1]}  (|weights| max {weights.max():.4g}, "
             f"mean {weights.mean():.4g})")
    if net.classes_ is not None:
        shown = ", ".join(map(str, net.classes_[:20].tolist()))
        _out(f"classes: {len(net.classes_)} ({shown}{', ...' if len(net.classes_) > 20 else ''})")
    elif net.output == "identity":
        _out("predicts: values (regression)")
    features = info.get("features")
    line = f"features: {sizes[0]}"
    if features:
        line += f" ({', '.join(features[:10])}{', ...' if len(features) > 10 else ''})"
    if info.get("target") is not None:
        line += f"; target: {info['target']}"
    _out(line)
    _out(f"feature scaling: {net.scaler_.kind if net.scaler_ is not None else 'none'}")
    if getattr(net, "history_", None) is not None:
        hist = net.history_
        unit = "iterations" if info.get("solver") in ("lbfgs", "cg", "rprop") else "epochs"
        line = f"training: {net.n_iter_} {unit}, final cost {hist['loss'][-1]:.6g}"
        if hist.get("val_score"):
            line += (f", validation score {hist['val_score'][-1]:.4g} "
                     f"(best {max(hist['val_score']):.4g})")
        _out(line)
    else:
        _out("training: none recorded")
    if info.get("trained_with"):
        shown = [("data", "data"), ("solver", "solver"), ("lam", "lam"),
                 ("learning_rate", "learning rate"), ("batch_size", "batch size"),
                 ("n_train", "training samples"), ("n_validation", "validation samples"),
                 ("train_score", "training score"), ("validation_score", "validation score"),
                 ("seconds", "seconds")]
        for key, name in shown:
            value = info.get(key)
            if value is not None:
                _out(f"  {name + ':':<20} {value:.6g}" if isinstance(value, float)
                     else f"  {name + ':':<20} {value}")
    return 0


# ============================================================================ check / bench


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


def cmd_check(args):
    rng = np.random.default_rng(args.seed)
    _out(f"cbackprop {cb.__version__}: the compiled gradients against the NumPy reference and "
         "finite differences\n")
    _out("The course's gradient check (3-5-3 network, m = 5, debug weights):")
    _out(f"  {'lambda':>6}  {'J':>10}  {'|J - J_ref|':>11}  {'max |grad - ref|':>16}  "
         f"{'finite-difference rel. diff':>27}")
    ok = True
    for lam, J, dj, dg, fd in _course_check():
        _out(f"  {lam:6.1f}  {J:10.6f}  {dj:11.1e}  {dg:16.1e}  {fd:27.1e}")
        ok &= dj < 1e-12 and dg < 1e-12 and fd < 1e-8
    worst = _combinations_check(rng)
    _out("\nEvery activation x output x loss, random shapes, max relative difference to the "
         "reference:")
    for dtype, err in worst.items():
        _out(f"  {dtype}: {err:.1e}")
    ok &= worst["float64"] < 1e-10 and worst["float32"] < 1e-4
    if not ok:
        raise CLIError("gradient check FAILED: the compiled core disagrees with the reference "
                       "(see the table above)")
    _out("\nall checks passed")
    return 0


def _median_ms(fn, repeats):
    fn()                                    # one untimed call: caches, thread pools, buffers
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _timings(rng, repeats, quick):
    """The course's exercise shape: 5000 x 400 -> 25 -> 10, lambda 1 (1000 rows if quick)."""
    m, sizes = (1000 if quick else 5000), [400, 25, 10]
    X = rng.uniform(size=(m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    rows = []
    for dtype in ("float64", "float32"):
        net = cb.Network(sizes, dtype=dtype, random_state=0)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        thetas = net.thetas
        ours = _median_ms(lambda: net.cost_and_gradient(Xd, Yd, 1.0), repeats)
        theirs = _median_ms(lambda: reference.cost_and_gradient(thetas, Xd, Yd, 1.0), repeats)
        rows.append((f"cost+gradient, {dtype}", "ms", ours, theirs))
    net = cb.Network(sizes, random_state=0)
    few = 50 if quick else 500         # the NumPy loop is slow: time a few samples
    # One sample at a time is BLAS level 2 on small vectors: both on one BLAS thread. (Left
    # free, OpenBLAS wakes its thread pool for every 400 x 25 product: 1000x slower here.)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        ours = 1e3 / few * _median_ms(
            lambda: net.cost_and_gradient(X[:few], Y[:few], 1.0, method="per_sample"), repeats)
        theirs = 1e3 / few * _median_ms(
            lambda: reference.cost_and_gradient_loop(net.thetas, X[:few], Y[:few], 1.0),
            min(repeats, 3))
    rows.append(("per-sample loop, float64", "us a sample", ours, theirs))
    return m, rows


def cmd_bench(args):
    rng = np.random.default_rng(args.seed)
    repeats = args.repeats or (3 if args.quick else 7)
    m, rows = _timings(rng, repeats, args.quick)
    _out(f"cbackprop {cb.__version__} against the NumPy reference (cbackprop.reference), "
         f"{m} x 400 -> 25 -> 10, lambda 1, median of {repeats}:")
    _out(f"  {'':<26} {'cbackprop':>12} {'NumPy':>12} {'speed-up':>9}")
    for name, unit, ours, theirs in rows:
        _out(f"  {name:<26} {ours:>9.3g} {unit.split()[0]:<2} {theirs:>9.3g} {unit.split()[0]:<2} "
             f"{theirs / ours:>8.1f}x")
    _out("  NumPy: the reference's vectorized cost_and_gradient and its per-sample loop, on the "
         "same BLAS;\n  the per-sample rows run on one BLAS thread, the others on all cores.")
    return 0


# ===================================================================================== demo


def _numpy_online_epoch(thetas, X, Y, order, rate, decay):
    """The derivation's SGD in plain NumPy, one sample at a time, as online_epoch does it:
    forward, delta(L) = h - y, delta(l) = Theta(l)[:, 1:]^T delta(l+1) * a(l)(1 - a(l)),
    then Theta(l) = decay Theta(l) - rate delta(l+1) [1; a(l)]^T (the bias not decayed), with
    decay = 1 - rate lam / m. Sigmoid layers and outputs, cross-entropy (the demo's network).
    Written as a careful NumPy user would: no checks, few temporaries. Returns the summed loss.
    """
    total = 0.0
    weights = [theta[:, 1:] for theta in thetas]          # views: updates go into thetas
    biases = [theta[:, 0] for theta in thetas]
    with np.errstate(over="ignore"):                      # exp(-z) = inf gives sigmoid 0: fine
        for i in order:
            a = [X[i]]
            for W, b in zip(weights, biases):
                z = W @ a[-1] + b                          # z(l+1) = Theta(l) [1; a(l)]
                a.append(1.0 / (1.0 + np.exp(-z)))
            y = Y[i]
            total += float(np.logaddexp(0.0, z).sum() - y @ z)   # softplus(z) - y z
            delta = a[-1] - y                              # delta(L) = h - y
            for l in range(len(thetas) - 1, -1, -1):
                back = weights[l].T @ delta if l > 0 else None
                weights[l] *= decay
                weights[l] -= rate * np.outer(delta, a[l])
                biases[l] -= rate * delta
                if l > 0:
                    delta = back * a[l] * (1.0 - a[l])
    return total


def _demo_imports():
    missing = []
    for name in ("sklearn", "matplotlib", "tqdm"):
        try:
            __import__(name)
        except ImportError:
            missing.append({"sklearn": "scikit-learn"}.get(name, name))
    if missing:
        raise CLIError(f"the demo needs {', '.join(missing)}: {DEMO_EXTRA}")


def cmd_demo(args):
    _check_writable(args.out, (".png", ".pdf", ".svg"))
    _demo_imports()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    X, y = load_digits(return_X_y=True)
    X = X / 16.0                               # pixels 0..16 -> 0..1
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y,
                                                        random_state=args.seed)
    epochs = args.epochs or (3 if args.quick else 30)
    if args.quick:
        X_train, y_train = X_train[:300], y_train[:300]
    hidden, rate, lam = args.hidden, 0.1, 0.1
    _out(f"cbackprop {cb.__version__} demo: handwritten digits (scikit-learn's 8x8 images), "
         "the course's network")
    _out(f"data: {len(y_train)} training and {len(y_test)} test images of 64 pixels, "
         f"10 classes (the digits 0-9)")
    net = cb.Network([64, hidden, 10], activation="sigmoid", output="sigmoid",
                     loss="cross_entropy", random_state=args.seed)
    start = [t.copy() for t in net.thetas]
    _out(f"network: {net!r}")
    _out(f"training: the derivation's stochastic gradient descent (online: Theta updated after "
         f"every sample), {epochs} epochs, learning rate {rate:g}, lam {lam:g}")

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.ConvergenceWarning)     # the epochs are the demo's
        net.fit(X_train, y_train, solver="online", epochs=epochs, learning_rate=rate, lam=lam,
                random_state=args.seed, validation_data=(X_test, y_test), verbose=True)
    ours = time.perf_counter() - t0

    # The same work in plain NumPy: the same updates in the same sample order, and the same
    # evaluation of the test set after every epoch.
    m = len(y_train)
    Y_train = np.eye(10)[y_train]
    Y_test = np.eye(10)[y_test]
    thetas = [t.astype(np.float64) for t in start]
    order_rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for _ in tqdm(range(net.n_iter_), desc="NumPy (same work)", unit="epoch"):
        _numpy_online_epoch(thetas, X_train, Y_train, order_rng.permutation(m), rate,
                            1.0 - rate * lam / m)
        reference.cost(thetas, X_test, Y_test)
        np.mean(np.argmax(reference.forward(thetas, X_test), axis=1) == y_test)
    theirs = time.perf_counter() - t0
    agree = max(float(np.abs(a - b).max()) for a, b in zip(net.thetas, thetas))

    pred = net.predict(X_test)
    accuracy = float(np.mean(pred == y_test))
    _out(f"\ntest accuracy: {_percent(accuracy)} ({int(np.sum(pred == y_test))} of {len(y_test)}),"
         f" final training cost J = {net.history_['loss'][-1]:.4f}")
    _out(_class_table(y_test, pred, np.arange(10), name="digit"))
    _out(f"\ntraining time for {net.n_iter_} epochs x {m} samples (each epoch followed by the "
         f"test set's cost and accuracy):")
    _out(f"  cbackprop (compiled per-sample loop, one nogil call) {ours:8.3f} s")
    _out(f"  NumPy (the same loop and updates, sample by sample)   {theirs:8.3f} s   "
         f"{theirs / ours:.1f}x slower")
    _out(f"  same result: the largest difference between the two networks' weights is "
         f"{agree:.1e}")
    if not args.no_plot:
        fig = _demo_figure(net, X_test, y_test, pred, accuracy)
        fig.savefig(args.out, dpi=fig.dpi)
        _out(f"\nwrote {args.out}: the cost curves, the hidden units' weights as 8x8 images, "
             f"misclassified test digits")
    return 0


def _demo_figure(net, X_test, y_test, pred, accuracy):
    from cbackprop import plot
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 5), dpi=100, layout="constrained")
    left, middle, right = fig.subfigures(1, 3, width_ratios=[1.25, 1, 1])
    plot.cost_curves(net, fig=left, title="Cost per epoch (test set as validation)")
    plot.hidden_units(net, image_shape=(8, 8), fig=middle,
                      title=f"The {net.layer_sizes[1]} hidden units' weights")
    wrong = np.flatnonzero(pred != y_test)[:15]
    if wrong.size:
        captions = [f"{y_test[i]} read as {pred[i]}" for i in wrong]
        title = f"Misclassified test digits ({np.sum(pred != y_test)} of {len(y_test)})"
    else:
        proba = net.predict_proba(X_test)
        wrong = np.argsort(proba.max(axis=1))[:15]
        captions = [f"{y_test[i]} ({proba[i].max():.0%} sure)" for i in wrong]
        title = "No test digit misclassified: the least sure"
    plot.images(X_test[wrong], captions, image_shape=(8, 8), fig=right, n_cols=5, title=title)
    fig.suptitle(f"cbackprop on scikit-learn's digits: test accuracy {accuracy:.1%}",
                 fontsize="x-large")
    return fig


# ============================================================================== the parser


def build_parser():
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Backpropagation for fully connected networks, compiled (cbackprop).",
        epilog="Run 'cbackprop COMMAND -h' for a command's options. Exit status: 0 success, "
               "1 data or model error, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"cbackprop {cb.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", parents=[debug], allow_abbrev=False,
                       help="train on scikit-learn's digits, time it against NumPy, plot it",
                       description="Train the course's network on scikit-learn's handwritten "
                                   "digits; print test accuracy and a per-class summary; time "
                                   "it against the same work in NumPy; write a PNG.")
    p.add_argument("--quick", action="store_true", help="a reduced run (300 images, 3 epochs)")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default 30; 3 with --quick)")
    p.add_argument("--hidden", type=_positive_int, default=25, help="hidden units (default 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=DEMO_PNG, help=f"the PNG to write (default {DEMO_PNG})")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", parents=[debug], allow_abbrev=False,
                       help="train a network on a CSV, .npy or .npz file",
                       description="Train a network on DATA and save it as a model file. DATA: "
                                   "a CSV file with a header row, a .npy matrix (target: a "
                                   "column index, default the last) or a .npz with arrays X "
                                   "and y.")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column to predict: a CSV column name (or index), a .npy column "
                        "index (default -1), a .npz array name (default y)")
    p.add_argument("--drop", metavar="COLUMNS", default="",
                   type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
                   help="CSV columns to leave out of the features (comma-separated)")
    p.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                   help="auto (default): classify text or integer targets with at most "
                        f"{MAX_CLASSES_INFERRED} values, else regress")
    p.add_argument("--hidden", type=_hidden_sizes, default=[25],
                   help="hidden layer sizes, e.g. 25 or 25,25 (default 25; 'none' for none)")
    p.add_argument("--activation", default="sigmoid",
                   help="hidden activation: sigmoid (default), tanh, relu, or one per layer "
                        "(relu,tanh)")
    p.add_argument("--output", choices=("auto", "sigmoid", "softmax", "identity"), default="auto",
                   help="output layer (default: softmax for 3+ classes, one sigmoid unit for "
                        "2, identity for regression)")
    p.add_argument("--solver", choices=("adam", "sgd", "online", "lbfgs", "cg", "rprop"),
                   default="adam", help="default adam")
    p.add_argument("--epochs", type=_positive_int, default=100,
                   help="epochs, or iterations of lbfgs/cg/rprop (default 100)")
    p.add_argument("--lam", type=_nonnegative, default=1.0,
                   help="regularization lambda (default 1)")
    p.add_argument("--learning-rate", type=_positive,
                   help="default 0.01 (adam, sgd), 0.1 (online)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    p.add_argument("--scale", choices=("standard", "minmax", "none"), default="standard",
                   help="feature scaling, saved with the model (default standard)")
    p.add_argument("--validation-fraction", type=_fraction,
                   help="share of the data held out to validate (default 0.1 from 100 rows)")
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation score stops improving; keep the best")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default="model.cbp", help="model file to write (default model.cbp)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", parents=[debug], allow_abbrev=False,
                       help="predict with a model file; CSV on stdout or --out",
                       description="Predictions for every row of DATA, as CSV (one row each, "
                                   "in order). A CSV's feature columns are found by name.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--proba", action="store_true", help="add each class's probability")
    p.add_argument("--target", metavar="COLUMN",
                   help="a column of DATA to leave out (.npy: its index)")
    p.add_argument("--out", metavar="FILE", help="write the CSV here (default stdout)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", parents=[debug], allow_abbrev=False,
                       help="score a model file on labelled data",
                       description="Accuracy, per-class summary and confusion matrix "
                                   "(classifiers), or R^2, RMSE and MAE (regression).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column of true values (default: the model's training target)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("inspect", parents=[debug], allow_abbrev=False,
                       help="architecture, sizes and training summary of a model file")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print the file's metadata as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("check", parents=[debug], allow_abbrev=False,
                       help="check the compiled gradients against the reference and finite "
                            "differences")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("bench", parents=[debug], allow_abbrev=False,
                       help="time the compiled core against the NumPy reference")
    p.add_argument("--quick", action="store_true", help="smaller and fewer runs")
    p.add_argument("--repeats", type=_positive_int, help="timing repeats (default 7, quick 3)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_bench)
    return parser


def _one_line(exc):
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)              # exits with status 2 on a usage error
    debug = getattr(args, "debug", False)
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                      # `cbackprop predict ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:                    # every error: one line, no traceback
        if debug:
            traceback.print_exc()
        hint = "" if debug or isinstance(exc, (CLIError, cb.ModelFileError, OSError)) else \
            " (--debug shows the traceback)"
        print(f"{PROG}: error: {_one_line(exc)}{hint}", file=sys.stderr, flush=True)
        return 1
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
