"""feature01: a dataset folder's output (dataset_dir, dataset01 by default) -> normalised float32 tensors.

    poetry run python src/feature/feature01/build_features.py [normalization.method=minmax] [force=true]

Writes _data/feature/feature01/{train_x,train_y,folds,test_x,test_ids}.npy and manifest.json (the dataset
folder, hash and run_id it was built from; the contract models read: src/utils/features.py) and logs an MLflow
run in experiment `feature01`. Up to date for the same inputs, config and code: it says so and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.io import read_json
from src.utils.paths import config_dir, resolve
from src.utils.schema import StageConfig, preflight, require
from src.utils.stage import build_stage


@dataclass
class Normalization:
    method: str = "standardize"  # standardize: (x/255 - mean) / std | minmax: x/255 | none: raw 0-255 as float
    mean: float | None = None  # None: computed from the training images (stored in the manifest)
    std: float | None = None


@dataclass
class Config(StageConfig):
    dataset_dir: str = MISSING
    normalization: Normalization = field(default_factory=Normalization)

    def check(self) -> None:
        norm = self.normalization
        require(norm.method in ("standardize", "minmax", "none"), "normalization.method", norm.method,
                "standardize, minmax or none")
        require(norm.std is None or norm.std > 0, "normalization.std", norm.std, "a number > 0, or null to compute it")


def normalise(images: np.ndarray, method: str, mean: float, std: float) -> np.ndarray:
    x = images.astype(np.float32)
    if method == "none":
        return x
    x /= 255.0
    if method == "standardize":
        x -= mean
        x /= std
    return x


def write(dataset_dir: Path, dataset: dict, cfg: DictConfig, out: Path) -> dict:
    norm = cfg.normalization
    train = pd.read_parquet(dataset_dir / "train.parquet")
    test = pd.read_parquet(dataset_dir / "test.parquet")
    pixel_cols = [c for c in train.columns if c.startswith("pixel")]
    train_images = train[pixel_cols].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
    test_images = test[pixel_cols].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
    scaled = train_images.astype(np.float64) / 255.0
    mean = float(norm.mean) if norm.mean is not None else float(scaled.mean())
    std = float(norm.std) if norm.std is not None else float(scaled.std())
    del scaled
    np.save(out / "train_x.npy", normalise(train_images, norm.method, mean, std))
    np.save(out / "train_y.npy", train["label"].to_numpy(np.int64))
    np.save(out / "folds.npy", train["fold"].to_numpy(np.int64))
    np.save(out / "test_x.npy", normalise(test_images, norm.method, mean, std))
    np.save(out / "test_ids.npy", test["ImageId"].to_numpy(np.int64))
    return {
        "dataset": {"name": dataset_dir.name, "dir": str(cfg.dataset_dir), "hash": dataset["content_hash"],
                    "run_id": dataset["mlflow_run_id"]},
        "source": dataset["source"],
        "n_folds": dataset["n_folds"],
        "cv": dataset.get("cv", {}),
        "normalization": {"method": norm.method, "mean": mean, "std": std},
        "shapes": {"train_x": list(train_images.shape), "test_x": list(test_images.shape)},
        "dtype": "float32",
    }


@hydra.main(config_path=config_dir(__file__), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    dataset_dir = resolve(cfg.dataset_dir)
    if not (dataset_dir / "manifest.json").is_file():
        raise WorkspaceError(f"{dataset_dir} has no dataset output; run "
                         f"`poetry run python src/dataset/{dataset_dir.name}/make_dataset.py` first")
    dataset = read_json(dataset_dir / "manifest.json")
    name = dataset_dir.name  # tags are named after the dataset folder: dataset01_hash, ...
    tags = {f"{name}_hash": dataset["content_hash"], f"{name}_run_id": dataset["mlflow_run_id"],
            "data_source": dataset["source"]["source"],
            "is_sample_data": str(bool(dataset["source"].get("is_sample"))).lower()}
    return build_stage(cfg, __file__, Config, inputs={"dataset": dataset["content_hash"]},
                       write=lambda out: write(dataset_dir, dataset, cfg, out),
                       reads=(name, dataset_dir, dataset["content_hash"]), tags=tags)


if __name__ == "__main__":
    preflight(__file__, Config)
    main()
