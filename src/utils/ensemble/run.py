"""An ensemble of finished `fold=all` runs, blended into one submission and recorded as a run of its own.

An ensemble folder's blend.py hands its config to `blend`, which, the same for every ensemble folder:

* resolves the members: run_ids (`members.runs`), the top `members.top_k` trials of sweeps by their monitor
  (`members.sweeps`: parent run_ids) and the top runs of model experiments (`members.experiments`);
* checks each before anything is computed: a FINISHED training run with `fold=all`, not pruned, of the ensemble's
  competition, on the same fold assignment as the others (its `folds_hash`), listed once, with out-of-fold
  predictions on every validated row (their fold vector hashes to the run's `folds_hash`) and the same truth:
  anything else is one error line naming the member and what to do, and no run;
* reads each member's arrays once (`predictions/oof.npz`, `predictions/test_scores.npy`); a member logged without
  its test scores gets them from its logged code and models, as `predict.py` would, attached to it for next time;
* fits the method (methods.py) on the OOF scores, scores the blend in-sample and nested (fitted on the
  other folds, scored on the held-out one), and blends the test scores into the competition's submission;
* records it all as one MLflow run in the ensemble's experiment: members (tags, model inputs, members.csv with
  weights and each member's scores), metrics (`oof_*` in-sample, `nested_oof_*`, `best_member_oof_*`), the
  blended OOF and test predictions, the submission, the fitted method (`blend/method.pkl`, which the Kaggle pack
  applies), the members-vs-blend plot and the members' OOF correlation heat map, the code and the config (members
  resolved to run_ids, so `rerun.sh` blends the same runs).
"""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from src.utils.competition.spec import Competition
from src.utils.competition.spec import load as load_competition
from src.utils.config.schema import validate
from src.utils.config.targets import instantiate
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.io import atomic_file
from src.utils.core.paths import ROOT, folder_of
from src.utils.data.cv import folds_hash
from src.utils.ensemble.methods import Method, nested_oof

log = logging.getLogger(__name__)


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
    if not tags.get("folds_hash"):
        raise WorkspaceError(f"{m.where()} records no folds_hash (logged by an older version), so its folds cannot "
                             f"be compared; train it again with fold=all")
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


def _oof_from_csv(path: Path, competition: Competition) -> dict[str, np.ndarray]:
    """A run logged before `predictions/oof.npz`: the OOF columns back into rows, folds, truth and scores."""
    import pyarrow.csv as pacsv

    frame = pacsv.read_csv(path).to_pandas()
    task = competition.task
    score_cols = list(task.score_columns(np.zeros((1, task.width)))) or [f"pred_{t}" for t in task.targets]
    return {"rows": frame["row"].to_numpy(), "folds": frame["fold"].to_numpy(),
            "y": frame[task.targets].to_numpy().squeeze(1) if len(task.targets) == 1 else frame[task.targets]
            .to_numpy(), "scores": frame[score_cols].to_numpy(np.float64)}


def member_test_scores(m: Member, competition: Competition) -> tuple[np.ndarray, pd.DataFrame]:
    """Test scores of a member logged without them: its logged code and models on its features (checked to be the
    ones it was trained on), as predict.py does; attached to the member so this happens once."""
    from src.utils.predict.reload import load_run
    from src.utils.predict.submission import run_features, test_scores

    log.info("%s logged no test predictions: predicting them with its logged code and models", m.where())
    run = load_run(m.run_id)
    features = run_features(run)
    scores = test_scores(run, features)
    ids = features.test_ids(competition.ids)
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "test_scores.npy", scores)
        client.log_artifact(m.run_id, str(Path(tmp) / "test_scores.npy"), artifact_path="predictions")
        ids.to_csv(Path(tmp) / "test_ids.csv", index=False)
        client.log_artifact(m.run_id, str(Path(tmp) / "test_ids.csv"), artifact_path="predictions")
    return scores, ids


def load_arrays(members: list[Member], competition: Competition) -> Arrays:
    """Every member's OOF and test scores, read once, checked to cover the same rows with the same truth."""
    task = competition.task
    ref: tuple[Member, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame] | None = None
    for m in members:
        with tempfile.TemporaryDirectory() as tmp:
            npz = _download(m.run_id, "predictions/oof.npz", Path(tmp))
            if npz is not None:
                with np.load(npz) as z:
                    oof = {k: z[k] for k in ("rows", "folds", "y", "scores")}
            else:
                csv = _download(m.run_id, "oof_predictions.csv", Path(tmp))
                if csv is None:
                    raise WorkspaceError(f"{m.where()} has no OOF predictions (oof_predictions.csv); train it again "
                                         f"with fold=all")
                oof = _oof_from_csv(csv, competition)
            test = _download(m.run_id, "predictions/test_scores.npy", Path(tmp))
            ids_file = _download(m.run_id, "predictions/test_ids.csv", Path(tmp)) or _download(
                m.run_id, "test_predictions.csv", Path(tmp))
            if test is not None and ids_file is not None:
                m.test = np.load(test)
                ids = pd.read_csv(ids_file, usecols=competition.ids)
            else:
                m.test, ids = member_test_scores(m, competition)
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


# --- the run --------------------------------------------------------------------------------------------------------
def metric_fn(competition: Competition):
    """The competition's metric on scores, and its sign (+1: higher is better)."""
    task, metric = competition.task, competition.metric

    def fn(y: np.ndarray, scores: np.ndarray) -> float:
        pred = task.decide(scores) if metric.input == "label" else task.metric_scores(scores)
        return metric(task.metric_target(y), pred)

    return fn, (1.0 if metric.direction == "max" else -1.0)


def build_method(cfg: DictConfig, stage: str, folder: str) -> Method:
    try:
        method = instantiate(cfg.method)
    except WorkspaceError:
        raise
    except Exception as exc:
        reason = str(exc.__cause__ or exc).strip().splitlines()[0]
        raise WorkspaceError(f"method cannot be built ({reason}); see config/{stage}/{folder}/method/") from exc
    if not hasattr(method, "fit") or not hasattr(method, "predict"):
        raise WorkspaceError(f"method._target_={cfg.method.get('_target_')} is not a blending method (fit and "
                             f"predict); see src/utils/ensemble/methods.py")
    return method


def correlation_png(members: list[Member], path: Path) -> Path:
    from src.utils.core.plots import _plt, _save

    labels = [f"{i} {m.name[:28]}" for i, m in enumerate(members)]
    corr = np.corrcoef(np.stack([m.oof.ravel() for m in members]))
    plt = _plt()
    size = 2.5 + 0.55 * len(members)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(corr, vmin=min(0.0, float(corr.min())), vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(members)), [str(i) for i in range(len(members))])
    ax.set_yticks(range(len(members)), labels)
    if len(members) <= 15:
        for i in range(len(members)):
            for j in range(len(members)):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if corr[i, j] < 0.9 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("members' OOF correlation (lower: more diverse)")
    return _save(fig, path)


def members_png(table: pd.DataFrame, metric: str, blend: float, nested: float, path: Path) -> Path:
    from src.utils.core.plots import _plt, _save

    plt = _plt()
    labels = [f"{r.member} {str(r.run_name)[:30]}" for r in table.itertuples()] + ["blend (in-sample)",
                                                                                  "blend (nested CV)"]
    values = [*table[f"oof_{metric}"].tolist(), blend, nested]
    colors = ["#8da0cb"] * len(table) + ["#fc8d62", "#66c2a5"]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(values)))
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels)
    ax.invert_yaxis()
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.5 or abs(hi) * 0.01 or 0.01
    ax.set_xlim(lo - pad, hi + pad * 0.5)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.4f}", va="center", fontsize=8)
    ax.set_xlabel(f"OOF {metric}")
    ax.set_title("members vs blend")
    return _save(fig, path)


def model_inputs(members: list[Member]) -> list:
    from mlflow.entities import LoggedModelInput

    return [LoggedModelInput(o.model_id) for m in members for o in (m.run.outputs.model_outputs
                                                                    if m.run.outputs else [])]


@exit_on_user_error
def blend(cfg: DictConfig, schema: type, entry: str) -> float:
    """Blend the members the config names (`entry`: the folder's blend.py); the nested CV score of the blend."""
    from src.utils.core.logs import quiet_libraries
    from src.utils.track.artifacts import code_snapshot
    from src.utils.track.runs import tracked_run
    from src.utils.track.tracking import browse_hint, redact, setup_mlflow

    quiet_libraries()
    validate(cfg, schema)
    stage, folder = folder_of(entry)
    experiment_dir = Path(entry).resolve().parent
    competition = load_competition(str(cfg.competition))
    method = build_method(cfg, stage, folder)
    setup_mlflow()
    client = mlflow.MlflowClient()

    # every member checked and read before the run exists: a bad one is one error line and no run
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    members = resolve_members(cfg, client)
    for i, m in enumerate(members):
        check_member(m, competition, members[0] if i else None)
    timings = {"members": lap()}
    arrays = load_arrays(members, competition)
    oof = np.stack([m.oof for m in members])
    test = np.stack([m.test for m in members])
    timings["read"] = lap()
    log.info("read %d members' arrays once: OOF %s, test %s, %.1f MB in %.2f s", len(members), oof.shape[1:],
             test.shape[1:], (oof.nbytes + test.nbytes) / 1e6, timings["read"])
    y, folds = arrays.y, arrays.folds
    fn, sign = metric_fn(competition)
    name = competition.metric.name

    method.fit(oof, y, fn, sign)
    blended, blended_test = method.predict(oof), method.predict(test)
    timings["fit"] = lap()
    nested = nested_oof(method, oof, y, folds, fn, sign)[0] if cfg.nested_cv else blended
    timings["nested"] = lap()
    in_sample, honest = competition.score(y, blended), competition.score(y, nested)
    per_member = [competition.score(y, m.oof) for m in members]
    best = int(np.argmax([sign * s[name] for s in per_member]))
    weights = method.weights if method.weights is not None else np.full(len(members), np.nan)
    table = pd.DataFrame({"member": range(len(members)), "run_id": [m.run_id for m in members],
                          "experiment": [m.experiment for m in members], "run_name": [m.name for m in members],
                          "source": [m.source for m in members], "weight": weights,
                          **{f"oof_{k}": [s[k] for s in per_member] for k in per_member[0]}})
    submission = competition.submission(arrays.test_ids, blended_test)
    competition.check_submission(submission)
    timings["score"] = lap()

    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["members"] = {"runs": [m.run_id for m in members], "sweeps": [], "experiments": [],
                           "top_k": int(cfg.members.top_k)}
    tags = {"ensemble_members": ",".join(m.run_id for m in members), "n_members": str(len(members)),
            "competition": competition.name, "task": competition.task.kind, "competition_metric": name,
            "folds_hash": members[0].run.data.tags["folds_hash"], "method": str(cfg.method.get("_target_")),
            **{f"member.{i}": m.run_id for i, m in enumerate(members)}}
    hydra_cfg = HydraConfig.get()
    tags["hydra_overrides"] = json.dumps(list(hydra_cfg.overrides.task))
    metrics = {**{f"oof_{k}": v for k, v in in_sample.items()}, **{f"nested_oof_{k}": v for k, v in honest.items()},
               **{f"best_member_oof_{k}": v for k, v in per_member[best].items()},
               **{f"member{i}_oof_{name}": s[name] for i, s in enumerate(per_member)},
               "objective": honest[name], "n_members": float(len(members))}
    out_dir = Path(hydra_cfg.runtime.output_dir)
    with tracked_run(stage, folder, str(cfg.experiment_name), params=resolved, tags=tags, note=cfg.get("note"),
                     path=experiment_dir.relative_to(ROOT).as_posix()) as run:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            (t / "config.yaml").write_text(OmegaConf.to_yaml(redact(resolved)))
            mlflow.log_artifact(str(t / "config.yaml"))
            (t / "competition.yaml").write_text(OmegaConf.to_yaml(competition.cfg))
            mlflow.log_artifact(str(t / "competition.yaml"))
            mlflow.log_artifacts(str(code_snapshot(t / "code", experiment_dir).parent), "code")
            for hydra_file in ("hydra.yaml", "overrides.yaml"):
                if (out_dir / ".hydra" / hydra_file).is_file():
                    mlflow.log_artifact(str(out_dir / ".hydra" / hydra_file), artifact_path="hydra")
            table.to_csv(t / "members.csv", index=False)
            mlflow.log_artifact(str(t / "members.csv"))
            (t / "method.json").write_text(json.dumps({"target": str(cfg.method.get("_target_")),
                                                       "weights": None if method.weights is None else
                                                       [float(w) for w in method.weights],
                                                       **method.describe()}, indent=1))
            mlflow.log_artifact(str(t / "method.json"), artifact_path="blend")
            with open(t / "method.pkl", "wb") as f:
                pickle.dump(method, f)
            mlflow.log_artifact(str(t / "method.pkl"), artifact_path="blend")
            oof_frame = pd.DataFrame({"row": arrays.rows, "fold": folds,
                                      **competition.task.oof_columns(y, blended)})
            oof_frame.to_csv(t / "oof_predictions.csv", index=False)
            mlflow.log_artifact(str(t / "oof_predictions.csv"))
            np.savez(t / "oof.npz", rows=arrays.rows, folds=folds, y=y, scores=blended, nested=nested)
            mlflow.log_artifact(str(t / "oof.npz"), artifact_path="predictions")
            np.save(t / "test_scores.npy", blended_test)
            mlflow.log_artifact(str(t / "test_scores.npy"), artifact_path="predictions")
            pd.concat([arrays.test_ids.reset_index(drop=True),
                       pd.DataFrame(competition.task.prediction_columns(blended_test))], axis=1).to_csv(
                t / "test_predictions.csv", index=False)
            mlflow.log_artifact(str(t / "test_predictions.csv"))
            mlflow.log_artifact(str(members_png(table, name, in_sample[name], honest[name],
                                                t / "members_vs_blend.png")))
            mlflow.log_artifact(str(correlation_png(members, t / "oof_correlation.png")))
        out = out_dir / "submission.csv"
        with atomic_file(out) as f:
            submission.to_csv(f, index=False)
        mlflow.log_artifact(str(out))
        mlflow.log_metrics(metrics)
        inputs = model_inputs(members)
        if inputs:
            client.log_inputs(run.info.run_id, models=inputs)
        timings["record"] = lap()
        mlflow.log_metrics({f"time_{k}_s": v for k, v in timings.items()})
        log.info("ensemble of %d: %s in-sample %.4f, nested CV %.4f; best member %.4f (%s)", len(members), name,
                 in_sample[name], honest[name], per_member[best][name], members[best].name)
        log.info("timings: %s", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    print(table[["member", "run_id", "run_name", "weight", f"oof_{name}"]].to_string(index=False), flush=True)
    print(f"run_id={run.info.run_id} oof_{name}={in_sample[name]:.4f} nested_oof_{name}={honest[name]:.4f} "
          f"best_member_oof_{name}={per_member[best][name]:.4f} experiment={cfg.experiment_name} "
          f"({browse_hint()})\nsubmission: {out}\nsubmit:     kaggle competitions submit -c {competition.slug} -f "
          f"{out} -m \"{cfg.experiment_name} {run.info.run_id[:8]}\"", flush=True)
    return honest[name]
