"""Data modules of the test experiment: memory-mapped arrays, and image files read from disk with augmentation."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from src.utils.data.features import Features


class Rows(Dataset):
    """Rows of a (memory-mapped) array, copied out one batch at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, rows: np.ndarray) -> None:
        self.x, self.y, self.rows = x, y, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        x = torch.from_numpy(np.array(self.x[self.rows[i]], dtype=np.float32))
        return (x,) if self.y is None else (x, torch.as_tensor(self.y[self.rows[i]]))


class ImageFiles(Dataset):
    """PNG files named by the feature folder, read from disk; training images flipped at random."""

    def __init__(self, folder, files: np.ndarray, y: np.ndarray | None, rows: np.ndarray, augment: bool) -> None:
        self.folder, self.files, self.y, self.rows, self.augment = folder, files, y, rows, augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        from PIL import Image

        row = self.rows[i]
        x = torch.from_numpy(np.asarray(Image.open(self.folder / str(self.files[row])), dtype=np.float32) / 255.0)
        x = x[None]
        if self.augment and torch.rand(()) < 0.5:
            x = torch.flip(x, dims=[2])
        return (x,) if self.y is None else (x, torch.as_tensor(self.y[row]))


class TinyData(pl.LightningDataModule):
    def __init__(self, features: Features, fold: int, batch_size: int = 16, images: bool = False) -> None:
        super().__init__()
        self.features, self.fold, self.batch_size, self.images = features, fold, batch_size, images

    def _set(self, split: str, rows: np.ndarray, augment: bool) -> Dataset:
        f = self.features
        y = f.train_y if split == "train" else None
        if self.images:
            return ImageFiles(f.dir, f.load(f"{split}_files"), y, rows, augment)
        return Rows(f.load(f"{split}_x", mmap=True), y, rows)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._set("train", self.features.split(self.fold)[0], True), self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._set("train", self.features.split(self.fold)[1], False), self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        n = len(self.features.load("test_ids"))
        return DataLoader(self._set("test", np.arange(n), False), self.batch_size)
