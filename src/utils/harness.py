"""The training harness: everything a model experiment needs besides its model and its data.

An experiment's train.py hands the harness a `build(cfg, features, fold)` function that returns its
LightningModule and LightningDataModule for one fold; the harness does the rest, the same for every folder:

* one MLflow run per call (nested under a sweep's parent run), ended FINISHED, FAILED or KILLED, with params
  (the resolved config), tags (git commit, code hashes, data lineage, command), the config and Hydra files, the
  code it ran with (the experiment folder and src/utils), the data as a run input, system metrics and the log;
* before the run: the typed config check, the features (manifest, lineage), the folds, the competition and the
  checkpoint to resume from, so a mistake is one error line and no run;
* the fold loop (`fold=k` or `fold=all`), each fold a Lightning fit logged through Lightning's MLFlowLogger into
  that run, one progress line per epoch;
* out-of-fold predictions, the confusion matrix, the best checkpoint(s) and the model(s) with their code
  (`runs:/<id>/model` reloads the LightningModule), the CV summary and one summary line;
* interrupts: the run ends KILLED with its checkpoints attached and says how to resume;
* in an Optuna sweep: the run and its trial linked both ways, the monitored value reported to the trial each epoch
  (each fold with fold=all), and a trial the pruner stops ends PRUNED (tag `optuna_state`, last checkpoint kept).

What the experiment provides: `validation_step` returns the batch's class scores (logits), kept from the best
epoch as the out-of-fold predictions; `predict_step` returns class probabilities (test predictions); the
data module validates on `features.split(fold)[1]` in that order. Returns the objective the sweeper optimises:
the best `monitor` value, the CV mean with fold=all.
"""
# ruff: noqa: E402  (the imports below run with the collector paused, see gc.disable)

from __future__ import annotations

import atexit
import gc

# Importing torch, Lightning and MLflow creates ~0.6 M objects that live as long as the process; the cyclic
# collector would walk them again and again while they load (~20% of the start-up). Paused until they are in,
# then frozen out of every later collection (a full one otherwise walks them again, ~0.2 s, several times per
# sweep); unfrozen at exit so the final collection still frees them.
_gc_was_enabled = gc.isenabled()
gc.disable()

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from src.utils import paths
from src.utils.callbacks import (
    BestValidationOutputs,
    CheckOutputs,
    EpochReport,
    ReportToTrial,
    SaveOnInterrupt,
    StopOnNonFiniteLoss,
)
from src.utils.competition import Competition
from src.utils.competition import load as load_competition
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.features import Features, load_features
from src.utils.logs import quiet_libraries
from src.utils.model_io import code_snapshot, log_torch_model
from src.utils.optuna_sweeper import PrunedTrial, TrialLink, trial_title
from src.utils.paths import ROOT, experiment_of, resolve, shown
from src.utils.predictions import predict_outputs, predict_trainer
from src.utils.runs import tracked_run
from src.utils.schema import TARGETS, TrainConfig, instantiate, validate  # noqa: F401  (re-exported)
from src.utils.sweep import PARENT_RUN_ENV
from src.utils.tracking import browse_hint, log_data_input, redact

gc.freeze()
atexit.register(gc.unfreeze)
if _gc_was_enabled:
    gc.enable()

log = logging.getLogger(__name__)
Build = Callable[[DictConfig, Features, int], tuple[pl.LightningModule, pl.LightningDataModule]]
class RunLogger(MLFlowLogger):
    """Lightning's MLFlowLogger writing into the run the harness started, which the harness also ends.

    Lightning ends the logger's run after every fit (a K-fold run has several) and logs the model's
    hyper-parameters; here the run outlives the fits and the params are the whole resolved config.
    """

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def finalize(self, status: str = "success") -> None:
        pass


@dataclass
class FoldResult:
    fold: int
    best_score: float
    model: pl.LightningModule
    valid_idx: np.ndarray
    scores: np.ndarray  # the task's scores (probabilities / values) of the validation rows, best epoch
    best_ckpt: str
    pruned: bool = False
    test_scores: np.ndarray | None = None


def checked_ckpt(path: str | None, max_epochs: int | None = None) -> str | None:
    """The checkpoint to resume from, checked before any run exists: a file Lightning wrote, with epochs left."""
    if not path:
        return None
    p = resolve(path)
    if not p.is_file():
        raise WorkspaceError(f"ckpt_path={path}: no such file; pick one under logs/lightning/")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        assert isinstance(ckpt, dict) and "state_dict" in ckpt
    except Exception as exc:
        raise WorkspaceError(f"ckpt_path={path} is not a readable Lightning checkpoint ({type(exc).__name__}); "
                             f"pick another one under logs/lightning/") from exc
    done = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    if max_epochs is not None and max_epochs > 0 and isinstance(done, int) and done >= max_epochs:
        raise WorkspaceError(f"ckpt_path={path} has already trained {done} epoch(s), and max_epochs={max_epochs}: "
                             f"nothing is left to train; resume with a larger max_epochs (e.g. "
                             f"max_epochs={done + max_epochs})")
    return str(p)


def fit_fold(cfg: DictConfig, build: Build, features: Features, fold: int, ckpt_dir: Path, run_id: str | None,
             cv: bool, link: TrialLink | None, competition: Competition,
             predict_test: bool = False, ckpt_path: str | None = None) -> FoldResult | None:
    """One fold's fit; `ckpt_path`: the checkpoint to resume from, as `checked_ckpt` returned it."""
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    model, datamodule = build(cfg, features, fold)
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    if link is not None and not cv:  # with fold=all the folds are the steps (see fit)
        callbacks.append(ReportToTrial(link, str(cfg.monitor)))
    checkpoint = next((c for c in callbacks if isinstance(c, pl.callbacks.ModelCheckpoint)), None)
    if checkpoint is not None:
        checkpoint.dirpath = str(ckpt_dir / f"fold{fold}")
    val_outputs = BestValidationOutputs(checkpoint)
    label = f"trial {link.number} " if link is not None else ""
    label += f"fold {fold}/{features.n_folds - 1} " if cv else ""
    loggers: list[Any] = [RunLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run_id,
                                    prefix=f"fold{fold}" if cv else "")] if run_id else []
    if cfg.get("tensorboard") and run_id:  # beside MLflow: logs/tensorboard/<experiment>/<run_id>[-fold<k>]
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(paths.TENSORBOARD_DIR), name=ckpt_dir.parent.name,
                                         version=f"{run_id}-fold{fold}" if cv else run_id, default_hp_metric=False))
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=[CheckOutputs(competition.task), *callbacks, StopOnNonFiniteLoss(),
                                EpochReport(label), val_outputs, SaveOnInterrupt(str(ckpt_dir / f"fold{fold}"))],
        logger=loggers or False, default_root_dir=str(ckpt_dir), fast_dev_run=bool(cfg.debug))
    # a resumed checkpoint is one of this workspace's own (logs/lightning/), read in full like the best one below
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    if not trainer.is_global_zero:
        return None  # a DDP worker: rank 0 keeps the checkpoint, the predictions and the record

    best_ckpt = checkpoint.best_model_path if checkpoint is not None else ""
    if best_ckpt:
        best_score = float(checkpoint.best_model_score)
        # the weights of the best epoch into the model at hand (written by this process a moment ago)
        model.load_state_dict(torch.load(best_ckpt, map_location="cpu", weights_only=False)["state_dict"])
    else:  # fast_dev_run or no checkpoint callback: the last epoch is the best we have
        best_score = float(trainer.callback_metrics[cfg.monitor])
    model.eval()
    valid_idx = features.split(fold)[1]
    task = competition.task
    # OOF predictions: the best epoch's validation outputs; predicting the fold again (through the data module's
    # val_dataloader) only when validation did not cover it at that checkpoint (limited validation batches, a
    # resumed fit, fast_dev_run)
    outputs = val_outputs.outputs_for(best_ckpt, len(valid_idx))
    predictor = None
    if outputs is None:
        predictor = predict_trainer(str(cfg.trainer.get("accelerator", "cpu")))
        outputs = predict_outputs(model, datamodule.val_dataloader(), predictor)
    scores = task.activate(outputs)
    if len(scores) != len(valid_idx):
        raise WorkspaceError(f"the data module's val_dataloader gave {len(scores)} rows for fold {fold}, which has "
                             f"{len(valid_idx)}; it must validate on features.split(fold)[1], in that order")
    test_scores = None
    if predict_test:  # fold=all: every fold model on the test rows, for the run's test predictions
        predictor = predictor or predict_trainer(str(cfg.trainer.get("accelerator", "cpu")))
        test_scores = task.activate(predict_outputs(model, datamodule.predict_dataloader(), predictor))
    log.info("%sbest %s = %.4f (%s)", label, cfg.monitor, best_score, best_ckpt or "no checkpoint")
    pruned = link is not None and link.pruned_at is not None
    return FoldResult(fold, best_score, model, valid_idx, scores, best_ckpt, pruned, test_scores)


def folds_to_run(cfg: DictConfig, n_folds: int) -> list[int]:
    if str(cfg.fold) == "all":
        return list(range(n_folds))
    if not 0 <= int(cfg.fold) < n_folds:
        raise WorkspaceError(f"fold={cfg.fold} does not exist: the features have {n_folds} folds "
                             f"(use fold=0..{n_folds - 1} or fold=all)")
    return [int(cfg.fold)]


def log_run_files(cfg: DictConfig, experiment_dir: Path, features: Features, folds: list[int]) -> None:
    """The resolved config, Hydra's files, the code this run executes, and the data it reads."""
    hydra_dir = Path(HydraConfig.get().runtime.output_dir) / ".hydra"
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "config.yaml"
        resolved.write_text(OmegaConf.to_yaml(redact(OmegaConf.to_container(cfg, resolve=True))))
        mlflow.log_artifact(str(resolved))
        mlflow.log_artifacts(str(code_snapshot(Path(tmp) / "code", experiment_dir).parent), "code")
    for name in ("hydra.yaml", "overrides.yaml"):
        if (hydra_dir / name).is_file():
            mlflow.log_artifact(str(hydra_dir / name), artifact_path="hydra")
    log_data_input(features.name, features.dir, features.content_hash, "training",
                   {"folds": ",".join(map(str, folds))})


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as CSV (no index) by Arrow's writer: the values pandas writes (shortest round-trip floats; a
    float that is a whole number is written as one, a string with a space is quoted), 4-7x faster than
    `to_csv` (0.07 s against 0.29-0.50 s for 12,000 rows of 10 class probabilities)."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "w", newline="") as f:  # the header as pandas writes it (Arrow quotes every name)
        csv.writer(f, lineterminator="\n").writerow([str(c) for c in frame.columns])
    with open(path, "ab") as f:
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), f,
                        write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def log_oof(results: list[FoldResult], features: Features, competition: Competition) -> dict[str, float]:
    """The out-of-fold predictions (columns named from the competition's targets), every competition metric on
    them (`oof_<metric>`), and the plots that fit the task."""
    task = competition.task
    idx = np.concatenate([r.valid_idx for r in results])
    scores = np.concatenate([r.scores for r in results])
    order = np.argsort(idx, kind="stable")
    idx, scores = idx[order], scores[order]
    y = features.train_y[idx]
    oof = pd.DataFrame({"row": idx, "fold": features.folds[idx], **task.oof_columns(y, scores)})
    metrics = {f"oof_{k}": v for k, v in competition.score(y, scores).items()}
    shown_metric = f"{competition.metric.name} {metrics['oof_' + competition.metric.name]:.4f}"
    with tempfile.TemporaryDirectory() as tmp:
        write_csv(oof, Path(tmp) / "oof_predictions.csv")
        mlflow.log_artifact(str(Path(tmp) / "oof_predictions.csv"))
        # the same rows as arrays (exact floats, read in milliseconds): what ensembles blend
        np.savez(Path(tmp) / "oof.npz", rows=idx, folds=features.folds[idx], y=y, scores=scores)
        mlflow.log_artifact(str(Path(tmp) / "oof.npz"), artifact_path="predictions")
        for plot in task.plots(y, scores, Path(tmp), f"validation (OOF) {shown_metric}"):
            mlflow.log_artifact(str(plot))
    return metrics


def log_test_predictions(results: list[FoldResult], features: Features, competition: Competition) -> None:
    """A fold=all run's test predictions (its fold models combined as the competition says) and the submission
    they make: blending and packing never need to retrain."""
    task = competition.task
    scores = task.combine([r.test_scores for r in results], competition.fold_models)
    ids = features.test_ids(competition.ids)
    if len(ids) != len(scores):
        raise WorkspaceError(f"the data module's predict_dataloader gave {len(scores)} rows but {shown(features.dir)} "
                             f"has {len(ids)} test ids; it must yield the test rows in the order of the ids")
    preds = task.prediction_columns(scores)
    with tempfile.TemporaryDirectory() as tmp:
        pd.concat([ids.reset_index(drop=True), pd.DataFrame(preds)], axis=1).to_csv(
            Path(tmp) / "test_predictions.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / "test_predictions.csv"))
        np.save(Path(tmp) / "test_scores.npy", scores)
        mlflow.log_artifact(str(Path(tmp) / "test_scores.npy"), artifact_path="predictions")


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


def from_module(build: Build, schema: type[TrainConfig]) -> tuple[Build, type[TrainConfig]]:
    """`build` and `Config` as the entry script's module defines them.

    A launcher that runs jobs in other processes (joblib, submitit) pickles the task function; the entry script
    being `__main__` where it was pickled, its `build` and `Config` arrive there as copies made by value, whose
    type hints no longer resolve. In such a process they are taken from the experiment's module instead.
    """
    import importlib
    import sys

    entry = Path(build.__code__.co_filename).resolve()
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if build.__module__ != "__main__" or (main_file and Path(main_file).resolve() == entry):
        return build, schema
    module = importlib.import_module(".".join(entry.relative_to(ROOT).with_suffix("").parts))
    return module.build, getattr(module, schema.__name__) if schema.__module__ == "__main__" else schema


RUN_ENV = "WORKSPACE_RUN_ID"  # the run being trained, for the DDP processes Lightning starts


def ddp_worker(cfg: DictConfig | None = None) -> bool:
    """A DDP process besides rank 0: one Lightning started (it re-runs the entry script with LOCAL_RANK/NODE_RANK),
    or a task of `srun` other than the first when the run's strategy is DDP (SLURM starts every process)."""
    if int(os.environ.get("LOCAL_RANK", "0") or 0) > 0 or int(os.environ.get("NODE_RANK", "0") or 0) > 0:
        return True
    strategy = str(((cfg or {}).get("trainer") or {}).get("strategy") or "")
    return ("ddp" in strategy and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1
            and int(os.environ.get("SLURM_PROCID", "0") or 0) > 0)


def checked_inputs(cfg: DictConfig, schema: type[TrainConfig]) -> tuple[Features, list[int], Competition, str | None]:
    """Everything a run reads, checked before it exists: the config, the features (manifest), the folds, the
    competition and the checkpoint to resume from."""
    validate(cfg, schema)
    features = load_features(cfg.feature_dir)
    folds = folds_to_run(cfg, features.n_folds)
    competition = competition_of(cfg, features)
    return features, folds, competition, checked_ckpt(cfg.ckpt_path, cfg.trainer.get("max_epochs"))


def fit_as_worker(cfg: DictConfig, build: Build, schema: type[TrainConfig]) -> float:
    """Rank > 0 of a DDP run: the same folds and trainer as rank 0, which alone records (no run of its own)."""
    features, folds, competition, ckpt_path = checked_inputs(cfg, schema)
    experiment = "__debug__" if cfg.debug else str(cfg.experiment_name)
    run_id = os.environ.get(RUN_ENV, "ddp")
    for k in folds:
        fit_fold(cfg, build, features, k, paths.LIGHTNING_DIR / experiment / run_id, None, len(folds) > 1, None,
                 competition, ckpt_path=ckpt_path)
    return float("nan")


def competition_of(cfg: DictConfig, features: Features) -> Competition:
    """The competition the run belongs to: its config's `competition`, which must be the one its features are."""
    name = cfg.get("competition") or features.competition
    if not name:
        raise WorkspaceError("competition is not set; name it in the model's config (competition: <name>, a file "
                             "of config/competition/)")
    if features.competition and features.competition != name:
        raise WorkspaceError(f"competition={name} but {shown(features.dir)} was built for {features.competition}; "
                             f"point feature_dir at features of {name} (or fix competition)")
    return load_competition(str(name))


def log_competition(competition: Competition) -> None:
    """The competition file as the run read it: rerun and packing use this, not today's file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "competition.yaml"
        path.write_text(OmegaConf.to_yaml(competition.cfg))
        mlflow.log_artifact(str(path))


@exit_on_user_error
def fit(cfg: DictConfig, build: Build, schema: type[TrainConfig] = TrainConfig) -> float:
    """Train the experiment whose `build` this is, as configured; the objective for the sweeper."""
    quiet_libraries()
    build, schema = from_module(build, schema)
    if ddp_worker(cfg):
        return fit_as_worker(cfg, build, schema)
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    experiment_dir = Path(build.__code__.co_filename).resolve().parent
    stage, folder = experiment_of(build.__code__.co_filename)

    # Everything that can be checked without a run is checked first: a typo (fold=7, a missing ckpt_path, stale
    # features, another competition's features) is one error line and leaves the store as it was. What fails after
    # the run has started ends it FAILED with its log.
    features, folds, competition, ckpt_path = checked_inputs(cfg, schema)
    lineage = features.lineage()
    link = TrialLink.current(hydra_cfg, cfg.get("pruner")) if multirun else None

    tags = {"hydra_overrides": json.dumps(list(hydra_cfg.overrides.task)),
            "hydra_output_dir": hydra_cfg.runtime.output_dir}
    if multirun and os.environ.get(PARENT_RUN_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_RUN_ENV]
    experiment = "__debug__" if cfg.debug else str(cfg.experiment_name)
    params = {**OmegaConf.to_container(cfg, resolve=True),
              **{f"choice.{k}": v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/")}}
    # a trial's run is named after the experiment, the trial and its sampled values: model01 #4 lr=0.003728 ...
    run_name = f"{folder} #{link.number} {trial_title(link.trial.params)}".strip()[:250] if link else None
    with tracked_run(stage, folder, experiment, params=params, tags=tags, run_name=run_name,
                     system_metrics=bool(cfg.mlflow.system_metrics) and not cfg.debug, note=cfg.get("note"),
                     path=experiment_dir.relative_to(ROOT).as_posix()) as run:
        if link is not None:
            mlflow.set_tags(link.attach(run.info.run_id))
        mlflow.set_tags({**lineage, "competition": competition.name, "task": competition.task.kind,
                         "competition_metric": competition.metric.name})
        log_run_files(cfg, experiment_dir, features, folds)
        log_competition(competition)
        ckpt_dir = paths.LIGHTNING_DIR / experiment / run.info.run_id
        os.environ[RUN_ENV] = run.info.run_id  # DDP processes started from here train into the same folders
        cv = len(folds) > 1
        trial_label = f"trial {link.number}: " if link is not None else ""
        results: list[FoldResult] = []
        try:
            for k in folds:
                results.append(fit_fold(cfg, build, features, k, ckpt_dir, run.info.run_id, cv, link, competition,
                                        predict_test=cv and not cfg.debug, ckpt_path=ckpt_path))
                # fold=all: each fold is a step of the trial (step k = fold k), reported as that fold's best value,
                # so a pruner compares the trials fold by fold (WilcoxonPruner's paired test needs exactly that)
                if link is not None and (results[-1].pruned or (
                        cv and link.report(results[-1].best_score, results[-1].fold))):
                    return end_pruned(link, ckpt_dir, trial_label, cv)
        except (KeyboardInterrupt, SystemExit):
            keep_interrupted_checkpoints(ckpt_dir, multirun)
            raise

        scores = [r.best_score for r in results]
        monitored = float(np.mean(scores))
        metrics = {f"best_{cfg.monitor}": monitored}
        if cv:
            metrics |= {f"fold{r.fold}_best_{cfg.monitor}": r.best_score for r in results}
            metrics |= {f"cv_{cfg.monitor}": monitored, f"cv_{cfg.monitor}_std": float(np.std(scores))}
        metrics |= log_oof(results, features, competition)
        # the sweep objective: the best monitored value (CV mean), or the competition's metric on the OOF rows
        name = competition.metric.name
        objective = metrics[f"oof_{name}"] if cfg.get("objective") == "oof" else monitored
        metrics["objective"] = objective
        mlflow.log_metrics(metrics)
        if cv and not cfg.debug:
            log_test_predictions(results, features, competition)

        if cfg.mlflow.log_checkpoint:
            for r in results:
                if r.best_ckpt:
                    mlflow.log_artifact(r.best_ckpt, artifact_path=f"checkpoints/fold{r.fold}")
        if cfg.mlflow.log_model:
            best = max(results, key=lambda r: r.best_score if cfg.monitor_mode == "max" else -r.best_score)
            log_torch_model(best.model, "model", experiment_dir)
            mlflow.set_tag("model_fold", str(best.fold))
            if cv:
                for r in results:
                    log_torch_model(r.model, f"model_fold{r.fold}", experiment_dir)
                mlflow.set_tag("fold_models", ",".join(str(r.fold) for r in results))
        summary = (f"best_{cfg.monitor}={monitored:.4f}" + (f" (CV mean of {len(folds)} folds)" if cv else "")
                   + f", OOF {name}={metrics[f'oof_{name}']:.4f}")
        log.info("%srun %s: %s", trial_label, run.info.run_id, summary)
    if not multirun:
        print(f"run_id={run.info.run_id} best_{cfg.monitor}={monitored:.4f} "
              f"oof_{name}={metrics[f'oof_{name}']:.4f} experiment={experiment} "
              f"({browse_hint()})", flush=True)
    return objective
