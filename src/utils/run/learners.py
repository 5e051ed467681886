"""The learners the harness knows, and the one for what an experiment's `build` returned (not a flag)."""

from __future__ import annotations

from typing import Any

from src.utils.core.errors import WorkspaceError
from src.utils.run.estimators import EstimatorLearner
from src.utils.run.learner import Learner
from src.utils.run.lightning import LightningLearner

LEARNERS = (LightningLearner, EstimatorLearner)  # each: takes(built) -> bool, and built into the learner of a fold


def learner_for(built: Any) -> Learner:
    """The learner for what the experiment's `build` returned for a fold."""
    for kind in LEARNERS:
        if kind.takes(built):
            return kind(*built) if isinstance(built, tuple) else kind(built)
    raise WorkspaceError(f"build() returned {type(built).__name__}, which no learner takes: return the fold's "
                         f"(LightningModule, LightningDataModule), or a scikit-learn-API estimator (LightGBM, "
                         f"XGBoost, CatBoost, scikit-learn)")
