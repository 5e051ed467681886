"""Predictions through Lightning: `trainer.predict` with the data module's own loaders, on the run's accelerator.

Whatever the data module reads (arrays in memory, memory-mapped arrays, image files with test-time transforms),
the predictions come from its `predict_dataloader` (the test rows) or `val_dataloader` (a fold's validation rows,
in order), batch by batch, never from an in-memory copy of the inputs. The model's `predict_step` returns raw
outputs (as `validation_step` does); the competition's task turns them into scores. A model folder that wants
test-time augmentation does it in its own `predict_step` (e.g. the mean over flips).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def predict_trainer(accelerator: str = "cpu") -> pl.Trainer:
    """A one-device trainer for predictions only (also on rank 0 of a DDP run, after its fit)."""
    return pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)


def predict_outputs(model: pl.LightningModule, loader: Any, trainer: pl.Trainer | None = None) -> torch.Tensor:
    """The model's raw outputs on every batch of `loader`, concatenated, on the CPU."""
    trainer = trainer or predict_trainer()
    batches = trainer.predict(model, dataloaders=loader, return_predictions=True)
    return torch.cat([b.detach().float().cpu() for b in batches])


def predict_scores(models: list[pl.LightningModule], loader: Any, task, rule: str = "mean",
                   trainer: pl.Trainer | None = None) -> np.ndarray:
    """Scores of several models (the folds of a run) on the same rows, combined by `rule` (mean or median)."""
    trainer = trainer or predict_trainer()
    return task.combine([task.activate(predict_outputs(m, loader, trainer)) for m in models], rule)


def test_loader(datamodule: pl.LightningDataModule, *_: Any) -> Any:
    """The data module's predict_dataloader (the test rows), after its `setup("predict")`. (Packed notebooks pass
    the features and a batch size after the data module, as the code logged with their runs takes them.)"""
    datamodule.setup("predict")
    return datamodule.predict_dataloader()
