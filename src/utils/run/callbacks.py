"""Lightning callbacks shared by the model folders."""

from __future__ import annotations

import logging
import math
import time

import pytorch_lightning as pl
import torch

from src.utils.core.errors import RunRefused, WorkspaceError

log = logging.getLogger(__name__)


class TrainingDiverged(WorkspaceError):
    """The loss became NaN/inf: the run is a failure, not a success with a meaningless score."""


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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class EpochReport(pl.Callback):
    """One line per epoch (epoch, the model's train_*/val_* metrics, time, ETA) and the epoch's timing as metrics.

    A line per epoch reads the same on a terminal, in a background run's log and in a sweep with many trials;
    the ETA assumes every remaining epoch runs (early stopping can only make it shorter). The loggers get
    `epoch_time_s` (the whole epoch, validation included) and `train_samples_per_s` (the training batches alone).
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._start = self._train_end = None
        self._samples = 0
        self._times: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._train_end, self._samples = time.perf_counter(), None, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        self._samples += _batch_len(batch)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._start is not None and self._train_end is None:
            self._train_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is None:
            return
        now = time.perf_counter()
        elapsed, train_s = now - self._start, (self._train_end or now) - self._start
        self._times.append(elapsed)
        timing = {"epoch_time_s": elapsed}
        if self._samples and train_s > 0:
            timing["train_samples_per_s"] = self._samples / train_s
        for logger in trainer.loggers:
            logger.log_metrics(timing, step=trainer.global_step)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train_", "val_"))}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items(), key=lambda kv: kv[0].startswith("val")))
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        left = (total - trainer.current_epoch - 1) * sum(self._times) / len(self._times) if total else 0
        eta = f"  ETA {_duration(left)}" if left > 0 else ""
        if not trainer.is_global_zero:  # DDP: one line per epoch, from rank 0
            return
        log.info("%sepoch %d/%s  %s  %s%s", self.label, trainer.current_epoch + 1, total or "?", shown,
                 _duration(elapsed) if elapsed >= 1 else f"{elapsed:.2f}s", eta)


class SaveOnInterrupt(pl.Callback):
    """Save `interrupted.ckpt` when the fit is cut short (Ctrl-C, SIGTERM, an error) to resume from there.

    Lightning's OnExceptionCheckpoint does the same but also makes every fit look for a checkpoint to resume
    from, with two warnings per fit that there is none.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = dirpath

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        trainer.save_checkpoint(f"{self.dirpath}/interrupted.ckpt")


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


class ReportToTrial(pl.Callback):
    """Report the monitored value to the run's Optuna trial after each validation; stop when the pruner says so."""

    def __init__(self, link, monitor: str) -> None:
        self.link, self.monitor = link, monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        if self.link.report(float(value), trainer.current_epoch):
            trainer.should_stop = True


class CheckOutputs(pl.Callback):
    """A model whose last layer cannot be the competition's task fails on its first batch with one line, not after
    training: the model's `predict_step` (its outputs alone, before its loss could trip over a wrong shape) on the
    first batch it sees (the first training batch, or the sanity check's), then what `validation_step` returns on
    the first validation batch.
    """

    def __init__(self, task) -> None:
        self.task, self.done, self.probed = task, False, False

    def _probe(self, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.probed:
            return
        self.probed = True
        training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                outputs = pl_module.predict_step(batch, batch_idx)
        finally:
            pl_module.train(training)
        if isinstance(outputs, torch.Tensor):
            self.task.check_outputs(outputs)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self._probe(pl_module, batch, batch_idx)

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        self._probe(pl_module, batch, batch_idx)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.done:
            return
        if not isinstance(outputs, torch.Tensor):
            raise WorkspaceError(f"{type(pl_module).__name__}.validation_step returned {type(outputs).__name__}; it "
                                 f"must return the batch's raw outputs (a tensor: logits or values), which become "
                                 f"the out-of-fold predictions")
        self.task.check_outputs(outputs)
        self.done = True


class CheckMonitor(pl.Callback):
    """A `monitor` the model never logs is one line at its first validation (the sanity check's, or the first
    epoch's), before early stopping or the checkpoint trip over it: the metrics it does log, and the run deleted."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.done = monitor, False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.done:
            return
        logged = sorted(k for k in trainer.callback_metrics if not k.startswith("fold"))
        if not any(k.startswith("val") for k in logged):  # nothing validated yet to tell
            return
        self.done = True
        if self.monitor not in trainer.callback_metrics:
            raise RunRefused(f"monitor={self.monitor} is not a metric the model logs; it logs "
                             f"{', '.join(logged)}: set monitor to one of them (and monitor_mode to match)")
