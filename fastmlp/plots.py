"""Classification reports and pictures: confusion matrices and learning curves.

The counting and the text reports are plain NumPy. The pictures need
matplotlib, an optional extra (``pip install "fastmlp[plot]"``), imported
only when a picture is drawn; they are drawn on their own Agg figure, so
pyplot's global state is never touched and no figure stays open.
"""

import numbers

import numpy as np

# Metric panels of a learning curve: history key -> axis label.
METRICS = {"accuracy": "accuracy", "r2": "R\N{SUPERSCRIPT TWO}"}
# Above this many classes the counts are not written in the cells.
MAX_ANNOTATED_CLASSES = 30
# Largest height of a confusion-matrix picture, inches (100 pixels each).
MAX_SIDE = 14


def _labels_array(name, y):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {y.shape}")
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integer class labels 0..k-1, got dtype {y.dtype}; "
                        "map other labels first, e.g. with numpy.unique(y, return_inverse=True)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"{name} must hold whole numbers (class labels 0..k-1)")
    if np.any(y < 0):
        raise ValueError(f"{name} holds the negative label {y[y < 0][0]}; labels are 0..k-1 "
                         "(for -1/+1 labels pass (y > 0))")
    return y.astype(np.int64)


def confusion_matrix(y_true, y_pred, n_classes=None):
    """Counts of each (true, predicted) pair of class labels.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Integer labels 0..k-1.
    n_classes : int or None
        k; None takes one more than the largest label seen.

    Returns
    -------
    ndarray of shape (k, k), int64
        Element [i, j] counts the samples of class i predicted as class j.
    """
    t, p = _labels_array("y_true", y_true), _labels_array("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and "
                         f"{p.size}")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty")
    seen = int(max(t.max(), p.max())) + 1
    if n_classes is None:
        n_classes = seen
    elif isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"n_classes must be an integer, got {n_classes!r}")
    elif seen > n_classes:
        raise ValueError(f"label {seen - 1} is out of range for n_classes={n_classes}")
    k = int(n_classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _check_cm(cm):
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square (k, k) with k >= 1, got shape "
                         f"{cm.shape}")
    if cm.dtype.kind not in "iuf" or not np.all(np.isfinite(cm) & (cm >= 0) & (cm == np.round(cm))):
        raise ValueError("a confusion matrix must hold non-negative whole counts")
    return cm.astype(np.int64)


def _names(labels, k):
    if labels is None:
        return [str(i) for i in range(k)]
    names = [str(label) for label in labels]
    if len(names) != k:
        raise ValueError(f"labels has {len(names)} names for {k} classes")
    return names


def format_confusion_matrix(cm, labels=None):
    """A text table of ``cm`` (k, k): a row per true class, a column per
    predicted class. ``labels``: k names for classes 0..k-1 (default the numbers)."""
    cm = _check_cm(cm)
    names = _names(labels, cm.shape[0])
    corner = "true \\ predicted"
    first = max(len(corner), *map(len, names))
    width = max(*map(len, names), len(str(cm.max())))
    lines = [f"{corner:<{first}}  " + "  ".join(f"{n:>{width}}" for n in names)]
    lines += [f"{name:<{first}}  " + "  ".join(f"{c:>{width}}" for c in row)
              for name, row in zip(names, cm)]
    return "\n".join(lines)


def class_scores(cm):
    """Per-class scores of a confusion matrix ``cm`` (k, k).

    Returns
    -------
    precision, recall, f1 : ndarray of shape (k,), float64
        A score whose denominator is zero (no sample predicted as, or
        belonging to, the class) is 0, as in scikit-learn.
    support : ndarray of shape (k,), int64
        Samples of each true class.
    """
    cm = _check_cm(cm)
    hits = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return precision, recall, f1, support


def classification_report(y_true, y_pred, labels=None):
    """Text report of per-class precision, recall, F1 and support, the
    accuracy, and the macro and support-weighted averages, laid out as
    scikit-learn's ``classification_report``.

    y_true, y_pred : array-like of shape (n_samples,), integer labels 0..k-1.
    labels : k names for classes 0..k-1 (then k = len(labels)); default the numbers.
    """
    cm = confusion_matrix(y_true, y_pred, None if labels is None else len(labels))
    names = _names(labels, cm.shape[0])
    precision, recall, f1, support = class_scores(cm)
    n = support.sum()
    width = max(len("weighted avg"), *map(len, names))
    header = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"

    def row(name, *scores, count):
        cells = "".join(f"  {s:>9.3f}" if s is not None else f"  {'':>9}" for s in scores)
        return f"{name:>{width}}{cells}  {count:>9}"

    lines = [header, ""]
    lines += [row(*cells, count=s) for *cells, s in zip(names, precision, recall, f1, support)]
    lines += ["",
              row("accuracy", None, None, np.trace(cm) / n, count=n),
              row("macro avg", precision.mean(), recall.mean(), f1.mean(), count=n),
              row("weighted avg", *(np.average(v, weights=support)
                                    for v in (precision, recall, f1)), count=n)]
    return "\n".join(lines)


def _figure(width, height):
    """A matplotlib Figure on an Agg canvas, outside pyplot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('fastmlp\'s pictures need matplotlib: pip install "fastmlp[plot]"'
                          ) from err
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _curves(history):
    """(epochs, {key: values}) of a History or of a dict of per-epoch lists."""
    series = getattr(history, "history", history)
    if not isinstance(series, dict):
        raise TypeError(f"history must be a fastmlp History or a dict of per-epoch lists, "
                        f"got {type(history).__name__}")
    if not series.get("loss"):
        raise ValueError("history is empty: it has no 'loss' values to plot")
    n = len(series["loss"])
    epochs = list(getattr(history, "epoch", range(1, n + 1)))
    for key, values in series.items():
        if len(values) != len(epochs):
            raise ValueError(f"history[{key!r}] has {len(values)} values for {len(epochs)} "
                             "epochs")
    return epochs, series


def plot_history(history, path, title="Learning curves"):
    """Save learning curves as a PNG at ``path``; returns ``path``.

    history : a History from ``MLP.fit`` (or its ``history`` dict): "loss",
        "accuracy" or "r2", and the same with "val_" when validation data was given.
    One panel for the loss and one for the metric (when there is one), the
    training curve and, when present, the validation curve in each.
    """
    epochs, series = _curves(history)
    panels = ["loss"] + [key for key in METRICS if key in series]
    fig = _figure(5 * len(panels), 4)
    fig.suptitle(title)
    marker = "o" if len(epochs) <= 30 else None
    for ax, key in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        name = METRICS.get(key, key)
        ax.plot(epochs, series[key], marker=marker, label="training")
        if "val_" + key in series:
            ax.plot(epochs, series["val_" + key], marker=marker, label="validation")
        ax.set_title(name[0].upper() + name[1:])
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, format="png", dpi=100)
    return path


def plot_confusion_matrix(cm, path, labels=None, title="Confusion matrix"):
    """Save a heat map of ``cm`` (k, k) as a PNG at ``path``; returns ``path``.

    Rows are true classes, columns predicted ones; each cell shows its count
    (for up to MAX_ANNOTATED_CLASSES classes). ``labels``: k class names.
    """
    cm = _check_cm(cm)
    k = cm.shape[0]
    names = _names(labels, k)
    side = min(4 + 0.45 * k, MAX_SIDE)
    fig = _figure(side + 1.5, side)
    from matplotlib.ticker import MaxNLocator

    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, label="samples", shrink=0.8, ticks=MaxNLocator(integer=True))
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title} (accuracy {accuracy:.3f})")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    slanted = max(map(len, names)) > 3
    ax.set_xticks(range(k), names, rotation=45 if slanted else 0,
                  ha="right" if slanted else "center")
    ax.set_yticks(range(k), names)
    if k <= MAX_ANNOTATED_CLASSES:
        dark = cm > cm.max() / 2
        fontsize = min(10, max(6, 160 / k))
        for (i, j), count in np.ndenumerate(cm):
            color = "white" if dark[i, j] else "black" if count else "0.6"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=fontsize,
                    color=color)
    fig.savefig(path, format="png", dpi=100)
    return path
