"""What the commands print: lines on stdout, scores, the per-class table and the confusion
matrix of a classifier, and the one-line errors and warnings on stderr."""
import sys

import numpy as np

PROG = "cbackprop"
FULL_BATCH_SOLVERS = ("lbfgs", "cg", "rprop")     # their --epochs counts iterations


class CLIError(Exception):
    """A problem with the user's data or files: reported as one line, exit status 1."""


def out(*args):
    """A line on stdout, flushed so that it keeps its place between progress bars."""
    print(*args, flush=True)


def percent(x):
    return f"{100 * x:.1f}%"


def score_text(value, task):
    """Accuracy as a percentage, R^2 as a number."""
    return percent(value) if task == "classification" else f"{value:.4f}"


def iteration_unit(solver):
    return "iterations" if solver in FULL_BATCH_SOLVERS else "epochs"


def shortened(items, n):
    """The first n items, comma-separated, with ', ...' when there are more."""
    return ", ".join(map(str, items[:n])) + (", ..." if len(items) > n else "")


def class_table(y_true, y_pred, classes, name="class"):
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


def confusion_text(y_true, y_pred, classes):
    """The confusion matrix: a row per true class, a column per predicted class."""
    names = [str(c) for c in classes.tolist()]
    w = max(5, max(map(len, names)) + 1)
    lines = ["  true \\ predicted", "  " + " " * w + "".join(f"{n:>{w}}" for n in names)]
    for c, n in zip(classes.tolist(), names):
        counts = [int(np.sum((y_true == c) & (y_pred == p))) for p in classes.tolist()]
        lines.append(f"  {n:>{w}}" + "".join(f"{k:>{w}}" for k in counts))
    return "\n".join(lines)


def one_line(exc):
    """An exception's message on one line; an OSError as 'file: reason'."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def note(text):
    """Something the user should know that is neither output nor a problem: on stderr, so
    that predictions on stdout stay clean."""
    print(f"{PROG}: note: {' '.join(str(text).split())}", file=sys.stderr, flush=True)


def show_warning(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning for the command line: one line, no source location."""
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
