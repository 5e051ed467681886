"""model01: train the CNN on feature01 with Lightning; one MLflow run per call, nested in a sweep's parent.

    poetry run python src/model/model01/train.py                       # one run, validation fold 0
    poetry run python src/model/model01/train.py fold=all              # K-fold CV, OOF predictions
    poetry run python src/model/model01/train.py -m 'lr=interval(1e-4,1e-1)'   # Optuna sweep

Returns the best validation metric (`monitor`; the CV mean with fold=all) to the Optuna sweeper.
"""
# ruff: noqa: E402  (the imports below run with the collector paused, see gc.disable)

from __future__ import annotations

import atexit
import gc

# Importing torch, Lightning and MLflow creates ~0.6 M objects that live as long as the process; the cyclic
# collector would walk them again and again while they load (~20% of the start-up). Paused until they are in.
_gc_was_enabled = gc.isenabled()
gc.disable()

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.model.model01.data import FoldDataModule, load_features
from src.model.model01.model import OPTIMIZERS, SCHEDULERS, DigitCNN
from src.utils.callbacks import BestValidationOutputs, MlflowEpochMetrics, StopOnNonFiniteLoss
from src.utils.cli import check_overrides
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.io import read_json
from src.utils.logs import quiet_libraries
from src.utils.model_io import log_torch_model
from src.utils.paths import LIGHTNING_DIR, config_dir, resolve
from src.utils.plots import confusion_matrix_png
from src.utils.runs import tracked_run
from src.utils.sweep import PARENT_RUN_ENV
from src.utils.tracking import redact

if __name__ == "__main__":
    # Run as a script, what is loaded now stays for the whole process: keep it out of every later collection
    # (a full one otherwise walks those objects again, ~0.2 s, several times per sweep). Unfrozen at exit, so
    # the final collection still frees them.
    gc.freeze()
    atexit.register(gc.unfreeze)
if _gc_was_enabled:
    gc.enable()

STAGE, FOLDER = "model", "model01"
HERE = Path(__file__).resolve().parent
log = logging.getLogger(FOLDER)


@dataclass
class FoldResult:
    fold: int
    best_score: float
    model: DigitCNN
    valid_idx: np.ndarray
    probs: np.ndarray
    best_ckpt: str


def check_config(cfg: DictConfig, n_folds: int) -> list[int]:
    """Reject impossible settings up front, each with the key and a valid example; return the folds."""
    checks = [
        (cfg.lr > 0, f"lr={cfg.lr} must be > 0 (e.g. lr=0.003)"),
        (int(cfg.batch_size) >= 1, f"batch_size={cfg.batch_size} must be >= 1 (e.g. batch_size=64)"),
        (int(cfg.max_epochs) >= 1, f"max_epochs={cfg.max_epochs} must be >= 1"),
        (cfg.weight_decay >= 0, f"weight_decay={cfg.weight_decay} must be >= 0"),
        (0 <= cfg.dropout < 1, f"dropout={cfg.dropout} must be in [0, 1)"),
        (cfg.optimizer in OPTIMIZERS, f"optimizer={cfg.optimizer} must be one of {', '.join(OPTIMIZERS)}"),
        (cfg.scheduler in SCHEDULERS, f"scheduler={cfg.scheduler} must be one of {', '.join(SCHEDULERS)}"),
        (cfg.monitor_mode in ("max", "min"), f"monitor_mode={cfg.monitor_mode} must be max or min"),
    ]
    for ok, message in checks:
        if not ok:
            raise WorkspaceError(message)
    if str(cfg.fold) == "all":
        if cfg.ckpt_path:
            raise WorkspaceError("ckpt_path resumes a single fold; pass fold=<k> with it, not fold=all")
        return list(range(n_folds))
    try:
        fold = int(cfg.fold)
    except (TypeError, ValueError):
        fold = -1
    if not 0 <= fold < n_folds or str(fold) != str(cfg.fold):
        raise WorkspaceError(f"fold={cfg.fold} does not exist: the features have {n_folds} folds "
                             f"(use fold=0..{n_folds - 1} or fold=all)")
    return [fold]


def lineage(feature_dir: Path, manifest: dict) -> dict[str, str]:
    """Tags that tie the run to its data, after checking the features match their dataset's current output."""
    if "dataset" not in manifest:
        raise WorkspaceError(f"{feature_dir}/manifest.json comes from an older build; rebuild it: "
                             f"poetry run python src/feature/{feature_dir.name}/build_features.py")
    dataset = manifest["dataset"]
    dataset_manifest = resolve(dataset["dir"]) / "manifest.json"
    if dataset_manifest.is_file():
        current = read_json(dataset_manifest)["content_hash"]
        if current != dataset["hash"]:
            raise WorkspaceError(
                f"{feature_dir} was built from {dataset['name']} {dataset['hash'][:12]} but {dataset['name']} is "
                f"now {current[:12]}; rebuild: poetry run python src/feature/{feature_dir.name}/build_features.py")
    return {
        f"{feature_dir.name}_hash": manifest["content_hash"],
        f"{feature_dir.name}_run_id": manifest["mlflow_run_id"],
        f"{dataset['name']}_hash": dataset["hash"],
        f"{dataset['name']}_run_id": dataset["run_id"],
        "data_source": manifest["source"]["source"],
        "is_sample_data": str(bool(manifest["source"].get("is_sample"))).lower(),
    }


def checked_ckpt(path: str | None) -> str | None:
    if not path:
        return None
    p = resolve(path)
    if not p.is_file():
        raise WorkspaceError(f"ckpt_path={path}: no such file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        assert isinstance(ckpt, dict) and "state_dict" in ckpt
    except Exception as exc:
        raise WorkspaceError(f"ckpt_path={path} is not a readable Lightning checkpoint ({type(exc).__name__}); "
                             f"pick another one under logs/lightning/") from exc
    return str(p)


def fit_fold(cfg: DictConfig, arrays: dict, fold: int, ckpt_dir: Path, prefix: str) -> FoldResult:
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = FoldDataModule(arrays, fold, int(cfg.batch_size), int(cfg.data.num_workers))
    model: DigitCNN = hydra.utils.instantiate(cfg.model, _convert_="all")
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values() if c is not None]
    checkpoint = next((c for c in callbacks if isinstance(c, pl.callbacks.ModelCheckpoint)), None)
    if checkpoint is not None:
        checkpoint.dirpath = str(ckpt_dir / f"fold{fold}")
    val_outputs = BestValidationOutputs(checkpoint)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*callbacks, MlflowEpochMetrics(prefix), StopOnNonFiniteLoss(), val_outputs,
                                # an interrupted fold leaves a checkpoint to resume from
                                pl.callbacks.OnExceptionCheckpoint(str(ckpt_dir / f"fold{fold}"), "interrupted")],
        logger=False,
        default_root_dir=str(ckpt_dir), fast_dev_run=bool(cfg.debug))
    trainer.fit(model, datamodule=datamodule, ckpt_path=checked_ckpt(cfg.ckpt_path))

    best_ckpt = checkpoint.best_model_path if checkpoint is not None else ""
    if best_ckpt:
        best_score = float(checkpoint.best_model_score)
        model = DigitCNN.load_from_checkpoint(best_ckpt, map_location="cpu")
    else:  # fast_dev_run or no checkpoint callback: the last epoch is the best we have
        best_score = float(trainer.callback_metrics[cfg.monitor])
    model.eval()
    x = datamodule.valid_set.tensors[0]
    # OOF predictions: the best epoch's validation logits; predicting the fold again only when validation did
    # not cover it at that checkpoint (limited validation batches, a resumed fit, fast_dev_run)
    logits = val_outputs.outputs_for(best_ckpt, len(x))
    if logits is None:
        with torch.inference_mode():
            logits = torch.cat([model(b) for b in x.split(1024)])
    probs = torch.softmax(logits, 1).numpy()
    log.info("fold %d: best %s = %.4f (%s)", fold, cfg.monitor, best_score, best_ckpt or "no checkpoint")
    return FoldResult(fold, best_score, model, datamodule.valid_idx, probs, best_ckpt)


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


def log_hydra_files(cfg: DictConfig) -> None:
    hydra_dir = Path(HydraConfig.get().runtime.output_dir) / ".hydra"
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "config.yaml"
        resolved.write_text(OmegaConf.to_yaml(redact(OmegaConf.to_container(cfg, resolve=True))))
        mlflow.log_artifact(str(resolved))
    for name in ("hydra.yaml", "overrides.yaml"):
        if (hydra_dir / name).is_file():
            mlflow.log_artifact(str(hydra_dir / name), artifact_path="hydra")


def log_oof(results: list[FoldResult], labels: np.ndarray, folds: np.ndarray) -> float:
    idx = np.concatenate([r.valid_idx for r in results])
    probs = np.concatenate([r.probs for r in results])
    oof = pd.DataFrame({"row": idx, "fold": folds[idx], "label": labels[idx], "pred": probs.argmax(1)})
    oof = pd.concat([oof, pd.DataFrame(probs, columns=[f"prob_{k}" for k in range(probs.shape[1])])], axis=1)
    oof = oof.sort_values("row")
    accuracy = float((oof["pred"] == oof["label"]).mean())
    with tempfile.TemporaryDirectory() as tmp:
        oof.to_csv(Path(tmp) / "oof_predictions.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / "oof_predictions.csv"))
        confusion_matrix_png(oof["label"], oof["pred"], Path(tmp) / "confusion_matrix.png",
                             title=f"validation (OOF) accuracy {accuracy:.4f}")
        mlflow.log_artifact(str(Path(tmp) / "confusion_matrix.png"))
    return accuracy


def train(cfg: DictConfig) -> float:
    quiet_libraries()
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    tags = {"hydra_overrides": json.dumps(list(hydra_cfg.overrides.task)),
            "hydra_output_dir": hydra_cfg.runtime.output_dir}
    if multirun and os.environ.get(PARENT_RUN_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_RUN_ENV]
    run_name = f"trial-{hydra_cfg.job.num}" if multirun else None
    experiment = "__debug__" if cfg.debug else str(cfg.experiment_name)
    params = OmegaConf.to_container(cfg, resolve=True)

    # Everything, the input checks included, happens inside the run: a failed attempt leaves a FAILED run
    # with its log, and a failed sweep trial is recorded like any other.
    with tracked_run(STAGE, FOLDER, experiment, params=params, tags=tags, run_name=run_name) as run:
        feature_dir = resolve(cfg.feature_dir)
        manifest, arrays = load_features(feature_dir)
        folds_to_run = check_config(cfg, int(manifest["n_folds"]))
        mlflow.set_tags(lineage(feature_dir, manifest))
        log_hydra_files(cfg)
        ckpt_dir = LIGHTNING_DIR / experiment / run.info.run_id
        cv = len(folds_to_run) > 1
        try:
            results = [fit_fold(cfg, arrays, k, ckpt_dir, f"fold{k}/" if cv else "") for k in folds_to_run]
        except (KeyboardInterrupt, SystemExit):
            keep_interrupted_checkpoints(ckpt_dir, multirun)
            raise

        scores = [r.best_score for r in results]
        objective = float(np.mean(scores))
        metrics = {f"best_{cfg.monitor}": objective, "objective": objective}
        if cv:
            metrics |= {f"fold{r.fold}_best_{cfg.monitor}": r.best_score for r in results}
            metrics |= {f"cv_{cfg.monitor}": objective, f"cv_{cfg.monitor}_std": float(np.std(scores))}
        metrics["oof_acc"] = log_oof(results, arrays["train_y"], arrays["folds"])
        mlflow.log_metrics(metrics)

        if cfg.mlflow.log_checkpoint:
            for r in results:
                if r.best_ckpt:
                    mlflow.log_artifact(r.best_ckpt, artifact_path=f"checkpoints/fold{r.fold}")
        if cfg.mlflow.log_model:
            best = max(results, key=lambda r: r.best_score if cfg.monitor_mode == "max" else -r.best_score)
            log_torch_model(best.model, "model", HERE)
            mlflow.set_tag("model_fold", str(best.fold))
            if cv:
                for r in results:
                    log_torch_model(r.model, f"model_fold{r.fold}", HERE)
        log.info("run %s: %s = %.4f%s", run.info.run_id, f"best_{cfg.monitor}", objective,
                 " (CV mean)" if cv else "")
    if not multirun:
        print(f"run_id={run.info.run_id} best_{cfg.monitor}={objective:.4f} experiment={experiment} "
              f"(browse: bash scripts/mlflow_ui.sh)")
    return objective


@hydra.main(version_base="1.3", config_path=config_dir(STAGE, FOLDER), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    check_overrides(STAGE, FOLDER)
    main()
