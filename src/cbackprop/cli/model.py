"""The commands that use a model file: `predict` (CSV of predictions), `evaluate` (scores
on labelled data) and `inspect` (what the file holds)."""
import csv
import json
import sys

import numpy as np

import cbackprop as cb
from cbackprop import _targets, _validation as v, modelfile
from cbackprop.cli.data import as_labels, check_exists, data_kind, read_data
from cbackprop.cli.report import (CLIError, class_table, confusion_text, iteration_unit, out,
                                  percent, shortened)


def _load_model(path):
    check_exists(path)
    return cb.load(path)


def _task(net):
    return "regression" if net.output in v.VALUE_OUTPUTS else "classification"


def _model_data(net, args, need_target):
    """DATA read for a model: its CSV feature columns found by name, its training target
    column (or --target) taken out, and its feature scaling applied."""
    info = net.info_ or {}
    n_features = net.layer_sizes[0]
    kind = data_kind(args.data)
    # columns by name: a model trained on CSV or Parquet files (through Dask) reads a CSV
    same_kind = info.get("data_format") == kind or (
        kind == "csv" and info.get("data_format") == "parquet")
    target = args.target
    if target is None and same_kind and (need_target or kind == "csv"):
        target = info.get("target")          # the column the model was trained to predict
    if kind == "csv":
        # a saved estimator's feature_names_in_ (no data_format) are CSV column names too
        features = info.get("features") if same_kind or "data_format" not in info else None
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


# -------------------------------------------------------------------------------- predict


def _csv_value(value):
    """A cell of the predictions' CSV: floats in full (repr), labels as they are."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def cmd_predict(args):
    net = _load_model(args.model)
    data, X = _model_data(net, args, need_target=False)
    if args.proba and _task(net) != "classification":
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
    to_file = bool(args.out) and args.out != "-"          # "--out -": standard output
    stream = open(args.out, "w", newline="", encoding="utf-8") if to_file else sys.stdout
    try:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        for row in zip(*columns):
            writer.writerow([_csv_value(value) for value in row])
    finally:
        if to_file:
            stream.close()
    if to_file:
        print(f"wrote {len(pred)} predictions to {args.out}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------- evaluate


def _evaluate_classifier(net, args, X, y):
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
    out(f"cost J = {net.cost(X, Y):.6g} (the training loss, unregularized)")
    out(f"accuracy {percent(accuracy)} ({int(round(accuracy * len(y)))} of {len(y)})")
    out(class_table(y, pred, classes))
    if len(classes) <= 20:
        out(confusion_text(y, pred, classes))


def _evaluate_regression(net, args, X, y):
    if y.dtype.kind not in "biuf":
        raise CLIError(f"{args.data}: the target holds text; this model predicts numbers")
    y = y.astype(np.float64)
    pred = net.predict(X)
    r2 = net.score(X, y)
    out(f"R^2 {r2:.4f}, RMSE {np.sqrt(np.mean((pred - y) ** 2)):.6g}, "
        f"MAE {np.mean(np.abs(pred - y)):.6g}")


def cmd_evaluate(args):
    net = _load_model(args.model)
    data, X = _model_data(net, args, need_target=True)
    if data.y is None:
        raise CLIError("--target COLUMN is needed: name the column holding the true values")
    task = _task(net)
    if (net.target_coding_.kind == _targets.MATRIX
            or (task == "regression" and net.layer_sizes[-1] > 1)):
        raise CLIError(f"{args.model} predicts {net.layer_sizes[-1]} outputs a sample; "
                       "evaluate scores models of one target column")
    out(f"{args.model} on {args.data}: {len(data.y)} samples")
    if task == "classification":
        _evaluate_classifier(net, args, X, data.y)
    else:
        _evaluate_regression(net, args, X, data.y)
    return 0


# -------------------------------------------------------------------------------- inspect


INFO_SHOWN = [("data", "data"), ("solver", "solver"), ("lam", "lam"),
              ("learning_rate", "learning rate"), ("batch_size", "batch size"),
              ("n_train", "training samples"), ("n_validation", "validation samples"),
              ("train_score", "training score"), ("validation_score", "validation score"),
              ("seconds", "seconds")]          # (key of info_, its name): what train records


def _history_line(net, info):
    if getattr(net, "history_", None) is None:
        return "training: none recorded"
    hist = net.history_
    line = (f"training: {net.n_iter_} {iteration_unit(info.get('solver'))}, "
            f"final cost {hist['loss'][-1]:.6g}")
    if hist.get("val_score"):
        line += (f", validation score {hist['val_score'][-1]:.4g} "
                 f"(best {max(hist['val_score']):.4g})")
    return line


def cmd_inspect(args):
    net = _load_model(args.model)
    meta = modelfile.read_metadata(args.model)
    if args.json:
        out(json.dumps(meta, indent=1))
        return 0
    info = net.info_ or {}
    sizes = net.layer_sizes
    out(f"{args.model}: cbackprop model, format version {meta['format_version']}, written by "
        f"cbackprop {meta.get('cbackprop_version', '?')} on {meta.get('created', '?')}")
    if isinstance(meta.get("estimator"), dict):
        out(f"saved from: a scikit-learn {meta['estimator']['class']} (cbackprop.sklearn.load "
            "gives it back)")
    acts = ", ".join(net.activation) if net.activation else "none"
    out(f"network: {' -> '.join(map(str, sizes))} ({len(sizes) - 2} hidden layer"
        f"{'s' if len(sizes) != 3 else ''}: {acts}; output {net.output}; loss {net.loss}; "
        f"{net.dtype.name}), {net.params.size} parameters")
    out("  " + net.summary().replace("\n", "\n  "))
    for l, t in enumerate(net.thetas, start=1):
        weights = np.abs(t[:, 1:])
        out(f"  Theta({l}): {t.shape[0]} x {t.shape[1]}  (|weights| max {weights.max():.4g}, "
            f"mean {weights.mean():.4g})")
    if net.classes_ is not None:
        out(f"classes: {len(net.classes_)} ({shortened(net.classes_.tolist(), 20)})")
        weights = info.get("class_weight")
        if isinstance(weights, list) and len(weights) == len(net.classes_):
            out("class weights: " + shortened([f"{c} {w:.4g}" for c, w in zip(
                net.classes_.tolist(), weights)], 20))
    if info.get("label_smoothing"):
        out(f"label smoothing: {info['label_smoothing']:g}")
    elif net.output in v.VALUE_OUTPUTS:
        out("predicts: values (regression)" + (", the Poisson loss" if net.loss == "poisson"
                                                 else ""))
    features = info.get("features")
    line = f"features: {sizes[0]}"
    if features:
        line += f" ({shortened(features, 10)})"
    if info.get("target") is not None:
        line += f"; target: {info['target']}"
    out(line)
    out(f"feature scaling: {net.scaler_.kind if net.scaler_ is not None else 'none'}")
    out(_history_line(net, info))
    if info.get("trained_with"):
        for key, name in INFO_SHOWN:
            value = info.get(key)
            if value is not None:
                out(f"  {name + ':':<20} {value:.6g}" if isinstance(value, float)
                    else f"  {name + ':':<20} {value}")
    return 0
