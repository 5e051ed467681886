"""model02's data: feature02's rows as tensors, validated on one fold and trained on the others; the test rows."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.utils.features import Features


class TabularDataModule(pl.LightningDataModule):
    def __init__(self, features: Features, fold: int, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.features, self.fold, self.batch_size, self.num_workers = features, fold, batch_size, num_workers

    def setup(self, stage: str) -> None:
        if stage == "predict":
            self.test_set = TensorDataset(torch.from_numpy(self.features.test[0]))
            return
        train, valid = self.features.fold_tensors(self.fold)
        self.train_set, self.valid_set = TensorDataset(*train), TensorDataset(*valid)

    def _loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        if not hasattr(self, "test_set"):
            self.setup("predict")
        return self._loader(self.test_set, shuffle=False)
