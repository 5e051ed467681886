"""Lightning callbacks shared by the model folders."""

from __future__ import annotations

import math
import time

import mlflow
import pytorch_lightning as pl
import torch

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


def _batch_len(batch) -> int:
    """Samples in a batch: the length of its first tensor (a tensor, or nested in a tuple, list or dict)."""
    while isinstance(batch, list | tuple | dict) and batch:
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch) if isinstance(batch, torch.Tensor) and batch.dim() else 0


class MlflowEpochMetrics(pl.Callback):
    """Log the epoch-level metrics (train_*, val_*) to the active MLflow run, one call per epoch.

    With them `epoch_time_s` (the whole epoch, validation included) and `train_samples_per_s` (the training
    batches alone), so throughput is visible next to the curves. `prefix` separates folds in K-fold CV
    (fold0/val_acc, ...).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._start: float | None = None
        self._train_end: float | None = None
        self._samples = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._train_end, self._samples = time.perf_counter(), None, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        self._samples += _batch_len(batch)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._start is not None and self._train_end is None:
            self._train_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {f"{self.prefix}{k}": float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(("train_", "val_"))}
        if self._start is not None:
            now = time.perf_counter()
            train_s = (self._train_end or now) - self._start
            metrics[f"{self.prefix}epoch_time_s"] = now - self._start
            if self._samples and train_s > 0:
                metrics[f"{self.prefix}train_samples_per_s"] = self._samples / train_s
        if metrics:
            mlflow.log_metrics(metrics, step=trainer.current_epoch)


class BestValidationOutputs(pl.Callback):
    """What `validation_step` returned over the validation set, kept for the epoch `checkpoint` judged best.

    A run can take its out-of-fold predictions from here instead of predicting the validation set again after
    training, which at MNIST size costs seconds per trial. Without a checkpoint callback the last epoch counts.
    ModelCheckpoint may save at validation end or at train epoch end (after this callback), so an epoch is
    judged when the next one starts or the fit ends: it was the best if the best checkpoint changed since its
    validation started (a resumed fit starts from the restored best, which then does not count as new).
    """

    def __init__(self, checkpoint: pl.callbacks.ModelCheckpoint | None = None) -> None:
        self.checkpoint = checkpoint
        self._batches: list[torch.Tensor] = []
        self._before: tuple = ("", None)
        self._pending: torch.Tensor | None = None
        self._best: torch.Tensor | None = None
        self._best_path = ""

    def _key(self) -> tuple:
        ckpt = self.checkpoint
        score = ckpt.best_model_score if ckpt is not None else None
        return (ckpt.best_model_path if ckpt is not None else "", None if score is None else float(score))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches, self._before = [], self._key()

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if not trainer.sanity_checking and isinstance(outputs, torch.Tensor):
            self._batches.append(outputs.detach())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._batches:
            self._pending = torch.cat(self._batches)
        self._batches = []

    def _settle(self) -> None:
        if self._pending is None:
            return
        key = self._key()
        if self.checkpoint is None or (key[0] and key != self._before):
            self._best, self._best_path = self._pending, key[0]
        self._pending = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._settle()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._settle()

    def outputs_for(self, best_path: str, n: int) -> torch.Tensor | None:
        """The kept outputs if they are those of checkpoint `best_path` ("" without one) and cover all `n`
        validation samples; None otherwise (limited validation batches, a resumed fit, fast_dev_run)."""
        if self._best is None or self._best_path != best_path or len(self._best) != n:
            return None
        return self._best
