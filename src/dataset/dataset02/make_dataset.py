"""dataset02: the diabetes-sample competition's CSVs, checked, with the CV folds of every training row.

    poetry run python src/dataset/dataset02/make_dataset.py [n_folds=5] [seed=42] [force=true]

Writes _data/data/dataset02/{train,test}.parquet (the id, the measurements, the target and the fold) and
manifest.json, and logs an MLflow run in experiment `dataset02` (src/utils/stage.py). The folds come from the
`cv` node (a scikit-learn splitter by `_target_`, src/utils/cv.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.utils.competition import load as load_competition
from src.utils.cv import assign_folds
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.hashing import files_sha256
from src.utils.paths import config_dir, resolve, shown
from src.utils.schema import StageConfig, preflight, require
from src.utils.stage import build_stage

FIX = "re-create the raw files with `bash scripts/prepare_data.sh --competition {competition}`"  # the stage's own


@dataclass
class Config(StageConfig):
    raw_dir: str | None = None  # None: the competition's raw_dir
    n_folds: int = MISSING
    seed: int = MISSING
    cv: Any = MISSING  # splitter (_target_), stratify, groups: src/utils/cv.py

    def check(self) -> None:
        super().check()
        require(self.n_folds >= 2, "n_folds", self.n_folds, "a whole number >= 2 (e.g. n_folds=5)")


def read_table(path: Path, required: list[str], fix: str) -> pd.DataFrame:
    """A CSV whose every column is numeric and complete; one error line for the first problem (ending in `fix`)."""
    if not path.is_file():
        raise WorkspaceError(f"{shown(path)} not found; {fix}")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{shown(path)} cannot be read ({str(exc).strip().splitlines()[-1]}); {fix}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise WorkspaceError(f"{shown(path)} lacks column(s) {', '.join(missing)}; {fix}")
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise WorkspaceError(f"{shown(path)} line {row + 2}, column {column}: {frame[column].iloc[row]!r} is not "
                                 f"a number; {fix}")
        frame[column] = values
    return frame


def write(raw_dir: Path, cfg: DictConfig, out: Path) -> dict:
    competition = load_competition(cfg.competition)
    (id_col,), (target,) = competition.ids, competition.targets
    fix = FIX.format(competition=competition.name)
    train = read_table(raw_dir / "train.csv", [id_col, target], fix)
    test = read_table(raw_dir / "test.csv", [id_col], fix)
    measures = [c for c in train.columns if c not in (id_col, target)]
    missing = [c for c in measures if c not in test.columns]
    if missing:
        raise WorkspaceError(f"{shown(raw_dir / 'test.csv')} lacks the training column(s) {', '.join(missing)}; {fix}")
    if train[id_col].duplicated().any() or test[id_col].duplicated().any():
        raise WorkspaceError(f"the {id_col} column repeats a value in train.csv or test.csv; ids are unique; {fix}")
    cv = assign_folds(cfg.cv, train)
    train = train[[id_col, *measures, target]].assign(fold=cv.folds)
    test = test[[id_col, *measures]]
    train.to_parquet(out / "train.parquet", index=False)
    test.to_parquet(out / "test.parquet", index=False)
    return {"source": _source(raw_dir), "counts": {"train_rows": len(train), "test_rows": len(test)},
            "columns": {"id": id_col, "target": target, "measures": measures}, **cv.facts(), "seed": int(cfg.seed)}


def _source(raw_dir: Path) -> dict:
    from src.utils.io import read_json

    path = raw_dir / "SOURCE.json"
    return read_json(path) if path.is_file() else {"source": "user-provided", "is_sample": False}


@hydra.main(config_path=config_dir(__file__), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    competition = load_competition(cfg.competition)
    raw_dir = resolve(cfg.raw_dir) if cfg.raw_dir else competition.raw_dir
    if not (raw_dir / "train.csv").is_file():
        raise WorkspaceError(f"no raw data in {shown(raw_dir)}; run `bash scripts/prepare_data.sh --competition "
                             f"{competition.name}` first")
    source = _source(raw_dir)
    raw_hash = files_sha256([p for p in raw_dir.iterdir() if p.suffix == ".csv"], raw_dir)
    tags = {"data_source": source["source"], "is_sample_data": str(bool(source.get("is_sample"))).lower()}
    return build_stage(cfg, __file__, Config, inputs={"raw": raw_hash},
                       write=lambda out: write(raw_dir, cfg, out),
                       reads=("raw", raw_dir, raw_hash), tags=tags)


if __name__ == "__main__":
    preflight(__file__, Config)
    main()
