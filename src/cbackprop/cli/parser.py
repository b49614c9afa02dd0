"""The command line's grammar: build_parser (every command, its options and help), the
fit's options in one place (add_fit_arguments), and the argparse value types, whose
messages argparse reports as usage errors (exit status 2)."""
import argparse
import difflib
import re

import cbackprop as cb
from cbackprop import _validation as v, options
from cbackprop.cli import compare, demo, export, lr_range, model, train
from cbackprop.cli.data import MAX_CLASSES_INFERRED
from cbackprop.cli.report import PROG

# ------------------------------------------------------------------------------ value types


def _number(text, convert):
    """text converted (int or float), or None when it is not a number."""
    try:
        return convert(text)
    except ValueError:
        return None


def _refused(requirement, text):
    return argparse.ArgumentTypeError(f"must be {requirement}; got {text!r}")


def positive_int(text):
    value = _number(text, int)
    if value is None or value < 1:
        raise _refused("an integer >= 1", text)
    return value


def positive_float(text):
    value = _number(text, float)
    if value is None or not 0 < value < float("inf"):
        raise _refused("a positive number", text)
    return value


def hidden_sizes(text):
    """'25' or '25,25' as a list of sizes; '', 'none' or '0' for no hidden layer."""
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


def _suggestion(word, known):
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def hidden_activations(text):
    """'relu' or one name a hidden layer, 'relu,tanh': checked here, so that a typo is a
    usage error (exit status 2) before anything runs."""
    names = [a.strip() for a in text.split(",")]
    for name in names:
        if name not in v.HIDDEN_ACTIVATIONS:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {name!r}{_suggestion(name, v.HIDDEN_ACTIVATIONS)}; choose "
                f"from {', '.join(v.HIDDEN_ACTIVATIONS)} (or one a hidden layer: relu,tanh)")
    return names[0] if len(names) == 1 else names


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose unknown options are reported by the command they were given
    to, with the closest option it has ('--epoch': did you mean --epochs?). Python 3.14's
    suggest_on_error does this for choices only, and not before 3.14."""

    commands = {}                     # the root's subcommands, by name (build_parser)

    def error(self, message):
        """argparse's usage error, with the closest choice to a mistyped one."""
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad and "did you mean" not in message:
            message += _suggestion(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)))
        super().error(message)

    def parse_args(self, args=None, namespace=None):
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self.commands.get(getattr(parsed, "command", None), self)
            flags = [f for a in command._actions for f in a.option_strings]
            unknown = next((e for e in extra if e.startswith("-")), extra[0])
            hint = _suggestion(unknown.split("=")[0], flags) if unknown.startswith("-") else ""
            command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
        return parsed


def c_name(text):
    """--name: a C identifier (cbackprop.export.check_c_name), else a usage error."""
    try:
        return cb.export.check_c_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def column_names(text):
    """'a, b,c' as ['a', 'b', 'c']; '' alone as [''], the unnamed column (pandas' index)."""
    if not text.strip():
        return [""]
    return [c.strip() for c in text.split(",") if c.strip()]


# ----------------------------------------------------------------------------- the parser


def _checked_by(option, convert):
    """An argparse type: the text converted, then checked as fit checks the option, its
    message a usage error."""
    def parse(text):
        value = _number(text, convert)
        if value is None:
            raise _refused("an integer" if convert is int else "a number", text)
        try:
            return option.check(option.name, value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


# The command line's defaults: Network.fit's (SAME) where they suit a CSV too, its own where
# they differ on purpose (README.md, "Defaults"): the course's regularization; a larger step,
# as a small CSV makes few steps an epoch; a validation score to report; a fixed seed, so that
# the same command gives the same model.
SAME = object()
FIT_FLAGS = {            # option: (argparse type or choices, default, what the default says)
    "solver": (v.SOLVERS, SAME, None),
    "epochs": (int, SAME, None),
    "lam": (float, 1.0, "default 1, the course's; Network.fit's is 0"),
    "learning_rate": (float, None, "default 0.01 (adam, sgd), 0.1 (online); Network.fit's is "
                                   "0.001"),
    "batch_size": (int, SAME, None),
    "validation_fraction": (float, None, "default 0.1 from 100 rows"),
    "early_stopping": (None, False, None),
    "random_state": (int, 0, "default 0"),
    "class_weight": (("balanced",), SAME, "default none: every class weighs 1"),
    "label_smoothing": (float, SAME, None),
    "clip_norm": (float, SAME, "default none: no clipping"),
    "weight_decay": (float, SAME, None),
    "dropout": (float, SAME, None),
    "input_dropout": (float, SAME, None),
}


def add_fit_arguments(parser):
    """The options of training itself, from fit's table of options (cbackprop.options):
    the same names (with dashes), checks and help; and the network's dtype."""
    for name, (convert, default, shown) in FIT_FLAGS.items():
        option = options.BY_NAME[name]
        if default is SAME and shown is None:
            default, shown = option.default, f"default {option.default}, as Network.fit"
        elif default is SAME:
            default = option.default
        flag = "--" + name.replace("_", "-")
        text = (option.brief or option.help) + (f" ({shown})" if shown else "")
        if isinstance(option.default, bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(convert, tuple):
            parser.add_argument(flag, choices=convert, default=default, help=text)
        elif name == "random_state":
            parser.add_argument(flag, type=int, default=default, help=text)
        else:
            parser.add_argument(flag, type=_checked_by(option, convert), default=default,
                                help=text)
    parser.add_argument("--dtype", choices=v.DTYPES, default="float64")


def _add_command(commands, name, run, debug, **texts):
    """A subcommand that takes --debug after its name too and runs run(args)."""
    p = commands.add_parser(name, parents=[debug], allow_abbrev=False, **texts)
    p.set_defaults(func=run)
    commands.registry[name] = p               # for Parser.parse_args's suggestions
    return p


def _add_model_command(commands, name, run, debug, reads_data=True, **texts):
    """A command on a model file (MODEL), which most run on a data file (DATA)."""
    p = _add_command(commands, name, run, debug, **texts)
    p.add_argument("model", metavar="MODEL")
    if reads_data:
        p.add_argument("data", metavar="DATA")
    return p


def build_parser():
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
    parser = Parser(
        prog=PROG, allow_abbrev=False,
        description="Backpropagation for fully connected networks, compiled (cbackprop).",
        epilog="Run 'cbackprop COMMAND -h' for a command's options. Exit status: 0 success, "
               "1 data or model error, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"cbackprop {cb.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=Parser)
    commands.registry = parser.commands = {}

    p = _add_command(commands, "demo", demo.cmd_demo, debug,
                     help="train on scikit-learn's digits, time it against NumPy, plot it",
                     description="Train the course's network on scikit-learn's handwritten "
                                 "digits; print test accuracy and a per-class summary; time "
                                 "it against the same work in NumPy; write a PNG.")
    p.add_argument("--quick", action="store_true", help="a reduced run (300 images, 3 epochs)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default 30; 3 with --quick)")
    p.add_argument("--hidden", type=positive_int, default=25, help="hidden units (default 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=demo.DEMO_PNG,
                   help=f"the PNG to write (default {demo.DEMO_PNG})")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")

    p = _add_command(commands, "train", train.cmd_train, debug,
                     help="train a network on a CSV, .npy or .npz file",
                     description="Train a network on DATA and save it as a model file. DATA: "
                                 "a CSV file with a header row, a .npy matrix (target: a "
                                 "column index, default the last) or a .npz with arrays X "
                                 "and y.")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column to predict: a CSV column name (or index), a .npy column "
                        "index (default -1), a .npz array name (default y)")
    p.add_argument("--drop", metavar="COLUMNS", default=[], type=column_names,
                   help="CSV columns to leave out of the features, comma-separated: names "
                        "(as in the header; '' or 'Unnamed: 0' for an unnamed one) or 0-based "
                        "indices. An unnamed first column of increasing integers (pandas' "
                        "index, from df.to_csv) is left out on its own, with a note")
    p.add_argument("--task", choices=tuple(train.TASKS), default="auto",
                   help="auto (default): classify text or integer targets with at most "
                        f"{MAX_CLASSES_INFERRED} values, else regress")
    p.add_argument("--hidden", type=hidden_sizes, default=[25],
                   help="hidden layer sizes, e.g. 25 or 25,25 (default 25; 'none' for none)")
    p.add_argument("--activation", default="sigmoid", type=hidden_activations,
                   help=f"hidden activation: sigmoid (default), "
                        f"{', '.join(v.HIDDEN_ACTIVATIONS[1:])}, or one per layer (relu,tanh)")
    p.add_argument("--output", choices=("auto", "sigmoid", "softmax", "identity", "exp"),
                   default="auto",
                   help="output layer (default: softmax for 3+ classes, one sigmoid unit for "
                        "2, identity for regression; exp: a regression of counts >= 0 with "
                        "the Poisson loss, its target not standardized)")
    p.add_argument("--scale", choices=("standard", "minmax", "none"), default="standard",
                   help="feature scaling, saved with the model (default standard)")
    add_fit_arguments(p)
    p.add_argument("--dask", metavar="WHERE",
                   help="train on a Dask cluster: 'local' (one started for the run) or a "
                        "scheduler's address (tcp://HOST:8786). DATA given as a glob pattern "
                        "('data/part-*.csv') or Parquet is read through Dask either way "
                        "(pip install 'cbackprop[dask]')")
    p.add_argument("--out", default="model.cbp", help="model file to write (default model.cbp)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (warnings, and why training stopped, still show)")

    p = _add_model_command(commands, "predict", model.cmd_predict, debug,
                           help="predict with a model file; CSV on stdout or --out",
                           description="Predictions for every row of DATA, as CSV (one row "
                                       "each, in order). A CSV's feature columns are found by "
                                       "name.")
    p.add_argument("--proba", action="store_true", help="add each class's probability")
    p.add_argument("--target", metavar="COLUMN",
                   help="a column of DATA to leave out (.npy: its index)")
    p.add_argument("--out", metavar="FILE", help="write the CSV here (default stdout)")

    p = _add_model_command(commands, "evaluate", model.cmd_evaluate, debug,
                           help="score a model file on labelled data",
                           description="Accuracy, per-class summary and confusion matrix "
                                       "(classifiers), or R^2, RMSE and MAE (regression).")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column of true values (default: the model's training target)")

    p = _add_model_command(commands, "inspect", model.cmd_inspect, debug, reads_data=False,
                           help="architecture, sizes and training summary of a model file")
    p.add_argument("--json", action="store_true", help="print the file's metadata as JSON")

    p = _add_model_command(commands, "export", export.cmd_export, debug, reads_data=False,
                           help="write a model file as an ONNX model or a C header",
                           description="Export MODEL (a Network's or a saved estimator's "
                                       "file) for deployment: an ONNX model (outputs label "
                                       "and probabilities, or variable; needs onnx) or one "
                                       "dependency-free C99 header. Both apply the model's "
                                       "feature scaling.")
    p.add_argument("--format", choices=export.FORMATS, required=True,
                   help="onnx or c (a C99 header)")
    p.add_argument("--out", metavar="FILE",
                   help="the file to write (default model.onnx, or NAME.h)")
    p.add_argument("--name", type=c_name, default="model",
                   help="C: the prefix of the header's names, a C identifier (default model)")
    p.add_argument("--dtype", choices=export.DTYPES,
                   help="the arithmetic: float32 (float) or float64 (double); default the "
                        "model's for ONNX, float for C")

    p = _add_command(commands, "check", compare.cmd_check, debug,
                     help="check the compiled gradients against the reference and finite "
                          "differences",
                     description="Check this installation's compiled core: the course's "
                                 "gradient check (3-5-3 network, debug weights) against the "
                                 "NumPy reference and central finite differences, then every "
                                 "activation x output x loss on random shapes, in float64 and "
                                 "float32. Exit status 1 if any disagrees.")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shapes (default 0)")

    p = _add_command(commands, "lr-find", lr_range.cmd_lr_find, debug,
                     help="the learning-rate range test on a data file; suggests a rate",
                     description="A short run of mini-batches whose learning rate grows "
                                 "exponentially from --min-lr to --max-lr, stopped when the "
                                 "loss explodes (cbackprop.lr_find), on DATA read, scaled and "
                                 "coded as train does. Prints the suggested rate: the steepest "
                                 "descent of the smoothed loss.")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", metavar="COLUMN", help="the column to predict, as for train")
    p.add_argument("--drop", metavar="COLUMNS", default=[], type=column_names,
                   help="columns to leave out of the features, as for train")
    p.add_argument("--task", choices=tuple(train.TASKS), default="auto",
                   help="auto (default), classify or regress, as for train")
    p.add_argument("--hidden", type=hidden_sizes, default=[25],
                   help="hidden layer sizes (default 25)")
    p.add_argument("--activation", default="sigmoid", type=hidden_activations,
                   help="hidden activation (default sigmoid), as for train")
    p.add_argument("--output", choices=("auto", "sigmoid", "softmax", "identity", "exp"),
                   default="auto", help="output layer, as for train")
    p.add_argument("--scale", choices=("standard", "minmax", "none"), default="standard",
                   help="feature scaling (default standard)")
    p.add_argument("--solver", choices=("sgd", "adam"), default="sgd",
                   help="the mini-batch solver (default sgd)")
    p.add_argument("--min-lr", type=positive_float, default=1e-6,
                   help="the first rate (default 1e-6)")
    p.add_argument("--max-lr", type=positive_float, default=1.0,
                   help="the last rate (default 1)")
    p.add_argument("--steps", type=positive_int, default=100,
                   help="mini-batches, one a rate (default 100)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="rows a mini-batch (default 32)")
    p.add_argument("--dtype", choices=v.DTYPES, default="float64")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--plot", metavar="PNG", help="write the loss curve here (matplotlib)")

    p = _add_command(commands, "bench", compare.cmd_bench, debug,
                     help="time the compiled core against the NumPy reference",
                     description="Time the cost and gradient of the course's 400-25-10 "
                                 "network (float64, float32) and the per-sample loop, "
                                 "cbackprop against the NumPy reference on this machine: "
                                 "medians with their spread (fastest to slowest run), the "
                                 "build the processor runs (baseline, avx2, avx512; with or "
                                 "without OpenMP), cbackprop's and BLAS's threads. Busy machines "
                                 "give noisy numbers; benchmarks/run.py is the full suite.")
    p.add_argument("--quick", action="store_true", help="smaller and fewer runs")
    p.add_argument("--repeats", type=positive_int, help="timing repeats (default 7, quick 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data (default 0)")
    return parser
