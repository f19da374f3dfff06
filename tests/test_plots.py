"""fastmlp.plots: confusion matrices, reports, and the PNGs they draw."""

import sys

import matplotlib
import matplotlib.image
import numpy as np
import pytest

import fastmlp
from fastmlp import plots
from fastmlp.datasets import load_digits
from fastmlp.model import History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Three classes; counted by hand: cm = [[1, 1, 0], [0, 2, 1], [0, 0, 1]].
Y_TRUE = [0, 0, 1, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 2, 2]


def history(epochs, metric="accuracy", validation=True):
    """A History of ``epochs`` epochs with made-up decreasing losses."""
    h = History()
    for e in range(1, epochs + 1):
        metrics = {"loss": 1.0 / e, metric: 1.0 - 0.5 / e}
        if validation:
            metrics.update(val_loss=1.2 / e, **{"val_" + metric: 0.9 - 0.5 / e})
        h.append(e, **metrics)
    return h


def assert_png(path, shape):
    """path holds a PNG of (height, width) ``shape`` with a picture on it."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000
    image = matplotlib.image.imread(path, format="png")
    assert image.shape == (*shape, 4)
    ink = image[..., :3].min(axis=-1)
    assert ink.min() < 0.3 and (ink < 0.9).mean() > 0.01, "a picture, not a blank canvas"


def test_confusion_matrix_counts_pairs():
    cm = plots.confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    wide = plots.confusion_matrix(np.array(Y_TRUE, np.uint8), np.array(Y_PRED, float), 5)
    assert wide.shape == (5, 5) and wide[:3, :3].tolist() == cm.tolist()
    assert wide[3:].sum() == wide[:, 3:].sum() == 0


@pytest.mark.parametrize("y_true, y_pred, n_classes, error, problem", [
    ([0, 1], [0], None, ValueError, "same length, got 2 and 1"),
    ([], [], None, ValueError, "empty"),
    ([[0, 1]], [[0, 1]], None, ValueError, r"1-D \(n_samples,\), got shape \(1, 2\)"),
    ([0, -1], [0, 1], None, ValueError, "negative label -1"),
    ([0, 1.5], [0, 1], None, ValueError, "whole numbers"),
    (["cat", "dog"], ["cat", "cat"], None, TypeError, "integer class labels"),
    ([True, False], [True, True], None, TypeError, "integer class labels"),
    ([0, 3], [0, 1], 3, ValueError, "label 3 is out of range for n_classes=3"),
    ([0, 1], [0, 1], 2.0, TypeError, "n_classes must be an integer"),
])
def test_confusion_matrix_refuses_bad_labels(y_true, y_pred, n_classes, error, problem):
    with pytest.raises(error, match=problem):
        plots.confusion_matrix(y_true, y_pred, n_classes)


def test_format_confusion_matrix_is_a_table():
    cm = plots.confusion_matrix(Y_TRUE, Y_PRED)
    assert plots.format_confusion_matrix(cm, ["cat", "dog", "bird"]) == "\n".join([
        "true \\ predicted   cat   dog  bird",
        "cat                  1     1     0",
        "dog                  0     2     1",
        "bird                 0     0     1"])
    assert plots.format_confusion_matrix([[120, 3], [4, 5]]).splitlines()[1:] == [
        "0                 120    3",
        "1                   4    5"]


def test_class_scores_by_hand():
    precision, recall, f1, support = plots.class_scores(plots.confusion_matrix(
        Y_TRUE, Y_PRED, n_classes=4))
    np.testing.assert_allclose(precision, [1, 2 / 3, 1 / 2, 0], rtol=1e-15)
    np.testing.assert_allclose(recall, [1 / 2, 2 / 3, 1, 0], rtol=1e-15)
    np.testing.assert_allclose(f1, [2 / 3, 2 / 3, 2 / 3, 0], rtol=1e-15)
    assert support.tolist() == [2, 3, 1, 0]


def test_classification_report_by_hand():
    report = plots.classification_report(Y_TRUE, Y_PRED, labels=["cat", "dog", "bird"])
    rows = [line.split() for line in report.splitlines()]
    assert rows == [
        ["precision", "recall", "f1-score", "support"], [],
        ["cat", "1.000", "0.500", "0.667", "2"],
        ["dog", "0.667", "0.667", "0.667", "3"],
        ["bird", "0.500", "1.000", "0.667", "1"], [],
        ["accuracy", "0.667", "6"],
        ["macro", "avg", "0.722", "0.722", "0.667", "6"],
        ["weighted", "avg", "0.750", "0.667", "0.667", "6"]]
    assert report.splitlines()[6].index("0.667") == report.splitlines()[2].index("0.667")


def test_reports_refuse_mismatched_labels():
    with pytest.raises(ValueError, match="label 2 is out of range for n_classes=2"):
        plots.classification_report(Y_TRUE, Y_PRED, labels=["cat", "dog"])
    with pytest.raises(ValueError, match="labels has 2 names for 3 classes"):
        plots.format_confusion_matrix(np.eye(3, dtype=int), labels=["a", "b"])


@pytest.mark.parametrize("cm", [np.zeros((2, 3), int), np.zeros((0, 0), int),
                                np.zeros(4, int)])
def test_non_square_matrices_are_refused(cm, tmp_path):
    with pytest.raises(ValueError, match="must be square"):
        plots.plot_confusion_matrix(cm, tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()


@pytest.mark.parametrize("cm", [[[1, -1], [0, 1]], [[0.5, 1], [0, 1]], [[np.nan, 1], [0, 1]]])
def test_matrices_of_non_counts_are_refused(cm):
    with pytest.raises(ValueError, match="non-negative whole counts"):
        plots.format_confusion_matrix(cm)


def test_learning_curves_of_a_real_fit(tmp_path):
    (X, y), (X_test, y_test) = load_digits()
    net = fastmlp.MLP((64, 32, 10), seed=0)
    h = net.fit(X, y, epochs=3, batch_size=32, lr=0.1, validation_data=(X_test, y_test),
                verbose=0)
    path = tmp_path / "curves.png"
    assert plots.plot_history(h, path) == path
    assert_png(path, (400, 1000))


@pytest.mark.parametrize("h, width", [
    (history(40, "r2", validation=False), 1000),
    ({"loss": [0.5, 0.25, 0.2]}, 500),
    (history(2).history, 1000),
])
def test_learning_curves_of_any_history(tmp_path, h, width):
    path = tmp_path / "curves"
    assert plots.plot_history(h, str(path)) == str(path)
    assert_png(path, (400, width))
    assert [p.name for p in tmp_path.iterdir()] == ["curves"]


@pytest.mark.parametrize("h, error, problem", [
    (History(), ValueError, "history is empty"),
    ({"loss": []}, ValueError, "history is empty"),
    ({"loss": [1.0, 0.5], "accuracy": [0.5]}, ValueError,
     r"history\['accuracy'\] has 1 values for 2 epochs"),
    ([1.0, 0.5], TypeError, "History or a dict"),
])
def test_bad_histories_are_refused(tmp_path, h, error, problem):
    with pytest.raises(error, match=problem):
        plots.plot_history(h, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize("k, labels", [(3, None), (10, [f"class {i}" for i in range(10)]),
                                       (40, None)])
def test_confusion_matrix_pictures(tmp_path, rng, k, labels):
    cm = plots.confusion_matrix(rng.integers(0, k, 500), rng.integers(0, k, 500), k)
    path = tmp_path / "cm.png"
    assert plots.plot_confusion_matrix(cm, path, labels) == path
    side = min(4 + 0.45 * k, plots.MAX_SIDE)
    assert_png(path, (round(100 * side), round(100 * (side + 1.5))))


def test_pictures_leave_no_pyplot_figure_open(tmp_path):
    matplotlib.use("Agg")
    from matplotlib import pyplot
    plots.plot_history(history(3), tmp_path / "a.png")
    plots.plot_confusion_matrix(np.eye(2, dtype=int), tmp_path / "b.png")
    assert pyplot.get_fignums() == []


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[plot\]"'):
        plots.plot_history(history(2), tmp_path / "a.png")
    # The text reports need no matplotlib.
    assert "accuracy" in plots.classification_report(Y_TRUE, Y_PRED)
