"""Tables as they come: a CSV competition's training and test files read by the column roles of a dataset stage.

The competition file names the id and target columns; the dataset stage's `columns` node gives the other roles:

    columns:
      drop: []            # columns that are not features (free text you do not use, leaks)
      categorical: auto   # auto: every text column; or the list of categorical columns (numbers may be categories)
      dates: []           # parsed as dates; the feature stage turns each into year, month, day and weekday
      group: null         # rows of one group stay in one fold (with cv.splitter GroupKFold)

`read_table` checks every column against its role (a number column holds numbers, a date column dates, an id or
target is never missing) and names the file, the line, the column and the fix for the first problem. Missing
values in feature columns are kept as missing; `describe` records them per column. `encode_target` turns the
target into what the models train on (class indices for the competition's classes, or values). The feature
stage's encodings are in `src/utils/data/encoding.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import shown

NUMERIC_SHARE = 0.5  # a text column whose values are mostly numbers is a number column with a typo (or a
#                     mixed code such as a ticket number): the user says which, in columns.categorical or .drop


@dataclass
class Roles:
    ids: list[str]
    targets: list[str]
    drop: list[str]
    categorical: list[str] | None  # None: every text column
    dates: list[str]
    group: str | None

    @classmethod
    def of(cls, competition: Any, columns: Any) -> Roles:
        categorical = columns.get("categorical", "auto")
        return cls(list(competition.ids), list(competition.targets), list(columns.get("drop") or []),
                   None if categorical in (None, "auto") else [str(c) for c in categorical],
                   [str(c) for c in columns.get("dates") or []], columns.get("group"))

    def declared(self) -> list[str]:
        return [*self.drop, *(self.categorical or []), *self.dates, *([self.group] if self.group else [])]


def _line(frame: pd.DataFrame, mask: np.ndarray) -> tuple[int, Any]:
    row = int(np.flatnonzero(mask)[0])
    return row + 2, frame.index[row]  # +2: the header is line 1


def read_csv(path: Path, fix: str) -> pd.DataFrame:
    if not path.is_file():
        raise WorkspaceError(f"{shown(path)} not found; {fix}")
    try:
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{shown(path)} cannot be read ({str(exc).strip().splitlines()[-1]}); {fix}") from exc


def read_table(path: Path, roles: Roles, train: bool, fix: str, where: str = "columns") -> pd.DataFrame:
    """The file with every column checked against its role; one error line for the first problem."""
    frame = read_csv(path, fix)
    required = [*roles.ids, *(roles.targets if train else [])]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise WorkspaceError(f"{shown(path)} lacks the column(s) {', '.join(missing)} the competition file names "
                             f"(its columns: {', '.join(map(str, list(frame.columns)[:10]))}); fix the id/target "
                             f"names in the competition file, or {fix}")
    if train:
        unknown = [c for c in roles.declared() if c not in frame.columns]
        if unknown:
            raise WorkspaceError(f"{where} names {', '.join(unknown)}, which {shown(path)} does not have (its "
                                 f"columns: {', '.join(map(str, list(frame.columns)[:10]))}); fix {where} in the "
                                 f"dataset stage's config")
    for column in required:
        empty = frame[column].isna().to_numpy()
        if empty.any():
            line, _ = _line(frame, empty)
            raise WorkspaceError(f"{shown(path)} line {line}, column {column}: missing; every row needs its "
                                 f"{'id' if column in roles.ids else 'target'}; {fix}")
    for column in roles.dates:
        if column in frame.columns:
            frame[column] = _dates(frame, column, path, fix)
    categorical = roles.categorical
    for column in frame.columns:
        if column in (*roles.ids, *roles.targets, *roles.drop, *roles.dates):
            continue
        if categorical is not None and column in categorical:
            frame[column] = frame[column].astype("string")
        elif not pd.api.types.is_numeric_dtype(frame[column]):  # text (object or str, by the pandas version)
            _numbers_or_text(frame, column, path, categorical is not None, where)
    return frame


def _dates(frame: pd.DataFrame, column: str, path: Path, fix: str) -> pd.Series:
    text = frame[column]
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = (parsed.isna() & text.notna()).to_numpy()
    if bad.any():
        line, _ = _line(frame, bad)
        raise WorkspaceError(f"{shown(path)} line {line}, column {column}: {text.iloc[line - 2]!r} is not a date; "
                             f"fix the value, or remove {column} from columns.dates")
    return parsed


def _numbers_or_text(frame: pd.DataFrame, column: str, path: Path, listed: bool, where: str) -> None:
    """A text column: a category (kept as text), unless it is almost all numbers (a typo in a number column) or
    the config lists the categorical columns and it is not among them."""
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    present = values.notna().to_numpy()
    bad = numbers.isna().to_numpy() & present
    if not bad.any():  # numbers written as text (e.g. quoted)
        frame[column] = numbers
        return
    if listed or (present.sum() and 1 - bad.sum() / present.sum() >= NUMERIC_SHARE):
        line, _ = _line(frame, bad)
        raise WorkspaceError(f"{shown(path)} line {line}, column {column}: {values.iloc[line - 2]!r} is not a "
                             f"number; fix the value, or add {column} to {where}.categorical (or {where}.drop)")
    frame[column] = values.astype("string")


def encode_target(frame: pd.DataFrame, competition: Any, path: Path, fix: str) -> np.ndarray:
    """The training target as the models read it: class indices of the task's classes, or float values."""
    task = competition.task
    classes = getattr(task, "classes", None)
    if classes is None:
        values = frame[competition.targets].apply(pd.to_numeric, errors="coerce")
        bad = values.isna().any(axis=1).to_numpy()
        if bad.any():
            line, _ = _line(frame, bad)
            raise WorkspaceError(f"{shown(path)} line {line}: the target {competition.targets} is not a number; "
                                 f"{fix}")
        return values.to_numpy(np.float32)
    (target,) = competition.targets
    values = frame[target]
    index = {str(c): i for i, c in enumerate(classes)}
    as_text = values.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
    bad = ~as_text.isin(index).to_numpy()
    if bad.any():
        line, _ = _line(frame, bad)
        seen = sorted(set(as_text))[:6]
        raise WorkspaceError(f"{shown(path)} line {line}, column {target}: {as_text.iloc[line - 2]!r} is not one of "
                             f"the task's classes {classes} (the column holds {seen}); set task.classes in "
                             f"config/competition/{competition.name}.yaml to the labels it holds")
    return as_text.map(index).to_numpy(np.int64)


def describe(train: pd.DataFrame, test: pd.DataFrame, roles: Roles) -> dict:
    """Each feature column's role, type and missing values (train and test), for the manifest."""
    out = {}
    for column in train.columns:
        if column in (*roles.ids, *roles.targets, *roles.drop) or column == "fold":
            continue
        kind = ("date" if column in roles.dates else "number" if pd.api.types.is_numeric_dtype(train[column])
                else "categorical")
        out[column] = {"role": kind, "missing_train": int(train[column].isna().sum()),
                       "missing_test": int(test[column].isna().sum()) if column in test.columns else None}
    return out
