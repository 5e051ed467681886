"""A tiny LightningModule for every task kind: an MLP (or a small conv net for images) with `n_outputs` outputs."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


class TinyNet(pl.LightningModule):
    def __init__(self, kind: str, n_inputs: int, n_outputs: int, image: bool = False, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        body = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()] if image else []
        width = 16 if image else n_inputs
        self.net = nn.Sequential(*body, nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[:, 0] if self.hparams.kind in ("binary", "regression") and out.shape[1] == 1 else out

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        kind = self.hparams.kind
        if kind == "multiclass":
            return F.cross_entropy(out, y.long())
        if kind in ("binary", "multilabel"):
            return F.binary_cross_entropy_with_logits(out, y.float().view_as(out))
        return F.mse_loss(out, y.float().view_as(out))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self(x)
        self.log("val_loss", self.loss(out, y), on_step=False, on_epoch=True)
        return out

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0] if isinstance(batch, list | tuple) else batch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
