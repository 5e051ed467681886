"""Cross-validation as config: the dataset stage's `cv` node names a scikit-learn splitter by `_target_`.

    cv:
      splitter: {_target_: sklearn.model_selection.StratifiedKFold, n_splits: 5, shuffle: true, random_state: 42}
      stratify: label      # the column a stratified splitter balances (null: none)
      groups: null         # the column of groups for GroupKFold / StratifiedGroupKFold (null: none)

`assign_folds` stores the validation fold of every row once (a row never validated, as the first block of a
TimeSeriesSplit, gets -1), so every model and every ensemble sees the same rows in the same folds. A splitter
whose training rows always come before its validation rows (TimeSeriesSplit) is recorded as `ordered`: fold k
then trains only on the rows of earlier folds (and the never-validated first block), never on later ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from src.utils.core.errors import WorkspaceError


@dataclass
class Folds:
    folds: np.ndarray  # int64, the validation fold of every row, -1 for rows never validated
    n_folds: int
    ordered: bool  # fold k trains on earlier rows only (time series)
    splitter: str

    @property
    def hash(self) -> str:
        return folds_hash(self.folds, self.ordered)

    def facts(self) -> dict:
        counts = np.bincount(self.folds[self.folds >= 0], minlength=self.n_folds)
        cv = {"splitter": self.splitter, "ordered": self.ordered, "folds_hash": self.hash,
              "unvalidated_rows": int((self.folds < 0).sum()),
              "per_fold": {str(k): int(v) for k, v in enumerate(counts)}}
        return {"n_folds": self.n_folds, "cv": cv}


def folds_hash(folds: np.ndarray, ordered: bool = False) -> str:
    """Same rows in the same folds (and the same rule) <=> same hash: what ensembles compare."""
    h = hashlib.sha256(np.ascontiguousarray(folds, dtype=np.int64).tobytes())
    h.update(b"ordered" if ordered else b"")
    return h.hexdigest()


def train_rows(folds: np.ndarray, fold: int, ordered: bool) -> np.ndarray:
    """The rows fold `fold` trains on: every other fold's, or with an ordered split only the earlier ones."""
    return np.flatnonzero(folds < fold) if ordered else np.flatnonzero((folds != fold) & (folds >= 0))


def assign_folds(cv: DictConfig, frame: pd.DataFrame, where: str = "cv") -> Folds:
    """Every row's validation fold from the configured splitter (one error line for a setting that cannot be)."""
    from src.utils.config.targets import instantiate

    for key in ("stratify", "groups"):
        column = cv.get(key)
        if column is not None and column not in frame.columns:
            raise WorkspaceError(f"{where}.{key}={column}: the training data has no column {column!r} "
                                 f"(columns: {', '.join(map(str, list(frame.columns)[:8]))}...); name an existing "
                                 f"one or set {where}.{key}=null")
    try:
        splitter = instantiate(cv.splitter)
    except Exception as exc:
        raise WorkspaceError(f"{where}.splitter cannot be built ({_first_line(exc)}); e.g. "
                             f"{{_target_: sklearn.model_selection.KFold, n_splits: 5}}") from exc
    y = frame[cv.stratify].to_numpy() if cv.get("stratify") else None
    groups = frame[cv.groups].to_numpy() if cv.get("groups") else None
    name = f"{type(splitter).__module__}.{type(splitter).__name__}"
    if "Stratified" in name and y is None:
        raise WorkspaceError(f"{where}.splitter is {type(splitter).__name__} but {where}.stratify is null; name the "
                             f"column to stratify on (e.g. {where}.stratify=label)")
    if "Group" in name and groups is None:
        raise WorkspaceError(f"{where}.splitter is {type(splitter).__name__} but {where}.groups is null; name the "
                             f"column of groups (e.g. {where}.groups=patient_id)")
    n_splits = getattr(splitter, "n_splits", None)
    if "Stratified" in name and n_splits:
        counts = pd.Series(y).value_counts()
        if counts.min() < n_splits:  # scikit-learn only warns, and some folds would lack the class
            raise WorkspaceError(f"{where}: {type(splitter).__name__} with n_splits={n_splits}, but class "
                                 f"{counts.idxmin()!r} of {cv.stratify} has only {counts.min()} rows; use n_splits<="
                                 f"{counts.min()} or a splitter that does not stratify")
    folds = np.full(len(frame), -1, dtype=np.int64)
    ordered = True
    try:
        splits = list(splitter.split(np.zeros(len(frame)), y, groups))
    except ValueError as exc:
        raise WorkspaceError(f"{where}: {type(splitter).__name__} cannot split {len(frame)} rows: "
                             f"{_first_line(exc)}; lower n_splits or use another splitter") from exc
    for k, (train_idx, valid_idx) in enumerate(splits):
        if (folds[valid_idx] >= 0).any():
            raise WorkspaceError(f"{where}.splitter puts rows in several validation folds ({type(splitter).__name__}"
                                 f"); use a K-fold style splitter (each row validated at most once)")
        folds[valid_idx] = k
        ordered &= len(train_idx) > 0 and train_idx.max() < valid_idx.min()
    return Folds(folds, len(splits), bool(ordered and (folds < 0).any()), name)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
