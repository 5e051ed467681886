"""The job's side of a sweep: the Optuna trial a job runs (handed over in its environment), linked both ways with its
MLflow run, reported to after each step and asked whether to prune; `PrunedTrial` is what a pruned job returns."""

from __future__ import annotations

import functools
import math
import os
from typing import Any

from omegaconf import DictConfig

from src.utils.tune.pruners import job_pruner
from src.utils.tune.study import make_storage

# in a sweep job's environment: its trial's id and study (the job's own config resolves another study name: the
# name comes from the sweep command's overrides, and the job's overrides differ)
TRIAL_ENV, STUDY_ENV = "WORKSPACE_OPTUNA_TRIAL", "WORKSPACE_OPTUNA_STUDY"


class PrunedTrial(float):
    """What a pruned job returns: its last reported value, and the step it was pruned at."""

    def __new__(cls, value: float, step: int) -> PrunedTrial:
        obj = super().__new__(cls, value)
        obj.step = step
        return obj

    def __reduce__(self):  # launchers that pickle job returns (joblib, submitit) keep the type
        return (PrunedTrial, (float(self), self.step))


def short(value: Any) -> str:
    """A parameter value for names and lines: numbers to 4 significant digits (0.003728, 0.32, 64)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_title(params: dict[str, Any]) -> str:
    """A trial's sampled parameters, short: `lr=0.003728 dropout=0.32`."""
    return " ".join(f"{k}={short(v)}" for k, v in params.items())


@functools.cache
def job_storage(url: str):
    """The storage the jobs of this process report to: one per URL, so trials launched in the same process (the
    basic launcher) do not each connect and check the schema again."""
    return make_storage(url)


class TrialLink:
    """The Optuna trial this job runs, when it runs one: links it with the MLflow run, reports, prunes."""

    def __init__(self, storage_url: str, study_name: str, trial_id: int, pruner_config: Any) -> None:
        import optuna

        self.study_name = study_name
        self.study = optuna.load_study(study_name=study_name, storage=job_storage(storage_url),
                                       pruner=job_pruner(pruner_config))
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number = self.trial.number
        self.pruned_at: tuple[float, int] | None = None

    @classmethod
    def current(cls, hydra_cfg: DictConfig, pruner_config: Any) -> TrialLink | None:
        link, study_name = os.environ.get(TRIAL_ENV), os.environ.get(STUDY_ENV)
        sweeper = hydra_cfg.get("sweeper") or {}
        if not link or not study_name or "storage" not in sweeper:
            return None
        return cls(str(sweeper.storage), study_name, int(link), pruner_config)

    def attach(self, run_id: str) -> dict[str, str]:
        """Store the MLflow run id on the trial; the tags that name the trial on the run."""
        self.trial.set_user_attr("mlflow_run_id", run_id)
        return {"optuna_study": self.study_name, "optuna_trial": str(self.number)}

    def report(self, value: float, step: int) -> bool:
        """Report the monitored value at `step`; True when the pruner says stop."""
        if not math.isfinite(value):
            return False
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.pruned_at = (float(value), step)
            return True
        return False
