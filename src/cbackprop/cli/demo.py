"""`cbackprop demo`: the course's network trained on scikit-learn's 8x8 digits, timed against
the same work in NumPy (cbackprop.reference.online_epoch), and drawn."""
import time
import warnings

import numpy as np

import cbackprop as cb
from cbackprop import reference
from cbackprop.cli.data import check_writable
from cbackprop.cli.report import CLIError, class_table, out, percent

DEMO_PNG = "cbackprop-demo.png"
DEMO_EXTRA = 'pip install "cbackprop[demo]"'
PICTURE_SUFFIXES = (".png", ".pdf", ".svg")


def _check_demo_imports():
    missing = []
    for name in ("sklearn", "matplotlib", "tqdm"):
        try:
            __import__(name)
        except ImportError:
            missing.append({"sklearn": "scikit-learn"}.get(name, name))
    if missing:
        raise CLIError(f"the demo needs {', '.join(missing)}: {DEMO_EXTRA}")


def _numpy_seconds(net, start, X_train, y_train, X_test, y_test, rate, lam, seed):
    """The compiled fit's work in plain NumPy: the same updates in the same sample order, and
    the same evaluation of the test set after every epoch. (seconds, the Thetas reached)."""
    from tqdm.auto import tqdm

    Y_train, Y_test = np.eye(10)[y_train], np.eye(10)[y_test]
    thetas = [t.astype(np.float64) for t in start]
    order_rng = np.random.default_rng(seed)     # fit draws each epoch's order the same way
    t0 = time.perf_counter()
    for _ in tqdm(range(net.n_iter_), desc="NumPy (same work)", unit="epoch"):
        thetas, _ = reference.online_epoch(thetas, X_train, Y_train,
                                           order_rng.permutation(len(y_train)), rate, lam)
        reference.cost(thetas, X_test, Y_test)
        np.mean(np.argmax(reference.forward(thetas, X_test), axis=1) == y_test)
    return time.perf_counter() - t0, thetas


def cmd_demo(args):
    check_writable(args.out, PICTURE_SUFFIXES)
    _check_demo_imports()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0                               # pixels 0..16 -> 0..1
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y,
                                                        random_state=args.seed)
    epochs = args.epochs or (3 if args.quick else 30)
    if args.quick:
        X_train, y_train = X_train[:300], y_train[:300]
    hidden, rate, lam = args.hidden, 0.1, 0.1
    out(f"cbackprop {cb.__version__} demo: handwritten digits (scikit-learn's 8x8 images), "
        "the course's network")
    out(f"data: {len(y_train)} training and {len(y_test)} test images of 64 pixels, "
        f"10 classes (the digits 0-9)")
    net = cb.Network([64, hidden, 10], activation="sigmoid", output="sigmoid",
                     loss="cross_entropy", random_state=args.seed)
    start = [t.copy() for t in net.thetas]
    out(f"network: {net!r}")
    out(f"training: the derivation's stochastic gradient descent (online: Theta updated after "
        f"every sample), {epochs} epochs, learning rate {rate:g}, lam {lam:g}")

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.ConvergenceWarning)     # the epochs are the demo's
        net.fit(X_train, y_train, solver="online", epochs=epochs, learning_rate=rate, lam=lam,
                random_state=args.seed, validation_data=(X_test, y_test), verbose=True)
    ours = time.perf_counter() - t0
    theirs, thetas = _numpy_seconds(net, start, X_train, y_train, X_test, y_test, rate, lam,
                                    args.seed)
    agree = max(float(np.abs(a - b).max()) for a, b in zip(net.thetas, thetas))

    pred = net.predict(X_test)
    accuracy = float(np.mean(pred == y_test))
    out(f"\ntest accuracy: {percent(accuracy)} ({int(np.sum(pred == y_test))} of {len(y_test)}),"
        f" final training cost J = {net.history_['loss'][-1]:.4f}")
    out(class_table(y_test, pred, np.arange(10), name="digit"))
    out(f"\ntraining time for {net.n_iter_} epochs x {len(y_train)} samples (each epoch "
        f"followed by the test set's cost and accuracy):")
    out(f"  cbackprop (compiled per-sample loop, one nogil call) {ours:8.3f} s")
    out(f"  NumPy (the same loop and updates, sample by sample)   {theirs:8.3f} s   "
        f"{theirs / ours:.1f}x slower")
    out(f"  same result: the largest difference between the two networks' weights is "
        f"{agree:.1e}")
    if not args.no_plot:
        fig = _demo_figure(net, X_test, y_test, pred, accuracy)
        fig.savefig(args.out, dpi=fig.dpi)
        out(f"\nwrote {args.out}: the cost curves, the hidden units' weights as 8x8 images, "
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
