"""The estimator learner: a fold's scikit-learn-API estimator (LightGBM, XGBoost, CatBoost or any scikit-learn
estimator) fitted on the fold's training rows, with its library's early stopping on the validation rows (boosting.py).

Into the run go the library's validation curve (every `log_every` rounds, the best round and the last), the
competition's metrics on the validation rows (`val_<metric>`, at the best round) and the features' importance (a
CSV and a plot per fold). The monitored value is either a metric of the library's history (`val_multi_logloss`,
taken at the round early stopping kept) or a competition metric (`val_accuracy`). In a sweep the trial hears the
monitored value every `report_every` rounds and a pruned fit stops. The model is logged in its library's MLflow
flavour with its code.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from src.utils.core.errors import WorkspaceError
from src.utils.core.plots import importance_png
from src.utils.run import boosting
from src.utils.run.learner import Fold, FoldResult
from src.utils.track.artifacts import code_snapshot, packages

log = logging.getLogger(__name__)


def fold_arrays(features: Any, fold: int) -> tuple[tuple, tuple]:
    """((x, y) to train on, (x, y) to validate on) of a fold: a table's rows (a feature folder of tables) or 2-D
    arrays, and 1-D targets where there is one."""
    train_idx, valid_idx = features.split(fold)
    y = features.train_y.reshape(len(features.train_y), -1)
    y = y[:, 0] if y.shape[1] == 1 else y
    if getattr(features, "is_table", False):  # a features object of its own may have arrays only
        x = features.table("train_x")
        return (x.iloc[train_idx], y[train_idx]), (x.iloc[valid_idx], y[valid_idx])
    x = features.train_x.reshape(len(features.train_x), -1)
    return (x[train_idx], y[train_idx]), (x[valid_idx], y[valid_idx])


def test_inputs(features: Any) -> Any:
    if getattr(features, "is_table", False):  # a features object of its own may have arrays only
        return features.table("test_x")
    x = features.load("test_x")
    return x.reshape(len(x), -1)


def feature_names(features: Any, n: int) -> list[str]:
    names = features.manifest.get("columns")
    return [str(c) for c in names] if names and len(names) == n else [f"f{i}" for i in range(n)]


class EstimatorLearner:
    """A fold's estimator, fitted with its library's early stopping."""

    def __init__(self, estimator: Any) -> None:
        self.estimator, self.lib = estimator, boosting.library(estimator)

    @staticmethod
    def takes(built: Any) -> bool:
        return not isinstance(built, tuple) and callable(getattr(built, "fit", None)) \
            and callable(getattr(built, "get_params", None))

    def fit(self, fold: Fold) -> FoldResult:
        cfg, t0 = fold.cfg, time.perf_counter()
        train, valid = fold_arrays(fold.features, fold.fold)
        boosting.prepare(self.estimator, self.lib, str(fold.ckpt_dir / f"fold{fold.fold}"), train[0])
        train, valid = (boosting.as_input(self.lib, train[0]), train[1]), (boosting.as_input(self.lib, valid[0]),
                                                                         valid[1])
        monitor = str(cfg.monitor).removeprefix("val_")
        reporter = (boosting.Reporter(fold.link.report, monitor, int(cfg.report_every))
                    if fold.link is not None and not fold.cv else None)
        fitted = boosting.FIT[self.lib](self.estimator, train, valid, cfg.early_stopping_rounds, reporter)
        task = fold.competition.task
        scores = task.estimator_scores(self.estimator, valid[0])
        val = {f"val_{k}": v for k, v in fold.competition.score(valid[1], scores).items()}
        best = self.best_score(fold, fitted, val, monitor)
        if fold.run_id:
            self.log_curves(fold, fitted, val)
            self.log_importance(fold, train[0].shape[1])
        rounds = len(next(iter(fitted.history.values()), []))
        log.info("%s%s: %s, %s = %.4f (%.1f s)", fold.label, self.lib,
                 f"{rounds} rounds (best {fitted.best_round + 1})" if fitted.best_round is not None
                 else f"{rounds} rounds" if rounds else "fitted", cfg.monitor, best, time.perf_counter() - t0)
        test = (task.estimator_scores(self.estimator, boosting.as_input(self.lib, test_inputs(fold.features)))
                if fold.predict_test else None)
        return FoldResult(fold.fold, best, self.estimator, fold.features.split(fold.fold)[1], scores, [],
                          reporter is not None and reporter.stopped_at is not None, test)

    def best_score(self, fold: Fold, fitted: boosting.Fitted, val: dict[str, float], monitor: str) -> float:
        """The monitored value: the library's metric at the kept round, or a competition metric on the fold."""
        if monitor in fitted.history:
            values = fitted.history[monitor]
            return float(values[fitted.best_round if fitted.best_round is not None else -1])
        if f"val_{monitor}" in val:
            return float(val[f"val_{monitor}"])
        evaluated = ", ".join([f"val_{k}" for k in fitted.history] + list(val))
        raise WorkspaceError(f"monitor={fold.cfg.monitor} is neither a metric {self.lib} evaluates on the validation "
                             f"rows nor one of the competition's; set monitor to one of: {evaluated}")

    def log_curves(self, fold: Fold, fitted: boosting.Fitted, val: dict[str, float]) -> None:
        """The validation curve every `log_every` rounds (plus the kept round and the last), in one batch."""
        from mlflow.entities import Metric

        prefix, now = (f"fold{fold.fold}-" if fold.cv else ""), int(time.time() * 1000)
        every, metrics = int(fold.cfg.log_every), []
        for name, values in fitted.history.items():
            keep = {*range(every - 1, len(values), every), len(values) - 1}
            if fitted.best_round is not None and fitted.best_round < len(values):
                keep.add(fitted.best_round)
            metrics += [Metric(f"{prefix}val_{name}", float(values[i]), now, i) for i in sorted(keep)]
        step = fitted.best_round if fitted.best_round is not None else 0
        metrics += [Metric(f"{prefix}{k}", float(v), now, step) for k, v in val.items()]
        client = mlflow.MlflowClient()
        for i in range(0, len(metrics), 1000):
            client.log_batch(fold.run_id, metrics=metrics[i : i + 1000])

    def log_importance(self, fold: Fold, n_features: int) -> None:
        found = boosting.importance(self.estimator, self.lib, n_features)
        if found is None:
            return
        values, kind = found
        names = feature_names(fold.features, len(values))
        with tempfile.TemporaryDirectory() as tmp:
            stem = Path(tmp) / f"fold{fold.fold}"
            pd.DataFrame({"feature": names, kind: values}).sort_values(kind, ascending=False).to_csv(
                f"{stem}.csv", index=False)
            importance_png(names, values, Path(f"{stem}.png"), f"fold {fold.fold}: {self.lib} {kind}")
            mlflow.log_artifact(f"{stem}.csv", artifact_path="feature_importance")
            mlflow.log_artifact(f"{stem}.png", artifact_path="feature_importance")

    def log_model(self, result: FoldResult, name: str, experiment_dir: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            code_snapshot(Path(tmp), experiment_dir)
            boosting.log_model(result.model, boosting.library(result.model), name, packages(Path(tmp)))


def estimator_test_scores(models: list[Any], features: Any, task: Any, rule: str = "mean") -> np.ndarray:
    """Several fitted estimators' scores on the test rows (the folds of a run), combined by `rule`."""
    x = test_inputs(features)
    return task.combine([task.estimator_scores(m, boosting.as_input(boosting.library(m), x)) for m in models], rule)
