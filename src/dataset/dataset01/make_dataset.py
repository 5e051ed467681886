"""dataset01: read and validate the raw Kaggle-layout CSVs, assign stratified K folds.

    poetry run python src/dataset/dataset01/make_dataset.py [n_folds=5] [seed=42] [force=true]

Writes _data/data/dataset01/{train,test}.parquet and manifest.json (source, counts, content hash) and
logs an MLflow run in experiment `dataset01`. Outputs appear all at once or not at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import StratifiedKFold

from src.utils import raw_data
from src.utils.cli import check_overrides
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.hashing import files_sha256, json_sha256, tree_sha256
from src.utils.io import atomic_dir, read_json, write_json
from src.utils.paths import ROOT, config_dir, resolve
from src.utils.runs import tracked_run

STAGE, FOLDER = "dataset", "dataset01"
log = logging.getLogger(FOLDER)


def assign_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=10)
    smallest = counts[counts > 0].min()
    if n_folds < 2:
        raise WorkspaceError(f"n_folds={n_folds}: need at least 2 folds; run with n_folds=5")
    if smallest < n_folds:
        raise WorkspaceError(f"n_folds={n_folds} but the rarest class has only {smallest} rows; "
                             f"use n_folds<={smallest} or more data")
    folds = np.full(len(labels), -1, dtype=np.int8)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, valid_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[valid_idx] = fold
    return folds


def fingerprint(raw_dir: Path, cfg: DictConfig) -> str:
    """What the outputs depend on: raw files, fold settings, this folder's code."""
    raw_hash = files_sha256([raw_dir / n for n in raw_data.RAW_FILES if (raw_dir / n).exists()], raw_dir)
    return json_sha256({"raw": raw_hash, "n_folds": cfg.n_folds, "seed": cfg.seed,
                        "code": tree_sha256(Path(__file__).parent)})


def up_to_date(out_dir: Path, inputs: str) -> dict | None:
    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        return None
    info = read_json(manifest)
    return info if info.get("inputs_fingerprint") == inputs else None


@hydra.main(version_base="1.3", config_path=config_dir(STAGE, FOLDER), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    raw_dir, out_dir = resolve(cfg.raw_dir), resolve(cfg.output_dir)
    if not (raw_dir / "train.csv").is_file():
        raise WorkspaceError(f"no raw data in {raw_dir}; run `bash scripts/prepare_data.sh` first")
    inputs = fingerprint(raw_dir, cfg)
    if not cfg.force and (done := up_to_date(out_dir, inputs)):
        log.info("%s is up to date (content hash %s, run %s); nothing to do (force=true rebuilds)",
                 out_dir.relative_to(ROOT), done["content_hash"][:12], done["mlflow_run_id"])
        return done["content_hash"]

    source = raw_data.read_source(raw_dir)
    tags = {"data_source": source["source"], "is_sample_data": str(bool(source.get("is_sample"))).lower()}
    if source.get("is_sample"):
        tags["mlflow.note.content"] = "SAMPLE DATA: scikit-learn digits upscaled to 28x28, not MNIST/Kaggle."
    params = OmegaConf.to_container(cfg, resolve=True)
    with tracked_run(STAGE, FOLDER, cfg.experiment_name, params=params, tags=tags) as run:
        log.info("reading %s (source: %s)", raw_dir, source["source"])
        labels, pixels = raw_data.load_train_csv(raw_dir / "train.csv")
        test_pixels = raw_data.load_test_csv(raw_dir / "test.csv")
        folds = assign_folds(labels, int(cfg.n_folds), int(cfg.seed))

        train = pd.DataFrame(pixels, columns=raw_data.PIXEL_COLUMNS)
        train.insert(0, "fold", folds)
        train.insert(0, "label", labels)
        test = pd.DataFrame(test_pixels, columns=raw_data.PIXEL_COLUMNS)
        test.insert(0, "ImageId", np.arange(1, len(test) + 1, dtype=np.int64))

        with atomic_dir(out_dir) as tmp:
            train.to_parquet(tmp / "train.parquet", index=False)
            test.to_parquet(tmp / "test.parquet", index=False)
            content_hash = files_sha256([tmp / "train.parquet", tmp / "test.parquet"], tmp)
            manifest = {
                "stage": FOLDER,
                "source": source,
                "raw_files": {n: raw_data_hash for n, raw_data_hash in
                              ((n, files_sha256([raw_dir / n], raw_dir)) for n in raw_data.RAW_FILES
                               if (raw_dir / n).exists())},
                "counts": {
                    "train_rows": int(len(train)),
                    "test_rows": int(len(test)),
                    "per_class": {str(k): int(v) for k, v in enumerate(np.bincount(labels, minlength=10))},
                    "per_fold": {str(k): int(v) for k, v in enumerate(np.bincount(folds))},
                },
                "n_folds": int(cfg.n_folds),
                "seed": int(cfg.seed),
                "content_hash": content_hash,
                "inputs_fingerprint": inputs,
                "mlflow_run_id": run.info.run_id,
            }
            write_json(tmp / "manifest.json", manifest)
            mlflow.log_artifact(str(tmp / "manifest.json"))
        mlflow.log_metrics({"train_rows": len(train), "test_rows": len(test)})
        mlflow.set_tags({"content_hash": content_hash})
        log.info("wrote %s: %d train rows in %d folds, %d test rows, content hash %s",
                 out_dir.relative_to(ROOT), len(train), cfg.n_folds, len(test), content_hash[:12])
        log.info("next: poetry run python src/feature/feature01/build_features.py")
    return content_hash


if __name__ == "__main__":
    check_overrides(STAGE, FOLDER)
    main()
