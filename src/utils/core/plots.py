"""Figures logged with runs (drawn off-screen), each with scikit-learn's own display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def confusion_matrix_png(labels, preds, path: Path, n_classes: int, title: str = "",
                         display_labels: Sequence | None = None) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    size = max(5.5, 0.45 * n_classes)
    fig, ax = plt.subplots(figsize=(size + 0.5, size))
    ConfusionMatrixDisplay.from_predictions(np.asarray(labels), np.asarray(preds), ax=ax, colorbar=False,
                                            labels=list(range(n_classes)), display_labels=display_labels)
    ax.set_title(title)
    return _save(fig, path)


def multilabel_confusion_png(y, pred, names: Sequence[str], path: Path, title: str = "") -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay, multilabel_confusion_matrix

    plt = _plt()
    matrices = multilabel_confusion_matrix(np.asarray(y), np.asarray(pred))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    for ax, name, m in zip(axes[0], names, matrices, strict=True):
        ConfusionMatrixDisplay(m, display_labels=[0, 1]).plot(ax=ax, colorbar=False)
        ax.set_title(name)
    fig.suptitle(title)
    return _save(fig, path)


def calibration_png(y, prob, path: Path, title: str = "") -> Path:
    from sklearn.calibration import CalibrationDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    CalibrationDisplay.from_predictions(np.asarray(y), np.asarray(prob), n_bins=10, ax=ax, name="OOF")
    ax.set_title(title)
    return _save(fig, path)


def prediction_error_png(y, pred, path: Path, title: str = "") -> Path:
    from sklearn.metrics import PredictionErrorDisplay

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    PredictionErrorDisplay.from_predictions(np.asarray(y), np.asarray(pred), kind="actual_vs_predicted", ax=axes[0])
    PredictionErrorDisplay.from_predictions(np.asarray(y), np.asarray(pred), kind="residual_vs_predicted",
                                            ax=axes[1])
    fig.suptitle(title)
    return _save(fig, path)


def importance_png(names: Sequence[str], values, path: Path, title: str = "", top: int = 30) -> Path:
    """The `top` most important features as horizontal bars, the most important at the top."""
    plt = _plt()
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(order) + 1.2))
    ax.barh([str(names[i]) for i in order], values[order], color="C0")
    ax.set(title=title, xlabel="importance")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)
