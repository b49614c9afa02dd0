"""Plots of training and of what a network learned (matplotlib, ``pip install "cbackprop[plot]"``).

Every function returns the matplotlib ``Figure`` it drew, and saves it when given ``path=``
(the format follows the file's extension; a PNG is ``figsize * dpi`` pixels). Figures are
made with ``matplotlib.figure.Figure``, not pyplot: no window opens and nothing is kept
between calls; Jupyter shows a returned figure as the cell's value. Pass ``fig=`` (a Figure
or a SubFigure) to draw into part of a larger figure instead.

- :func:`cost_curves`: the cost per epoch, with the validation cost and score if recorded;
- :func:`hidden_units`: each hidden unit's incoming weights as an image (the course's
  picture of the hidden layer), for networks whose inputs are images;
- :func:`images`: samples as images with a caption each (misclassified digits, say);
- :func:`confusion_matrix`: counts of true against predicted labels.
"""
import math

import numpy as np

__all__ = ["cost_curves", "hidden_units", "images", "confusion_matrix"]


def _figure(fig, figsize, dpi):
    if fig is not None:
        return fig
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('cbackprop.plot needs matplotlib: '
                          'pip install "cbackprop[plot]"') from None
    return Figure(figsize=figsize, dpi=dpi, layout="constrained")


def _finish(fig, path):
    if path is not None:                     # a SubFigure saves the whole figure it is in
        fig.figure.savefig(path, dpi=fig.figure.dpi)
    return fig


def _history(source):
    history = getattr(source, "history_", source)
    if not isinstance(history, dict) or not history.get("loss"):
        raise ValueError("cost_curves needs a fitted Network or its history_ dict (with 'loss')")
    return history


def cost_curves(source, path=None, fig=None, figsize=(6.4, 4.0), dpi=100, title=None,
                log_scale=None, best_epoch=None):
    """The training cost J per epoch, the validation cost (if recorded), and the validation
    score on a second axis (if recorded; capped at 1 where it is a score in [0, 1]).

    source: a fitted Network or its ``history_`` dict. log_scale None: a log axis when the
    cost falls by more than a factor of 20. best_epoch: the epoch whose parameters were
    kept, marked with a line; None: the best validation score's when a Network trained
    with early stopping is given (or any history with 'val_score'). The legend sits
    outside the axes, over no curve.
    """
    history = _history(source)
    fig = _figure(fig, figsize, dpi)
    ax = fig.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training cost J", color="C0")
    if history.get("val_loss"):
        ax.plot(epochs, history["val_loss"], label="validation cost", color="C1")
    costs = np.concatenate([history["loss"], history.get("val_loss") or []])
    if log_scale is None:
        log_scale = costs.min() > 0 and costs.max() / costs.min() > 20
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost")
    handles, labels = ax.get_legend_handles_labels()
    marked = ax                                        # the axes the best epoch is marked on
    if history.get("val_score"):
        ax2 = marked = ax.twinx()
        ax2.plot(epochs, history["val_score"], label="validation score", color="C2", ls="--")
        ax2.set_ylabel("validation score")
        scores = np.asarray(history["val_score"], dtype=np.float64)
        if scores.min() >= 0 and scores.max() <= 1:     # accuracy, or R^2 of a good fit
            lo = min(scores.min(), 1 - 1e-3)
            ax2.set_ylim(max(0.0, lo - 0.05 * (1 - lo)), 1.0)   # a flat score stays below 1
        if best_epoch is None:
            best_epoch = int(np.argmax(scores)) + 1     # early stopping keeps this epoch
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if best_epoch is not None:
        handles.append(marked.axvline(best_epoch, color="0.4", ls=":", lw=1,
                                  label=f"best validation score (epoch {best_epoch})"))
        labels.append(handles[-1].get_label())
    # above the axes, not over a curve (a validation curve ends where "center right" sat)
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2,
              fontsize="small", frameon=False)
    fig.suptitle(title or "Cost per epoch")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def _image_shape(n, image_shape):
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or image_shape[0] * image_shape[1] != n:
            raise ValueError(f"image_shape {image_shape} does not hold {n} inputs")
        return image_shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{n} inputs are not a square image; pass image_shape=(rows, cols)")
    return side, side


def _check_order(order):
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' (row-major pixels, scikit-learn's digits) or 'F' "
                         f"(column-major, the course's Octave images); got {order!r}")
    return order


def _mosaic(rows, shape, n_cols, pad=1, normalize=True, order="C"):
    """The course's displayData: images in a grid on a dark background, each scaled to
    its own largest absolute value (so that every unit's pattern shows)."""
    n = len(rows)
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    h, w = shape
    grid = np.full((pad + n_rows * (h + pad), pad + n_cols * (w + pad)), np.nan)
    for k, row in enumerate(rows):
        img = np.asarray(row, dtype=np.float64).reshape(shape, order=order)
        if normalize:
            img = img / max(np.abs(img).max(), 1e-12)
        r, c = divmod(k, n_cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def hidden_units(source, image_shape=None, path=None, fig=None, figsize=(5.0, 5.0), dpi=100,
                 n_cols=None, title=None, cmap="gray", order="C"):
    """The incoming weights of each unit of the first hidden layer, Theta(1)[j, 1:], drawn as
    an image of the input's shape (each scaled to its largest absolute weight).

    source: a Network or a Theta(1) matrix (bias in column 0). image_shape: (rows, cols);
    default a square. order: how one row of X holds the pixels: 'C' row by row
    (scikit-learn's digits), 'F' column by column (the course's ex4data1.mat, drawn by its
    displayData.m: reshape in Octave is column-major).
    """
    theta = np.asarray(source.thetas[0] if hasattr(source, "thetas") else source)
    if theta.ndim != 2 or theta.shape[1] < 2:
        raise ValueError(f"hidden_units needs a Network or Theta(1) of shape (s_2, s_1 + 1); "
                         f"got shape {theta.shape}")
    shape = _image_shape(theta.shape[1] - 1, image_shape)
    grid = _mosaic(theta[:, 1:], shape, n_cols, order=_check_order(order))
    fig = _figure(fig, figsize, dpi)
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"Hidden units: the weights into each of {theta.shape[0]}")
    return _finish(fig, path)


def images(X, captions=None, image_shape=None, path=None, fig=None, figsize=(5.0, 4.0),
           dpi=100, n_cols=None, title=None, cmap="gray_r", order="C"):
    """Samples (rows of X) drawn as images, each with an optional caption under it.
    order: 'C' row-major pixels, 'F' column-major (the course's images), as hidden_units."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"images needs a non-empty 2-D X (one image a row); got shape {X.shape}")
    if captions is not None and len(captions) != X.shape[0]:
        raise ValueError(f"{len(captions)} captions for {X.shape[0]} images")
    shape, order = _image_shape(X.shape[1], image_shape), _check_order(order)
    n = X.shape[0]
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    fig = _figure(fig, figsize, dpi)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    lo, hi = float(X.min()), float(X.max())
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k < n:
            ax.imshow(X[k].reshape(shape, order=order), cmap=cmap, vmin=lo, vmax=hi,
                      interpolation="nearest")
            if captions is not None:
                ax.set_title(str(captions[k]), fontsize="small")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def confusion_matrix(y_true, y_pred, labels=None, normalize=False, path=None, fig=None,
                     figsize=(5.0, 4.5), dpi=100, title=None, cmap="Blues"):
    """Counts of each true label (rows) against each predicted label (columns).

    labels: the order of the rows and columns (default: every label seen, sorted).
    normalize=True shows each row as fractions of its true label (the recall on the diagonal).
    Returns the Figure; the matrix itself is ``fig.confusion``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be 1-D of one non-zero length; got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    unknown = set(y_true.tolist()) | set(y_pred.tolist())
    unknown -= set(index)
    if unknown:
        raise ValueError(f"labels not in labels=: {sorted(map(str, unknown))[:5]}")
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, ([index[t] for t in y_true.tolist()], [index[p] for p in y_pred.tolist()]), 1)
    shown = counts.astype(np.float64)
    if normalize:
        shown = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    fig = _figure(fig, figsize, dpi)
    ax = fig.subplots()
    im = ax.imshow(shown, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ticks = np.arange(len(labels))
    names = [str(label) for label in labels.tolist()]
    ax.set_xticks(ticks, names, rotation=90 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 20:
        threshold = shown.max() / 2
        for i in range(len(labels)):
            for j in range(len(labels)):
                text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize="small",
                        color="white" if shown[i, j] > threshold else "black")
    accuracy = np.trace(counts) / counts.sum()
    ax.set_title(title or f"Confusion matrix (accuracy {accuracy:.1%})")
    fig.confusion = counts
    return _finish(fig, path)


def lr_curve(found, path=None, fig=None, figsize=(6.4, 4.0), dpi=100):
    """The learning-rate range test (cb.lr_find's result): the batches' losses and their
    smoothed curve against the rate (log scale), the suggested rate marked."""
    if not all(hasattr(found, a) for a in ("rates", "losses", "smoothed", "suggestion")):
        raise TypeError(f"lr_curve needs cb.lr_find's result; got {type(found).__name__}")
    fig = _figure(fig, figsize, dpi)
    ax = fig.add_subplot()
    ax.plot(found.rates, found.losses, color="0.75", lw=1, label="batch loss")
    ax.plot(found.rates, found.smoothed, lw=2, label="smoothed")
    ax.axvline(found.suggestion, ls="--", color="C3",
               label=f"suggestion {found.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend()
    return _finish(fig, path)
