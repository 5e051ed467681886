"""dataset03: any CSV competition's train and test files, each column checked against its role, with the CV folds.

    poetry run python src/dataset/dataset03/make_dataset.py [competition=NAME] [columns.drop=[Name]] [force=true]

The id and target columns and the task come from the competition file; the other roles (drop, categorical,
dates, group) from `columns` (src/utils/data/tables.py). A value that does not fit its role is one error line
naming the file, the line, the column and the fix. Writes _data/data/dataset03/{train,test}.parquet (ids, the
feature columns, the target as read and the fold; missing values kept) and manifest.json (each column's role and
missing values), and logs an MLflow run in experiment `dataset03`. The competition's files, ids, targets and task
are inputs of the stage: a change there rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import MISSING, DictConfig

from src.dataset.prepare_data import read_source
from src.utils.cli.preflight import preflight
from src.utils.competition import load as load_competition
from src.utils.config.schema import StageConfig, require
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.hashing import files_sha256
from src.utils.core.paths import config_dir, resolve, shown
from src.utils.data import tables
from src.utils.data.cv import assign_folds
from src.utils.data.stage import build_stage


@dataclass
class Columns:
    drop: list[str] = field(default_factory=list)
    categorical: Any = "auto"  # auto | list of column names
    dates: list[str] = field(default_factory=list)
    group: str | None = None


@dataclass
class Config(StageConfig):
    raw_dir: str | None = None  # None: the competition's raw_dir
    columns: Columns = field(default_factory=Columns)
    n_folds: int = MISSING
    seed: int = MISSING
    cv: Any = MISSING  # splitter (_target_), stratify, groups: src/utils/cv.py

    def check(self) -> None:
        super().check()
        require(self.n_folds >= 2, "n_folds", self.n_folds, "a whole number >= 2 (e.g. n_folds=5)")
        require(self.columns.categorical == "auto" or isinstance(self.columns.categorical, list | tuple),
                "columns.categorical", self.columns.categorical, "auto or a list of column names")


def write(raw_dir: Path, cfg: DictConfig, out: Path) -> dict:
    competition = load_competition(cfg.competition)
    roles = tables.Roles.of(competition, cfg.columns)
    fix = f"re-create the raw files with `bash scripts/prepare_data.sh --competition {competition.name} ...`"
    train_path, test_path = raw_dir / competition.cfg.files.train, raw_dir / competition.cfg.files.test
    train = tables.read_table(train_path, roles, train=True, fix=fix)
    test = tables.read_table(test_path, roles, train=False, fix=fix)
    features = [c for c in train.columns if c not in (*roles.ids, *roles.targets, *roles.drop)]
    missing = [c for c in features if c not in test.columns]
    if missing:
        raise WorkspaceError(f"{shown(test_path)} lacks the training column(s) {', '.join(missing)}; add them to "
                             f"columns.drop, or {fix}")
    for path, frame in ((train_path, train), (test_path, test)):
        if frame.duplicated(roles.ids).any():
            raise WorkspaceError(f"{shown(path)}: the id column(s) {roles.ids} repeat a value; ids are unique; {fix}")
    y = tables.encode_target(train, competition, train_path, fix)
    cv = assign_folds(cfg.cv, train)
    train = train[[*roles.ids, *features, *roles.targets]].assign(fold=cv.folds)
    test = test[[*roles.ids, *features]]
    train.to_parquet(out / "train.parquet", index=False)
    test.to_parquet(out / "test.parquet", index=False)
    pd.DataFrame({"y": list(y)} if y.ndim == 1 else y).to_parquet(out / "target.parquet", index=False)
    return {"source": read_source(raw_dir),
            "counts": {"train_rows": len(train), "test_rows": len(test)},
            "columns": {"ids": roles.ids, "targets": roles.targets, "drop": roles.drop,
                        "features": tables.describe(train, test, roles)},
            **cv.facts(), "seed": int(cfg.seed)}


@hydra.main(config_path=config_dir(__file__), config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    competition = load_competition(cfg.competition)
    raw_dir = resolve(cfg.raw_dir) if cfg.raw_dir else competition.raw_dir
    if not (raw_dir / competition.cfg.files.train).is_file():
        raise WorkspaceError(f"no raw data in {shown(raw_dir)}; run `bash scripts/prepare_data.sh --competition "
                             f"{competition.name}` first")
    raw = [raw_dir / competition.cfg.files[k] for k in ("train", "test", "sample_submission")]
    raw_hash = files_sha256([p for p in raw if p.is_file()], raw_dir)
    source = read_source(raw_dir)
    tags = {"data_source": source["source"], "is_sample_data": str(bool(source.get("is_sample"))).lower()}
    return build_stage(cfg, __file__, Config, inputs={"raw": raw_hash},
                       write=lambda out: write(raw_dir, cfg, out), reads=("raw", raw_dir, raw_hash), tags=tags)


if __name__ == "__main__":
    preflight(__file__, Config)
    main()
