"""What a sweep's trials are pruned by: the `pruner` node built (the job asks it after each report), and `by_steps`,
the target of pruner options whose steps are epochs for a single fold and folds with fold=all."""

from __future__ import annotations

import warnings
from typing import Any

from src.utils.config.targets import PRUNERS, instantiate


def by_steps(fold: Any, epochs: Any, folds: Any) -> Any:
    """Hydra target of a pruner option that depends on what the steps are: the pruner `epochs` for a single-fold
    sweep (each epoch is a step), `folds` with fold=all (each fold is a step); both are built from their nodes."""
    return folds if str(fold) == "all" else epochs


def job_pruner(config: Any):
    """The pruner a job asks: the config's `pruner` node built (Optuna's NopPruner for none)."""
    import optuna

    if config is None:
        return optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # e.g. WilcoxonPruner's, per trial
        return instantiate(config, allowed=PRUNERS)
