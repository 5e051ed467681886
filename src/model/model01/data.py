"""model01's data: feature01 arrays in memory, split by the dataset01 folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.utils.errors import WorkspaceError
from src.utils.io import read_json

BUILD_FEATURES = "poetry run python src/feature/feature01/build_features.py"
_CACHE: dict[tuple[str, str], dict[str, np.ndarray]] = {}
# The last fold split, for the same arrays (the very objects, as load_features caches them): every trial of a
# sweep splits the same fold, and copying the training rows out costs ~0.2 s a trial at MNIST size.
_SPLIT: dict[str, object] = {}


def load_features(feature_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The feature01 manifest and arrays; arrays are cached per content hash (sweeps reuse them)."""
    manifest_path = feature_dir / "manifest.json"
    if not manifest_path.is_file():
        raise WorkspaceError(f"no feature01 output in {feature_dir}; build it with `{BUILD_FEATURES}` "
                             f"(after `bash scripts/prepare_data.sh` and src/dataset/dataset01/make_dataset.py)")
    manifest = read_json(manifest_path)
    key = (str(feature_dir), manifest["content_hash"])
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = {name: np.load(feature_dir / f"{name}.npy") for name in ("train_x", "train_y", "folds")}
    return manifest, _CACHE[key]


class FoldDataModule(pl.LightningDataModule):
    """Train on every fold but `fold`, validate on `fold`."""

    def __init__(self, arrays: dict[str, np.ndarray], fold: int, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.fold, self.batch_size, self.num_workers = fold, batch_size, num_workers
        inputs = (arrays["train_x"], arrays["train_y"], arrays["folds"])
        cached = _SPLIT.get("inputs")
        if _SPLIT.get("fold") != fold or cached is None or any(a is not b for a, b in zip(cached, inputs, strict=True)):
            folds = arrays["folds"]
            train_idx, valid_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
            x, y = torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])
            _SPLIT.clear()  # the datasets only read these tensors, so trials can share them
            _SPLIT.update(fold=fold, inputs=inputs, value=(
                train_idx, valid_idx, TensorDataset(x[train_idx], y[train_idx]),
                TensorDataset(x[valid_idx], y[valid_idx])))
        self.train_idx, self.valid_idx, self.train_set, self.valid_set = _SPLIT["value"]

    def _loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_set, shuffle=False)
