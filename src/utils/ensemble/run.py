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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.utils.competition.spec import Competition, check_named
from src.utils.competition.spec import load as load_competition
from src.utils.config.schema import validate
from src.utils.config.targets import instantiate
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.io import atomic_file
from src.utils.core.paths import ROOT, folder_of
from src.utils.ensemble.members import Member, check_member, load_arrays, model_inputs, resolve_members
from src.utils.ensemble.methods import Method, nested_oof
from src.utils.run.baseline import baseline_metrics, check_against

log = logging.getLogger(__name__)


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

class Clock:
    """Seconds between laps, for the run's time_<step>_s metrics."""

    def __init__(self) -> None:
        self.last, self.timings = time.perf_counter(), {}

    def lap(self, step: str) -> float:
        now = time.perf_counter()
        self.timings[step], self.last = now - self.last, now
        return self.timings[step]


@dataclass
class Blended:
    """The members, their arrays and the blend fitted on them, scored in-sample, nested and per member."""

    members: list[Member]
    arrays: Any
    blended: np.ndarray
    blended_test: np.ndarray
    nested: np.ndarray
    in_sample: dict[str, float]
    honest: dict[str, float]
    per_member: list[dict[str, float]]
    best: int
    table: pd.DataFrame
    submission: pd.DataFrame
    baseline: dict[str, float]  # baseline_oof_<metric>: the trivial predictor on the same rows and folds


def fit_blend(cfg: DictConfig, client, competition: Competition, method: Method, clock: Clock) -> Blended:
    """Every member checked and read before the run exists (a bad one is one error line and no run), the method
    fitted on their OOF scores, scored in-sample and nested, the test scores blended into the submission."""
    members = resolve_members(cfg, client)
    for i, m in enumerate(members):
        check_member(m, competition, members[0] if i else None)
    clock.lap("members")
    arrays = load_arrays(members, competition)
    oof = np.stack([m.oof for m in members])
    test = np.stack([m.test for m in members])
    log.info("read %d members' arrays once: OOF %s, test %s, %.1f MB in %.2f s", len(members), oof.shape[1:],
             test.shape[1:], (oof.nbytes + test.nbytes) / 1e6, clock.lap("read"))
    y, folds = arrays.y, arrays.folds
    fn, sign = metric_fn(competition)
    name = competition.metric.name
    method.fit(oof, y, fn, sign)
    blended, blended_test = method.predict(oof), method.predict(test)
    clock.lap("fit")
    nested = nested_oof(method, oof, y, folds, fn, sign)[0] if cfg.nested_cv else blended
    clock.lap("nested")
    per_member = [competition.score(y, m.oof) for m in members]
    weights = method.weights if method.weights is not None else np.full(len(members), np.nan)
    table = pd.DataFrame({"member": range(len(members)), "run_id": [m.run_id for m in members],
                          "experiment": [m.experiment for m in members], "run_name": [m.name for m in members],
                          "source": [m.source for m in members], "weight": weights,
                          **{f"oof_{k}": [s[k] for s in per_member] for k in per_member[0]}})
    submission = competition.submission(arrays.test_ids, blended_test)
    competition.check_submission(submission)
    clock.lap("score")
    baseline = baseline_metrics(competition, y, folds, sorted(int(k) for k in np.unique(folds) if k >= 0))
    return Blended(members, arrays, blended, blended_test, nested, competition.score(y, blended),
                   competition.score(y, nested), per_member, int(np.argmax([sign * s[name] for s in per_member])),
                   table, submission, baseline)


def run_description(cfg: DictConfig, result: Blended, competition: Competition) -> tuple[dict, dict, dict]:
    """The run's params (the config, members resolved to run_ids so `rerun.sh` blends the same runs), tags and
    metrics."""
    members, name = result.members, competition.metric.name
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["members"] = {"runs": [m.run_id for m in members], "sweeps": [], "experiments": [],
                           "top_k": int(cfg.members.top_k)}
    tags = {"ensemble_members": ",".join(m.run_id for m in members), "n_members": str(len(members)),
            "competition": competition.name, "task": competition.task.kind, "competition_metric": name,
            "folds_hash": members[0].run.data.tags["folds_hash"], "method": str(cfg.method.get("_target_")),
            **{f"member.{i}": m.run_id for i, m in enumerate(members)},
            "hydra_overrides": json.dumps(list(HydraConfig.get().overrides.task))}
    metrics = {**{f"oof_{k}": v for k, v in result.in_sample.items()},
               **{f"nested_oof_{k}": v for k, v in result.honest.items()},
               **{f"best_member_oof_{k}": v for k, v in result.per_member[result.best].items()},
               **{f"member{i}_oof_{name}": s[name] for i, s in enumerate(result.per_member)},
               **result.baseline,
               "objective": result.honest[name], "n_members": float(len(members))}
    return resolved, tags, metrics


def log_config_files(t: Path, resolved: dict, competition: Competition, experiment_dir: Path, out_dir: Path) -> None:
    from src.utils.core.redaction import redact
    from src.utils.track.artifacts import code_snapshot

    (t / "config.yaml").write_text(OmegaConf.to_yaml(redact(resolved)))
    mlflow.log_artifact(str(t / "config.yaml"))
    (t / "competition.yaml").write_text(OmegaConf.to_yaml(competition.cfg))
    mlflow.log_artifact(str(t / "competition.yaml"))
    mlflow.log_artifacts(str(code_snapshot(t / "code", experiment_dir).parent), "code")
    for hydra_file in ("hydra.yaml", "overrides.yaml"):
        if (out_dir / ".hydra" / hydra_file).is_file():
            mlflow.log_artifact(str(out_dir / ".hydra" / hydra_file), artifact_path="hydra")


def log_blend_files(t: Path, cfg: DictConfig, result: Blended, competition: Competition, method: Method) -> None:
    """members.csv, the fitted method (blend/method.pkl, which the Kaggle pack applies), the blended OOF and test
    predictions, the members-vs-blend plot and the members' OOF correlation heat map."""
    arrays, name = result.arrays, competition.metric.name
    result.table.to_csv(t / "members.csv", index=False)
    mlflow.log_artifact(str(t / "members.csv"))
    (t / "method.json").write_text(json.dumps({"target": str(cfg.method.get("_target_")),
                                               "weights": None if method.weights is None else
                                               [float(w) for w in method.weights], **method.describe()}, indent=1))
    mlflow.log_artifact(str(t / "method.json"), artifact_path="blend")
    with open(t / "method.pkl", "wb") as f:
        pickle.dump(method, f)
    mlflow.log_artifact(str(t / "method.pkl"), artifact_path="blend")
    oof_frame = pd.DataFrame({"row": arrays.rows, "fold": arrays.folds,
                              **competition.task.oof_columns(arrays.y, result.blended)})
    oof_frame.to_csv(t / "oof_predictions.csv", index=False)
    mlflow.log_artifact(str(t / "oof_predictions.csv"))
    np.savez(t / "oof.npz", rows=arrays.rows, folds=arrays.folds, y=arrays.y, scores=result.blended,
             nested=result.nested)
    mlflow.log_artifact(str(t / "oof.npz"), artifact_path="predictions")
    np.save(t / "test_scores.npy", result.blended_test)
    mlflow.log_artifact(str(t / "test_scores.npy"), artifact_path="predictions")
    pd.concat([arrays.test_ids.reset_index(drop=True),
               pd.DataFrame(competition.task.prediction_columns(result.blended_test))], axis=1).to_csv(
        t / "test_predictions.csv", index=False)
    mlflow.log_artifact(str(t / "test_predictions.csv"))
    mlflow.log_artifact(str(members_png(result.table, name, result.in_sample[name], result.honest[name],
                                        t / "members_vs_blend.png")))
    mlflow.log_artifact(str(correlation_png(result.members, t / "oof_correlation.png")))


def record_blend(cfg: DictConfig, result: Blended, competition: Competition, method: Method, entry: str,
                 client, clock: Clock) -> tuple[str, Path]:
    """The ensemble's run: its files, the submission, metrics and model inputs; its run_id and submission path."""
    from src.utils.track.runs import tracked_run

    stage, folder = folder_of(entry)
    experiment_dir = Path(entry).resolve().parent
    resolved, tags, metrics = run_description(cfg, result, competition)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    name, members, best = competition.metric.name, result.members, result.best
    with tracked_run(stage, folder, str(cfg.experiment_name), params=resolved, tags=tags, note=cfg.get("note"),
                     path=experiment_dir.relative_to(ROOT).as_posix()) as run:
        with tempfile.TemporaryDirectory() as tmp:
            log_config_files(Path(tmp), resolved, competition, experiment_dir, out_dir)
            log_blend_files(Path(tmp), cfg, result, competition, method)
        out = out_dir / "submission.csv"
        with atomic_file(out) as f:
            result.submission.to_csv(f, index=False)
        mlflow.log_artifact(str(out))
        mlflow.log_metrics(metrics)
        inputs = model_inputs(members)
        if inputs:
            client.log_inputs(run.info.run_id, models=inputs)
        clock.lap("record")
        mlflow.log_metrics({f"time_{k}_s": v for k, v in clock.timings.items()})
        log.info("ensemble of %d: %s in-sample %.4f, nested CV %.4f; best member %.4f (%s); trivial baseline %.4f",
                 len(members), name, result.in_sample[name], result.honest[name], result.per_member[best][name],
                 members[best].name, metrics[f"baseline_oof_{name}"])
        mlflow.set_tag("beats_baseline", str(check_against({f"oof_{name}": result.honest[name],
                                                            **metrics}, competition)).lower())
        log.info("timings: %s", ", ".join(f"{k} {v:.2f} s" for k, v in clock.timings.items()))
    return run.info.run_id, out


@exit_on_user_error
def blend(cfg: DictConfig, schema: type, entry: str) -> float:
    """Blend the members the config names (`entry`: the folder's blend.py); the nested CV score of the blend."""
    from src.utils.core.logs import quiet_libraries
    from src.utils.track.tracking import browse_hint, setup_mlflow

    quiet_libraries()
    validate(cfg, schema, (check_named,))
    competition = load_competition(str(cfg.competition))
    method = build_method(cfg, *folder_of(entry))
    setup_mlflow()
    client, clock = mlflow.MlflowClient(), Clock()
    result = fit_blend(cfg, client, competition, method, clock)
    run_id, out = record_blend(cfg, result, competition, method, entry, client, clock)
    name, best = competition.metric.name, result.per_member[result.best]
    print(result.table[["member", "run_id", "run_name", "weight", f"oof_{name}"]].to_string(index=False), flush=True)
    print(f"run_id={run_id} oof_{name}={result.in_sample[name]:.4f} nested_oof_{name}={result.honest[name]:.4f} "
          f"best_member_oof_{name}={best[name]:.4f} baseline_oof_{name}={result.baseline[f'baseline_oof_{name}']:.4f} "
          f"experiment={cfg.experiment_name} "
          f"({browse_hint()})\nsubmission: {out}\nsubmit:     kaggle competitions submit -c {competition.slug} -f "
          f"{out} -m \"{cfg.experiment_name} {run_id[:8]}\"", flush=True)
    return result.honest[name]
