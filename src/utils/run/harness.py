"""The training harness: everything a model experiment needs besides its model and its data.

An experiment's train.py hands `fit` a `build(cfg, features, fold)` function that returns what its learner takes
for one fold (a LightningModule and LightningDataModule today); `fit` tells the story of a run, the same for every
folder, and each step lives in its own module:

* check (checks.py): the typed config, the features (manifest, lineage), the folds, the competition and the
  checkpoint to resume from, so a mistake is one error line and no run;
* open the run (src/utils/track/runs.py): one MLflow run per call (nested under a sweep's parent run), ended
  FINISHED, FAILED or KILLED, with params (the resolved config), tags (git commit, code hashes, data lineage,
  command, the trial), system metrics and the log; the files it ran with (records.py);
* run the folds (folds.py): `fold=k` or `fold=all`, each fold fitted by its learner (learner.py, lightning.py) and
  logged into the run, one progress line per epoch; in a sweep, the trial told each step and a pruned trial ended
  PRUNED; an interrupted run keeps its checkpoints and says how to resume;
* record (records.py): out-of-fold predictions scored by the competition's metrics, the task's plots, test
  predictions, checkpoints and models, the CV summary;
* close: one summary line. Returns the objective the sweeper optimises.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.utils.competition.spec import Competition
from src.utils.competition.spec import load as load_competition
from src.utils.config.schema import RunConfig, validate
from src.utils.core import collector, paths
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.logs import quiet_libraries
from src.utils.core.paths import ROOT, folder_of, shown
from src.utils.data.features import Features, load_features
from src.utils.run import records
from src.utils.run.checks import checked_ckpt, folds_to_run, train_checks
from src.utils.run.ddp import RUN_ENV, ddp_worker, from_module
from src.utils.run.folds import run_folds
from src.utils.run.learner import Fold
from src.utils.track.runs import tracked_run
from src.utils.track.tracking import browse_hint
from src.utils.tune.parent import PARENT_RUN_ENV
from src.utils.tune.trial import PrunedTrial, TrialLink, trial_title

log = logging.getLogger(__name__)
Build = Callable[[DictConfig, Features, int], Any]


@dataclass
class Inputs:
    """Everything a run reads, checked before it exists."""

    features: Features
    folds: list[int]
    competition: Competition
    ckpt_path: str | None
    lineage: dict[str, str]  # the features' lineage tags; reading them checks the features are not stale


def checked_inputs(cfg: DictConfig, schema: type[RunConfig]) -> Inputs:
    """The config, the features (manifest), the folds, the competition and the checkpoint to resume from."""
    validate(cfg, schema, (train_checks,))
    features = load_features(cfg.feature_dir)
    folds = folds_to_run(cfg.fold, features.n_folds)
    return Inputs(features, folds, competition_of(cfg, features),
                  checked_ckpt(cfg.get("ckpt_path"), (cfg.get("trainer") or {}).get("max_epochs")), features.lineage())


def competition_of(cfg: DictConfig, features: Features) -> Competition:
    """The competition the run belongs to: its config's `competition`, which must be the one its features are."""
    name = cfg.get("competition") or features.competition
    if not name:
        raise WorkspaceError("competition is not set; name it in the model's config (competition: <name>, a file "
                             "of config/competition/)")
    if features.competition and features.competition != name:
        raise WorkspaceError(f"competition={name} but {shown(features.dir)} was built for {features.competition}; "
                             f"point feature_dir at features of {name} (or fix competition)")
    competition = load_competition(str(name))
    built_under = features.manifest.get("competition_digest")
    if built_under and built_under != competition.digest:
        dataset = features.manifest.get("dataset", {}).get("name", "the dataset")
        raise WorkspaceError(f"{shown(features.dir)} was built under another version of {competition.where} (its "
                             f"files, id, target or task have changed since); rebuild the data stages: poetry run "
                             f"python src/dataset/{dataset}/make_dataset.py, then {features.rebuild}")
    return competition


def experiment_dir(build: Build) -> Path:
    """The experiment folder whose train.py defines `build`."""
    return Path(build.__code__.co_filename).resolve().parent


def experiment_name(cfg: DictConfig) -> str:
    return "__debug__" if cfg.debug else str(cfg.experiment_name)


def folds_of(cfg: DictConfig, inputs: Inputs, run_id: str | None, link: TrialLink | None) -> list[Fold]:
    """The folds the run trains, each with what its fit needs (files under logs/lightning/<experiment>/<run_id>)."""
    ckpt_dir = paths.LIGHTNING_DIR / experiment_name(cfg) / (run_id or os.environ.get(RUN_ENV, "ddp"))
    cv = len(inputs.folds) > 1
    return [Fold(cfg, inputs.features, inputs.competition, k, ckpt_dir, run_id, cv, link,
                 predict_test=cv and not cfg.debug and run_id is not None, ckpt_path=inputs.ckpt_path)
            for k in inputs.folds]


def fit_as_worker(cfg: DictConfig, build: Build, schema: type[RunConfig]) -> float:
    """Rank > 0 of a DDP run: the same folds and trainer as rank 0, which alone records (no run of its own)."""
    run_folds(build, folds_of(cfg, checked_inputs(cfg, schema), None, None), multirun=False)
    return float("nan")


@contextmanager
def opened_run(cfg: DictConfig, build: Build, inputs: Inputs, link: TrialLink | None) -> Iterator[Any]:
    """The run, started with its params, tags and name, and the files it runs with logged."""
    hydra_cfg = HydraConfig.get()
    stage, folder = folder_of(build.__code__.co_filename)
    tags = {"hydra_overrides": json.dumps(list(hydra_cfg.overrides.task)),
            "hydra_output_dir": hydra_cfg.runtime.output_dir}
    if hydra_cfg.mode == RunMode.MULTIRUN and os.environ.get(PARENT_RUN_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_RUN_ENV]
    params = {**OmegaConf.to_container(cfg, resolve=True),
              **{f"choice.{k}": v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/")}}
    # a trial's run is named after the experiment, the trial and its sampled values: model01 #4 lr=0.003728 ...
    run_name = f"{folder} #{link.number} {trial_title(link.trial.params)}".strip()[:250] if link else None
    with tracked_run(stage, folder, experiment_name(cfg), params=params, tags=tags, run_name=run_name,
                     system_metrics=bool(cfg.mlflow.system_metrics) and not cfg.debug, note=cfg.get("note"),
                     path=experiment_dir(build).relative_to(ROOT).as_posix()) as run:
        if link is not None:
            mlflow.set_tags(link.attach(run.info.run_id))
        mlflow.set_tags({**inputs.lineage, "competition": inputs.competition.name,
                         "competition_digest": inputs.competition.digest,
                         "task": inputs.competition.task.kind, "competition_metric": inputs.competition.metric.name})
        records.log_run_files(cfg, experiment_dir(build), inputs.features, inputs.folds, inputs.competition)
        os.environ[RUN_ENV] = run.info.run_id  # DDP processes started from here train into the same folders
        yield run


@exit_on_user_error
def fit(cfg: DictConfig, build: Build, schema: type[RunConfig] = RunConfig) -> float:
    """Train the experiment whose `build` this is, as configured; the objective for the sweeper."""
    quiet_libraries()
    collector.resume()  # the heavy imports are in (see src/utils/cli/setup.py)
    build, schema = from_module(build, schema)
    if ddp_worker(cfg):
        return fit_as_worker(cfg, build, schema)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    # Check: everything that can be checked without a run, so a typo (fold=7, a missing ckpt_path, stale features,
    # another competition's features) is one error line and leaves the store as it was. What fails after the run
    # has started ends it FAILED with its log.
    inputs = checked_inputs(cfg, schema)
    link = TrialLink.current(HydraConfig.get(), cfg.get("pruner")) if multirun else None
    with opened_run(cfg, build, inputs, link) as run:
        outcome = run_folds(build, folds_of(cfg, inputs, run.info.run_id, link), multirun)
        if isinstance(outcome, PrunedTrial):
            return outcome
        learner, results = outcome
        summary = records.record(cfg, learner, results, inputs.features, inputs.competition, experiment_dir(build),
                                 trial=link is not None)
        line = summary.line(str(cfg.monitor), len(inputs.folds), inputs.competition.metric.name)
        log.info("%srun %s: %s", f"trial {link.number}: " if link else "", run.info.run_id, line)
    if not multirun:
        name = inputs.competition.metric.name
        print(f"run_id={run.info.run_id} best_{cfg.monitor}={summary.monitored:.4f} "
              f"oof_{name}={summary.metrics[f'oof_{name}']:.4f} "
              f"baseline_oof_{name}={summary.metrics[f'baseline_oof_{name}']:.4f} experiment={experiment_name(cfg)} "
              f"({browse_hint()})", flush=True)
    return summary.objective
