"""model02's network: a small MLP for tabular regression, as a LightningModule."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


class TabularMLP(pl.LightningModule):
    """Hidden layers with ReLU and dropout, one output per target, learnt on the standardised target.

    The output is in the target's own units (`target_mean + target_std * net(x)`), so the validation outputs
    and the predictions are the values the competition scores. `optimizer` and `scheduler` are factories from the
    config (`_partial_: true`).
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

    def _step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        pred = self(x)
        y = y.view_as(pred)
        loss = F.mse_loss((pred - self.target_mean) / self.target_std, (y - self.target_mean) / self.target_std)
        rmse = torch.sqrt(F.mse_loss(pred, y))
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}_rmse", rmse, on_step=False, on_epoch=True, sync_dist=True)
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
