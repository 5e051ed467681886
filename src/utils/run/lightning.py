"""The Lightning learner: one fold's LightningModule fitted by a Trainer built from the config, with the
workspace's callbacks (output checks, early stopping and checkpoints from the config, the trial's reports, the
epoch lines, the best epoch's validation outputs, a save on interrupt) and Lightning's MLFlowLogger writing into
the run; the best checkpoint's weights are the fold's model, logged with MLflow's pytorch flavour and its code."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import MLFlowLogger

from src.utils.config.targets import instantiate
from src.utils.core import paths
from src.utils.core.errors import WorkspaceError
from src.utils.run.callbacks import (
    BestValidationOutputs,
    CheckMonitor,
    CheckOutputs,
    EpochReport,
    ReportToTrial,
    SaveOnInterrupt,
    StopOnNonFiniteLoss,
)
from src.utils.run.learner import Fold, FoldResult
from src.utils.run.predictions import predict_outputs, predict_trainer
from src.utils.track.artifacts import code_snapshot, packages

log = logging.getLogger(__name__)


class RunLogger(MLFlowLogger):
    """Lightning's MLFlowLogger writing into the run the harness started, which the harness also ends.

    Lightning ends the logger's run after every fit (a K-fold run has several) and logs the model's
    hyper-parameters; here the run outlives the fits and the params are the whole resolved config.

    The points are written in batches: one store transaction costs ~10 ms, Lightning logs two or three times an
    epoch, and a small table's epoch trains in less than that. Each point keeps the time it was logged; the
    batch is written every `flush_every_s` seconds (what the MLflow UI shows while a run trains) and when the fit
    ends, however it ends (Lightning finalizes the logger on success, on an error and on an interrupt).
    """

    flush_every_s = 5.0
    max_batch = 1000  # MLflow's limit on metrics per log_batch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Any] = []
        self._since = time.monotonic()

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step: int | None = None) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        for key, value in metrics.items():
            if not isinstance(value, str):  # MLFlowLogger drops strings too (with a warning)
                key = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key
                key = re.sub("[^a-zA-Z0-9_/. -]+", "", key)  # what MLflow allows in a name, as MLFlowLogger does
                self._pending.append(Metric(key=key, value=float(value), timestamp=now_ms, step=step or 0))
        if time.monotonic() - self._since >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        pending, self._pending, self._since = self._pending, [], time.monotonic()
        for start in range(0, len(pending), self.max_batch):
            self.experiment.log_batch(run_id=self.run_id, metrics=pending[start:start + self.max_batch])

    def finalize(self, status: str = "success") -> None:
        self.flush()


def loggers(fold: Fold) -> list[Any]:
    """MLflow (the run's, each fold with its prefix with fold=all) and, when asked, TensorBoard beside it."""
    if not fold.run_id:
        return []
    out: list[Any] = [RunLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=fold.run_id,
                                prefix=f"fold{fold.fold}" if fold.cv else "")]
    if fold.cfg.get("tensorboard"):  # logs/tensorboard/<experiment>/<run_id>[-fold<k>]
        from pytorch_lightning.loggers import TensorBoardLogger

        out.append(TensorBoardLogger(save_dir=str(paths.TENSORBOARD_DIR), name=fold.ckpt_dir.parent.name,
                                     version=f"{fold.run_id}-fold{fold.fold}" if fold.cv else fold.run_id,
                                     default_hp_metric=False))
    return out


class LightningLearner:
    """A fold's (LightningModule, LightningDataModule), fitted by the config's trainer."""

    def __init__(self, model: pl.LightningModule, datamodule: pl.LightningDataModule) -> None:
        self.model, self.datamodule = model, datamodule

    @staticmethod
    def takes(built: Any) -> bool:
        return isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], pl.LightningModule)

    def trainer(self, fold: Fold) -> tuple[pl.Trainer, Any, BestValidationOutputs]:
        cfg, fold_dir = fold.cfg, fold.ckpt_dir / f"fold{fold.fold}"
        callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
        if fold.link is not None and not fold.cv:  # with fold=all the folds are the steps (see folds.py)
            callbacks.append(ReportToTrial(fold.link, str(cfg.monitor)))
        checkpoint = next((c for c in callbacks if isinstance(c, pl.callbacks.ModelCheckpoint)), None)
        if checkpoint is not None:
            checkpoint.dirpath = str(fold_dir)
        val_outputs = BestValidationOutputs(checkpoint)
        trainer: pl.Trainer = instantiate(
            cfg.trainer, callbacks=[CheckOutputs(fold.competition.task), CheckMonitor(str(cfg.monitor)), *callbacks,
                                    StopOnNonFiniteLoss(),
                                    EpochReport(fold.label), val_outputs, SaveOnInterrupt(str(fold_dir))],
            logger=loggers(fold) or False, default_root_dir=str(fold.ckpt_dir), fast_dev_run=bool(cfg.debug))
        return trainer, checkpoint, val_outputs

    def fit(self, fold: Fold) -> FoldResult | None:
        trainer, checkpoint, val_outputs = self.trainer(fold)
        # a resumed checkpoint is one of this workspace's own (logs/lightning/), read in full like the best one below
        trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=fold.ckpt_path, weights_only=False)
        if not trainer.is_global_zero:
            return None  # a DDP worker: rank 0 keeps the checkpoint, the predictions and the record
        best_ckpt = checkpoint.best_model_path if checkpoint is not None else ""
        if best_ckpt:
            best_score = float(checkpoint.best_model_score)
            # the weights of the best epoch into the model at hand (written by this process a moment ago)
            self.model.load_state_dict(torch.load(best_ckpt, map_location="cpu", weights_only=False)["state_dict"])
        else:  # fast_dev_run or no checkpoint callback: the last epoch is the best we have
            best_score = float(trainer.callback_metrics[fold.cfg.monitor])
        self.model.eval()
        valid_idx = fold.features.split(fold.fold)[1]
        scores, test_scores = self.outputs(fold, valid_idx, val_outputs.outputs_for(best_ckpt, len(valid_idx)))
        log.info("%sbest %s = %.4f (%s)", fold.label, fold.cfg.monitor, best_score, best_ckpt or "no checkpoint")
        return FoldResult(fold.fold, best_score, self.model, valid_idx, scores, [best_ckpt] if best_ckpt else [],
                          fold.link is not None and fold.link.pruned_at is not None, test_scores)

    def outputs(self, fold: Fold, valid_idx: Any, outputs: Any) -> tuple[Any, Any]:
        """The validation rows' scores (the best epoch's outputs; the fold predicted again through the data module's
        val_dataloader only when validation did not cover it at that checkpoint: limited validation batches, a
        resumed fit, fast_dev_run), and the test rows' when asked."""
        task = fold.competition.task
        predictor = None
        if outputs is None:
            predictor = predict_trainer(str(fold.cfg.trainer.get("accelerator", "cpu")))
            outputs = predict_outputs(self.model, self.datamodule.val_dataloader(), predictor)
        scores = task.activate(outputs)
        if len(scores) != len(valid_idx):
            raise WorkspaceError(f"the data module's val_dataloader gave {len(scores)} rows for fold {fold.fold}, "
                                 f"which has {len(valid_idx)}; it must validate on features.split(fold)[1], in "
                                 f"that order")
        if not fold.predict_test:
            return scores, None
        predictor = predictor or predict_trainer(str(fold.cfg.trainer.get("accelerator", "cpu")))
        return scores, task.activate(predict_outputs(self.model, self.datamodule.predict_dataloader(), predictor))

    def log_model(self, result: FoldResult, name: str, experiment_dir: Path) -> None:
        log_torch_model(result.model, name, experiment_dir)


@contextlib.contextmanager
def plain_partials(model: torch.nn.Module) -> Iterator[None]:
    """Hydra 1.4's `_partial_` factories refuse to be pickled; while a model is saved, its factory attributes (the
    optimizer and scheduler of the config) are plain `functools.partial`s of the same call."""
    swapped = [(m, name, value) for m in model.modules() for name, value in vars(m).items()
               if isinstance(value, functools.partial) and type(value) is not functools.partial]
    for m, name, value in swapped:
        setattr(m, name, functools.partial(value.func, *value.args, **value.keywords))
    try:
        yield
    finally:
        for m, name, value in swapped:
            setattr(m, name, value)


def log_torch_model(model: torch.nn.Module, name: str, experiment_dir: Path) -> None:
    """Log `model` pickled (not the pt2 export, which reloads as a GraphModule) with the code it needs, so
    `mlflow.pytorch.load_model("runs:/<id>/<name>")` gives the class back."""
    with tempfile.TemporaryDirectory() as tmp, plain_partials(model):
        code_snapshot(Path(tmp), experiment_dir)
        mlflow.pytorch.log_model(
            model.cpu().eval(),
            name=name,
            serialization_format="pickle",
            code_paths=packages(Path(tmp)),
            # explicit, so MLflow does not spend seconds inferring them in a subprocess
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"pytorch-lightning=={pl.__version__}",
                              f"mlflow=={mlflow.__version__}"],
        )
