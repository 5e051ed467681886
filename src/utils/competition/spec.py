"""The competition a stage belongs to: `config/competition/<name>.yaml`, written once by the user.

It names the Kaggle slug, the raw files, the id and target column(s), the task (a `_target_` node: how model
outputs become predictions), the metric(s) computed on out-of-fold predictions (library functions by `_target_`,
the first one being the competition's) and the submission format, which is checked against the competition's
own `sample_submission.csv` (same columns, same ids, same row count) before a submission is written.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from src.utils.competition.kinds import check_metric_input, check_submission_values
from src.utils.config.targets import instantiate
from src.utils.core.errors import WorkspaceError
from src.utils.core.hashing import json_sha256
from src.utils.core.paths import CONFIG_DIR, resolve, shown

log = logging.getLogger(__name__)
COMPETITION_DIR = CONFIG_DIR / "competition"
def names() -> list[str]:
    return sorted(p.stem for p in COMPETITION_DIR.glob("*.yaml"))


@dataclass
class Metric:
    name: str
    fn: Any  # f(y_true, y_pred) -> float
    input: str  # "label" (decisions) or "score" (probabilities / values)
    direction: str  # "max" or "min"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        if getattr(self.fn, "func", self.fn).__module__.startswith("torchmetrics"):
            import torch

            return float(self.fn(torch.as_tensor(y_pred), torch.as_tensor(y_true)))
        return float(self.fn(y_true, y_pred))


class Competition:
    """A loaded competition config; `task` and `metrics` are built from their `_target_` nodes."""

    def __init__(self, name: str, cfg: DictConfig, file: Path | None = None) -> None:
        self.name, self.cfg, self.file = name, cfg, file
        for key in ("slug", "raw_dir", "files", "id", "target", "task", "metrics"):
            if OmegaConf.select(cfg, key) is None:
                raise WorkspaceError(f"{self.where}: key '{key}' is missing; see config/competition/*.yaml for one "
                                     f"written out")
        for key in ("train", "test", "sample_submission"):
            if key not in cfg.files:
                raise WorkspaceError(f"{self.where}: files.{key} is missing (the file's name, e.g. {key}.csv)")
        self.ids: list[str] = _as_list(cfg.id)
        self.targets: list[str] = _as_list(cfg.target)
        self.values = str(OmegaConf.select(cfg, "submission.values", default="label"))
        if self.values not in ("label", "score"):
            raise WorkspaceError(f"{self.where}: submission.values={self.values} is not allowed: label or score")
        self.fold_models = str(OmegaConf.select(cfg, "submission.fold_models", default="mean"))
        if self.fold_models not in ("mean", "median"):
            raise WorkspaceError(f"{self.where}: submission.fold_models={self.fold_models} is not allowed: "
                                 f"mean or median")

    @property
    def where(self) -> str:
        return shown(self.file) if self.file else f"competition {self.name}"

    @property
    def slug(self) -> str:
        return str(self.cfg.slug)

    @functools.cached_property
    def digest(self) -> str:
        """The hash of what the data stages read of the file (files, id and target columns, task): a stage's input,
        so a change rebuilds the stages, and a model refuses features built under another version."""
        return json_sha256({"files": OmegaConf.to_container(self.cfg.files, resolve=True), "id": self.ids,
                            "target": self.targets, "task": OmegaConf.to_container(self.cfg.task, resolve=True)})[:16]

    @property
    def raw_dir(self) -> Path:
        return resolve(str(self.cfg.raw_dir))

    def raw_file(self, key: str) -> Path:
        return self.raw_dir / str(self.cfg.files[key])

    @functools.cached_property
    def task(self):
        from src.tasks import Task

        try:
            task = instantiate(self.cfg.task, targets=self.targets)
        except Exception as exc:
            raise WorkspaceError(f"{self.where}: task cannot be built ({_reason(exc)}); e.g. "
                                 f"task: {{_target_: src.tasks.Regression}}") from exc
        if not isinstance(task, Task):
            raise WorkspaceError(f"{self.where}: task._target_ must be a src.tasks.Task, not {type(task)}")
        return task

    @functools.cached_property
    def metrics(self) -> list[Metric]:
        out = []
        for name, node in self.cfg.metrics.items():
            where = f"{self.where}: metrics.{name}"
            if not isinstance(node, DictConfig) or "fn" not in node:
                raise WorkspaceError(f"{where} needs fn (a _target_ node with _partial_: true), input and "
                                     f"direction")
            direction, kind = str(node.get("direction", "max")), str(node.get("input", "score"))
            if direction not in ("max", "min"):
                raise WorkspaceError(f"{where}.direction={direction} is not allowed: max or min")
            if kind not in ("label", "score"):
                raise WorkspaceError(f"{where}.input={kind} is not allowed: label or score")
            try:
                fn = instantiate(node.fn)
            except Exception as exc:
                raise WorkspaceError(f"{where}.fn cannot be built ({_reason(exc)})") from exc
            metric = Metric(str(name), fn, kind, direction)
            check_metric_input(metric, self.task, where, str(node.fn.get("_target_", node.fn)))
            out.append(metric)
        if not out:
            raise WorkspaceError(f"{self.where}: metrics is empty; name at least the competition's metric")
        return out

    @property
    def metric(self) -> Metric:
        """The competition's metric: the first one listed."""
        return self.metrics[0]

    def score(self, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """Every metric on (out-of-fold) predictions: `scores` as the task makes them from model outputs."""
        labels = self.task.decide(scores)
        y = self.task.metric_target(y_true)
        out = {}
        for m in self.metrics:
            try:
                out[m.name] = m(y, labels if m.input == "label" else self.task.metric_scores(scores))
            except ValueError as exc:  # e.g. ROC-AUC on rows of one class only (a debug run's single batch)
                log.warning("%s cannot be computed on these %d rows: %s", m.name, len(y), _reason(exc))
                out[m.name] = float("nan")
        return out

    # --- the submission ------------------------------------------------------------------------------
    def submission(self, ids: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
        """The submission frame: the id column(s), then the target column(s) in the competition's format."""
        values = self.task.submission_values(scores, self.values)
        frame = ids.reset_index(drop=True).copy()
        for column, value in values.items():
            frame[column] = value
        return frame

    def check_submission(self, frame: pd.DataFrame) -> None:
        """Same columns, same ids and same row count as the competition's sample_submission.csv."""
        path = self.raw_file("sample_submission")
        if not path.is_file():
            raise WorkspaceError(f"{shown(path)} is missing, so the submission cannot be checked; put the "
                                 f"competition's files there: bash scripts/prepare_data.sh --competition "
                                 f"{self.name} --kaggle <zip or folder>")
        sample = pd.read_csv(path, encoding="utf-8-sig")
        if list(frame.columns) != list(sample.columns):
            raise WorkspaceError(f"the submission has columns {list(frame.columns)} but {shown(path)} has "
                                 f"{list(sample.columns)}; fix id/target in {self.where}")
        if len(frame) != len(sample):
            raise WorkspaceError(f"the submission has {len(frame)} rows but {shown(path)} has {len(sample)}; "
                                 f"the features' test rows are not the competition's test set (rebuild them)")
        for column in self.ids:
            mine, theirs = frame[column].astype(str).to_numpy(), sample[column].astype(str).to_numpy()
            if not np.array_equal(np.sort(mine), np.sort(theirs)):
                bad = sorted(set(mine) ^ set(theirs))[:3]
                raise WorkspaceError(f"the submission's {column} values differ from {shown(path)} (e.g. {bad}); "
                                     f"the features' test ids are not the competition's (rebuild them)")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str | int):
        return [str(value)]
    return [str(v) for v in value]


def _reason(exc: Exception) -> str:
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


_LOADED: dict[str, Competition] = {}


def load(name: str) -> Competition:
    """The competition `name` (config/competition/<name>.yaml), one error line when there is none."""
    path = COMPETITION_DIR / f"{name}.yaml"
    key = f"{path}:{path.stat().st_mtime_ns}" if path.is_file() else ""
    if key and key in _LOADED:
        return _LOADED[key]
    if not path.is_file():
        known = ", ".join(names()) or "none yet"
        raise WorkspaceError(f"competition={name}: there is no {shown(path)} (known: {known}); write one (see "
                             f"README, 'Start your own competition')")
    competition = Competition(name, OmegaConf.load(path), path)
    check_submission_values(competition, competition.raw_file("sample_submission"))
    _LOADED[key] = competition
    return competition


def from_yaml(name: str, text: str) -> Competition:
    """A competition as a run logged it (competition.yaml artifact)."""
    return Competition(name, OmegaConf.create(text))


def differences(before: DictConfig, after: DictConfig) -> list[str]:
    """`key: old -> new` for every leaf that differs between two competition configs (dotted keys, sorted)."""
    def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(node, dict):
            return {k: v for key, value in node.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): node}

    old, new = (leaves(OmegaConf.to_container(c, resolve=False)) for c in (before, after))
    return [f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]


def logged(name: str, text: str, run_id: str, used_by: str) -> Competition:
    """The competition file a run logged, as `used_by` (predict.py, rerun.sh, kaggle_pack.sh) uses it; when
    config/competition/<name>.yaml has changed since, one warning line says which one is used and what differs."""
    competition = from_yaml(name, text)
    path = COMPETITION_DIR / f"{name}.yaml"
    if path.is_file():
        changed = differences(competition.cfg, OmegaConf.load(path))
        if changed:
            shown_changes = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
            print(f"warning: {shown(path)} has changed since run {run_id[:8]} was trained ({shown_changes}); "
                  f"{used_by} uses the run's own copy (its competition.yaml); train a new run to use today's file",
                  file=sys.stderr, flush=True)
    return competition


def check_named(config: Any) -> None:
    """A typed config's `competition`, when it names one, is a file of config/competition/ (one error line if not)."""
    if getattr(config, "competition", None) is not None:
        load(config.competition)
