"""The trivial predictor beside every score: a run's OOF rows also scored by what needs no features.

Each fold's baseline is fitted on that fold's training rows and predicts its validation rows, as the run's own models
do: scikit-learn's `DummyClassifier(strategy="prior")` for a task of classes (its decisions are the majority class,
its scores the class shares) and `DummyRegressor(strategy="mean")` for values (and for each label of a multi-label
task: the label's share). Its competition metrics are logged as `baseline_oof_<metric>`. A run whose OOF score on
the competition's metric does not beat it prints one warning line saying what usually causes that, and is tagged
`beats_baseline=false` (the diary and a sweep's trials table show it).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

WHY = ("usually the loss or output head does not fit the competition's task (a folder copied from a competition of "
       "another kind), the metric is given the wrong kind of prediction (its input: label or score), or the model "
       "has not trained (learning rate, epochs, rounds)")


def _fold_baseline(task: Any, y_train: np.ndarray, n_valid: int) -> np.ndarray:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    x_train, x_valid = np.zeros((len(y_train), 1)), np.zeros((n_valid, 1))
    if getattr(task, "classes", None) is not None:
        return task.estimator_scores(DummyClassifier(strategy="prior").fit(x_train, y_train), x_valid)
    return task.as_2d(DummyRegressor(strategy="mean").fit(x_train, y_train).predict(x_valid))


def baseline_oof(task: Any, y: np.ndarray, folds: np.ndarray, used: list[int], ordered: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores): the baseline's scores on the validation rows of the folds `used`, each fitted on its fold's
    training rows (`folds`: every row's validation fold; `ordered`: a time split), rows in increasing order."""
    from src.utils.data.cv import train_rows

    rows, scores = [], []
    for fold in used:
        valid_idx = np.flatnonzero(folds == fold)
        rows.append(valid_idx)
        scores.append(_fold_baseline(task, y[train_rows(folds, fold, ordered)], len(valid_idx)))
    idx, out = np.concatenate(rows), np.concatenate(scores)
    order = np.argsort(idx, kind="stable")
    return idx[order], out[order]


def beats(value: float, baseline: float, direction: str) -> bool:
    return value > baseline if direction == "max" else value < baseline


def baseline_metrics(competition: Any, y: np.ndarray, folds: np.ndarray, used: list[int],
                     ordered: bool = False) -> dict[str, float]:
    """`baseline_oof_<metric>` for every competition metric, on the validation rows of the folds `used`."""
    idx, scores = baseline_oof(competition.task, y, folds, used, ordered)
    return {f"baseline_oof_{k}": v for k, v in competition.score(y[idx], scores).items()}


def check_against(metrics: dict[str, float], competition: Any) -> bool:
    """True when the run's OOF score beats the baseline on the competition's metric; else a warning line."""
    metric = competition.metric
    value, base = metrics[f"oof_{metric.name}"], metrics[f"baseline_oof_{metric.name}"]
    if beats(value, base, metric.direction):
        return True
    what = ("the class shares: always the majority class" if getattr(competition.task, "classes", None) is not None
            else "the training mean")
    log.warning("OOF %s %.4f does not beat the trivial baseline's %.4f (%s); %s", metric.name, value, base, what, WHY)
    return False
