"""feature01: a dataset folder's output (dataset_dir, dataset01 by default) -> normalised float32 tensors.

    poetry run python src/feature/feature01/build_features.py [normalization.method=minmax] [force=true]

Writes _data/feature/feature01/{train_x,train_y,folds,test_x,test_ids}.npy and manifest.json (the
dataset folder, hash and run_id it was built from) and logs an MLflow run in experiment `feature01`. When the
outputs are up to date for the same inputs, config and code, it says so and does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import check_overrides
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.hashing import files_sha256, json_sha256, tree_sha256
from src.utils.io import atomic_dir, read_json, write_json
from src.utils.paths import ROOT, config_dir, resolve
from src.utils.runs import tracked_run

STAGE, FOLDER = "feature", "feature01"
OUTPUT_FILES = ("train_x.npy", "train_y.npy", "folds.npy", "test_x.npy", "test_ids.npy")
METHODS = ("standardize", "minmax", "none")
log = logging.getLogger(FOLDER)


def read_dataset(dataset_dir: Path) -> dict:
    manifest = dataset_dir / "manifest.json"
    if not manifest.is_file():
        raise WorkspaceError(f"{dataset_dir} has no dataset01 output; run "
                             f"`poetry run python src/dataset/dataset01/make_dataset.py` first")
    return read_json(manifest)


def normalise(images: np.ndarray, method: str, mean: float, std: float) -> np.ndarray:
    x = images.astype(np.float32)
    if method == "none":
        return x
    x /= 255.0
    if method == "standardize":
        x -= mean
        x /= std
    return x


@hydra.main(version_base="1.3", config_path=config_dir(STAGE, FOLDER), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    dataset_dir, out_dir = resolve(cfg.dataset_dir), resolve(cfg.output_dir)
    norm = cfg.normalization
    if norm.method not in METHODS:
        raise WorkspaceError(f"normalization.method={norm.method!r} is not one of {', '.join(METHODS)}")
    if norm.std is not None and float(norm.std) <= 0:
        raise WorkspaceError(f"normalization.std={norm.std} must be > 0 (or null to compute it)")
    dataset = read_dataset(dataset_dir)
    inputs = json_sha256({"dataset": dataset["content_hash"], "normalization": OmegaConf.to_container(norm),
                          "code": tree_sha256(Path(__file__).parent)})
    manifest_path = out_dir / "manifest.json"
    if not cfg.force and manifest_path.is_file():
        done = read_json(manifest_path)
        if done.get("inputs_fingerprint") == inputs:
            log.info("%s is up to date (built from %s %s by run %s); nothing to do "
                     "(force=true rebuilds)", out_dir.relative_to(ROOT), dataset_dir.name, dataset["content_hash"][:12],
                     done["mlflow_run_id"])
            return done["content_hash"]

    dataset_name = dataset_dir.name  # tags/keys are named after the dataset folder: dataset01_hash, ...
    tags = {
        f"{dataset_name}_hash": dataset["content_hash"],
        f"{dataset_name}_run_id": dataset["mlflow_run_id"],
        "data_source": dataset["source"]["source"],
        "is_sample_data": str(bool(dataset["source"].get("is_sample"))).lower(),
    }
    with tracked_run(STAGE, FOLDER, cfg.experiment_name, params=OmegaConf.to_container(cfg, resolve=True),
                     tags=tags) as run:
        train = pd.read_parquet(dataset_dir / "train.parquet")
        test = pd.read_parquet(dataset_dir / "test.parquet")
        pixel_cols = [c for c in train.columns if c.startswith("pixel")]
        train_images = train[pixel_cols].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
        test_images = test[pixel_cols].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
        scaled = train_images.astype(np.float64) / 255.0
        mean = float(norm.mean) if norm.mean is not None else float(scaled.mean())
        std = float(norm.std) if norm.std is not None else float(scaled.std())
        del scaled
        with atomic_dir(out_dir) as tmp:
            np.save(tmp / "train_x.npy", normalise(train_images, norm.method, mean, std))
            np.save(tmp / "train_y.npy", train["label"].to_numpy(np.int64))
            np.save(tmp / "folds.npy", train["fold"].to_numpy(np.int64))
            np.save(tmp / "test_x.npy", normalise(test_images, norm.method, mean, std))
            np.save(tmp / "test_ids.npy", test["ImageId"].to_numpy(np.int64))
            content_hash = files_sha256([tmp / f for f in OUTPUT_FILES], tmp)
            manifest = {
                "stage": FOLDER,
                "dataset": {"name": dataset_name, "dir": str(cfg.dataset_dir), "hash": dataset["content_hash"],
                            "run_id": dataset["mlflow_run_id"]},
                "source": dataset["source"],
                "n_folds": dataset["n_folds"],
                "normalization": {"method": norm.method, "mean": mean, "std": std},
                "shapes": {"train_x": list(train_images.shape), "test_x": list(test_images.shape)},
                "dtype": "float32",
                "content_hash": content_hash,
                "inputs_fingerprint": inputs,
                "mlflow_run_id": run.info.run_id,
            }
            write_json(tmp / "manifest.json", manifest)
            mlflow.log_artifact(str(tmp / "manifest.json"))
        mlflow.log_params({"computed_mean": round(mean, 6), "computed_std": round(std, 6)})
        mlflow.set_tags({"content_hash": content_hash})
        log.info("wrote %s: train %s, test %s (%s), content hash %s", out_dir.relative_to(ROOT),
                 train_images.shape, test_images.shape, norm.method, content_hash[:12])
        log.info("next: poetry run python src/model/model01/train.py")
    return content_hash


if __name__ == "__main__":
    check_overrides(STAGE, FOLDER)
    main()
