"""Lightning callbacks shared by the model folders."""

from __future__ import annotations

import math

import mlflow
import pytorch_lightning as pl

from src.utils.errors import WorkspaceError


class TrainingDiverged(WorkspaceError):
    """The loss became NaN/inf: the run is a failure, not a 0-accuracy success."""


class StopOnNonFiniteLoss(pl.Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training loss became {float(loss)} at epoch {trainer.current_epoch}, batch {batch_idx}; "
                f"the run diverged (lower lr, or check the features)"
            )


class MlflowEpochMetrics(pl.Callback):
    """Log the epoch-level metrics (train_*, val_*) to the active MLflow run, one call per epoch.

    `prefix` separates folds in K-fold CV (fold0/val_acc, ...).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {f"{self.prefix}{k}": float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(("train_", "val_"))}
        if metrics:
            mlflow.log_metrics(metrics, step=trainer.current_epoch)
