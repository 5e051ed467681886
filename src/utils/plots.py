"""Figures logged with runs (drawn off-screen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion_matrix_png(labels, preds, path: Path, n_classes: int, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6, 5.5))
    ConfusionMatrixDisplay.from_predictions(np.asarray(labels), np.asarray(preds), ax=ax, colorbar=False,
                                            labels=list(range(n_classes)))
    ax.set_title(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
