"""An ensemble's members: resolved from the config (run_ids, sweeps' top trials, experiments' top runs), each
checked before anything is computed (a FINISHED fold=all run of the competition, on the same folds, with its OOF
predictions), and their arrays read once (OOF and test scores, as the member's training run logged them)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from src.utils.competition.spec import Competition
from src.utils.core.errors import WorkspaceError
from src.utils.data.cv import folds_hash
from src.utils.track.formats import check_training_run, older_run


@dataclass
class Member:
    run: Any  # mlflow.entities.Run
    source: str  # how it was named: "run", "sweep 1a2b3c4d top-5", "experiment model01 top-5"
    experiment: str = ""
    oof: np.ndarray | None = field(default=None, repr=False)  # rows x width, ordered by row
    test: np.ndarray | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def name(self) -> str:
        return self.run.info.run_name or self.run_id[:8]

    def where(self) -> str:
        return f"member {self.run_id[:8]} ({self.name}, from {self.source})"


@dataclass
class Arrays:
    rows: np.ndarray
    folds: np.ndarray
    y: np.ndarray
    test_ids: pd.DataFrame


# --- which runs -----------------------------------------------------------------------------------------------------
def _run(client, run_id: str, what: str):
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise WorkspaceError(f"{what} {run_id}: no such run in the MLflow store; copy run_ids from the MLflow UI "
                             f"(bash scripts/mlflow_ui.sh) or the diary") from exc


def _monitor(run) -> tuple[str, float]:
    """The run's own best monitored value as a sort key (higher is better)."""
    params = run.data.params
    name = f"best_{params.get('monitor', '')}"
    sign = -1.0 if params.get("monitor_mode") == "min" else 1.0
    value = run.data.metrics.get(name)
    return name, sign * value if value is not None else -np.inf


def _top(runs: list, k: int) -> list:
    runs = [r for r in runs if r.data.tags.get("optuna_state") != "PRUNED" and r.data.tags.get("sweep") != "parent"
            and _monitor(r)[1] > -np.inf]
    return sorted(runs, key=lambda r: (-_monitor(r)[1], r.info.start_time))[:k]


def resolve_members(cfg: DictConfig, client) -> list[Member]:
    members: list[Member] = []
    k = int(cfg.members.top_k)
    for run_id in cfg.members.runs or []:
        members.append(Member(_run(client, str(run_id), "member"), "run"))
    for parent_id in cfg.members.sweeps or []:
        parent = _run(client, str(parent_id), "sweep")
        if parent.data.tags.get("sweep") != "parent":
            raise WorkspaceError(f"sweep {parent_id}: not a sweep's parent run; name it under members.runs instead, "
                                 f"or give the parent run of a `-m` sweep (its trials are nested under it)")
        trials = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}' and "
                                    f"attributes.status = 'FINISHED'", max_results=5000)
        top = _top(trials, k)
        if not top:
            raise WorkspaceError(f"sweep {parent_id}: no trial of it finished (pruned and failed ones cannot be "
                                 f"members); run more trials, or name runs under members.runs")
        members += [Member(r, f"sweep {parent_id[:8]} top-{k}") for r in top]
    for name in cfg.members.experiments or []:
        exp = client.get_experiment_by_name(str(name))
        if exp is None:
            raise WorkspaceError(f"experiment {name}: no such MLflow experiment; name a model folder that has runs "
                                 f"(e.g. model01)")
        runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED' and params.fold = 'all'",
                                  max_results=5000)
        top = _top([r for r in runs if r.data.tags.get("stage") == "model"], k)
        if not top:
            raise WorkspaceError(f"experiment {name}: no FINISHED fold=all run; train one: poetry run python "
                                 f"src/model/{name}/train.py fold=all")
        members += [Member(r, f"experiment {name} top-{k}") for r in top]
    seen: dict[str, Member] = {}
    for m in members:
        if m.run_id in seen:
            raise WorkspaceError(f"{m.where()} is listed twice (also from {seen[m.run_id].source}); name each run "
                                 f"once")
        seen[m.run_id] = m
    if len(members) < 2:
        named = f"{len(members)} {'was' if len(members) == 1 else 'were'} named"
        raise WorkspaceError(f"an ensemble needs two members or more, and {named}; add some with members.runs=[...], "
                             f"members.sweeps=[<sweep run_id>] or members.experiments=[<model experiment>]")
    experiments = {}
    for m in members:
        eid = m.run.info.experiment_id
        experiments.setdefault(eid, client.get_experiment(eid).name)
        m.experiment = experiments[eid]
    return members


def check_member(m: Member, competition: Competition, reference: Member | None) -> None:
    """One error line for a member that cannot go into the ensemble (before anything is computed)."""
    run, tags, params = m.run, m.run.data.tags, m.run.data.params
    if tags.get("sweep") == "parent":
        raise WorkspaceError(f"{m.where()} is a sweep's parent run; name it under members.sweeps (its top-k trials "
                             f"join) or name trials by run_id")
    if tags.get("stage") != "model":
        raise WorkspaceError(f"{m.where()} is not a training run (stage {tags.get('stage', '-')}); members are runs "
                             f"of src/model/*/train.py with fold=all")
    check_training_run(m.run_id, tags)
    if tags.get("optuna_state") == "PRUNED":
        raise WorkspaceError(f"{m.where()} was pruned at {tags.get('pruned_at', '?')} and has no OOF predictions; "
                             f"leave it out, or pick a trial that finished")
    if run.info.status != "FINISHED":
        raise WorkspaceError(f"{m.where()} ended {run.info.status}; only FINISHED runs can be members (train it "
                             f"again, or leave it out)")
    if str(params.get("fold")) != "all":
        raise WorkspaceError(f"{m.where()} was trained on fold {params.get('fold')} only: a member needs OOF "
                             f"predictions on every row; train it again with fold=all")
    if tags.get("competition") != competition.name:
        raise WorkspaceError(f"{m.where()} belongs to competition {tags.get('competition', '-')}, this ensemble to "
                             f"{competition.name}; leave it out, or set competition= to the members' one")
    if reference is not None and tags["folds_hash"] != reference.run.data.tags["folds_hash"]:
        raise WorkspaceError(f"{m.where()} was trained on other folds (folds_hash {tags['folds_hash'][:12]}) than "
                             f"{reference.where()} ({reference.run.data.tags['folds_hash'][:12]}); members must "
                             f"share the fold assignment: train it on features of the same dataset's folds")


# --- their arrays ---------------------------------------------------------------------------------------------------
def _download(run_id: str, path: str, dst: Path) -> Path | None:
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))
    except (MlflowException, OSError):
        return None


def _member_files(m: Member, competition: Competition, tmp: Path) -> tuple[dict, np.ndarray, pd.DataFrame]:
    """A member's OOF arrays, test scores and test ids, as its training run logged them."""
    files = {name: _download(m.run_id, name, tmp) for name in ("predictions/oof.npz", "predictions/test_scores.npy",
                                                               "test_predictions.csv")}
    missing = [name for name, path in files.items() if path is None]
    if missing:
        raise older_run(m.run_id, " or ".join(missing))
    with np.load(files["predictions/oof.npz"]) as z:
        oof = {k: z[k] for k in ("rows", "folds", "y", "scores")}
    return (oof, np.load(files["predictions/test_scores.npy"]),
            pd.read_csv(files["test_predictions.csv"], usecols=competition.ids))


def load_arrays(members: list[Member], competition: Competition) -> Arrays:
    """Every member's OOF and test scores, read once, checked to cover the same rows with the same truth."""
    task = competition.task
    ref: tuple[Member, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame] | None = None
    for m in members:
        with tempfile.TemporaryDirectory() as tmp:
            oof, m.test, ids = _member_files(m, competition, Path(tmp))
        rows, folds = oof["rows"].astype(np.int64), oof["folds"].astype(np.int64)
        vector = np.full(int(rows.max()) + 1, -1, dtype=np.int64)
        vector[rows] = folds
        if m.run.data.tags["folds_hash"] not in (folds_hash(vector), folds_hash(vector, True)):
            raise WorkspaceError(f"{m.where()}: its OOF predictions do not cover every validated row of its folds "
                                 f"(folds_hash {m.run.data.tags['folds_hash'][:12]}); train it again with fold=all")
        scores = np.asarray(oof["scores"], dtype=np.float64).reshape(len(rows), -1)
        if scores.shape[1] != task.width or m.test.reshape(len(m.test), -1).shape[1] != task.width:
            raise WorkspaceError(f"{m.where()} has scores of width {scores.shape[1]}, the task ({task}) needs "
                                 f"{task.width}; it was trained for another task")
        m.oof, m.test = scores, m.test.reshape(len(m.test), -1).astype(np.float64)
        if ref is None:
            ref = (m, rows, folds, np.asarray(oof["y"]), ids)
            continue
        first, rows0, _, y0, ids0 = ref
        if not np.array_equal(rows, rows0) or not np.array_equal(np.asarray(oof["y"]), y0):
            raise WorkspaceError(f"{m.where()} has other OOF rows or truth than {first.where()}; members must be "
                                 f"trained on the same rows and targets")
        if len(ids) != len(ids0) or not ids.astype(str).equals(ids0.astype(str)):
            raise WorkspaceError(f"{m.where()} predicted other test rows ({len(ids)}) than {first.where()} "
                                 f"({len(ids0)}); members must predict the same test set")
    _, rows, folds, y, ids = ref
    return Arrays(rows, folds, y, ids)


def model_inputs(members: list[Member]) -> list:
    from mlflow.entities import LoggedModelInput

    return [LoggedModelInput(o.model_id) for m in members for o in (m.run.outputs.model_outputs
                                                                    if m.run.outputs else [])]
