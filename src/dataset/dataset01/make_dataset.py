"""dataset01: read and validate the Digit Recognizer CSVs (pixels 0-255, labels 0-9), assign the CV folds.

    poetry run python src/dataset/dataset01/make_dataset.py [n_folds=5] [seed=42] [force=true]
    poetry run python src/dataset/dataset01/make_dataset.py cv.splitter._target_=sklearn.model_selection.KFold \
        cv.stratify=null

The folds come from the `cv` node of the config (a scikit-learn splitter by `_target_`, src/utils/cv.py).

Writes _data/data/dataset01/{train,test}.parquet and manifest.json (source, counts, content hash) and logs an
MLflow run in experiment `dataset01` (src/utils/stage.py: up-to-date check, run, manifest, atomic output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.dataset import raw_data
from src.utils.competition import load as load_competition
from src.utils.cv import assign_folds
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.hashing import files_sha256
from src.utils.paths import config_dir, resolve
from src.utils.schema import StageConfig, preflight, require
from src.utils.stage import build_stage


@dataclass
class Config(StageConfig):
    raw_dir: str | None = None  # None: the competition's raw_dir
    n_folds: int = MISSING
    seed: int = MISSING
    cv: Any = MISSING  # splitter (_target_), stratify, groups: src/utils/cv.py

    def check(self) -> None:
        super().check()
        require(self.n_folds >= 2, "n_folds", self.n_folds, "a whole number >= 2 (e.g. n_folds=5)")


def write(raw_dir: Path, cfg: DictConfig, out: Path) -> dict:
    labels, pixels = raw_data.load_train_csv(raw_dir / "train.csv")
    test_pixels = raw_data.load_test_csv(raw_dir / "test.csv")
    cv = assign_folds(cfg.cv, pd.DataFrame({"label": labels}))
    folds = cv.folds.astype(np.int8)
    train = pd.DataFrame(pixels, columns=raw_data.PIXEL_COLUMNS)
    train.insert(0, "fold", folds)
    train.insert(0, "label", labels)
    test = pd.DataFrame(test_pixels, columns=raw_data.PIXEL_COLUMNS)
    test.insert(0, "ImageId", np.arange(1, len(test) + 1, dtype=np.int64))
    train.to_parquet(out / "train.parquet", index=False)
    test.to_parquet(out / "test.parquet", index=False)
    return {
        "source": raw_data.read_source(raw_dir),
        "raw_files": {n: files_sha256([raw_dir / n], raw_dir) for n in raw_data.RAW_FILES if (raw_dir / n).exists()},
        "counts": {"train_rows": len(train), "test_rows": len(test),
                   "per_class": {str(k): int(v) for k, v in enumerate(np.bincount(labels, minlength=10))},
                   "per_fold": {str(k): int(v) for k, v in enumerate(np.bincount(folds))}},
        **cv.facts(),
        "seed": int(cfg.seed),
    }


@hydra.main(config_path=config_dir(__file__), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    raw_dir = resolve(cfg.raw_dir) if cfg.raw_dir else load_competition(cfg.competition).raw_dir
    if not (raw_dir / "train.csv").is_file():
        raise WorkspaceError(f"no raw data in {raw_dir}; run `bash scripts/prepare_data.sh --competition "
                             f"{cfg.competition}` first")
    source = raw_data.read_source(raw_dir)
    raw_hash = files_sha256([raw_dir / n for n in raw_data.RAW_FILES if (raw_dir / n).exists()], raw_dir)
    tags = {"data_source": source["source"], "is_sample_data": str(bool(source.get("is_sample"))).lower()}
    if source.get("is_sample"):
        tags["mlflow.note.content"] = "SAMPLE DATA: scikit-learn digits upscaled to 28x28, not MNIST/Kaggle."
    return build_stage(cfg, __file__, Config, inputs={"raw": raw_hash}, write=lambda out: write(raw_dir, cfg, out),
                       reads=("raw", raw_dir, raw_hash), tags=tags)


if __name__ == "__main__":
    preflight(__file__, Config)
    main()
