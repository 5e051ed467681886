"""The learners the harness knows, and the one for what an experiment's `build` returned (not a flag). Lightning's
learner is imported only for a `(module, datamodule)` pair, so an estimator's run never loads torch or Lightning."""

from __future__ import annotations

from typing import Any

from src.utils.core.errors import WorkspaceError
from src.utils.run.estimators import EstimatorLearner
from src.utils.run.learner import Learner


def learners(built: Any) -> tuple[type, ...]:
    """The learner classes that may take `built` (each: takes(built) -> bool), Lightning's for a pair."""
    if isinstance(built, tuple):
        from src.utils.run.lightning import LightningLearner

        return (LightningLearner,)
    return (EstimatorLearner,)


def learner_for(built: Any) -> Learner:
    """The learner for what the experiment's `build` returned for a fold."""
    for kind in learners(built):
        if kind.takes(built):
            return kind(*built) if isinstance(built, tuple) else kind(built)
    raise WorkspaceError(f"build() returned {type(built).__name__}, which no learner takes: return the fold's "
                         f"(LightningModule, LightningDataModule), or a scikit-learn-API estimator (LightGBM, "
                         f"XGBoost, CatBoost, scikit-learn)")
