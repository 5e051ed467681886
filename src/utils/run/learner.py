"""The learner seam: how one fold's model is fitted and asked for its outputs, chosen by what `build` returns.

The fold loop (folds.py) and the records (records.py) see only a `Learner` and the `FoldResult` it returns, so a
kind of learner other than a LightningModule (an estimator with `fit(X, y, eval_set)` and `predict_proba`) is one
more class in learners.py, without touching them. Today: `LightningLearner` (lightning.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from omegaconf import DictConfig

from src.utils.competition.spec import Competition
from src.utils.data.features import Features
from src.utils.tune.trial import TrialLink


@dataclass
class Fold:
    """What one fold's fit needs: the config, data and competition, where its files go, how it is tracked."""

    cfg: DictConfig
    features: Features
    competition: Competition
    fold: int
    ckpt_dir: Path  # logs/lightning/<experiment>/<run_id>: the run's files, fold<k>/ each
    run_id: str | None = None  # None: a DDP worker, which records nothing
    cv: bool = False  # fold=all: the folds are the trial's steps, each fold logs with its prefix
    link: TrialLink | None = None  # the Optuna trial, in a sweep
    predict_test: bool = False  # also the test rows (fold=all: the run's test predictions)
    ckpt_path: str | None = None  # the checkpoint to resume from, as checks.checked_ckpt returned it

    @property
    def label(self) -> str:
        """How its lines name the fold: `trial 4 fold 2/4 `."""
        label = f"trial {self.link.number} " if self.link is not None else ""
        return label + (f"fold {self.fold}/{self.features.n_folds - 1} " if self.cv else "")


@dataclass
class FoldResult:
    fold: int
    best_score: float  # the best monitored value of the fold
    model: Any  # what the learner logs as the fold's model
    valid_idx: np.ndarray
    scores: np.ndarray  # the task's scores (probabilities / values) of the validation rows, best epoch
    checkpoints: list[str] = field(default_factory=list)  # files the run keeps under checkpoints/fold<k>/
    pruned: bool = False
    test_scores: np.ndarray | None = None


class Learner(Protocol):
    def fit(self, fold: Fold) -> FoldResult | None:
        """Fit the fold with early stopping; its validation (and test) scores. None on a DDP worker."""

    def log_model(self, result: FoldResult, name: str, experiment_dir: Path) -> None:
        """Log the fold's model under `name`, reloadable with the code it needs."""

