"""What a competition's metrics and its submission take: class labels or scores, known and checked, not guessed.

A metric scikit-learn has a scorer for takes what that scorer asks an estimator for (`predict`: labels;
`predict_proba` or `decision_function`: scores). Any other metric is tried on a tiny example of the task's
targets, labels and scores: the kind it cannot take is the wrong `input:`. The submission's `values:` is checked
against what the competition's own `sample_submission.csv` holds (class names or whole numbers: labels;
fractions: probabilities). Each contradiction is one error line naming the key to write. Imports numpy, pandas,
scikit-learn and src.utils.core only; the competition and its task are passed in.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import shown

WORDS = {"label": "class labels", "score": "scores (probabilities or values)"}


@functools.cache
def _scorer_kinds() -> dict[Any, str]:
    """scikit-learn's metric functions -> the kind their scorers hand them."""
    from sklearn.metrics import get_scorer, get_scorer_names

    kinds: dict[Any, str] = {}
    for name in get_scorer_names():
        scorer = get_scorer(name)
        func, method = getattr(scorer, "_score_func", None), getattr(scorer, "_response_method", None)
        if func is None or method is None:
            continue
        methods = (method,) if isinstance(method, str) else tuple(method)
        kinds.setdefault(func, "label" if methods == ("predict",) else "score")
    return kinds


def scorer_kind(fn: Any) -> str | None:
    """'label' or 'score' for a function scikit-learn's scorers name (through a partial); None for any other."""
    func = getattr(fn, "func", fn)
    try:
        return _scorer_kinds().get(func)
    except TypeError:  # an unhashable callable
        return None


def example(task: Any, rows: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets, labels, scores) of the task on a few rows, every class present in the targets."""
    rng = np.random.default_rng(0)
    width = task.width
    truth = rng.normal(0, 3, (rows, width))
    truth[:width] += 10 * np.eye(width)[: min(width, rows)]  # each class first once (multiclass)
    if width == 1:
        truth[: rows // 2, 0], truth[rows // 2:, 0] = -np.abs(truth[: rows // 2, 0]), np.abs(truth[rows // 2:, 0])
    y = task.decide(task.activate(truth))
    scores = task.activate(truth + rng.normal(0, 2, truth.shape))
    return task.metric_target(y), task.decide(scores), task.metric_scores(scores)


def _takes(metric: Any, y: np.ndarray, given: np.ndarray) -> bool:
    """Whether the metric gives a finite number on these predictions, with no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return bool(np.isfinite(metric(y, given)))
        except Exception:
            return False


def labels_are_scores(task: Any, tiny: tuple | None = None) -> bool:
    """Whether the task's decisions are its scores (regression): then either kind is the same numbers (`tiny`: its
    example, when already made)."""
    _, labels, scores = tiny or example(task)
    return labels.shape == scores.shape and np.allclose(np.asarray(labels, float), np.asarray(scores, float))


def check_metric_input(metric: Any, task: Any, where: str, target: str) -> None:
    """One error line when `metric.input` is a kind the metric does not take (`where`: file and key; `target`: its
    fn's `_target_`)."""
    tiny = example(task)
    if labels_are_scores(task, tiny):
        return
    y, labels, scores = tiny
    wanted = scorer_kind(metric.fn)
    if wanted is None:
        other = "score" if metric.input == "label" else "label"
        given = {"label": labels, "score": scores}
        if not _takes(metric, y, given[metric.input]) and _takes(metric, y, given[other]):
            wanted = other
    if wanted is not None and wanted != metric.input:
        raise WorkspaceError(f"{where}.input={metric.input}: {target} takes {WORDS[wanted]}, not "
                             f"{WORDS[metric.input]}; write input: {wanted} under metrics.{metric.name}")


def sample_kind(values: pd.Series) -> str | None:
    """What a sample submission's column holds: 'names', 'integers', 'binary', 'fractions', 'values' or None."""
    values = values.dropna()
    if values.empty:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return "names"
    whole = bool(np.all(numbers == np.round(numbers)))
    if whole:
        return "binary" if set(numbers.unique()) <= {0, 1} else "integers"
    return "fractions" if numbers.between(0, 1).all() else "values"


def check_submission_values(competition: Any, path: Path) -> None:
    """`submission.values` against the sample submission's target columns (not for a task whose labels are its
    scores). Nothing is checked while the sample is not there yet."""
    if not path.is_file() or labels_are_scores(competition.task):
        return
    head = pd.read_csv(path, nrows=2000, encoding="utf-8-sig")
    values = competition.values
    for column in [c for c in competition.targets if c in head.columns]:
        kind = sample_kind(head[column])
        if values == "label" and kind in ("fractions", "values"):
            wanted, holds = "score", "probabilities" if kind == "fractions" else "scores"
        elif values == "score" and kind in ("names", "integers"):
            wanted, holds = "label", "class labels"
        else:
            continue
        example_value = head[column].dropna().iloc[0]
        example_value = example_value.item() if hasattr(example_value, "item") else example_value
        raise WorkspaceError(f"{competition.where}: submission.values={values}, but {shown(path)} holds {holds} "
                             f"in {column} (e.g. {example_value!r}); write values: {wanted} under submission")
