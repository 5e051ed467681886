"""The fold loop: each fold built by the experiment's `build`, fitted by the learner its result calls for, and, in
a sweep, reported to the trial (with fold=all the folds are the trial's steps); a trial the pruner stops ends
PRUNED, an interrupted run keeps its checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow

from src.utils.run.learner import Fold, FoldResult, Learner
from src.utils.run.learners import learner_for
from src.utils.tune.trial import PrunedTrial, TrialLink

log = logging.getLogger(__name__)
Build = Callable[..., Any]  # build(cfg, features, fold) -> what a learner takes


def seed_fold(cfg: Any) -> None:
    """Python's and NumPy's generators seeded; for a network (a config without an `estimator`, whose library seeds
    itself) torch's and the data loaders' too, through Lightning, which an estimator's run never imports."""
    import random

    import numpy as np

    random.seed(int(cfg.seed))
    np.random.seed(int(cfg.seed) % 2**32)
    if "estimator" not in cfg:
        import pytorch_lightning as pl

        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)


def fit_fold(build: Build, fold: Fold) -> tuple[Learner, FoldResult | None]:
    """One fold: seeded, built, fitted by its learner."""
    seed_fold(fold.cfg)
    learner = learner_for(build(fold.cfg, fold.features, fold.fold))
    return learner, learner.fit(fold)


def run_folds(build: Build, folds: list[Fold], multirun: bool) -> tuple[Learner | None, list[FoldResult]] | PrunedTrial:
    """Every fold in turn: the learner and the folds' results, or the PrunedTrial of a trial the pruner stopped."""
    learner, results = None, []
    try:
        for fold in folds:
            learner, result = fit_fold(build, fold)
            results.append(result)
            # fold=all: each fold is a step of the trial (step k = fold k), reported as that fold's best value,
            # so a pruner compares the trials fold by fold (WilcoxonPruner's paired test needs exactly that)
            link = fold.link
            if link is not None and (result.pruned or (fold.cv and link.report(result.best_score, result.fold))):
                return end_pruned(link, fold.ckpt_dir, f"trial {link.number}: ", fold.cv)
    except (KeyboardInterrupt, SystemExit):
        keep_interrupted_checkpoints(folds[0].ckpt_dir, multirun)
        raise
    return learner, results


def end_pruned(link: TrialLink, ckpt_dir: Path, label: str, cv: bool) -> PrunedTrial:
    """A trial the pruner stopped: its run says so (its name, tags and a `pruned_value` point on its curve) and
    keeps its last checkpoint(s); the trial ends PRUNED."""
    value, step = link.pruned_at
    where = f"fold {step}" if cv else f"epoch {step}"  # the steps: fold numbers, or Lightning's epochs (from 0)
    run = mlflow.active_run()
    name = run.info.run_name if run is not None else None
    if name:  # right after `model01 #4`, where the runs table (which cuts long names) still shows it
        name = name.replace(f"#{link.number} ", f"#{link.number} (pruned at {where}) ", 1)
    mlflow.set_tags({"optuna_state": "PRUNED", "pruned_at_step": str(step), "pruned_at": where,
                     **({"mlflow.runName": name[:250]} if name else {})})
    mlflow.log_metric("pruned_value", value, step=step)
    for ckpt in sorted(ckpt_dir.glob("fold*/last.ckpt")):
        mlflow.log_artifact(str(ckpt), artifact_path=f"checkpoints/{ckpt.parent.name}")
    log.info("%spruned at %s (reported %.4f)", label, where, value)
    return PrunedTrial(value, step)


def keep_interrupted_checkpoints(ckpt_dir: Path, multirun: bool) -> None:
    """Attach whatever checkpoints an interrupted run left, and say how to go on."""
    ckpts = sorted(ckpt_dir.glob("fold*/*.ckpt"), key=lambda p: p.stat().st_mtime)
    for ckpt in ckpts:
        mlflow.log_artifact(str(ckpt), artifact_path=f"checkpoints/{ckpt.parent.name}")
    if multirun:
        return  # the sweep prints how to resume the study
    if ckpts:
        print(f"interrupted: resume this run with the same command plus ckpt_path={ckpts[-1]}", flush=True)
    else:
        print("interrupted before the first checkpoint: re-run the same command", flush=True)
