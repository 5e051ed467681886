"""feature02: dataset02 -> standardised float32 measurements (and the target) for tabular models.

    poetry run python src/feature/feature02/build_features.py [scaling=none] [force=true]

Writes _data/feature/feature02/{train_x,train_y,folds,test_x,test_ids}.npy and manifest.json (the contract models
read: src/utils/features.py; the scaling's mean and std are in the manifest) and logs an MLflow run in experiment
`feature02`. Up to date for the same inputs, config and code: it says so and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.io import read_json
from src.utils.paths import config_dir, resolve, shown
from src.utils.schema import StageConfig, preflight, require
from src.utils.stage import build_stage


@dataclass
class Config(StageConfig):
    dataset_dir: str = MISSING
    scaling: str = "standardize"  # standardize: (x - mean) / std of the training rows | none

    def check(self) -> None:
        super().check()
        require(self.scaling in ("standardize", "none"), "scaling", self.scaling, "standardize or none")


def write(dataset_dir: Path, dataset: dict, cfg: DictConfig, out: Path) -> dict:
    columns = dataset["columns"]
    train = pd.read_parquet(dataset_dir / "train.parquet")
    test = pd.read_parquet(dataset_dir / "test.parquet")
    x, x_test = train[columns["measures"]].to_numpy(np.float64), test[columns["measures"]].to_numpy(np.float64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    if cfg.scaling == "standardize":
        x, x_test = (x - mean) / std, (x_test - mean) / std
    np.save(out / "train_x.npy", x.astype(np.float32))
    np.save(out / "train_y.npy", train[columns["target"]].to_numpy(np.float32))
    np.save(out / "folds.npy", train["fold"].to_numpy(np.int64))
    np.save(out / "test_x.npy", x_test.astype(np.float32))
    np.save(out / "test_ids.npy", test[columns["id"]].to_numpy(np.int64))
    return {
        "dataset": {"name": dataset_dir.name, "dir": str(cfg.dataset_dir), "hash": dataset["content_hash"],
                    "run_id": dataset["mlflow_run_id"]},
        "source": dataset["source"],
        "n_folds": dataset["n_folds"],
        "cv": dataset.get("cv", {}),
        "scaling": {"method": cfg.scaling, "columns": columns["measures"], "mean": mean.tolist(), "std": std.tolist()},
        "shapes": {"train_x": list(x.shape), "test_x": list(x_test.shape)},
    }


@hydra.main(config_path=config_dir(__file__), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    dataset_dir = resolve(cfg.dataset_dir)
    if not (dataset_dir / "manifest.json").is_file():
        raise WorkspaceError(f"{shown(dataset_dir)} has no dataset output; run "
                             f"`poetry run python src/dataset/{dataset_dir.name}/make_dataset.py` first")
    dataset = read_json(dataset_dir / "manifest.json")
    if dataset.get("competition") and dataset["competition"] != cfg.competition:
        raise WorkspaceError(f"competition={cfg.competition} but {shown(dataset_dir)} was built for "
                             f"{dataset['competition']}; point dataset_dir at a dataset of {cfg.competition}")
    name = dataset_dir.name
    tags = {f"{name}_hash": dataset["content_hash"], f"{name}_run_id": dataset["mlflow_run_id"],
            "data_source": dataset["source"]["source"],
            "is_sample_data": str(bool(dataset["source"].get("is_sample"))).lower()}
    return build_stage(cfg, __file__, Config, inputs={"dataset": dataset["content_hash"]},
                       write=lambda out: write(dataset_dir, dataset, cfg, out),
                       reads=(name, dataset_dir, dataset["content_hash"]), tags=tags)


if __name__ == "__main__":
    preflight(__file__, Config)
    main()
