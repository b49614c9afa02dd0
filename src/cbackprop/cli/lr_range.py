"""`cbackprop lr-find`: the learning-rate range test (cbackprop.lr_find) on a data file, read,
scaled and coded as `cbackprop train` does; prints the suggested rate, plots the curve."""
import numpy as np

import cbackprop as cb
from cbackprop.cli.data import check_writable, read_data
from cbackprop.cli.report import out
from cbackprop.cli.train import _architecture, _task_and_target
from cbackprop.preprocessing import Scaler, TargetScaler


def cmd_lr_find(args):
    if args.plot:
        check_writable(args.plot, (".png", ".pdf", ".svg"))
    data = read_data(args.data, args.target, need_target=True, drop=args.drop)
    task, y, classes = _task_and_target(args, data)
    n_out, output, loss = _architecture(args, task, len(classes))
    X = data.X
    net = cb.Network([X.shape[1]] + args.hidden + [n_out], activation=args.activation,
                     output=output, loss=loss, dtype=args.dtype, random_state=args.random_state)
    if args.scale != "none":
        X = Scaler.fit(X, args.scale).transform(X)
        if task == "regression" and loss != "poisson":
            y = TargetScaler.fit(y).transform(y)
    found = cb.lr_find(net, X, y, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps,
                       batch_size=args.batch_size, solver=args.solver,
                       random_state=args.random_state)
    end = "the loss exploded" if found.diverged else "the range ended"
    out(f"{args.solver}: {len(found.rates)} batches of {args.batch_size}, rates "
        f"{found.rates[0]:.3g} to {found.rates[-1]:.3g} ({end}); lowest smoothed loss "
        f"{np.min(found.smoothed):.4g} at {found.rates[int(np.argmin(found.smoothed))]:.3g}")
    out(f"suggested learning rate: {found.suggestion:.3g}")
    if args.plot:
        from cbackprop.plot import lr_curve
        lr_curve(found, path=args.plot)
        out(f"wrote {args.plot}")
    return 0
