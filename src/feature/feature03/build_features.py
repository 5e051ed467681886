"""feature03: dataset03's checked tables -> the features of gradient-boosted trees, or of a network.

    poetry run python src/feature/feature03/build_features.py                       # variant=trees
    poetry run python src/feature/feature03/build_features.py variant=network output_dir=_data/feature/feature03n

`variant=trees` writes train_x.parquet / test_x.parquet: numbers as they are (missing stays missing), categoricals
as categories of the training rows' levels, dates as year, month, day and weekday; the tree folders read it as a
table. `variant=network` writes train_x.npy / test_x.npy (float32): one-hot categoricals, numbers imputed with the
training median (plus a missing indicator) and standardised (src/utils/data/encoding.py). Both write the contract
every feature folder writes (train_y.npy, folds.npy, test_ids, manifest.json: src/utils/data/features.py) and log
an MLflow run in experiment `feature03`. Up to date for the same inputs, config and code: it says so and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.utils.cli.preflight import preflight
from src.utils.config.schema import StageConfig, require
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.io import read_json
from src.utils.core.paths import config_dir, resolve, shown
from src.utils.data import encoding
from src.utils.data.stage import build_stage


@dataclass
class Config(StageConfig):
    dataset_dir: str = MISSING
    variant: str = "trees"  # trees | network
    max_levels: int = 20

    def check(self) -> None:
        super().check()
        require(self.variant in ("trees", "network"), "variant", self.variant, "trees or network")
        require(self.max_levels >= 1, "max_levels", self.max_levels, "a whole number >= 1")


def write(dataset_dir: Path, dataset: dict, cfg: DictConfig, out: Path) -> dict:
    columns = dataset["columns"]
    train = pd.read_parquet(dataset_dir / "train.parquet")
    test = pd.read_parquet(dataset_dir / "test.parquet")
    features = columns["features"]
    if cfg.variant == "trees":
        x, x_test = encoding.tree_tables(train, test, features)
        x.to_parquet(out / "train_x.parquet", index=False)
        x_test.to_parquet(out / "test_x.parquet", index=False)
        names, shapes = list(x.columns), {"train_x": list(x.shape), "test_x": list(x_test.shape)}
    else:
        a, b, names = encoding.network_arrays(train, test, features, int(cfg.max_levels))
        np.save(out / "train_x.npy", a)
        np.save(out / "test_x.npy", b)
        shapes = {"train_x": list(a.shape), "test_x": list(b.shape)}
    y = pd.read_parquet(dataset_dir / "target.parquet").to_numpy()
    np.save(out / "train_y.npy", y[:, 0] if y.shape[1] == 1 else y)
    np.save(out / "folds.npy", train["fold"].to_numpy(np.int64))
    test[columns["ids"]].to_parquet(out / "test_ids.parquet", index=False)
    return {
        "dataset": {"name": dataset_dir.name, "dir": str(cfg.dataset_dir), "hash": dataset["content_hash"],
                    "run_id": dataset["mlflow_run_id"]},
        "source": dataset["source"], "n_folds": dataset["n_folds"], "cv": dataset.get("cv", {}),
        "variant": cfg.variant, "columns": names, "shapes": shapes,
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
                             f"{dataset['competition']}; set competition={dataset['competition']} or point "
                             f"dataset_dir at a dataset of {cfg.competition}")
    if "features" not in dataset.get("columns", {}):
        raise WorkspaceError(f"{shown(dataset_dir)} holds no column roles (it was not built by a tabular dataset "
                             f"stage like dataset03); point dataset_dir at one")
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
