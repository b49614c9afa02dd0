"""cbackprop.plot: each function returns a matplotlib Figure and saves a PNG of
figsize * dpi pixels that decodes; bad input gives a clear error."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
from matplotlib.figure import Figure, SubFigure  # noqa: E402
from matplotlib.image import imread  # noqa: E402

import cbackprop as cb  # noqa: E402
from cbackprop import plot  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.training.ConvergenceWarning")


def png_size(path):
    """(width, height) of a PNG, decoded by matplotlib (and PIL if there)."""
    assert path.is_file() and path.stat().st_size > 0
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4) and np.isfinite(pixels).all()
    assert pixels.std() > 0                             # something was drawn
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        with Image.open(path) as image:
            image.verify()
            assert image.size == (pixels.shape[1], pixels.shape[0])
    return pixels.shape[1], pixels.shape[0]


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(150, 16))
    y = np.argmax(X[:, :3], axis=1)
    net = cb.Network([16, 6, 3], random_state=0)
    net.fit(X, y, epochs=15, learning_rate=0.05, validation_fraction=0.2, random_state=0)
    return net, X, y


def test_cost_curves(trained, tmp_path):
    net, _, _ = trained
    fig = plot.cost_curves(net, path=tmp_path / "cost.png")
    assert isinstance(fig, Figure)
    assert png_size(tmp_path / "cost.png") == (640, 400)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["training cost J", "validation cost"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), net.history_["loss"])
    assert fig.axes[1].get_ylabel() == "validation score"


def test_cost_curves_from_history_dict(tmp_path):
    history = {"loss": [3.0, 1.0, 0.1, 0.05]}
    fig = plot.cost_curves(history, path=tmp_path / "c.png", figsize=(3, 2), dpi=50)
    assert png_size(tmp_path / "c.png") == (150, 100)
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes) == 1
    assert plot.cost_curves(history, log_scale=False).axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="fitted Network or its history_"):
        plot.cost_curves(cb.Network([2, 2]))
    with pytest.raises(ValueError, match="history_"):
        plot.cost_curves({"loss": []})


def test_hidden_units(trained, tmp_path):
    net, _, _ = trained
    fig = plot.hidden_units(net, path=tmp_path / "hidden.png", figsize=(4, 4), dpi=80)
    assert png_size(tmp_path / "hidden.png") == (320, 320)
    grid = fig.axes[0].get_images()[0].get_array()
    assert grid.shape == (1 + 2 * 5, 1 + 3 * 5)        # 6 units: 2 rows, 3 columns of 4x4
    theta = net.thetas[0]
    first = theta[0, 1:].reshape(4, 4) / np.abs(theta[0, 1:]).max()
    np.testing.assert_allclose(grid[1:5, 1:5], first)
    plot.hidden_units(theta, image_shape=(2, 8))          # a Theta(1) and a shape
    with pytest.raises(ValueError, match="not a square image"):
        plot.hidden_units(cb.Network([10, 3, 2]))
    with pytest.raises(ValueError, match="does not hold"):
        plot.hidden_units(net, image_shape=(3, 3))
    with pytest.raises(ValueError, match="Theta"):
        plot.hidden_units(np.zeros(5))


def test_images(tmp_path):
    X = np.random.default_rng(1).uniform(size=(7, 64))
    fig = plot.images(X, [f"#{k}" for k in range(7)], path=tmp_path / "i.png", n_cols=4,
                      title="samples", figsize=(4, 2), dpi=100)
    assert png_size(tmp_path / "i.png") == (400, 200)
    assert len(fig.axes) == 8
    assert [ax.get_title() for ax in fig.axes[:7]] == [f"#{k}" for k in range(7)]
    with pytest.raises(ValueError, match="captions"):
        plot.images(X, ["a"])
    with pytest.raises(ValueError, match="non-empty 2-D"):
        plot.images(np.zeros((0, 4)))


def test_confusion_matrix(tmp_path):
    y_true = np.array(["cat", "dog", "dog", "emu", "cat", "dog"])
    y_pred = np.array(["cat", "dog", "cat", "emu", "cat", "emu"])
    fig = plot.confusion_matrix(y_true, y_pred, path=tmp_path / "cm.png", dpi=60)
    assert png_size(tmp_path / "cm.png") == (300, 270)
    np.testing.assert_array_equal(fig.confusion, [[2, 0, 0], [1, 1, 1], [0, 0, 1]])
    assert "accuracy 66.7%" in fig.axes[0].get_title()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["2", "0", "0", "1", "1", "1", "0", "0", "1"]
    normalized = plot.confusion_matrix(y_true, y_pred, normalize=True,
                                       labels=["dog", "cat", "emu"])
    assert [t.get_text() for t in normalized.axes[0].texts][:3] == ["0.33", "0.33", "0.33"]
    with pytest.raises(ValueError, match="labels not in"):
        plot.confusion_matrix(y_true, y_pred, labels=["cat", "dog"])
    with pytest.raises(ValueError, match="1-D"):
        plot.confusion_matrix(y_true, y_pred[:2])


def test_draw_into_a_subfigure(trained, tmp_path):
    net, X, y = trained
    fig = Figure(figsize=(9, 3), dpi=50)
    left, middle, right = fig.subfigures(1, 3)
    assert plot.cost_curves(net, fig=left) is left and isinstance(left, SubFigure)
    plot.hidden_units(net, fig=middle)
    plot.confusion_matrix(y, net.predict(X), fig=right, path=tmp_path / "all.png")
    assert png_size(tmp_path / "all.png") == (450, 150)


def test_without_matplotlib(tmp_path):
    """A clear ImportError naming the extra to install."""
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    package = Path(cb.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker.parent), str(package)]))
    code = ("from cbackprop import plot\n"
            "try:\n    plot.cost_curves({'loss': [1.0]})\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == 'cbackprop.plot needs matplotlib: pip install "cbackprop[plot]"'


def test_hidden_units_in_the_course_order():
    """The course's 20x20 images are column-major (Octave): order='F' draws them upright."""
    theta = np.zeros((1, 1 + 6))
    image = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])          # 2 x 3
    theta[0, 1:] = image.ravel(order="F")                            # as Octave stores it
    grid = plot.hidden_units(theta, image_shape=(2, 3), order="F").axes[0].get_images()[0]
    np.testing.assert_allclose(grid.get_array()[1:3, 1:4], image / 6)
    with pytest.raises(ValueError, match="order"):
        plot.hidden_units(theta, image_shape=(2, 3), order="X")


def test_cost_curves_legend_score_axis_and_best_epoch():
    history = {"loss": [1.0, 0.5, 0.4, 0.45], "val_loss": [1.1, 0.6, 0.5, 0.55],
               "val_score": [1.0, 1.0, 1.0, 1.0]}
    fig = plot.cost_curves(history)
    ax, ax2 = fig.axes
    assert ax2.get_ylim()[1] == 1.0                     # a constant score of 1: no axis past it
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().y0 >= ax.bbox.y1 - 1     # above the axes, over no curve
    history["val_score"] = [0.5, 0.8, 0.7, 0.6]
    marks = [l for l in plot.cost_curves(history).axes[1].get_lines() if "best" in l.get_label()]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 2
