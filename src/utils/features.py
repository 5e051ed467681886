"""A feature folder's output as the models read it: arrays, folds, manifest and lineage.

The contract every feature folder writes (src/feature/featureNN): `manifest.json` (content hash, n_folds, the
dataset it was built from) and `train_x.npy`, `train_y.npy`, `folds.npy`, `test_x.npy`, `test_ids.npy`.
Loaded arrays are kept per folder and content hash, and each fold's split is computed once, so the trials of a
sweep in one process share them (copying the training rows out costs ~0.2 s a trial at MNIST size).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from src.utils.errors import WorkspaceError
from src.utils.io import read_json
from src.utils.paths import resolve, shown

_LOADED: dict[tuple[str, str], Features] = {}


class Features:
    """A plain class, not a dataclass: Hydra's instantiate passes it to a data module as it is (a dataclass
    argument would be turned into a config node)."""

    def __init__(self, dir: Path, manifest: dict, train_x: np.ndarray, train_y: np.ndarray, folds: np.ndarray):
        self.dir, self.manifest = dir, manifest
        self.train_x, self.train_y, self.folds = train_x, train_y, folds
        self._splits: dict = {}

    def __repr__(self) -> str:
        return f"Features({self.dir}, {len(self.train_y)} training rows, {self.n_folds} folds)"

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def n_folds(self) -> int:
        return int(self.manifest["n_folds"])

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    def split(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, validation rows) of `fold`: validate on it, train on the others."""
        if fold not in self._splits:
            self._splits[fold] = (np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold))
        return self._splits[fold]

    def fold_tensors(self, fold: int) -> tuple[tuple, tuple]:
        """((x, y) to train on, (x, y) to validate on) as torch tensors, shared by every call for this fold."""
        key = ("tensors", fold)
        if key not in self._splits:
            import torch

            train_idx, valid_idx = self.split(fold)
            x, y = torch.from_numpy(self.train_x), torch.from_numpy(self.train_y)
            self._splits[key] = ((x[train_idx], y[train_idx]), (x[valid_idx], y[valid_idx]))
        return self._splits[key]

    @functools.cached_property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """(test_x, test_ids)."""
        return np.load(self.dir / "test_x.npy"), np.load(self.dir / "test_ids.npy")

    def lineage(self) -> dict[str, str]:
        """Tags that tie a run to its data, after checking the features match their dataset's current output."""
        manifest = self.manifest
        if "dataset" not in manifest:
            raise WorkspaceError(f"{self.dir}/manifest.json comes from an older build; rebuild it: "
                                 f"poetry run python src/feature/{self.name}/build_features.py")
        dataset = manifest["dataset"]
        dataset_manifest = resolve(dataset["dir"]) / "manifest.json"
        if dataset_manifest.is_file():
            current = read_json(dataset_manifest)["content_hash"]
            if current != dataset["hash"]:
                raise WorkspaceError(
                    f"{shown(self.dir)} was built from {dataset['name']} {dataset['hash'][:12]} but "
                    f"{dataset['name']} is now {current[:12]}; rebuild: "
                    f"poetry run python src/feature/{self.name}/build_features.py")
        return {
            f"{self.name}_hash": self.content_hash,
            f"{self.name}_run_id": manifest["mlflow_run_id"],
            f"{dataset['name']}_hash": dataset["hash"],
            f"{dataset['name']}_run_id": dataset["run_id"],
            "data_source": manifest["source"]["source"],
            "is_sample_data": str(bool(manifest["source"].get("is_sample"))).lower(),
        }


def load_features(feature_dir: str | Path) -> Features:
    """The features in `feature_dir` (relative to the project root), kept for the next call with the same hash."""
    feature_dir = resolve(feature_dir)
    manifest_path = feature_dir / "manifest.json"
    if not manifest_path.is_file():
        raise WorkspaceError(
            f"no features in {feature_dir}; build them with `poetry run python src/feature/{feature_dir.name}/"
            f"build_features.py` (after `bash scripts/prepare_data.sh` and src/dataset/dataset01/make_dataset.py)")
    manifest = read_json(manifest_path)
    key = (str(feature_dir), manifest["content_hash"])
    if key not in _LOADED:
        _LOADED.clear()
        arrays = {name: np.load(feature_dir / f"{name}.npy") for name in ("train_x", "train_y", "folds")}
        _LOADED[key] = Features(feature_dir, manifest, **arrays)
    return _LOADED[key]
