"""model01's network: a small CNN for 28x28 digits, as a LightningModule."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn

from src.utils.run import heads


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class DigitCNN(pl.LightningModule):
    """Two conv blocks (28->14->7) and a small head of the competition's task: `num_classes` logits (10 digits),
    one logit for a binary task, one per label, or one value per target (src/utils/run/heads.py).

    `optimizer` and `scheduler` are factories from the config (`_partial_: true`): the optimizer takes the
    parameters, the scheduler the optimizer (None: a constant learning rate).
    """

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        channels: tuple[int, ...] | list[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
        num_classes: int = 10,
        task: str = "multiclass",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])  # checkpoints keep plain values only
        self.optimizer, self.scheduler = optimizer, scheduler
        blocks, c_in = [], 1
        for c_out in channels:
            blocks.append(conv_block(c_in, c_out))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        side = 28 // (2 ** len(channels))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * side * side, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss (a subclass that overrides it keeps its own)."""
        return heads.loss(self.hparams.task, logits, y)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        # sync_dist: under DDP each rank sees a shard; the epoch's value is the mean over all of them
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        if self.hparams.task == "regression":
            self.log(f"{stage}_rmse", heads.error("regression", logits, y), on_step=False, on_epoch=True,
                     sync_dist=True)
        else:
            self.log(f"{stage}_acc", heads.accuracy(self.hparams.task, logits, y), on_step=False, on_epoch=True,
                     sync_dist=True)
        return loss, logits

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")[1]  # the logits: the best epoch's become the out-of-fold predictions

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x)  # logits, as validation_step: the competition's task turns them into probabilities

    def configure_optimizers(self):
        opt = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler(optimizer=opt),
                                                   "interval": "epoch"}}
