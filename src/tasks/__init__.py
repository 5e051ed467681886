"""What kind of prediction a competition asks for: the `task` node of config/competition/<name>.yaml.

The tasks live here, beside the shared machinery (src/utils), which knows none of them: a competition names its
task by `_target_` (`src.tasks.Regression`); a task of your own is a subclass of `Task` in this package.

A task turns a model's raw outputs (what `validation_step` / `predict_step` return: logits or values) into
scores (probabilities or values), scores into decisions (classes), and both into the out-of-fold columns, the
submission's values and the plots that fit it. It also checks the outputs' shape on the first validation batch,
so a model whose last layer does not fit the task fails in seconds, not after training.

    multiclass   Multiclass(classes=[...])      softmax      argmax            confusion matrix
    binary       Binary(threshold=0.5)          sigmoid      score >= thr      confusion matrix, calibration
    multi-label  MultiLabel(threshold=0.5)      sigmoid      score >= thr      one confusion matrix per label
    regression   Regression()                   identity     the value         predicted vs actual, residuals

Scores are kept as a 2-D float array (rows x `width`): one column per class, per target or per label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from src.utils.core.errors import WorkspaceError


class Task:
    kind = "task"

    def __init__(self, targets: list[str]) -> None:
        self.targets = list(targets)

    # --- shapes --------------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Columns of the scores (and of the model's outputs)."""
        return len(self.targets)

    def expected(self) -> str:
        return f"(batch, {self.width})" + (" or (batch,)" if self.width == 1 else "")

    def check_outputs(self, outputs: Any) -> None:
        """One error line when the model's outputs cannot be this task's (called on the first batch)."""
        shape = tuple(getattr(outputs, "shape", ()))
        ok = (len(shape) == 2 and shape[1] == self.width) or (len(shape) == 1 and self.width == 1)
        if not ok:
            raise WorkspaceError(
                f"the model's validation_step returned outputs of shape {shape}, but the competition's task "
                f"({self}) needs {self.expected()}; make the model's last layer give {self.width} output(s) "
                f"(or fix task/target in config/competition/)")

    def as_2d(self, outputs: Any) -> np.ndarray:
        if hasattr(outputs, "detach"):  # a torch tensor (torch is never imported for an estimator's arrays)
            outputs = outputs.detach().float().cpu().numpy()
        x = np.asarray(outputs)
        return x.reshape(len(x), -1).astype(np.float64)

    # --- outputs -> scores -> decisions --------------------------------------------------------------
    def activate(self, outputs: Any) -> np.ndarray:
        """Scores (rows x width) from raw model outputs."""
        return self.as_2d(outputs)

    def estimator_scores(self, estimator: Any, x: Any) -> np.ndarray:
        """Scores (rows x width) of a fitted scikit-learn-API estimator: its predictions (values)."""
        return self.as_2d(estimator.predict(x))

    def proba_columns(self, estimator: Any, x: Any, classes: list[int]) -> np.ndarray:
        """predict_proba's columns for `classes` (class indices), zero for a class the estimator never saw."""
        proba = np.asarray(estimator.predict_proba(x), dtype=np.float64)
        seen = [int(c) for c in getattr(estimator, "classes_", range(proba.shape[1]))]
        out = np.zeros((len(proba), len(classes)))
        for j, c in enumerate(classes):
            if c in seen:
                out[:, j] = proba[:, seen.index(c)]
        return out

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Decisions in the space of the training targets (class indices, 0/1, values)."""
        return scores

    def metric_target(self, y: np.ndarray) -> np.ndarray:
        return y

    def metric_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def combine(self, per_model: list[np.ndarray], rule: str = "mean") -> np.ndarray:
        """Several models' scores (fold models, TTA) as one."""
        stack = np.stack(per_model)
        return np.median(stack, axis=0) if rule == "median" else stack.mean(axis=0)

    # --- records -------------------------------------------------------------------------------------
    def target_frame(self, y: np.ndarray) -> dict[str, np.ndarray]:
        y2 = np.asarray(y).reshape(len(y), -1)
        return {t: y2[:, i] for i, t in enumerate(self.targets)}

    def oof_columns(self, y: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
        """The out-of-fold columns: the truth, the decision and the scores, named from the targets."""
        return self.target_frame(y) | self.prediction_columns(scores)

    def prediction_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """`pred_<target>` (the decision) and the score columns."""
        decided = np.asarray(self.decide(scores)).reshape(len(scores), -1)
        return {f"pred_{t}": decided[:, i] for i, t in enumerate(self.targets)} | self.score_columns(scores)

    def score_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        return {f"prob_{t}": scores[:, i] for i, t in enumerate(self.targets)}

    def submission_values(self, scores: np.ndarray, values: str) -> dict[str, np.ndarray]:
        """The target column(s) of the submission: decisions (`label`) or scores (`score`)."""
        out = self.decide(scores) if values == "label" else scores
        out = np.asarray(out).reshape(len(scores), -1)
        return {t: out[:, i] for i, t in enumerate(self.targets)}

    def plots(self, y: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[Path]:
        return []

    def __repr__(self) -> str:
        return f"{self.kind}, targets {', '.join(self.targets)}"


class Multiclass(Task):
    """One of K classes per row: the model gives K logits; the training target is the class index 0..K-1."""

    kind = "multiclass"

    def __init__(self, targets: list[str], classes: int | list[Any]) -> None:
        super().__init__(targets)
        if len(self.targets) != 1:
            raise WorkspaceError(f"a multiclass task has one target column, not {self.targets}")
        self.classes = list(range(classes)) if isinstance(classes, int) else list(classes)
        if len(self.classes) < 2:
            raise WorkspaceError(f"task.classes={classes} is not allowed: two classes or more")

    @property
    def width(self) -> int:
        return len(self.classes)

    def expected(self) -> str:
        return f"(batch, {self.width}) logits"

    def activate(self, outputs: Any) -> np.ndarray:
        from scipy.special import softmax

        return softmax(self.as_2d(outputs), axis=1)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return scores.argmax(1)

    def estimator_scores(self, estimator: Any, x: Any) -> np.ndarray:
        return self.proba_columns(estimator, x, list(range(self.width)))

    def metric_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores

    def target_frame(self, y: np.ndarray) -> dict[str, np.ndarray]:
        return {self.targets[0]: np.asarray(self.classes)[np.asarray(y, dtype=np.int64)]}

    def prediction_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        return {f"pred_{self.targets[0]}": np.asarray(self.classes)[self.decide(scores)]} | self.score_columns(scores)

    def score_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        return {f"prob_{c}": scores[:, i] for i, c in enumerate(self.classes)}

    def submission_values(self, scores: np.ndarray, values: str) -> dict[str, np.ndarray]:
        if values == "label":
            return {self.targets[0]: np.asarray(self.classes)[self.decide(scores)]}
        return {str(c): scores[:, i] for i, c in enumerate(self.classes)}  # one probability column per class

    def plots(self, y: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[Path]:
        from src.utils.core.plots import confusion_matrix_png

        return [confusion_matrix_png(y, self.decide(scores), folder / "confusion_matrix.png", self.width, title,
                                     display_labels=self.classes)]

    def __repr__(self) -> str:
        return f"multiclass with {self.width} classes, target {self.targets[0]}"


class Binary(Task):
    """Yes or no per row: the model gives one logit; the training target is 0 or 1."""

    kind = "binary"

    def __init__(self, targets: list[str], threshold: float = 0.5, classes: list[Any] | None = None) -> None:
        super().__init__(targets)
        if len(self.targets) != 1:
            raise WorkspaceError(f"a binary task has one target column, not {self.targets} (multi-label: "
                                 f"src.tasks.MultiLabel)")
        self.threshold, self.classes = float(threshold), list(classes) if classes is not None else [0, 1]

    def expected(self) -> str:
        return "(batch, 1) or (batch,): one logit"

    def activate(self, outputs: Any) -> np.ndarray:
        from scipy.special import expit

        return expit(self.as_2d(outputs))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return (scores[:, 0] >= self.threshold).astype(np.int64)

    def estimator_scores(self, estimator: Any, x: Any) -> np.ndarray:
        return self.proba_columns(estimator, x, [1])

    def submission_values(self, scores: np.ndarray, values: str) -> dict[str, np.ndarray]:
        if values == "label":
            return {self.targets[0]: np.asarray(self.classes)[self.decide(scores)]}
        return {self.targets[0]: scores[:, 0]}

    def plots(self, y: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[Path]:
        from src.utils.core.plots import calibration_png, confusion_matrix_png

        y = np.asarray(y).reshape(-1)
        return [confusion_matrix_png(y, self.decide(scores), folder / "confusion_matrix.png", 2, title),
                calibration_png(y, scores[:, 0], folder / "calibration.png", title)]

    def __repr__(self) -> str:
        return f"binary, target {self.targets[0]}"


class MultiLabel(Task):
    """Several yes-or-no targets per row: one logit per target column; the training targets are 0/1."""

    kind = "multilabel"

    def __init__(self, targets: list[str], threshold: float = 0.5) -> None:
        super().__init__(targets)
        self.threshold = float(threshold)

    def activate(self, outputs: Any) -> np.ndarray:
        from scipy.special import expit

        return expit(self.as_2d(outputs))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return (scores >= self.threshold).astype(np.int64)

    def estimator_scores(self, estimator: Any, x: Any) -> np.ndarray:
        proba = estimator.predict_proba(x)  # one (rows, 2) array per label (scikit-learn's multi-output), or one
        if isinstance(proba, list):         # (rows, labels) array
            return np.stack([np.asarray(p, dtype=np.float64)[:, -1] for p in proba], axis=1)
        return np.asarray(proba, dtype=np.float64).reshape(len(proba), -1)

    def metric_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores

    def metric_target(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y).reshape(len(y), -1)

    def plots(self, y: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[Path]:
        from src.utils.core.plots import multilabel_confusion_png

        return [multilabel_confusion_png(self.metric_target(y), self.decide(scores), self.targets,
                                         folder / "confusion_matrix.png", title)]

    def __repr__(self) -> str:
        return f"multi-label, targets {', '.join(self.targets)}"


class Regression(Task):
    """A value per target column: the model gives one output per target."""

    kind = "regression"

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def score_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        return {}  # the prediction is the value: pred_<target>

    def plots(self, y: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[Path]:
        from src.utils.core.plots import prediction_error_png

        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        return [prediction_error_png(y2[:, 0], scores[:, 0], folder / "prediction_error.png",
                                     f"{title} ({self.targets[0]})")]

    def __repr__(self) -> str:
        return f"regression, target(s) {', '.join(self.targets)}"
