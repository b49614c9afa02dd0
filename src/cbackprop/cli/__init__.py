"""The ``cbackprop`` command (also ``python -m cbackprop``).

    cbackprop demo                         train on scikit-learn's digits, time it, plot it
    cbackprop train DATA --target COLUMN   train on a CSV/.npy/.npz file, save a model file
    cbackprop predict MODEL DATA           predictions as CSV
    cbackprop evaluate MODEL DATA          scores on labelled data
    cbackprop inspect MODEL                what a model file holds
    cbackprop export MODEL --format onnx   an ONNX model or a C header (--format c)
    cbackprop lr-find DATA --target COLUMN the learning-rate range test: a suggested rate
    cbackprop check                        the compiled gradients against the reference
    cbackprop bench                        a quick timing table against NumPy

Exit status: 0 on success, 2 on a usage error, 1 on a data or model error, which is
reported as one line on stderr (``--debug`` shows the traceback).

The modules, each importing only those listed after it and the library: parser (the
options; it names the function each command runs), train, model (predict, evaluate,
inspect), export, lr_range (lr-find), compare (check, bench), demo, data (data files), report (what is printed).
"""
import os
import sys
import traceback
import warnings

import cbackprop as cb
from cbackprop.cli.parser import build_parser
from cbackprop.cli.report import PROG, CLIError, one_line, show_warning

__all__ = ["main"]


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)      # exits with status 2 on a usage error
    debug = getattr(args, "debug", False)
    saved = warnings.showwarning
    warnings.showwarning = show_warning
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
        print(f"{PROG}: error: {one_line(exc)}{hint}", file=sys.stderr, flush=True)
        return 1
    finally:
        warnings.showwarning = saved
