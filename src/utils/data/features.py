"""A feature folder's output as the models read it: manifest, targets, folds, and whatever the folder holds.

The contract every feature folder writes (src/feature/featureNN), through `src/utils/data/stage.py`:
`manifest.json` (content hash, the size and hash of every file, n_folds, the competition and the dataset it was
built from), `train_y.npy` (the training targets: class indices, 0/1 or values; one column per target),
`folds.npy` (every row's validation fold, -1: never validated) and the test ids (`test_ids.npy`, or
`test_ids.parquet` for several id columns). The inputs are the folder's own business: arrays (`train_x.npy`,
`test_x.npy`, read in memory or memory-mapped), tables, or file paths that the experiment's data module reads
from disk. Loading checks every file against the manifest (size, then hash where it changed), so a truncated or
edited file is one error line naming the rebuild command. Loaded folders are kept per content hash and each
fold's split is computed once, so the trials of a sweep in one process share them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import read_json
from src.utils.core.paths import resolve, shown
from src.utils.data.cv import folds_hash, train_rows
from src.utils.data.manifest import first_change

_LOADED: dict[tuple[str, str], Features] = {}


class Features:
    """A plain class, not a dataclass: Hydra's instantiate passes it to a data module as it is (a dataclass
    argument would be turned into a config node)."""

    def __init__(self, dir: Path, manifest: dict) -> None:
        self.dir, self.manifest = dir, manifest
        self.verify()
        self.train_y = self.load("train_y")
        self.folds = self.load("folds")
        self._splits: dict = {}

    def __repr__(self) -> str:
        return f"Features({self.dir}, {len(self.folds)} training rows, {self.n_folds} folds)"

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def n_folds(self) -> int:
        return int(self.manifest["n_folds"])

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    @property
    def competition(self) -> str | None:
        return self.manifest.get("competition")

    @property
    def ordered(self) -> bool:
        """Folds in time order: fold k trains on earlier rows only."""
        return bool(self.manifest.get("cv", {}).get("ordered", False))

    @property
    def rebuild(self) -> str:
        """The command that rebuilds the folder: its stage's script (the folder's own name, unless written elsewhere
        with output_dir=)."""
        folder = str(self.manifest.get("stage") or self.name)
        out = "" if folder == self.name else f" output_dir={shown(self.dir)}"
        return f"poetry run python src/feature/{folder}/build_features.py{out} force=true"

    def path(self, name: str) -> Path:
        return self.dir / name

    def load(self, name: str, mmap: bool = False) -> np.ndarray:
        """`<name>.npy` of the folder, in memory or memory-mapped (read-only, paged in as rows are read)."""
        path = self.dir / f"{name}.npy"
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise WorkspaceError(f"{shown(path)} cannot be read ({str(exc).splitlines()[0] if str(exc) else exc}); "
                                 f"rebuild the features: {self.rebuild}") from exc

    @functools.cached_property
    def train_x(self) -> np.ndarray:
        return self.load("train_x")

    @property
    def is_table(self) -> bool:
        """The inputs are a table (train_x.parquet: columns of their own types, categories, missing values)."""
        return (self.dir / "train_x.parquet").is_file()

    def table(self, name: str) -> pd.DataFrame:
        """`<name>.parquet` of the folder (categoricals come back as pandas categories)."""
        key = ("table", name)
        if key not in self._splits:
            path = self.dir / f"{name}.parquet"
            try:
                self._splits[key] = pd.read_parquet(path)
            except (OSError, ValueError) as exc:
                raise WorkspaceError(f"{shown(path)} cannot be read ({str(exc).splitlines()[0] if str(exc) else exc})"
                                     f"; rebuild the features: {self.rebuild}") from exc
        return self._splits[key]

    def split(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, validation rows) of `fold`: validate on it, train on the others (earlier ones if ordered)."""
        if fold not in self._splits:
            self._splits[fold] = (train_rows(self.folds, fold, self.ordered), np.flatnonzero(self.folds == fold))
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
        """(test_x, test_ids) of an array folder (the ids of test_ids.parquet where it has no test_ids.npy)."""
        if not (self.dir / "test_ids.npy").is_file() and (self.dir / "test_ids.parquet").is_file():
            return self.load("test_x"), pd.read_parquet(self.dir / "test_ids.parquet").to_numpy()
        return self.load("test_x"), self.load("test_ids")

    def test_ids(self, columns: list[str]) -> pd.DataFrame:
        """The test rows' id column(s), in the order the data module's predict_dataloader yields them."""
        if (self.dir / "test_ids.parquet").is_file():
            ids = pd.read_parquet(self.dir / "test_ids.parquet")
            missing = [c for c in columns if c not in ids.columns]
            if missing:
                raise WorkspaceError(f"{shown(self.dir / 'test_ids.parquet')} lacks the id column(s) {missing} "
                                     f"the competition names; rebuild the features: {self.rebuild}")
            return ids[columns]
        ids = self.load("test_ids")
        if ids.ndim != 1 or len(columns) != 1:
            raise WorkspaceError(f"{shown(self.dir)}/test_ids.npy holds {ids.shape} ids for id column(s) {columns}; "
                                 f"write test_ids.parquet with those columns")
        return pd.DataFrame({columns[0]: ids})

    def verify(self) -> None:
        """Every file the manifest lists is there, with its size; where it changed since, its hash too."""
        change = first_change(self.dir, self.manifest)
        if change is not None:
            raise WorkspaceError(f"{shown(change[0])} {change[1]}; rebuild it: {self.rebuild}")

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
        tags = {
            f"{self.name}_hash": self.content_hash,
            f"{self.name}_run_id": manifest["mlflow_run_id"],
            f"{dataset['name']}_hash": dataset["hash"],
            f"{dataset['name']}_run_id": dataset["run_id"],
            "data_source": manifest["source"]["source"],
            "is_sample_data": str(bool(manifest["source"].get("is_sample"))).lower(),
            "folds_hash": folds_hash(self.folds, self.ordered),
        }
        if self.competition:
            tags["competition"] = self.competition
        return tags


def load_features(feature_dir: str | Path) -> Features:
    """The features in `feature_dir` (relative to the project root), kept for the next call with the same hash."""
    feature_dir = resolve(feature_dir)
    manifest_path = feature_dir / "manifest.json"
    if not manifest_path.is_file():
        raise WorkspaceError(
            f"no features in {shown(feature_dir)}; build them with `poetry run python src/feature/{feature_dir.name}/"
            f"build_features.py` (after prepare_data.sh and the dataset folder it reads)")
    manifest = read_json(manifest_path)
    key = (str(feature_dir), manifest["content_hash"])
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = Features(feature_dir, manifest)
    return _LOADED[key]
