"""model02's network: a small MLP for tabular data, as a LightningModule; its head (output width, loss) comes from
the competition's task (src/utils/run/heads.py), so a copy of this folder trains right on another task unedited."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn

from src.utils.run import heads


class TabularMLP(pl.LightningModule):
    """Hidden layers with ReLU and dropout, then the task's head: `n_outputs` logits (classes, labels) learnt with
    (binary) cross-entropy, or one value per target learnt on the standardised target (regression).

    A regression's output is in the target's own units (`target_mean + target_std * net(x)`), so the validation
    outputs and the predictions are the values the competition scores; a classifier's are logits (the task turns
    them into probabilities). Logged per epoch: `<stage>_loss`, `<stage>_rmse` (of the scores: the target's units,
    or the root of the Brier score) and, for classes, `<stage>_acc`. `optimizer` and `scheduler` are factories
    from the config (`_partial_: true`).
    """

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        n_inputs: int = 10,
        hidden: tuple[int, ...] | list[int] = (64, 32),
        dropout: float = 0.1,
        n_outputs: int = 1,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        task: str = "regression",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        layers, width = [], n_inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_mean + self.target_std * self.net(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss (a subclass that overrides it keeps its own)."""
        return heads.loss(self.hparams.task, out, y, self.target_mean, self.target_std)

    def _step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        pred = self(x)
        loss = self.loss(pred, y)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}_rmse", heads.error(self.hparams.task, pred, y), on_step=False, on_epoch=True,
                 sync_dist=True)
        if self.hparams.task != "regression":
            self.log(f"{stage}_acc", heads.accuracy(self.hparams.task, pred, y), on_step=False, on_epoch=True,
                     sync_dist=True)
        return loss, pred

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")[1]  # the values: the best epoch's become the out-of-fold predictions

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x)

    def configure_optimizers(self):
        opt = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler(optimizer=opt), "interval": "epoch"}}
